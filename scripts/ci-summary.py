#!/usr/bin/env python3
"""Prints, for a failed CI stage, what a reader needs to see first: the ctest entries that failed
with the end of each one's output (from the build directory's Testing/Temporary logs), or, when no
test ran, the end of the stage's own log (a build or fuzz failure).

.ci/run calls it after all stages, so that the end of CI's output (often all that is kept) names
the failure and shows its cause.

usage: ci-summary.py STAGE_LOG STAGE_START_EPOCH [BUILD_DIR]
"""
import os
import re
import sys

TAIL_PER_TEST = 60
TAIL_OF_LOG = 60
MAX_TESTS = 8


def tail(lines, n):
    return lines[-n:] if len(lines) > n else lines


def failed_tests(build_dir, since):
    path = os.path.join(build_dir, "Testing", "Temporary", "LastTestsFailed.log")
    try:
        if os.path.getmtime(path) < since:
            return None  # left by an earlier run in the same build directory
        with open(path, encoding="utf-8", errors="replace") as f:
            # Lines are "NUMBER:NAME".
            return [line.strip().split(":", 1)[1] for line in f if ":" in line]
    except OSError:
        return None


def outputs_of(build_dir, names):
    """The output of each named test in LastTest.log (the full log ctest writes)."""
    path = os.path.join(build_dir, "Testing", "Temporary", "LastTest.log")
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return {}
    found = {}
    for name in names:
        start = re.search(r"^\d+/\d+ Test: " + re.escape(name) + r"$", text, re.M)
        if not start:
            continue
        body = text[start.end():]
        end = body.find("<end of output>")
        found[name] = body[: end if end >= 0 else len(body)].splitlines()
    return found


def main():
    if len(sys.argv) < 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    log, since = sys.argv[1], float(sys.argv[2])
    build_dir = sys.argv[3] if len(sys.argv) > 3 else None
    names = failed_tests(build_dir, since) if build_dir else None
    if names:
        print(f"failed tests ({len(names)}): {', '.join(names)}")
        outputs = outputs_of(build_dir, names[:MAX_TESTS])
        for name in names[:MAX_TESTS]:
            print(f"--- {name}: end of its output")
            for line in tail(outputs.get(name, ["(no output recorded)"]), TAIL_PER_TEST):
                print("  " + line)
        return 0
    try:
        with open(log, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError as e:
        print(f"(no stage log: {e})")
        return 0
    print(f"--- end of the stage's log ({log})")
    for line in tail(lines, TAIL_OF_LOG):
        print("  " + line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
