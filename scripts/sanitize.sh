#!/usr/bin/env bash
# Builds and runs tests under a sanitizer, each in its own build directory (so that the Release
# build/ is untouched and the three builds can coexist):
#   scripts/sanitize.sh asan   AddressSanitizer (+ LeakSanitizer) in build-asan/: `wec` and the
#                              test executables of ASAN_TARGETS (the parsers, server, pipeline,
#                              outputs, and the integration tests that need only a KDC or
#                              openssl), then their tests.
#   scripts/sanitize.sh tsan   ThreadSanitizer + UndefinedBehaviorSanitizer in build-tsan/: only
#                              the test executables of the concurrent components (TSAN_TARGETS),
#                              then their tests.
# UndefinedBehaviorSanitizer runs with ThreadSanitizer rather than with AddressSanitizer: with
# g++ it made the AddressSanitizer build 40 % dearer (20 of CI's 56 minutes from a clean clone went
# to that one build), and every parser runs under clang's ASan + UBSan in the fuzz smoke anyway
# (scripts/fuzz-smoke.sh). WEC_SANITIZE=ON configures address + undefined for a local run.
# Both builds are -O1 -g1 (line tables only): -O0 makes the integration tests too slow, -O2 and
# full debug info cost build time; assertions stay on (Debug, no NDEBUG). Test code itself is
# compiled at -Og (wec_test_flags in cmake/WecHelpers.cmake), the code under test at -O1.
# Any sanitizer report fails the test that triggered it (halt_on_error / -fno-sanitize-recover).
# Suppressions (scripts/sanitizers/*.supp) are for third-party libraries only, each with a reason.
# Environment:
#   JOBS                  build parallelism (default: nproc), and the TSan tests'
#   TEST_JOBS             the ASan tests' parallelism (default: JOBS + 1: the integration tests
#                         wait on their peers; 148 s at -j3 against 175 s at -j2 on 2 cores). The
#                         TSan targets keep JOBS: under ThreadSanitizer they are CPU-bound.
#   SANITIZE_CTEST_ARGS   extra ctest arguments (e.g. -R Collector, -LE soak)
#   ASAN_TARGETS          overrides the AddressSanitizer target list; "all" builds and runs
#                         everything (but the labels lint, soak, package)
#   TSAN_TARGETS          overrides the ThreadSanitizer target list
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
kind="${1:-}"
jobs="${JOBS:-$(nproc)}"
test_jobs="${TEST_JOBS:-$((jobs + 1))}"
supp="$top/scripts/sanitizers"
# shellcheck disable=SC2206
extra=(${SANITIZE_CTEST_ARGS:-})
common=(-DCMAKE_BUILD_TYPE=Debug "-DCMAKE_CXX_FLAGS_DEBUG=-O1 -g1" -DWEC_BENCH=OFF)

# ctest entries whose executable was not built here: gtest-discovered suites appear as
# *_NOT_BUILT, but a ONE_PROCESS suite (one add_test entry, e.g. replay_pcap_test) would be
# reported "Not Run" (a failure). Prints a regex of them (or a regex that matches nothing).
not_built() {
  ctest --show-only=json-v1 | python3 -c '
import json, os, sys
tests = json.load(sys.stdin).get("tests", [])
names = ["^" + t["name"] + "$" for t in tests
         if not t.get("command") or not os.path.exists(t["command"][0])]
print("|".join(names) or "^$^")'
}

case "$kind" in
asan)
  build="$top/build-asan"
  # Within the CI budget (docs/dev/ci.md): every parser and decoder of untrusted input, the HTTP
  # server and WinRM connection, the pipeline and outputs, and the integration tests whose peers
  # are a KDC or openssl (hostile bodies, Kerberos, TLS, the client against `wec serve`). Left
  # out: the suites whose value is their peer (PostgreSQL, rsyslog, redis, kafka, haproxy,
  # tcpdump, systemd), the cluster, crash and disk-full scenarios.
  targets="${ASAN_TARGETS:-text_test sldc_test wsman_test http_test event_test event_formats_test
    capture_test krb_unit_test subscription_test windows_xml_test config_test metrics_test
    decode_unit_test decode_read_test decode_damage_test auth_test http_server_test
    wef_connection_test service_test collector_test collector_formats_test output_test
    output_resp_test wec serve_kerberos_test serve_tls_test serve_hostile_test client_serve_test
    client_tls_test decode_live_test event_one_pass_test decode_sources_test
    decode_ntlm_secrets_test sldc_reference_test client_bookmark_test load_message_test
    source_address_test serve_aes_sha2_test tls_records_test}"
  # shellcheck disable=SC2046
  cmake $(scripts/cmake-generator.sh "$build") -S . -B "$build" -DWEC_SANITIZE=address "${common[@]}" >/dev/null
  if [ "$targets" = all ]; then
    cmake --build "$build" -j "$jobs"
  else
    # shellcheck disable=SC2086
    cmake --build "$build" -j "$jobs" --target $targets
  fi
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1:detect_stack_use_after_return=0:strict_init_order=1"
  export LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0"
  # Left to the Release run: `lint` (FormatCheck, independent of the build), `soak` (asserts that
  # the server's RSS stays flat, which ASan's quarantine and shadow memory defeat by design) and
  # `package` (builds a .deb; no code of ours runs that the rest does not).
  # Only the executables built above run (the others appear as *_NOT_BUILT entries). Also left
  # out: the two hostile-client tests that bound the server's peak RSS (ServeHostile.*MemoryBounded,
  # *WithinARaisedLimit): under ASan the quarantine keeps freed bodies alive, so the bound measures
  # the sanitizer (seen: +130 MB for a 4.4 MB body); their parsing paths still run instrumented in
  # the other hostile tests and the fuzzers.
  cd "$build" && "$top/scripts/ctest-strict.sh" --output-on-failure -j "$test_jobs" --timeout 900 -LE 'lint|soak|package' \
    -E "_NOT_BUILT\$|$(not_built)|MemoryBounded|WithinARaisedLimit" \
    "${extra[@]}"
  ;;
tsan)
  build="$top/build-tsan"
  # The components with threads of their own or shared between threads: the HTTP server and
  # its connection handling, the collector service, the pipeline, both store backends, the output
  # queue and drivers.
  targets="${TSAN_TARGETS:-http_server_test service_test wef_connection_test collector_test store_test output_test
    group_commit_test sqlite_sync_test}"
  # shellcheck disable=SC2046
  cmake $(scripts/cmake-generator.sh "$build") -S . -B "$build" -DWEC_SANITIZE=thread "${common[@]}" >/dev/null
  # shellcheck disable=SC2086
  cmake --build "$build" -j "$jobs" --target $targets
  export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$supp/tsan.supp"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:suppressions=$supp/ubsan.supp"
  # Only the executables built above: the others appear as *_NOT_BUILT entries (package_test,
  # one ctest entry of its own, by its label).
  cd "$build" && "$top/scripts/ctest-strict.sh" --output-on-failure -j "$jobs" --timeout 900 -LE 'lint|package' -E "_NOT_BUILT\$|$(not_built)" \
    "${extra[@]}"
  ;;
*)
  echo "usage: scripts/sanitize.sh asan|tsan" >&2
  exit 2
  ;;
esac
