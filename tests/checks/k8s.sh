#!/usr/bin/env bash
# Offline checks of the Kubernetes manifests (k8s/). No cluster, no network
# beyond the npm registry for the first install of the validator.
#
#   bash tests/checks/k8s.sh [KUSTOMIZATION_DIR...]
#
# Checks both shipped layouts by default: k8s/base (the default, sidecar: the
# login bot and sessiond in one pod on a ReadWriteOnce volume) and
# k8s/overlays/shared-storage (sharded StatefulSet on a ReadWriteMany volume).
# Name your own overlay(s) to check them the same way (steps 4-6).
#
#  1. kubectl is there (kubectl kustomize renders the base).
#  2. k8s/base/prometheusrule.yaml is what k8s/tools/gen-prometheusrule.sh
#     makes from monitoring/alerts.yml (the single source of the alerts).
#  3. k8s/base/profile.json is a byte-for-byte copy of profiles/baman24.json
#     (when that file exists).
#  4. `kubectl kustomize DIR` renders.
#  5. Every rendered object validates against its Kubernetes / Prometheus
#     Operator JSON schema, unknown fields included (k8s/tools/
#     validate-manifests.mjs; installed by k8s/tools/install-validator.sh).
#  6. Deployment rules: layout (sidecar or shared storage) and sharding,
#     probes, securityContext, volumes, services, monitoring, recommended
#     labels (k8s/tools/check-policy.py), with the uid of the Dockerfile's
#     USER.
#
# Ends with "N passed, M failed"; exit status 1 if any check failed.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
dirs=()
for d in "$@"; do
  if [[ ! -d $d ]]; then
    echo "k8s.sh: $d is not a directory" >&2
    exit 2
  fi
  dirs+=("$(cd "$d" && pwd)")
done
cd "$root" || exit 1
((${#dirs[@]})) || dirs=("$root/k8s/base" "$root/k8s/overlays/shared-storage")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "PASS $*"; }
failc() { failed=$((failed + 1)); echo "FAIL $*"; }
finish() {
  echo "k8s: $passed passed, $failed failed"
  ((failed == 0))
  exit
}

# 1. kubectl --------------------------------------------------------------
if ! command -v kubectl >/dev/null 2>&1; then
  failc "kubectl not found: this check renders k8s/base with 'kubectl kustomize' (kubectl >= 1.27, kustomize 5)"
  finish
fi
kver=$(kubectl version --client 2>/dev/null | tr '\n' ' ')
pass "kubectl found: ${kver% }"

# 2. PrometheusRule is generated from monitoring/alerts.yml ---------------
if [[ ! -f monitoring/alerts.yml ]]; then
  failc "monitoring/alerts.yml is missing: it is the source of k8s/base/prometheusrule.yaml"
elif ! k8s/tools/gen-prometheusrule.sh monitoring/alerts.yml "$tmp/prometheusrule.yaml" 2>"$tmp/gen.err"; then
  failc "k8s/tools/gen-prometheusrule.sh failed:"
  sed 's/^/    /' "$tmp/gen.err"
elif ! diff -u k8s/base/prometheusrule.yaml "$tmp/prometheusrule.yaml" >"$tmp/rule.diff"; then
  failc "k8s/base/prometheusrule.yaml is stale: run k8s/tools/gen-prometheusrule.sh and commit it"
  head -40 "$tmp/rule.diff" | sed 's/^/    /'
else
  pass "k8s/base/prometheusrule.yaml matches monitoring/alerts.yml"
fi

# 3. profile copy ----------------------------------------------------------
if [[ -f profiles/baman24.json ]]; then
  if cmp -s profiles/baman24.json k8s/base/profile.json; then
    pass "k8s/base/profile.json is identical to profiles/baman24.json"
  else
    failc "k8s/base/profile.json differs from profiles/baman24.json: cp profiles/baman24.json k8s/base/profile.json"
  fi
else
  echo "NOTE profiles/baman24.json does not exist (yet): k8s/base/profile.json not compared"
fi

# Dockerfile USER (runtime stage) = the uid the pods must run as.
uid=$(awk 'toupper($1) == "FROM" { user = "" } toupper($1) == "USER" { user = $2 } END { print user }' Dockerfile 2>/dev/null)
uid=${uid%%:*}
if [[ ! $uid =~ ^[0-9]+$ ]]; then
  failc "cannot read a numeric USER from the Dockerfile's last stage (got '${uid}'); checking against 10001"
  uid=10001
fi

if ! k8s/tools/install-validator.sh; then
  failc "could not install the manifest validator (k8s/tools/install-validator.sh)"
  finish
fi

n=0
for dir in "${dirs[@]}"; do
  n=$((n + 1))
  out=$tmp/render$n
  dir=${dir#"$root"/}
  # 4. render
  if kubectl kustomize "$dir" >"$out.yaml" 2>"$out.err"; then
    pass "kubectl kustomize $dir renders ($(grep -c '^kind:' "$out.yaml") objects)"
  else
    failc "kubectl kustomize $dir failed:"
    sed 's/^/    /' "$out.err"
    continue
  fi
  # 5. schema validation
  if node k8s/tools/validate-manifests.mjs --json-out "$out.json" "$out.yaml" 2>&1 | sed 's/^/    /'; then
    pass "$dir: every rendered object matches its API schema (no unknown fields)"
  else
    failc "$dir: schema validation of the rendered manifests (see above)"
  fi
  # 6. deployment rules (the shipped layouts must carry the monitoring
  # objects; your overlay may delete them when the cluster has no Prometheus
  # Operator)
  policy_args=(--image-uid "$uid")
  [[ $dir == k8s/base || $dir == k8s/overlays/shared-storage ]] && policy_args+=(--require-monitoring)
  if [[ ! -s $out.json ]]; then
    failc "$dir: deployment rules not checked: no parsed manifests"
  elif python3 k8s/tools/check-policy.py "${policy_args[@]}" "$out.json" 2>&1 | sed 's/^/    /'; then
    pass "$dir: deployment rules (sharding, probes, securityContext uid $uid, volumes, services, monitoring)"
  else
    failc "$dir: deployment rules (see above)"
  fi
done

finish
