#!/bin/sh
# The multi-process unit tests (test_reduce, test_feed) on 2 ranks, and proof
# that a failure on one rank ends the job instead of hanging it.
. "$top_srcdir/tests/lib.sh"
[ -x "$top_builddir/tests/test_reduce" ] ||
    skip "the MPI unit tests need CMocka (apt-get install libcmocka-dev, then ./configure again)"
for t in test_reduce test_feed; do
    run_mpi 2 120 "$top_builddir/tests/$t" && pass "$t on 2 ranks" || fail "$t on 2 ranks"
done

start=$(date +%s)
VD_TEST_INJECT_FAILURE=1 run_mpi 2 60 "$top_builddir/tests/test_reduce" >"$WORK/inject.log" 2>&1
rc=$?
took=$(( $(date +%s) - start ))
if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && [ "$rc" -ne 137 ] && grep -q "injected failure on rank 1" "$WORK/inject.log"; then
    pass "a failure on rank 1 alone ends the job (exit $rc after ${took}s)"
else
    cat "$WORK/inject.log"; fail "a failure on rank 1 alone: exit $rc after ${took}s"
fi
finish
