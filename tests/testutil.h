/* testutil.h — helpers shared by the cmocka tests: collective asserts and
 * the main of the MPI tests, scratch directories, relative errors. */
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

#include "comm.h"

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

/* The main of a test that runs under mpirun (tests/mpi-np2.sh, mpi-np4.sh):
 * MPI_Init, then, with more than one rank, CMOCKA_TEST_ABORT=1, so that a
 * failure aborts its rank and mpirun ends the job instead of leaving the
 * other ranks waiting in a collective; the group; MPI_Finalize. *rank and
 * *size are MPI_COMM_WORLD's. Use mpi_test_main(argc, argv, tests). */
static inline int mpi_test_run(int *argc, char ***argv, const struct CMUnitTest *tests,
                               size_t n, const char *name, int *rank, int *size)
{
    MPI_Init(argc, argv);
    comm_init();
    MPI_Comm_rank(MPI_COMM_WORLD, rank);
    MPI_Comm_size(MPI_COMM_WORLD, size);
    if (*size > 1)
        setenv("CMOCKA_TEST_ABORT", "1", 1);
    int failed = _cmocka_run_group_tests(name, tests, n, NULL, NULL);
    MPI_Finalize();
    return failed ? 1 : 0;
}
#define mpi_test_main(argc, argv, tests)                                                      \
    mpi_test_run(&(argc), &(argv), (tests), sizeof(tests) / sizeof((tests)[0]), #tests, &rank, \
                 &size)

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
