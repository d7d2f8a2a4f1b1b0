#!/bin/sh
# The multi-process unit tests on 4 ranks (oversubscribed on small machines).
. "$top_srcdir/tests/lib.sh"
run_mpi 4 180 "$top_builddir/tests/test_mpi" && pass "test_mpi on 4 ranks" || fail "test_mpi on 4 ranks"
finish
