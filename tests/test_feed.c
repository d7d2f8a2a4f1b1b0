/* test_feed.c — a rank's training batches (feed.h) under mpirun with 2 and
 * 4 ranks (tests/mpi-np2.sh, tests/mpi-np4.sh): resident mode's exchange,
 * stream mode's window, resuming inside an epoch. Assertions are
 * collective, and with more than one rank cmocka aborts on failure. */
#include "testutil.h"

#include <string.h>

#include "comm.h"
#include "shard.h"
#include "feed.h"
#include "rng.h"

static int rank, size;

enum { FN = 240, FD = 6, FG = 8, FCHUNK = 10 };

static uint8_t fvalue(int64_t row, int j) { return (uint8_t)((row * 3 + j) % 251); }

/* Rank 0 writes a (FN, FD) uint8 data set chunked by FCHUNK rows, with
 * labels row % 7; every rank gets the path. */
static void feed_file(const char *name, char *path, size_t n)
{
    if (rank == 0) {
        if (snprintf(path, n, "%s/%s.h5", test_tmpdir(), name) >= (int)n)
            fail_msg("temporary path too long");
        static uint8_t x[FN][FD];
        static int32_t y[FN];
        for (int64_t r = 0; r < FN; r++) {
            for (int j = 0; j < FD; j++)
                x[r][j] = fvalue(r, j);
            y[r] = (int32_t)(r % 7);
        }
        hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
        hsize_t dims[2] = {FN, FD}, chunk[2] = {FCHUNK, FD};
        hid_t sp = H5Screate_simple(2, dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
        H5Pset_chunk(dcpl, 2, chunk);
        hid_t d = H5Dcreate2(f, "x", H5T_STD_U8LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
        H5Dwrite(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, x);
        H5Dclose(d);
        H5Sclose(sp);
        sp = H5Screate_simple(1, dims, NULL);
        d = H5Dcreate2(f, "y", H5T_STD_I32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        H5Dwrite(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, y);
        H5Dclose(d);
        H5Sclose(sp);
        H5Pclose(dcpl);
        H5Fclose(f);
    }
    MPI_Bcast(path, (int)n, MPI_CHAR, 0, MPI_COMM_WORLD);
}

/* Runs epochs [0, epochs) of a feed and records every batch's rows in
 * rows[epoch][step][i]; checks each row's values and label on the way. */
static int feed_run(const FeedConfig *c, int64_t epochs, int64_t rows[][FN / FG][FG])
{
    Feed *f;
    VdError err = {0};
    if (feed_open(&f, c, &err) != VD_OK)
        return 0;
    int B = shard_local_batch(FG, rank, size), ok = 1;
    float x[FG * FD];
    int32_t y[FG];
    for (int64_t e = 0; e < epochs; e++) {
        ok &= feed_epoch(f, e, 0, &err) == VD_OK;
        for (int64_t s = 0; s < FN / FG; s++) {
            feed_batch(f, s, x, y, rows[e][s]);
            for (int i = 0; i < B; i++) {
                int64_t r = rows[e][s][i];
                ok &= r >= 0 && r < FN && y[i] == r % 7;
                for (int j = 0; j < FD; j++)
                    ok &= x[i * FD + j] == (float)fvalue(r, j) * (1.0f / 255.0f);
            }
        }
    }
    ok &= feed_check(f, &err) == VD_OK;
    ok &= feed_bytes(f) <= c->budget;
    feed_close(f);
    return ok;
}

static void open_feed_file(const char *path, H5Rows *x, H5Rows *y)
{
    VdError err = {0};
    assert_all(h5rows_open(x, path, "/x", 0, &err) == VD_OK);
    assert_all(h5rows_open(y, path, "/y", 1, &err) == VD_OK);
}

/* Resident: each rank's batches are its slices of the global permutation,
 * the rows others hold arriving by the exchange, read ahead an epoch. */
static void test_feed_resident(void **state)
{
    (void)state;
    char path[512];
    feed_file("resident", path, sizeof path);
    H5Rows x, y;
    open_feed_file(path, &x, &y);
    static int64_t rows[3][FN / FG][FG];
    FeedConfig c = {&x, &y, 1, 7, FG, FN / FG, 3, 9, 1 << 20, VD_FEED_RESIDENT, 0,
                    MPI_COMM_WORLD};
    assert_all(feed_run(&c, 3, rows));
    int B = shard_local_batch(FG, rank, size), ok = 1;
    int64_t perm[FN], want[FN];
    Rng order = rng_for(9, VD_RNG_ORDER, 0);
    for (int e = 0; e < 3; e++) {
        rng_permutation(&order, (uint32_t)e, perm, FN);
        shard_epoch_rows(perm, FN / FG, FG, rank, size, want);
        for (int s = 0; s < FN / FG; s++)
            for (int i = 0; i < B; i++)
                ok &= rows[e][s][i] == want[s * B + i];
    }
    assert_all(ok);
    c.collective = 1; /* the same through MPI-IO collective reads */
    static int64_t again[3][FN / FG][FG];
    assert_all(feed_run(&c, 3, again));
    assert_all(memcmp(rows, again, sizeof rows) == 0);
    h5rows_close(&x);
    h5rows_close(&y);
}

/* Stream: within the budget, every row drawn once per epoch over all ranks
 * (FN = steps * FG here), a new order each epoch, and a resumed epoch
 * replays the same batches. */
static void test_feed_stream(void **state)
{
    (void)state;
    char path[512];
    feed_file("stream", path, sizeof path);
    H5Rows x, y;
    open_feed_file(path, &x, &y);
    static int64_t rows[2][FN / FG][FG];
    /* units of 20 rows (12 of them: 3 per rank at 4 ranks); a window of
     * 77 rows, a third of the data */
    FeedConfig c = {&x, &y, 1, 7, FG, FN / FG, 2, 9, 2000, VD_FEED_STREAM, 0, MPI_COMM_WORLD};
    assert_all(feed_run(&c, 2, rows));
    int B = shard_local_batch(FG, rank, size);
    for (int e = 0; e < 2; e++) {
        int seen[FN] = {0}, all[FN];
        for (int s = 0; s < FN / FG; s++)
            for (int i = 0; i < B; i++)
                seen[rows[e][s][i]]++;
        MPI_Allreduce(seen, all, FN, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
        int once = 1;
        for (int r = 0; r < FN; r++)
            once &= all[r] == 1;
        assert_all(once);
    }
    assert_all(memcmp(rows[0], rows[1], sizeof rows[0]) != 0);
    /* resumed at step 5 of epoch 1 */
    Feed *f;
    VdError err = {0};
    assert_all(feed_open(&f, &c, &err) == VD_OK);
    assert_all(feed_epoch(f, 1, 5, &err) == VD_OK);
    float xb[FG * FD];
    int32_t yb[FG];
    int64_t rb[FG];
    int same = 1;
    for (int s = 5; s < FN / FG; s++) {
        feed_batch(f, s, xb, yb, rb);
        same &= memcmp(rb, rows[1][s], sizeof(int64_t) * (size_t)B) == 0;
    }
    assert_all(same);
    feed_close(f);
    /* a budget under one batch plus the read-ahead is refused, by all */
    c.budget = 100;
    Feed *g;
    VdError small = {0};
    assert_all(feed_open(&g, &c, &small) == VD_EX_USAGE);
    feed_close(g);
    h5rows_close(&x);
    h5rows_close(&y);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_feed_resident),
        cmocka_unit_test(test_feed_stream),
    };
    return mpi_test_main(argc, argv, tests);
}
