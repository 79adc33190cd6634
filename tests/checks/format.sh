#!/usr/bin/env bash
# CI check: every C++ source and header is formatted as .clang-format says.
# Run from the repository root:   bash tests/checks/format.sh
# Fix with:   clang-format -i <files it names>
# Needs clang-format (Debian: clang-format).
set -euo pipefail

if [[ ! -f .clang-format ]]; then
  echo "format.sh: run from the repository root (.clang-format not found)" >&2
  exit 2
fi
if git rev-parse --git-dir >/dev/null 2>&1; then
  mapfile -t files < <(git ls-files '*.cpp' '*.hpp' '*.h' | grep -v '^tests/fuzz/corpus/')
else
  mapfile -t files < <(find actors bench fakesite include main src tests -name '*.cpp' -o -name '*.hpp' -o -name '*.h' \
                       | grep -v '^tests/fuzz/corpus/')
fi
bad=()
for f in "${files[@]}"; do
  clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
if [ ${#bad[@]} -gt 0 ]; then
  echo "format: ${#bad[@]} of ${#files[@]} files differ from .clang-format:" >&2
  printf '  %s\n' "${bad[@]}" >&2
  echo "format: fix with: clang-format -i ${bad[*]}" >&2
  exit 1
fi
echo "format: ${#files[@]} files formatted as .clang-format says"
