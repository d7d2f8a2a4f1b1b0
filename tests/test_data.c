/* test_data.c — sharding with simulated ranks and the HDF5 row reader on
 * the storage layouts users bring. */
#include "testutil.h"

#include <hdf5.h>
#include <math.h>
#include <unistd.h>

#include "shard.h"
#include "h5util.h"
#include "rng.h"

/* Every rank runs the same number of steps; the slices of all ranks are
 * disjoint and together are exactly the first steps * G permutation entries. */
static void test_shards_disjoint_covering_equal(void **state)
{
    (void)state;
    static const int64_t Ns[] = {1000, 1001, 997, 60000, 129, 50};
    static const int64_t Gs[] = {128, 100, 7, 50, 13};
    static const int sizes[] = {1, 2, 3, 4, 5, 8};
    for (size_t a = 0; a < sizeof Ns / sizeof *Ns; a++)
        for (size_t b = 0; b < sizeof Gs / sizeof *Gs; b++)
            for (size_t c = 0; c < sizeof sizes / sizeof *sizes; c++) {
                int64_t N = Ns[a], G = Gs[b];
                int size = sizes[c];
                if (G > N || G < size)
                    continue;
                int64_t *perm = malloc(sizeof(int64_t) * N);
                Rng r = rng_for(4, VD_RNG_ORDER, 0);
                rng_permutation(&r, 2, perm, N);
                int64_t steps = shard_steps_per_epoch(N, G);
                assert_int_equal(steps, N / G);
                char *hit = calloc((size_t)N, 1);
                int64_t total = 0;
                for (int rank = 0; rank < size; rank++) {
                    int B = shard_local_batch(G, rank, size);
                    assert_true(B >= G / size && B <= G / size + 1);
                    int64_t *rows = malloc(sizeof(int64_t) * (size_t)(steps * B + 1));
                    shard_epoch_rows(perm, steps, G, rank, size, rows);
                    for (int64_t i = 0; i < steps * B; i++) {
                        assert_false(hit[rows[i]]);
                        hit[rows[i]] = 1;
                    }
                    total += steps * B;
                    free(rows);
                }
                assert_int_equal(total, steps * G);
                for (int64_t i = 0; i < steps * G; i++)
                    assert_true(hit[perm[i]]);
                free(hit);
                free(perm);
            }
}

static void test_shard_range_covers(void **state)
{
    (void)state;
    for (int size = 1; size <= 7; size++) {
        int64_t next = 0;
        for (int rank = 0; rank < size; rank++) {
            int64_t b, e;
            shard_range(10001, rank, size, &b, &e);
            assert_int_equal(b, next);
            assert_true(e - b >= 10001 / size && e - b <= 10001 / size + 1);
            next = e;
        }
        assert_int_equal(next, 10001);
    }
}

/* ---- HDF5 reader on the layouts h5py users write ---- */

static void write_h5(const char *path, hid_t ftype, int chunk, int deflate, int n, int h, int w)
{
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t dims[3] = {(hsize_t)n, (hsize_t)h, (hsize_t)w}, c[3] = {(hsize_t)chunk, (hsize_t)h, (hsize_t)w};
    hid_t space = H5Screate_simple(3, dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (chunk) {
        H5Pset_chunk(dcpl, 3, c);
        if (deflate) {
            H5Pset_shuffle(dcpl);
            H5Pset_deflate(dcpl, 6);
        }
    }
    double *v = malloc(sizeof(double) * (size_t)(n * h * w));
    for (int i = 0; i < n * h * w; i++)
        v[i] = (double)(i % 97) / 96.0;
    hid_t d = H5Dcreate2(f, "x", ftype, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    H5Dclose(d);
    H5Pclose(dcpl);
    H5Sclose(space);
    H5Fclose(f);
    free(v);
}

static void check_reader(hid_t ftype, int chunk, int deflate)
{
    enum { N = 301, H = 3, W = 5 };
    char path[600];
    snprintf(path, sizeof path, "%s/layout.h5", test_tmpdir());
    write_h5(path, ftype, chunk, deflate, N, H, W);
    H5Rows r;
    VdError err = {0};
    assert_int_equal(h5rows_open(&r, path, "/x", 0, &err), VD_OK);
    assert_int_equal(r.row_len, H * W);
    assert_false(r.is_u8);
    /* a shard of random rows, loaded and handed out in training order */
    int64_t perm[N], want[100];
    Rng g = rng_for(6, VD_RNG_ORDER, 0);
    rng_permutation(&g, 0, perm, N);
    memcpy(want, perm, sizeof want);
    Shard s;
    shard_init(&s, &r, NULL, 100, 1);
    assert_int_equal(shard_load(&s, want, 100, &err), VD_OK);
    float x[10 * H * W];
    shard_batch(&s, 40, 10, x, NULL);
    for (int k = 0; k < 10; k++)
        for (int j = 0; j < H * W; j++) {
            double expect = (double)((want[40 + k] * H * W + j) % 97) / 96.0;
            assert_float_equal(x[k * H * W + j], (float)expect, 1e-7);
        }
    shard_free(&s);
    h5rows_close(&r);
}

static void test_reader_f64_be_chunked_compressed(void **state)
{
    (void)state;
    check_reader(H5T_IEEE_F64BE, 32, 1);
}
static void test_reader_f32_contiguous(void **state)
{
    (void)state;
    check_reader(H5T_IEEE_F32LE, 0, 0);
}
static void test_reader_f32_odd_chunks(void **state)
{
    (void)state;
    check_reader(H5T_IEEE_F32BE, 7, 0);
}

static void test_reader_rejects_bad_files(void **state)
{
    (void)state;
    H5Rows r;
    VdError err = {0};
    char path[600];
    assert_int_equal(h5rows_open(&r, "/nonexistent.h5", "/x", 0, &err), VD_EX_NOINPUT);
    h5rows_close(&r);
    snprintf(path, sizeof path, "%s/not-hdf5.h5", test_tmpdir());
    FILE *f = fopen(path, "w");
    fputs("hello\n", f);
    fclose(f);
    err.code = VD_OK;
    assert_int_equal(h5rows_open(&r, path, "/x", 0, &err), VD_EX_DATAERR);
    h5rows_close(&r);
    snprintf(path, sizeof path, "%s/layout.h5", test_tmpdir());
    write_h5(path, H5T_IEEE_F32LE, 0, 0, 4, 2, 2);
    err.code = VD_OK;
    assert_int_equal(h5rows_open(&r, path, "/missing/x", 0, &err), VD_EX_NOINPUT);
    h5rows_close(&r);
    err.code = VD_OK; /* images are not labels */
    assert_int_equal(h5rows_open(&r, path, "/x", 1, &err), VD_EX_DATAERR);
    h5rows_close(&r);
    /* values outside [0, 1] are refused for the Bernoulli likelihood */
    hid_t fh = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t d = H5Dopen2(fh, "/x", H5P_DEFAULT);
    float big[16];
    for (int i = 0; i < 16; i++)
        big[i] = i == 9 ? 3.0f : 0.5f;
    H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, big);
    H5Dclose(d);
    H5Fclose(fh);
    err.code = VD_OK;
    assert_int_equal(h5rows_open(&r, path, "/x", 0, &err), VD_OK);
    Shard s;
    shard_init(&s, &r, NULL, 4, 1);
    int64_t rows[4] = {3, 2, 1, 0};
    assert_int_equal(shard_load(&s, rows, 4, &err), VD_EX_DATAERR);
    assert_non_null(strstr(err.msg, "outside [0, 1]"));
    shard_free(&s);
    h5rows_close(&r);
}

/* --val-fraction: the held-out rows and the rest are disjoint, ascending,
 * cover every row, number round(F n), and depend on the seed alone. */
static void test_split_is_fixed_and_complete(void **state)
{
    (void)state;
    enum { N = 1001 };
    int64_t nk, nh, nh2, nh3;
    int64_t *keep = shard_split_rows(N, 0.1, 7, 0, &nk), *held = shard_split_rows(N, 0.1, 7, 1, &nh);
    int64_t *again = shard_split_rows(N, 0.1, 7, 1, &nh2), *other = shard_split_rows(N, 0.1, 8, 1, &nh3);
    assert_int_equal(nh, 100);
    assert_int_equal(nk, N - 100);
    char seen[N] = {0};
    for (int64_t i = 0; i < nk; i++) {
        assert_true(i == 0 || keep[i] > keep[i - 1]);
        seen[keep[i]]++;
    }
    for (int64_t i = 0; i < nh; i++) {
        assert_true(i == 0 || held[i] > held[i - 1]);
        seen[held[i]]++;
    }
    for (int i = 0; i < N; i++)
        assert_int_equal(seen[i], 1);
    assert_int_equal(nh2, nh);
    assert_memory_equal(again, held, sizeof(int64_t) * (size_t)nh);
    assert_int_equal(nh3, nh);
    assert_true(memcmp(other, held, sizeof(int64_t) * (size_t)nh) != 0);
    /* spread over the rows, not a block: some held rows in each half */
    int low = 0;
    for (int64_t i = 0; i < nh; i++)
        low += held[i] < N / 2;
    assert_true(low > 25 && low < 75);
    free(keep);
    free(held);
    free(again);
    free(other);
}

/* A view reads the rows it lists: row i of the view is row map[i] of the
 * dataset, through the chunked and the contiguous reader, and labels made
 * like it line up. */
static void test_view_reads_its_rows(void **state)
{
    (void)state;
    enum { N = 301, H = 3, W = 5 };
    char path[600];
    snprintf(path, sizeof path, "%s/view.h5", test_tmpdir());
    for (int chunk = 0; chunk <= 32; chunk += 32) {
        write_h5(path, H5T_IEEE_F32LE, chunk, 0, N, H, W);
        H5Rows r, y;
        VdError err = {0};
        assert_int_equal(h5rows_open(&r, path, "/x", 0, &err), VD_OK);
        int64_t n;
        int64_t *rows = shard_split_rows(N, 0.3, 3, 1, &n);
        int64_t first = rows[0], last = rows[n - 1];
        h5rows_select(&r, rows, n);
        assert_int_equal(r.n_rows, n);
        int64_t want[2] = {0, n - 1};
        float x[2 * H * W];
        assert_int_equal(h5rows_read(&r, want, 2, x, &err), VD_OK);
        for (int j = 0; j < H * W; j++) {
            assert_float_equal(x[j], (float)((double)((first * H * W + j) % 97) / 96.0), 1e-7);
            assert_float_equal(x[H * W + j], (float)((double)((last * H * W + j) % 97) / 96.0), 1e-7);
        }
        memset(&y, 0, sizeof y);
        h5rows_select_like(&y, &r);
        assert_int_equal(y.n_rows, n);
        assert_memory_equal(y.map, r.map, sizeof(int64_t) * (size_t)n);
        vd_free(y.map);
        h5rows_close(&r);
        assert_null(r.map);
    }
}

int main(void)
{
    h5_quiet();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shards_disjoint_covering_equal),
        cmocka_unit_test(test_shard_range_covers),
        cmocka_unit_test(test_reader_f64_be_chunked_compressed),
        cmocka_unit_test(test_reader_f32_contiguous),
        cmocka_unit_test(test_reader_f32_odd_chunks),
        cmocka_unit_test(test_reader_rejects_bad_files),
        cmocka_unit_test(test_split_is_fixed_and_complete),
        cmocka_unit_test(test_view_reads_its_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
