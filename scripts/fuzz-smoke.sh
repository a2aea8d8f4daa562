#!/usr/bin/env bash
# Builds every libFuzzer target with clang (ASan+UBSan) in build-fuzz/ and runs each one briefly on
# its seed corpus. Any crash, leak or sanitizer report fails the run.
#   FUZZ_SECONDS (default 10)  time per target
#   FUZZ_ONLY=REGEX            only the targets whose name matches
#   FUZZ_KEEP_CORPUS=1         merge what each run found (inputs with new coverage only, -merge=1)
#                              back into tests/fuzz/<component>/corpus, to be committed; new inputs
#                              over FUZZ_KEEP_MAX_BYTES (default 65536) are not kept, so that the
#                              repository and the smoke runs stay small
#   FUZZ_REPORT=FILE           append one Markdown table row per target: date, seconds, executions,
#                              executions/s, coverage, corpus size
# `make fuzz-long` runs it for an hour per target with the last two set.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build="${FUZZ_BUILD_DIR:-$top/build-fuzz}"
seconds="${FUZZ_SECONDS:-10}"
jobs="${JOBS:-$(nproc)}"
only="${FUZZ_ONLY:-}"
keep="${FUZZ_KEEP_CORPUS:-0}"
keep_max="${FUZZ_KEEP_MAX_BYTES:-65536}"
report="${FUZZ_REPORT:-}"

if ! command -v clang++ >/dev/null; then
  echo "fuzz-smoke: clang++ not found (scripts/install-deps.sh installs it)" >&2
  exit 1
fi
cmake -S "$top" -B "$build" -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DWEC_FUZZ=ON >/dev/null
# Build the fuzz targets only (and the libraries they use), not every library and tool.
targets=$(cmake --build "$build" --target help | sed -n 's/^\.\.\. \([A-Za-z0-9_]*_fuzz\)$/\1/p' | sort -u)
if [ -z "$targets" ]; then
  echo "fuzz-smoke: no fuzz targets are defined" >&2
  exit 1
fi
# shellcheck disable=SC2086
cmake --build "$build" -j "$jobs" --target $targets

count=0
while IFS= read -r fuzzer; do
  name=$(basename "$fuzzer")
  comp=$(basename "$(dirname "$fuzzer")")
  if [ -n "$only" ] && ! [[ $name =~ $only ]]; then continue; fi
  corpus_src="$top/tests/fuzz/$comp/corpus"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  [ -d "$corpus_src" ] && cp -r "$corpus_src/." "$work/"
  echo "fuzz-smoke: $name for ${seconds}s"
  "$fuzzer" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
    "$work" 2>"$work.log" || { tail -n 60 "$work.log" >&2; echo "fuzz-smoke: $name FAILED" >&2; exit 1; }
  grep -E '^#[0-9]+[[:space:]]+DONE' "$work.log" | tail -n 1 || true
  if [ -n "$report" ]; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work.log" | tail -n 1)
    cov=$(sed -n 's/^#[0-9]*[[:space:]]*DONE.*cov: \([0-9]*\).*/\1/p' "$work.log" | tail -n 1)
    files=$(find "$work" -type f | wc -l)
    echo "| $(date -u +%Y-%m-%d) | $name | $seconds | ${runs:-?} | $(( ${runs:-0} / seconds )) | ${cov:-?} | $files |" >>"$report"
  fi
  if [ "$keep" = 1 ]; then
    mkdir -p "$corpus_src"
    find "$work" -type f -size +"${keep_max}"c -delete
    "$fuzzer" -merge=1 -rss_limit_mb=2048 -timeout=10 "$corpus_src" "$work" >/dev/null 2>&1 ||
      echo "fuzz-smoke: $name: corpus merge failed (corpus unchanged)" >&2
  fi
  rm -rf "$work" "$work.log"
  count=$((count + 1))
done < <(find "$build/tests/fuzz" -type f -perm -u+x -name '*_fuzz' | sort)

if [ "$count" -eq 0 ]; then
  echo "fuzz-smoke: no fuzz targets were built" >&2
  exit 1
fi
echo "fuzz-smoke: $count targets ran clean"
