#!/usr/bin/env bash
# Fails (and lists the files) when a C++ source under lib/, tools/, tests/ or bench/ is not
# formatted with the committed .clang-format. `make format` fixes it.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
command -v clang-format >/dev/null || { echo "check-format: clang-format not found" >&2; exit 1; }
bad=()
while IFS= read -r -d '' f; do
  clang-format --dry-run -Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done < <(find lib tools tests bench \( -name '*.cpp' -o -name '*.hpp' \) -print0 | sort -z)
if [ ${#bad[@]} -gt 0 ]; then
  printf 'check-format: not clang-formatted (run `make format`):\n' >&2
  printf '  %s\n' "${bad[@]}" >&2
  exit 1
fi
echo "check-format: all files formatted"
