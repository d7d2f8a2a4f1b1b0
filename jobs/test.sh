#!/bin/sh
# test.sh — the README's second command (and CI's): install the packages,
# build, and run the whole test suite, multi-process tests included.
set -eu
cd "$(dirname "$0")/.."
sh jobs/setup.sh
# test-only packages: a real SLURM for tests/slurm-requeue.sh
TEST_PACKAGES="slurm-wlm munge libpmix-dev"
missing=""
for p in $TEST_PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
    echo "== installing (tests only):$missing"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing
fi
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
