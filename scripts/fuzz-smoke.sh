#!/usr/bin/env bash
# Builds every libFuzzer target with clang (ASan+UBSan) in build-fuzz/ and runs each one briefly on
# its seed corpus. Any crash, leak or sanitizer report fails the run.
#   FUZZ_SECONDS (default 5)   time per target (-max_total_time: its whole seed corpus runs first
#                              even when that takes longer, then fuzzing until the time is up)
#   FUZZ_ONLY=REGEX            only the targets whose name matches
#   JOBS (default nproc)       targets run at once (and build parallelism)
#   FUZZ_CXX_FLAGS             optimisation and debug flags of the build (default -O1 -g1 -DNDEBUG)
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
# 5 s: the smoke run replays every seed (the regressions) and explores briefly; exploring is what
# `make fuzz-long` is for. 10 s cost about 1.2 more minutes of CI (29 targets, two at a time).
seconds="${FUZZ_SECONDS:-5}"
jobs="${JOBS:-$(nproc)}"
only="${FUZZ_ONLY:-}"
keep="${FUZZ_KEEP_CORPUS:-0}"
keep_max="${FUZZ_KEEP_MAX_BYTES:-65536}"
report="${FUZZ_REPORT:-}"

if ! command -v clang++ >/dev/null; then
  echo "fuzz-smoke: clang++ not found (scripts/install-deps.sh installs it)" >&2
  exit 1
fi
# -O1 -g1 (line tables: file and line in reports) rather than RelWithDebInfo's -O2 -g: the
# instrumented build is a quarter cheaper to compile (about 1.5 min of CI on 2 cores) for fewer
# executions per second, which a 5 s smoke run does not need; FUZZ_CXX_FLAGS overrides it (e.g.
# "-O2 -g1 -DNDEBUG" for a long campaign).
# shellcheck disable=SC2046
cmake $("$top/scripts/cmake-generator.sh" "$build") -S "$top" -B "$build" \
  -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=${FUZZ_CXX_FLAGS:--O1 -g1 -DNDEBUG}" -DWEC_FUZZ=ON >/dev/null
# The fuzz targets only (and the libraries they use), not every library and tool.
cmake --build "$build" -j "$jobs" --target fuzzers

# One target: a copy of its corpus as seeds, a short run, optionally the merge and report row. Its
# output goes to $logs/<name>.out (printed whole when it is done, so that parallel runs do not
# interleave) and its report row to $logs/<name>.row; the exit status says whether it ran clean.
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
run_target() {
  local fuzzer=$1 name comp corpus_src work runs cov files
  name=$(basename "$fuzzer")
  comp=$(basename "$(dirname "$fuzzer")")
  corpus_src="$top/tests/fuzz/$comp/corpus"
  work="$logs/$name.corpus"
  mkdir -p "$work"
  [ -d "$corpus_src" ] && cp -r "$corpus_src/." "$work/"
  echo "fuzz-smoke: $name for ${seconds}s"
  if ! "$fuzzer" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
    "$work" 2>"$work.log"; then
    tail -n 60 "$work.log"
    echo "fuzz-smoke: $name FAILED"
    return 1
  fi
  grep -E '^#[0-9]+[[:space:]]+DONE' "$work.log" | tail -n 1 || true
  if [ -n "$report" ]; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work.log" | tail -n 1)
    cov=$(sed -n 's/^#[0-9]*[[:space:]]*DONE.*cov: \([0-9]*\).*/\1/p' "$work.log" | tail -n 1)
    files=$(find "$work" -type f | wc -l)
    echo "| $(date -u +%Y-%m-%d) | $name | $seconds | ${runs:-?} | $(( ${runs:-0} / seconds )) | ${cov:-?} | $files |" >"$logs/$name.row"
  fi
  if [ "$keep" = 1 ]; then
    # Targets of one component share its corpus folder: merges write new files named by their
    # hash, never delete, so two at once are safe.
    mkdir -p "$corpus_src"
    find "$work" -type f -size +"${keep_max}"c -delete
    "$fuzzer" -merge=1 -rss_limit_mb=2048 -timeout=10 "$corpus_src" "$work" >/dev/null 2>&1 ||
      echo "fuzz-smoke: $name: corpus merge failed (corpus unchanged)"
  fi
  rm -rf "$work" "$work.log"
}

# The targets run $jobs at a time (each is single-threaded: a 2-core machine runs two in the time
# of one, with the same executions per target). A failure is reported on stderr when that target
# is done; the others still run, and the script fails at the end.
count=0
failed=()
running=()
finish_one() {
  # Waits for the oldest running target, prints its output, records a failure.
  local entry=${running[0]} pid name
  running=("${running[@]:1}")
  pid=${entry%%:*}
  name=${entry#*:}
  if wait "$pid"; then
    cat "$logs/$name.out"
  else
    cat "$logs/$name.out" >&2
    failed+=("$name")
  fi
}
while IFS= read -r fuzzer; do
  name=$(basename "$fuzzer")
  if [ -n "$only" ] && ! [[ $name =~ $only ]]; then continue; fi
  run_target "$fuzzer" >"$logs/$name.out" 2>&1 &
  running+=("$!:$name")
  count=$((count + 1))
  if [ ${#running[@]} -ge "$jobs" ]; then finish_one; fi
done < <(find "$build/tests/fuzz" -type f -perm -u+x -name '*_fuzz' | sort)
while [ ${#running[@]} -gt 0 ]; do finish_one; done
if [ -n "$report" ]; then
  for row in "$logs"/*.row; do [ -e "$row" ] && cat "$row" >>"$report"; done
fi
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz-smoke: ${#failed[@]} of $count targets FAILED: ${failed[*]}" >&2
  exit 1
fi

if [ "$count" -eq 0 ]; then
  echo "fuzz-smoke: no fuzz targets were built" >&2
  exit 1
fi
echo "fuzz-smoke: $count targets ran clean"
