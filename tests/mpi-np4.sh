#!/bin/sh
# The multi-process unit tests (test_reduce, test_feed) on 4 ranks
# (oversubscribed on small machines).
. "$top_srcdir/tests/lib.sh"
[ -x "$top_builddir/tests/test_reduce" ] ||
    skip "the MPI unit tests need CMocka (apt-get install libcmocka-dev, then ./configure again)"
for t in test_reduce test_feed; do
    run_mpi 4 180 "$top_builddir/tests/$t" && pass "$t on 4 ranks" || fail "$t on 4 ranks"
done
finish
