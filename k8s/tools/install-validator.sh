#!/usr/bin/env bash
# Installs the offline manifest validator used by tests/checks/k8s.sh:
# kubernetes-models (Kubernetes 1.33 API schemas as generated ajv validators),
# @kubernetes-models/prometheus-operator (ServiceMonitor, PrometheusRule, ...)
# and yaml, at the exact versions of k8s/tools/package-lock.json, into
# k8s/tools/node_modules (git-ignored). Needs Node.js >= 18 and npm: on a
# fresh Debian 12 machine, running as root, it installs Debian's nodejs, npm
# and python3 (for k8s/tools/check-policy.py) with apt-get first.
#
# Idempotent: when node_modules matches the lock file it returns at once.
set -euo pipefail

tools=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
stamp=$tools/node_modules/.sessiond-lock.sha256

missing=()
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
if ((${#missing[@]})); then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "install-validator: apt-get install ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "install-validator: missing ${missing[*]}; install them (Debian: apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi

major=$(node -p 'process.versions.node.split(".")[0]')
if ((major < 18)); then
  echo "install-validator: Node.js >= 18 needed, found $(node --version)" >&2
  exit 1
fi

want=$(sha256sum "$tools/package-lock.json" | cut -d' ' -f1)
if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then
  exit 0
fi

echo "install-validator: npm ci in $tools" >&2
# --ignore-scripts: none of these packages needs an install script.
npm ci --prefix "$tools" --no-audit --no-fund --ignore-scripts --loglevel=error >&2
echo "$want" >"$stamp"
