/* test_import.c — IDX files to HDF5 (import.h): plain and gzip round trips
 * read back through the data reader, an existing output kept without
 * --force, and bad IDX files refused. */
#include "testutil.h"

#include <unistd.h>
#include <zlib.h>

#include "h5rows.h"
#include "import.h"

static void write_idx(const char *path, int gz, const int64_t *dims, int nd, const uint8_t *data,
                      int64_t n)
{
    uint8_t head[4 + 4 * 4] = {0, 0, 8, (uint8_t)nd};
    for (int i = 0; i < nd; i++) {
        head[4 + 4 * i] = (uint8_t)(dims[i] >> 24);
        head[5 + 4 * i] = (uint8_t)(dims[i] >> 16);
        head[6 + 4 * i] = (uint8_t)(dims[i] >> 8);
        head[7 + 4 * i] = (uint8_t)dims[i];
    }
    if (gz) {
        gzFile f = gzopen(path, "wb");
        gzwrite(f, head, 4 + 4 * (unsigned)nd);
        gzwrite(f, data, (unsigned)n);
        gzclose(f);
    } else {
        FILE *f = fopen(path, "wb");
        fwrite(head, 1, 4 + 4 * (size_t)nd, f);
        fwrite(data, 1, (size_t)n, f);
        fclose(f);
    }
}

static void make_idx_set(const char *dir, int gz, int ntrain, int ntest, ImportConfig *c,
                         uint8_t *train_pix)
{
    const char *ext = gz ? ".gz" : "";
    int64_t di[3] = {ntrain, 5, 4}, dl[1] = {ntrain};
    uint8_t lab[64];
    for (int i = 0; i < ntrain * 20; i++)
        train_pix[i] = (uint8_t)(i * 7 + 3);
    for (int i = 0; i < ntrain; i++)
        lab[i] = (uint8_t)(i % 10);
    snprintf(c->train_images, sizeof c->train_images, "%s/tri%s", dir, ext);
    snprintf(c->train_labels, sizeof c->train_labels, "%s/trl%s", dir, ext);
    snprintf(c->test_images, sizeof c->test_images, "%s/tei%s", dir, ext);
    snprintf(c->test_labels, sizeof c->test_labels, "%s/tel%s", dir, ext);
    write_idx(c->train_images, gz, di, 3, train_pix, ntrain * 20);
    write_idx(c->train_labels, gz, dl, 1, lab, ntrain);
    di[0] = dl[0] = ntest;
    write_idx(c->test_images, gz, di, 3, train_pix, ntest * 20);
    write_idx(c->test_labels, gz, dl, 1, lab, ntest);
}

static void check_import_round_trip(int gz)
{
    ImportConfig c = {.force = 0};
    uint8_t pix[64 * 20];
    make_idx_set(test_tmpdir(), gz, 37, 11, &c, pix);
    snprintf(c.out, sizeof c.out, "%s/imported-%d.h5", test_tmpdir(), gz);
    unlink(c.out);
    VdError err = {0};
    assert_int_equal(import_idx(&c, &err), VD_OK);
    H5Rows r;
    assert_int_equal(h5rows_open(&r, c.out, "/train/images", 0, &err), VD_OK);
    assert_int_equal(r.n_rows, 37);
    assert_int_equal(r.row_len, 20);
    assert_int_equal(r.n_dims, 3);
    assert_true(r.is_u8);
    int64_t rows[3] = {0, 17, 36};
    uint8_t got[3 * 20];
    assert_int_equal(h5rows_read(&r, rows, 3, got, &err), VD_OK);
    for (int k = 0; k < 3; k++)
        assert_memory_equal(got + 20 * k, pix + 20 * rows[k], 20);
    h5rows_close(&r);
    H5Rows l;
    assert_int_equal(h5rows_open(&l, c.out, "/test/labels", 1, &err), VD_OK);
    int32_t lab[11];
    int64_t all[11];
    for (int i = 0; i < 11; i++)
        all[i] = i;
    assert_int_equal(h5rows_read(&l, all, 11, lab, &err), VD_OK);
    for (int i = 0; i < 11; i++)
        assert_int_equal(lab[i], i % 10);
    h5rows_close(&l);
    /* an existing output is not replaced without force */
    VdError e2 = {0};
    assert_int_equal(import_idx(&c, &e2), VD_EX_CANTCREAT);
    c.force = 1;
    assert_int_equal(import_idx(&c, &e2), VD_OK);
}

static void test_import_plain(void **state) { (void)state; check_import_round_trip(0); }
static void test_import_gzip(void **state) { (void)state; check_import_round_trip(1); }

static void test_import_rejects_bad_idx(void **state)
{
    (void)state;
    char path[600];
    IdxArray a;
    VdError err = {0};
    snprintf(path, sizeof path, "%s/bad-magic", test_tmpdir());
    FILE *f = fopen(path, "wb");
    fwrite("\x00\x00\x0d\x03garbage", 1, 11, f); /* float type */
    fclose(f);
    assert_int_equal(idx_read(path, &a, &err), VD_EX_DATAERR);
    int64_t dims[2] = {10, 10};
    uint8_t data[50] = {0};
    snprintf(path, sizeof path, "%s/truncated", test_tmpdir());
    write_idx(path, 0, dims, 2, data, 50); /* header says 100 bytes */
    err.code = VD_OK;
    assert_int_equal(idx_read(path, &a, &err), VD_EX_DATAERR);
    assert_non_null(strstr(err.msg, "truncated"));
    err.code = VD_OK;
    assert_int_equal(idx_read("/nonexistent/idx", &a, &err), VD_EX_NOINPUT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_import_plain),
        cmocka_unit_test(test_import_gzip),
        cmocka_unit_test(test_import_rejects_bad_idx),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
