/* testutil.h — helpers shared by the cmocka tests. */
#ifndef VD_TESTUTIL_H
#define VD_TESTUTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <mpi.h>

/* Collective assert: every rank learns whether all ranks hold cond, and all
 * fail together, so no rank is left waiting in a later collective. */
#define assert_all(cond)                                                                   \
    do {                                                                                   \
        int ok_ = (cond) ? 1 : 0, all_ = 0;                                                \
        MPI_Allreduce(&ok_, &all_, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);                   \
        if (!ok_)                                                                          \
            print_error("rank-local failure: %s\n", #cond);                                \
        assert_true(all_);                                                                 \
    } while (0)

/* A fresh scratch directory under $TMPDIR (or /tmp); the path is static. */
static inline const char *test_tmpdir(void)
{
    static char dir[512];
    if (!dir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/vd-test-XXXXXX", base && *base ? base : "/tmp");
        if (!mkdtemp(dir))
            abort();
    }
    return dir;
}

/* Relative error judged in double: |a - b| / max(|a| + |b|, floor). */
static inline double rel_err(double a, double b, double floor)
{
    double den = (a < 0 ? -a : a) + (b < 0 ? -b : b);
    double diff = a - b;
    return (diff < 0 ? -diff : diff) / (den > floor ? den : floor);
}

#endif
