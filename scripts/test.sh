#!/usr/bin/env bash
# Runs every test: unit and actor tests (Catch2), integration tests (the real
# binaries over loopback), monitoring and manifest checks, then (normal build
# only) every fuzz corpus input through its fuzz target (scripts/fuzz.sh
# --replay; SESSIOND_FUZZ=0 skips).
#   scripts/test.sh              normal build
#   scripts/test.sh --sanitize   the same suite under AddressSanitizer + UBSan
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh "$@"
build_dir=build
[ "${1:-}" = "--sanitize" ] && build_dir=build-asan
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
cd "$build_dir"
if [ "$build_dir" = build-asan ]; then
  # Unit and actor tests with leak detection; the daemon processes of the
  # integration tests without it (they are killed and signalled on purpose,
  # and libcaf's globals are not torn down at exit). The integration tests
  # one at a time: their deadlines are scaled-down idle timeouts, and two
  # sanitized daemons and fake sites on 2 cores missed them.
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} ctest --output-on-failure -j 2 --timeout 600 -L unit
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0} ctest --output-on-failure -j 1 --timeout 600 -LE unit
else
  ctest --output-on-failure -j 2 --timeout 600
  # Once per CI run: the fuzz build is already ASan + UBSan (clang, build-fuzz/).
  # A replay, not exploration: the suite must fail or pass alike on every run.
  if [ "${SESSIOND_FUZZ:-1}" != 0 ]; then
    ../scripts/fuzz.sh --replay
  fi
fi
