/* test_ckpt.c — checkpoints round-trip bitwise and refuse what they must. */
#include "testutil.h"

#include <hdf5.h>
#include <unistd.h>

#include "ckpt.h"
#include "h5util.h"
#include "rng.h"
#include "train.h"

static void fill(float *x, size_t n, uint32_t a)
{
    Rng r = rng_stream(31, VD_STREAM_INIT, 9);
    rng_normal_fill(&r, a, 0, n, x);
}

static Vae *make_model(int hidden2)
{
    VaeShape s = {.n_input = 30, .n_latent = 4, .n_hidden = 2, .hidden = {16, hidden2}};
    const char *why;
    Vae *m = vae_create(&s, &why);
    fill(m->params, m->n_params, 1);
    fill(m->adam_m, m->n_params, 2);
    fill(m->adam_v, m->n_params, 3);
    return m;
}

static void save(const char *path, const Vae *m, const TrainState *st)
{
    TrainConfig cfg;
    memset(&cfg, 0, sizeof cfg);
    opts_defaults(train_options, &cfg);
    int64_t in_shape[2] = {5, 6};
    VdError err = {0};
    assert_int_equal(ckpt_save(path, m, st, in_shape, 2, 1000, train_options, &cfg, 3, &err), VD_OK);
}

static void test_round_trip_is_bitwise(void **state)
{
    (void)state;
    char path[600];
    snprintf(path, sizeof path, "%s/a.h5", test_tmpdir());
    Vae *m = make_model(8);
    TrainState st = {.step = 1234, .epoch = 7, .skipped = 2, .ivl_recon = 1.25, .ivl_kl = 0.5,
                     .ivl_count = 40, .ep_loss = 99.5, .ep_count = 80},
               got = {0};
    save(path, m, &st);
    char tmp[620];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    assert_int_not_equal(access(tmp, F_OK), 0); /* renamed into place */
    Vae *m2 = make_model(8);
    memset(m2->params, 0, sizeof(float) * m2->n_params);
    memset(m2->adam_m, 0, sizeof(float) * m2->n_params);
    memset(m2->adam_v, 0, sizeof(float) * m2->n_params);
    VdError err = {0};
    assert_int_equal(ckpt_load(path, m2, &got, &err), VD_OK);
    assert_memory_equal(m->params, m2->params, sizeof(float) * m->n_params);
    assert_memory_equal(m->adam_m, m2->adam_m, sizeof(float) * m->n_params);
    assert_memory_equal(m->adam_v, m2->adam_v, sizeof(float) * m->n_params);
    assert_memory_equal(&got, &st, sizeof st); /* the run's counters come back too */
    int64_t shape[4], rows = 0;
    assert_int_equal(ckpt_read_data_shape(path, shape, 4, &rows), 2);
    assert_int_equal(shape[1], 6);
    assert_int_equal(rows, 1000);
    /* h5py-readable layout: named tensors and the configuration */
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(H5Lexists(f, "/params/decoder.2.weight", H5P_DEFAULT) > 0);
    hid_t g = H5Gopen2(f, "config", H5P_DEFAULT);
    char lr[64];
    assert_int_equal(h5_attr_read_str(g, "lr", lr, sizeof lr), 0);
    assert_string_equal(lr, "0.001");
    H5Gclose(g);
    H5Fclose(f);
    vae_free(m);
    vae_free(m2);
}

static void test_refuses_other_architecture(void **state)
{
    (void)state;
    char path[600];
    snprintf(path, sizeof path, "%s/b.h5", test_tmpdir());
    Vae *m = make_model(8), *other = make_model(9);
    TrainState st = {.step = 1, .epoch = 1};
    save(path, m, &st);
    VdError err = {0};
    assert_int_equal(ckpt_load(path, other, &st, &err), VD_EX_USAGE);
    assert_non_null(strstr(err.msg, "30-16-8-4"));
    assert_non_null(strstr(err.msg, "30-16-9-4"));
    vae_free(m);
    vae_free(other);
}

static void test_refuses_corrupt_files(void **state)
{
    (void)state;
    char path[600];
    snprintf(path, sizeof path, "%s/c.h5", test_tmpdir());
    Vae *m = make_model(8);
    TrainState st = {.step = 1, .epoch = 1};
    save(path, m, &st);
    /* flip Adam moments behind the checksum's back: the whole state is covered */
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t d = H5Dopen2(f, "/adam/v/mu.bias", H5P_DEFAULT);
    float z[4] = {9, 9, 9, 9};
    H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, z);
    H5Dclose(d);
    H5Fclose(f);
    VdError err = {0};
    assert_int_equal(ckpt_load(path, m, &st, &err), VD_EX_DATAERR);
    assert_non_null(strstr(err.msg, "checksum"));
    /* a truncated file */
    save(path, m, &st);
    assert_int_equal(truncate(path, 2000), 0);
    err.code = VD_OK;
    assert_int_equal(ckpt_load(path, m, &st, &err), VD_EX_DATAERR);
    err.code = VD_OK;
    assert_int_equal(ckpt_load("/nonexistent.h5", m, &st, &err), VD_EX_NOINPUT);
    vae_free(m);
}

static void test_list_and_prune(void **state)
{
    (void)state;
    char dir[600], path[700];
    snprintf(dir, sizeof dir, "%s/listing", test_tmpdir());
    assert_int_equal(vd_mkdirs(dir), 0);
    const char *files[] = {"ckpt-0000000009.h5", "ckpt-0000000100.h5", "ckpt-0000000010.h5",
                           "ckpt-0000000100.h5.tmp", "notes.txt", "ckpt-x.h5"};
    for (int i = 0; i < 6; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        fclose(fopen(path, "w"));
    }
    char names[8][64];
    assert_int_equal(ckpt_list(dir, names, 8), 3);
    assert_string_equal(names[0], "ckpt-0000000100.h5");
    assert_string_equal(names[1], "ckpt-0000000010.h5");
    assert_string_equal(names[2], "ckpt-0000000009.h5");
    ckpt_prune(dir, 2);
    assert_int_equal(ckpt_list(dir, names, 8), 2);
    assert_string_equal(names[1], "ckpt-0000000010.h5");
    snprintf(path, sizeof path, "%s/notes.txt", dir);
    assert_int_equal(access(path, F_OK), 0); /* only checkpoints are pruned */
}

int main(void)
{
    h5_quiet();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_is_bitwise),
        cmocka_unit_test(test_refuses_other_architecture),
        cmocka_unit_test(test_refuses_corrupt_files),
        cmocka_unit_test(test_list_and_prune),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
