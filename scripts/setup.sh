#!/usr/bin/env bash
# Installs what sessiond needs (Debian 12 packages), then builds it. Safe to
# run again: installs only what is missing, builds incrementally.
#   scripts/setup.sh              -> build/ (everything, tests included)
#   scripts/setup.sh --sanitize   -> build-asan/ (AddressSanitizer + UBSan)
#   scripts/setup.sh --demo       -> build/sessiond and the fake site only,
#                                    with the build packages only
set -euo pipefail
cd "$(dirname "$0")/.."

mode=all
case "${1:-}" in
  --demo) mode=demo ;;
  --sanitize) mode=sanitize ;;
  "") ;;
  *) echo "setup: unknown option '$1' (--demo, --sanitize)" >&2; exit 2 ;;
esac

# What building the daemon and the fake site needs (README "Build and install").
BUILD_PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  libcaf-dev libcurl4-openssl-dev nlohmann-json3-dev prometheus-cpp-dev
  libspdlog-dev libcpp-httplib-dev libre2-dev libssl-dev
)
# What the tests need on top.
TEST_PACKAGES=(
  catch2 python3 prometheus ca-certificates
  clang libclang-rt-14-dev llvm-14   # scripts/fuzz.sh: libFuzzer, symbolized reports
  clang-format                       # tests/checks/format.sh
  chromium-headless-shell            # browser steps (profiles/baman24.json) and their tests
)
PACKAGES=("${BUILD_PACKAGES[@]}")
[ "$mode" = demo ] || PACKAGES+=("${TEST_PACKAGES[@]}")

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

build_dir=build
cmake_args=(-G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo)
targets=()
case "$mode" in
  sanitize) build_dir=build-asan; cmake_args+=(-DSESSIOND_SANITIZE=ON -DSESSIOND_TESTS=ON) ;;
  all) cmake_args+=(-DSESSIOND_TESTS=ON) ;;
  demo)
    targets=(--target sessiond sessiond-fakesite)
    # Without the test packages the test tree cannot be configured; with
    # them (a machine that also runs the tests) keep it, so that the two
    # commands do not reconfigure each other's build.
    dpkg-query -W -f='${Status}' catch2 2>/dev/null | grep -q "install ok installed" ||
      cmake_args+=(-DSESSIOND_TESTS=OFF)
    ;;
esac
cmake -S . -B "$build_dir" "${cmake_args[@]}" >/dev/null
cmake --build "$build_dir" -j "$(nproc)" "${targets[@]}"
echo "setup: built $build_dir/sessiond"
