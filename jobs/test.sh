#!/bin/sh
# test.sh — the README's second command (and CI's): install the packages,
# build, and run the whole test suite, multi-process tests included.
set -eu
cd "$(dirname "$0")/.."
sh jobs/setup.sh
echo "== make check"
status=0
make -j"$(nproc)" check || status=$?
# one summary line from automake's counts
if [ -f test-suite.log ]; then
    pass=$(sed -n 's/^# PASS: *//p' test-suite.log); fail=$(sed -n 's/^# FAIL: *//p' test-suite.log)
    skip=$(sed -n 's/^# SKIP: *//p' test-suite.log); err=$(sed -n 's/^# ERROR: *//p' test-suite.log)
    echo "tests: ${pass:-0} passed, $(( ${fail:-0} + ${err:-0} )) failed, ${skip:-0} skipped"
    [ "$status" -eq 0 ] || cat test-suite.log
fi
exit "$status"
