#!/usr/bin/env bash
# The collector's user-space instructions per event, counted by callgrind: a figure that does not
# move with the host's speed (serve_bench's CPU per event does, by up to 2x on this project's
# machine), for comparing two builds on a busy or slow host. Kernel time (socket reads, the files
# output's writes, SQLite's system calls) is not in it: serve_bench's µs figures stay the measure
# of record; this one says whether a user-space change did less work.
#
# Runs serve_bench twice with `wec serve` under `valgrind --tool=callgrind` (N/2 and N events) and
# divides the difference of the two totals by the difference of the events acked, so that start-up
# (TLS and Kerberos set-up, SQLite, the subscription) cancels out. Each step's share is the same
# difference of callgrind's inclusive cost for the function that does it.
#
#   bench/serve/instructions.sh [--build DIR] [--events N] --skip-kerberos|--skip-tls [serve_bench options...]
#   bench/serve/instructions.sh --events 20000 --skip-kerberos            # TLS
#   bench/serve/instructions.sh --events 20000 --skip-tls --level best    # Kerberos, Windows-shaped
#   WEC_BENCH_EXE=/path/to/other/wec bench/serve/instructions.sh ...      # another build's wec
#
# --build DIR: the CMake build tree holding bench/serve/serve_bench and tools/wec/wec (default
# build/). N defaults to 20000 (about 80 s in all: the server runs ~50x slower under
# callgrind). Needs valgrind (apt-get install valgrind).
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
build="$top/build"
events=20000
pass=()
while [ $# -gt 0 ]; do
  case "$1" in
  --build) build=$2; shift 2 ;;
  --events) events=$2; shift 2 ;;
  -h | --help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) pass+=("$1"); shift ;;
  esac
done
case "$events" in '' | *[!0-9]*) echo "instructions.sh: --events takes a number, not '$events'" >&2; exit 2 ;; esac
if [ "$events" -lt 2000 ]; then
  echo "instructions.sh: --events must be at least 2000 (the two runs' difference is the figure)" >&2
  exit 2
fi
case " ${pass[*]:-} " in
*" --skip-kerberos "* | *" --skip-tls "*) ;;
*)
  echo "instructions.sh: give --skip-kerberos (TLS) or --skip-tls (Kerberos): one server per run" >&2
  exit 2
  ;;
esac
command -v valgrind >/dev/null || { echo "instructions.sh: valgrind not found (apt-get install valgrind)" >&2; exit 1; }
bench="$build/bench/serve/serve_bench"
wec="${WEC_BENCH_EXE:-$build/tools/wec/wec}"
for f in "$bench" "$wec"; do
  [ -x "$f" ] || { echo "instructions.sh: $f not found: build it, or give --build DIR" >&2; exit 1; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# One run: prints "<events acked> <callgrind file of wec serve>".
run() {
  local n=$1 dir="$work/run$1" out acked
  mkdir -p "$dir"
  printf '#!/bin/sh\nexec valgrind --tool=callgrind --callgrind-out-file="%s/cg.%%p" "%s" "$@"\n' \
    "$dir" "$wec" >"$dir/wrap.sh"
  chmod +x "$dir/wrap.sh"
  out=$(WEC_BENCH_EXE="$dir/wrap.sh" "$bench" --events "$n" --skip-connections "${pass[@]}" 2>&1) || {
    echo "$out" >&2
    echo "instructions.sh: serve_bench failed (above)" >&2
    exit 1
  }
  acked=$(echo "$out" | awk '/^events acked/ {print $3; exit}')
  # The server's profile (serve_bench also runs `wec sub apply` and others).
  local f
  f=$(grep -l '^cmd: .* serve ' "$dir"/cg.* | head -1 || true)
  if [ -z "$acked" ] || [ -z "$f" ]; then
    echo "$out" >&2
    echo "instructions.sh: no server profile or event count" >&2
    exit 1
  fi
  echo "$acked $f"
}

# Inclusive costs of every function, annotated once per profile.
annotate() { callgrind_annotate --inclusive=yes --auto=no --threshold=100 "$1" 2>/dev/null >"$1.txt"; }
inclusive() { # annotated file, pattern: the largest inclusive cost of a function matching it
  awk -v pat="$2" 'index($0, pat) { gsub(",", "", $1); if ($1 + 0 > best) best = $1 + 0 } END { print best + 0 }' "$1"
}

r1=$(run $((events / 2)))
r2=$(run "$events")
read -r e1 f1 <<<"$r1"
read -r e2 f2 <<<"$r2"
total() { awk '/^totals:/ {print $2}' "$1"; }
t1=$(total "$f1")
t2=$(total "$f2")
annotate "$f1"
annotate "$f2"
de=$((e2 - e1))
[ "$de" -gt 0 ] || { echo "instructions.sh: the two runs acked $e1 and $e2 events" >&2; exit 1; }

echo "wec serve, user-space instructions per event (callgrind; runs of $e1 and $e2 events; ${pass[*]})"
printf '%-58s %10s\n' "all" "$(((t2 - t1) / de))"
steps=(
  "SLDC and UTF-16 -> UTF-8 (wsman::decode_text)|wec::wsman::decode_text("
  "event parse and JSON (event::BatchFormatter::add)|wec::event::BatchFormatter::add("
  "TLS records (server::detail::TlsRecords::read)|wec::server::detail::TlsRecords::read("
  "Kerberos unsealing (auth::unseal_in_place)|wec::auth::unseal_in_place("
  "SOAP envelope (wsman::parse_owned)|wec::wsman::parse_owned("
  "bookmark commit and ack (Collector::Impl::acknowledge)|wec::pipeline::Collector::Impl::acknowledge("
  "files output (Collector::Impl::PendingBatch::write)|wec::pipeline::Collector::Impl::PendingBatch::write("
)
for s in "${steps[@]}"; do
  label=${s%%|*}
  pat=${s#*|}
  a=$(inclusive "$f1.txt" "$pat")
  b=$(inclusive "$f2.txt" "$pat")
  [ "$b" -gt 0 ] || continue
  printf '  %-56s %10s\n' "$label" "$(((b - a) / de))"
done
