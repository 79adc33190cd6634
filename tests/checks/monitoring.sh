#!/usr/bin/env bash
# CI check of monitoring/: Prometheus config, alert rules and their unit tests,
# runbook links, Grafana dashboard, and that every metric the rules and the
# dashboard use is in the exposition.
#
# Run from the repository root:   bash tests/checks/monitoring.sh
# Needs promtool (Debian: prometheus) and python3 (standard library only).
#
# EXPOSITION: the Prometheus text exposition to check metric names against
# (default: the placeholder monitoring/testdata/sample_metrics.txt). An
# integration test can point it at the real daemon's output:
#   curl -s http://127.0.0.1:9464/metrics > /tmp/m.txt
#   EXPOSITION=/tmp/m.txt bash tests/checks/monitoring.sh
set -euo pipefail

MON=monitoring
EXPOSITION=${EXPOSITION:-$MON/testdata/sample_metrics.txt}

if [[ ! -f $MON/alerts.yml ]]; then
  echo "monitoring.sh: run from the repository root ($MON/alerts.yml not found)" >&2
  exit 2
fi
for tool in promtool python3; do
  command -v "$tool" >/dev/null || { echo "monitoring.sh: $tool not found" >&2; exit 2; }
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

step=0
check() { # check DESCRIPTION COMMAND...
  local what=$1
  shift
  step=$((step + 1))
  echo "==> [$step] $what"
  echo "    \$ $*"
  if ! "$@" >"$tmp/out" 2>&1; then
    sed 's/^/    /' "$tmp/out"
    echo "FAILED: $what" >&2
    exit 1
  fi
  sed 's/^/    /' "$tmp/out"
}

# promtool check metrics prints lint problems and exits non-zero; insist on
# silence too, so that a warning-only output also fails.
# One accepted exception: sessiond_shard_count is the name issue 12 asked for
# (a gauge beside sessiond_shard_index, not a histogram's _count series).
lint_metrics() {
  local out rc=0
  out=$(promtool check metrics <"$1" 2>&1) || rc=$?
  local accepted='sessiond_shard_count non-histogram and non-summary metrics should not have "_count" suffix'
  if [[ $rc -eq 3 && $out == "$accepted" ]]; then
    out=""
    rc=0
  fi
  if [[ $rc -ne 0 || -n $out ]]; then
    printf '%s\n' "$out"
    echo "promtool check metrics: exit status $rc, lint output above"
    return 1
  fi
  echo "no lint problems in $1"
}

# The checker must fail (exit 1) when a metric the rules use is missing.
metric_check_detects_missing() {
  grep -v '^sessiond_circuit_open\b\|[# ]sessiond_circuit_open ' "$EXPOSITION" >"$tmp/missing.txt"
  local rc=0
  python3 "$MON/check_metric_names.py" "$tmp/missing.txt" >"$tmp/missing.out" 2>&1 || rc=$?
  if [[ $rc -ne 1 ]] || ! grep -q 'sessiond_circuit_open' "$tmp/missing.out"; then
    cat "$tmp/missing.out"
    echo "expected exit 1 naming sessiond_circuit_open, got exit $rc"
    return 1
  fi
  echo "exit 1 and names sessiond_circuit_open when it is removed from the exposition"
}

check "Prometheus config is valid (and loads its rule files)" \
  promtool check config "$MON/prometheus.yml"
check "alert rules are valid" \
  promtool check rules "$MON/alerts.yml"
check "alert rule unit tests pass" \
  promtool test rules "$MON/alerts_test.yml"
check "every alert: runbook section, firing and non-firing test; dashboard structure" \
  python3 "$MON/check_consistency.py" "$MON"
check "Grafana dashboard is valid JSON" \
  python3 -m json.tool "$MON/grafana-dashboard.json" /dev/null
check "dashboard queries are valid PromQL (as recording rules)" \
  python3 "$MON/check_metric_names.py" --emit-dashboard-rules "$tmp/dashboard_rules.yml"
check "  ... promtool parses them" \
  promtool check rules "$tmp/dashboard_rules.yml"
check "exposition passes the metrics linter: $EXPOSITION" \
  lint_metrics "$EXPOSITION"
check "metric-name checker self-test" \
  python3 "$MON/check_metric_names.py" --self-test
check "every metric used by alerts.yml and the dashboard is exported" \
  python3 "$MON/check_metric_names.py" "$EXPOSITION"
check "metric-name checker catches a missing metric" \
  metric_check_detects_missing

echo "OK: monitoring checks passed ($step steps)"
