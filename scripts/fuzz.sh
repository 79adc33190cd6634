#!/usr/bin/env bash
# Fuzzes the code that parses untrusted bytes (tests/fuzz/: session files,
# profiles, the cookie conversion) with libFuzzer + ASan + UBSan, built with
# clang into build-fuzz/.
#   scripts/fuzz.sh [SECONDS]          each target for SECONDS (default 60); fails on any crash
#   scripts/fuzz.sh --merge [SECONDS]  then adds the inputs that found new coverage to
#                                      tests/fuzz/corpus/<target>/ (developers; commit them)
#   scripts/fuzz.sh --replay           runs each corpus input once, nothing new (the test suite:
#                                      exploring finds new inputs at random, a replay repeats exactly)
#   FUZZ_TARGETS="fuzz_profile ..."    only these targets
# The repo corpus is only read: new inputs go to a temporary directory, which
# is deleted at the end (and merged into the corpus with --merge). A crashing
# input is kept in build-fuzz/artifacts/<target>/ with the command to replay it.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '5,10p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
merge=0
seconds=60
replay=0
while [ $# -gt 0 ]; do
  case "$1" in
    --merge) merge=1 ;;
    --replay) replay=1 ;;
    -h|--help) usage ;;
    ''|*[!0-9]*) echo "fuzz: unknown argument '$1'" >&2; usage ;;
    *) seconds=$1 ;;
  esac
  shift
done
[ "$seconds" -ge 1 ] || { echo "fuzz: SECONDS must be at least 1" >&2; exit 2; }
if [ "$replay" = 1 ]; then
  [ "$merge" = 0 ] || { echo "fuzz: --replay finds nothing to merge" >&2; exit 2; }
  budget=(-runs=0)
else
  budget=(-max_total_time="$seconds")
fi
targets=(${FUZZ_TARGETS:-fuzz_session_file fuzz_profile fuzz_cookie_jar fuzz_devtools fuzz_storage_state})
# Symbolized sanitizer reports (Debian's llvm-14 has no unversioned llvm-symbolizer).
if [ -z "${ASAN_SYMBOLIZER_PATH:-}" ] && ! command -v llvm-symbolizer >/dev/null &&
   [ -x /usr/lib/llvm-14/bin/llvm-symbolizer ]; then
  export ASAN_SYMBOLIZER_PATH=/usr/lib/llvm-14/bin/llvm-symbolizer
fi

build_dir=build-fuzz
CC=clang CXX=clang++ cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DSESSIOND_FUZZ=ON -DSESSIOND_TESTS=OFF >/dev/null
cmake --build "$build_dir" --target fuzz -j "$(nproc)" >/dev/null

work=$(mktemp -d -t sessiond-fuzz-XXXXXX)
trap 'rm -rf "$work"' EXIT
# A figure from libFuzzer's final stats (-print_final_stats=1).
final_stat() { sed -n "s/^stat::$2: *//p" "$1" | tail -n 1; }
failed=()
for t in "${targets[@]}"; do
  bin="$build_dir/tests/fuzz/$t"
  seeds="tests/fuzz/corpus/$t"
  [ -x "$bin" ] && [ -d "$seeds" ] || { echo "fuzz: no target $t" >&2; exit 2; }
  mkdir -p "$work/$t/new" "$work/$t/artifacts"
  args=("${budget[@]}" -timeout=5 -rss_limit_mb=1024 -print_final_stats=1
        -artifact_prefix="$work/$t/artifacts/")
  [ -f "tests/fuzz/$t.dict" ] && args+=(-dict="tests/fuzz/$t.dict")
  # libFuzzer writes new inputs into the first directory only.
  status=0
  start=$(date +%s)
  "$bin" "${args[@]}" "$work/$t/new" "$seeds" >"$work/$t/log" 2>&1 || status=$?
  elapsed=$(( $(date +%s) - start ))

  last=$(grep -E '^#[0-9]+.* cov: ' "$work/$t/log" | tail -n 1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$last")
  execs=$(final_stat "$work/$t/log" number_of_executed_units)
  verdict=ok
  if [ "$status" -ne 0 ]; then
    verdict="FAILED (exit $status)"
    failed+=("$t")
  fi
  printf 'fuzz: %-18s %s execs in %ss (%s/s), cov %s, ft %s, corpus %s (+%s new), peak rss %s MB: %s\n' \
    "$t" "${execs:-?}" "$elapsed" "$(final_stat "$work/$t/log" average_exec_per_sec)" "${cov:-?}" "${ft:-?}" "${corp:-?}" \
    "$(final_stat "$work/$t/log" new_units_added)" \
    "$(final_stat "$work/$t/log" peak_rss_mb)" "$verdict"

  if [ "$status" -ne 0 ]; then
    keep="$build_dir/artifacts/$t"
    rm -rf "$keep"
    mkdir -p "$keep"
    cp "$work/$t/log" "$keep/fuzz.log"
    cp "$work/$t/artifacts/"* "$keep/" 2>/dev/null || true
    # What broke, without libFuzzer's own stack frames.
    grep -E -A 12 'invariant violated|runtime error|ERROR: (Address|Leak)Sanitizer|ERROR: libFuzzer' \
      "$work/$t/log" | grep -v 'in fuzzer::' | head -n 30 >&2 || tail -n 30 "$work/$t/log" >&2
    for a in "$keep"/crash-* "$keep"/timeout-* "$keep"/oom-* "$keep"/leak-*; do
      [ -e "$a" ] && echo "fuzz: replay with: $bin $a" >&2
    done
  elif [ "$merge" = 1 ]; then
    before=$(ls "$seeds" | wc -l)
    # Only inputs that reach new edges (not new hit counts): a small corpus.
    "$bin" -merge=1 -use_counters=0 -timeout=5 -rss_limit_mb=1024 "$seeds" "$work/$t/new" \
      >"$work/$t/merge.log" 2>&1
    echo "fuzz: $t: corpus $before -> $(ls "$seeds" | wc -l) files in $seeds"
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]} (inputs and logs in $build_dir/artifacts/)" >&2
  exit 1
fi
