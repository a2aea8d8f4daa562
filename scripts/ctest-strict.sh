#!/usr/bin/env bash
# ctest with its arguments, failing also when a test did not run: ctest reports a test whose output
# says "[  SKIPPED ]" (GTEST_SKIP) as skipped and still exits 0 with "100% tests passed". A test
# that did not run is not a pass (docs/dev/conventions.md).
set -uo pipefail
log=$(mktemp)
trap 'rm -f "$log"' EXIT
ctest "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
if grep -q '^The following tests did not run:' "$log"; then
  echo "ctest-strict: the tests listed above did not run (skipped): counted as a failure" >&2
  rc=1
fi
exit "$rc"
