#!/usr/bin/env bash
# Fails (and lists the files) when a C++ source under lib/, tools/, tests/ or bench/ is not
# formatted with the committed .clang-format. `make format` (this script with --fix) fixes them.
#
# The clang-format version is pinned: two major versions format the same .clang-format slightly
# differently, so an unpinned tool would make the FormatCheck test flip with whatever the machine
# has. clang-format-$WEC_CLANG_FORMAT_MAJOR (Debian bookworm's, installed by
# scripts/install-deps.sh) is used when present, else `clang-format` if it is that major version;
# any other version is an error, never a silent pass. CLANG_FORMAT=/path overrides the binary (its
# version is still checked).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
WEC_CLANG_FORMAT_MAJOR=14

fix=0
[ "${1:-}" = "--fix" ] && fix=1

cf="${CLANG_FORMAT:-}"
if [ -z "$cf" ]; then
  for c in "clang-format-$WEC_CLANG_FORMAT_MAJOR" clang-format; do
    if command -v "$c" >/dev/null; then cf=$c; break; fi
  done
fi
[ -n "$cf" ] || { echo "check-format: clang-format-$WEC_CLANG_FORMAT_MAJOR not found (scripts/install-deps.sh)" >&2; exit 1; }
version=$({ "$cf" --version || true; } | sed -n 's/.*clang-format version \([0-9][0-9]*\)\..*/\1/p')
if [ "$version" != "$WEC_CLANG_FORMAT_MAJOR" ]; then
  echo "check-format: $cf is version ${version:-unknown}; the committed formatting is that of" \
    "clang-format $WEC_CLANG_FORMAT_MAJOR (install clang-format-$WEC_CLANG_FORMAT_MAJOR or set CLANG_FORMAT)" >&2
  exit 1
fi

files=()
while IFS= read -r -d '' f; do files+=("$f"); done \
  < <(find lib tools tests bench \( -name '*.cpp' -o -name '*.hpp' \) -print0 | sort -z)

if [ $fix -eq 1 ]; then
  "$cf" -i "${files[@]}"
  exit 0
fi
# Files are checked in batches of 40 per clang-format process, nproc processes at once (one
# process per file spent most of the test's time starting clang-format). A file that is not
# formatted shows up as "<file>:<line>:<col>: error: code should be clang-formatted".
log=$(mktemp)
trap 'rm -f "$log"' EXIT
rc=0
printf '%s\0' "${files[@]}" |
  xargs -0 -n 40 -P "$(nproc)" "$cf" --dry-run -Werror >/dev/null 2>"$log" || rc=$?
bad=()
while IFS= read -r f; do bad+=("$f"); done \
  < <(sed -n 's/^\(.*\):[0-9]*:[0-9]*: error: code should be clang-formatted.*/\1/p' "$log" | sort -u)
if [ $rc -ne 0 ] && [ ${#bad[@]} -eq 0 ]; then
  # clang-format failed for another reason (a file it could not read, a bad .clang-format).
  cat "$log" >&2
  echo "check-format: $cf failed (status $rc)" >&2
  exit 1
fi
if [ ${#bad[@]} -gt 0 ]; then
  printf 'check-format: not clang-formatted (run `make format`):\n' >&2
  printf '  %s\n' "${bad[@]}" >&2
  exit 1
fi
echo "check-format: all files formatted ($cf $version)"
