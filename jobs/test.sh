#!/bin/sh
# test.sh — the README's second command (and CI's): install the packages,
# build, and run the whole test suite: `make check` (unit, multi-process,
# end-to-end, fault and SLURM tests), the same suite again built with ASan
# and UBSan, and a short fuzzing run of the data reader and checkpoint loader.
set -eu
cd "$(dirname "$0")/.."
sh jobs/setup.sh

# test-only packages: a real SLURM for tests/slurm-requeue.sh, clang and
# its runtime (libFuzzer) for tests/fuzz, h5py (and numpy) for
# tests/h5py-recipe.sh, ip, tc and bridge for the simulated nodes, pgrep and pkill
TEST_PACKAGES="slurm-wlm munge libpmix-dev clang libclang-rt-14-dev python3-h5py iproute2 procps"
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

# counts from an automake test-suite.log: "pass fail skip"
counts() {
    p=$(sed -n 's/^# PASS: *//p' "$1"); f=$(sed -n 's/^# FAIL: *//p' "$1")
    s=$(sed -n 's/^# SKIP: *//p' "$1"); e=$(sed -n 's/^# ERROR: *//p' "$1")
    echo "${p:-0} $(( ${f:-0} + ${e:-0} )) ${s:-0}"
}
status=0; pass=0; fail=0; skip=0
add() { pass=$((pass + $1)); fail=$((fail + $2)); skip=$((skip + $3)); }

echo "== make check"
make -j"$(nproc)" check || status=1
[ -f test-suite.log ] && add $(counts test-suite.log)
[ $status -eq 0 ] || cat test-suite.log

echo "== make check, built with ASan and UBSan (from the distribution tarball)"
san=$(mktemp -d "${TMPDIR:-/tmp}/vd-san-XXXXXX")
rm -f vae-dist-*.tar.gz
if make dist >/dev/null && tar -xzf vae-dist-*.tar.gz -C "$san" &&
    (cd "$san"/vae-dist-* && ./configure -q --enable-sanitizers && make -j"$(nproc)" >/dev/null &&
     make -j"$(nproc)" check); then :; else status=1; fi
log=$(ls "$san"/vae-dist-*/test-suite.log 2>/dev/null || true)
if [ -n "$log" ]; then add $(counts "$log"); else add 0 1 0; fi
[ $status -eq 0 ] || { [ -n "$log" ] && cat "$log"; }

echo "== fuzz smoke (20 s per harness)"
if sh tests/fuzz/run.sh 20 "$san/fuzz"; then add 2 0 0; else add 0 2 0; status=1; fi
rm -rf "$san"

echo "tests: $pass passed, $fail failed, $skip skipped"
exit "$status"
