#!/usr/bin/env bash
# Installs what sessiond needs to build and test (Debian 12 packages), then
# builds it. Safe to run again: installs only what is missing, builds
# incrementally.
#   scripts/setup.sh              -> build/
#   scripts/setup.sh --sanitize   -> build-asan/ (AddressSanitizer + UBSan)
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  libcaf-dev libcurl4-openssl-dev nlohmann-json3-dev prometheus-cpp-dev
  libspdlog-dev catch2 libcpp-httplib-dev
  python3 prometheus ca-certificates
  clang libclang-rt-14-dev llvm-14   # scripts/fuzz.sh: libFuzzer, symbolized reports
  clang-format                       # tests/checks/format.sh
  chromium-headless-shell            # browser steps (profiles/baman24.json) and their tests
)

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
if [ "${1:-}" = "--sanitize" ]; then
  build_dir=build-asan
  cmake_args+=(-DSESSIOND_SANITIZE=ON)
fi
cmake -S . -B "$build_dir" "${cmake_args[@]}" >/dev/null
cmake --build "$build_dir" -j "$(nproc)"
echo "setup: built $build_dir/sessiond"
