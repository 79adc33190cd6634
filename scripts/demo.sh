#!/usr/bin/env bash
# Quick start: build, then run sessiond against the bundled fake site.
# Ctrl-C stops everything. Extra flags go to `sessiond demo` (e.g. --sessions 20).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --demo
exec build/sessiond demo --profile profiles/demo.json "$@"
