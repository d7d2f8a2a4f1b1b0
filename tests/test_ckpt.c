/* test_ckpt.c — checkpoints round-trip bitwise and refuse what they must. */
#include "testutil.h"
#include "modelutil.h"

#include <hdf5.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ckpt.h"
#include "h5util.h"
#include "rng.h"
#include "train_opts.h"

static void fill(float *x, size_t n, uint32_t a)
{
    Rng r = rng_for(31, VD_RNG_INIT, 9);
    rng_normal_fill(&r, a, 0, n, x);
}

static Vae *make_model(int hidden2)
{
    char h[32];
    snprintf(h, sizeof h, "16,%d", hidden2);
    VaeShape s = test_shape(30, "hidden", h, "latent", "4", NULL);
    const char *why;
    Vae *m = vae_create(&s, 0, &why);
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
    CkptData data = {2, {5, 6}, 1000, {1, 5, 6, 0}};
    VdError err = {0};
    assert_int_equal(ckpt_save(path, m, st, &data, train_options, &cfg, 3, &err), VD_OK);
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
    CkptData data;
    assert_int_equal(ckpt_read_data(path, &data), 0);
    assert_int_equal(data.n_dims, 2);
    assert_int_equal(data.shape[1], 6);
    assert_int_equal(data.rows, 1000);
    assert_true(data.img.c == 1 && data.img.h == 5 && data.img.w == 6 && !data.img.chw);
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
    ckpt_prune(dir, 2, NULL);
    assert_int_equal(ckpt_list(dir, names, 8), 2);
    assert_string_equal(names[1], "ckpt-0000000010.h5");
    /* the best checkpoint is spared, however old */
    snprintf(path, sizeof path, "%s/ckpt-0000000200.h5", dir);
    fclose(fopen(path, "w"));
    ckpt_prune(dir, 1, "ckpt-0000000010.h5");
    assert_int_equal(ckpt_list(dir, names, 8), 2);
    assert_string_equal(names[0], "ckpt-0000000200.h5");
    assert_string_equal(names[1], "ckpt-0000000010.h5");
    snprintf(path, sizeof path, "%s/notes.txt", dir);
    assert_int_equal(access(path, F_OK), 0); /* only checkpoints are pruned */
}

/* Edits one /model attribute of path: deletes it (value NULL), or replaces
 * it with a string or an integer. */
static void set_model_attr(const char *path, const char *name, const char *str, int64_t num)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT), g = H5Gopen2(f, "model", H5P_DEFAULT);
    assert_true(f >= 0 && g >= 0);
    if (H5Aexists(g, name) > 0)
        assert_true(H5Adelete(g, name) >= 0);
    if (str)
        assert_int_equal(h5_attr_str(g, name, str), 0);
    else if (num != INT64_MIN)
        assert_int_equal(h5_attr_i64(g, name, &num, 1), 0);
    H5Gclose(g);
    H5Fclose(f);
}

static void set_version(const char *path, int64_t version)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    H5Adelete(f, "format_version");
    assert_int_equal(h5_attr_i64(f, "format_version", &version, 1), 0);
    H5Fclose(f);
}

/* m saved with /model's attribute name replaced (str, or num, or deleted
 * when both are absent) is refused as damaged, naming /model. */
static void refused_with(const char *path, const Vae *m, const char *name, const char *str,
                         int64_t num)
{
    TrainState st = {.step = 1};
    VaeShape back;
    VdError err = {0};
    save(path, m, &st);
    set_model_attr(path, name, str, num);
    assert_int_equal(ckpt_read_shape(path, &back, &err), VD_EX_DATAERR);
    assert_non_null(strstr(err.msg, "/model"));
}

/* The model options: written and read back; a version 1 file (no option
 * attributes) reads as relu, Bernoulli, unconditional; a version 2 file
 * must have them, with valid values. */
static void test_model_options(void **state)
{
    (void)state;
    char path[600];
    snprintf(path, sizeof path, "%s/opt.h5", test_tmpdir());
    VaeShape s = test_shape(30, "hidden", "16", "latent", "4", "activation", "tanh", "likelihood",
                            "gaussian", "classes", "7", NULL);
    s.obs_logvar = -0.25f; /* a learned variance's initial value */
    const char *why;
    Vae *m = vae_create(&s, 0, &why);
    fill(m->params, m->n_params, 4);
    TrainState st = {.step = 1}, got;
    save(path, m, &st);
    VaeShape back;
    VdError err = {0};
    assert_int_equal(ckpt_read_shape(path, &back, &err), VD_OK);
    assert_true(vae_shape_equal(&s, &back));
    assert_true(back.obs_logvar == -0.25f);
    Vae *m2 = vae_create(&back, 0, &why);
    assert_int_equal(ckpt_load(path, m2, &got, &err), VD_OK);
    assert_memory_equal(m->params, m2->params, sizeof(float) * m->n_params);
    vae_free(m2);
    vae_free(m);

    /* what an older build wrote: version 1, no option attributes */
    Vae *plain = make_model(8);
    save(path, plain, &st);
    set_version(path, 1);
    static const char *opts[] = {"activation", "likelihood", "obs_logvar", "learn_var",
                                 "n_classes"};
    for (int i = 0; i < 5; i++)
        set_model_attr(path, opts[i], NULL, INT64_MIN);
    err = (VdError){0};
    assert_int_equal(ckpt_read_shape(path, &back, &err), VD_OK);
    assert_true(vae_shape_equal(&plain->shape, &back));
    assert_int_equal(ckpt_load(path, plain, &got, &err), VD_OK);
    vae_free(plain);

    /* version 2 without them, or with bad values, is damaged */
    struct { const char *name, *str; int64_t num; } bad[] = {
        {"activation", NULL, INT64_MIN}, {"activation", "sigmoid", 0}, {"likelihood", "poisson", 0},
        {"learn_var", NULL, 2}, {"n_classes", NULL, -1}, {"activation", NULL, 3}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        Vae *p = make_model(8);
        refused_with(path, p, bad[i].name, bad[i].str, bad[i].num);
        vae_free(p);
    }
}

/* Format 4's options: several stochastic layers, gated layers and a
 * VampPrior written and read back, tensors and all; a version 3 file (the
 * scalar n_latent, no prior) reads as one layer with a standard prior; a
 * version 4 file without the prior, with a bad one, or with a VampPrior
 * but no pseudo_inputs, is damaged; a resume of another prior or other
 * layers is another model. */
static void test_hierarchical_options(void **state)
{
    (void)state;
    char path[600];
    snprintf(path, sizeof path, "%s/hier.h5", test_tmpdir());
    VaeShape s = test_shape(30, "hidden", "9,7", "latent", "4,3", "activation", "gated", "prior",
                            "vamp", "pseudo-inputs", "5", NULL);
    const char *why;
    Vae *m = vae_create(&s, 0, &why);
    assert_non_null(m);
    fill(m->params, m->n_params, 5);
    TrainState st = {.step = 3}, got;
    save(path, m, &st);
    VaeShape back;
    VdError err = {0};
    assert_int_equal(ckpt_read_shape(path, &back, &err), VD_OK);
    assert_true(vae_shape_equal(&s, &back));
    assert_int_equal(back.latent.n, 2);
    assert_int_equal(back.pseudo_inputs, 5);
    Vae *m2 = vae_create(&back, 0, &why);
    assert_int_equal(ckpt_load(path, m2, &got, &err), VD_OK);
    assert_memory_equal(m->params, m2->params, sizeof(float) * m->n_params);
    vae_free(m2);
    /* other layers, another prior, other pseudo-inputs: another model */
    const char *other[][2] = {{"latent", "4"}, {"latent", "4,4"}, {"prior", "standard"},
                              {"pseudo-inputs", "6"}, {"activation", "relu"}};
    for (int i = 0; i < 5; i++) {
        VaeShape o = s;
        assert_int_equal(vae_shape_set(&o, other[i][0], other[i][1]), 0);
        Vae *mo = vae_create(&o, 0, &why);
        err = (VdError){0};
        assert_int_equal(ckpt_load(path, mo, &got, &err), VD_EX_USAGE);
        assert_non_null(strstr(err.msg, "holds a"));
        vae_free(mo);
    }
    vae_free(m);
    /* what format 3 wrote */
    Vae *old = make_model(8);
    save(path, old, &st);
    set_model_attr(path, "latent", NULL, INT64_MIN);
    set_model_attr(path, "n_latent", NULL, 4);
    set_model_attr(path, "prior", NULL, INT64_MIN);
    set_version(path, 3);
    err = (VdError){0};
    assert_int_equal(ckpt_read_shape(path, &back, &err), VD_OK);
    assert_true(vae_shape_equal(&old->shape, &back));
    assert_int_equal(back.prior, VD_PRIOR_STANDARD);
    vae_free(old);
    /* format 4 without its attributes, or with bad values */
    struct { const char *name, *str; int64_t num; int vamp; } bad[] = {
        {"prior", NULL, INT64_MIN, 0}, {"prior", "laplace", 0, 0}, {"latent", NULL, 0, 0},
        {"latent", NULL, INT64_MIN, 0}, {"pseudo_inputs", NULL, INT64_MIN, 1},
        {"pseudo_inputs", NULL, 0, 1}, {"activation", "swish", 0, 0}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        Vae *p = bad[i].vamp ? vae_create(&s, 0, &why) : make_model(8);
        refused_with(path, p, bad[i].name, bad[i].str, bad[i].num);
        vae_free(p);
    }
}

static void touch(const char *dir, const char *name, const char *text)
{
    char p[700];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_find_checkpoint(void **state)
{
    (void)state;
    char dir[600], path[VD_PATH_MAX];
    VdError err = {0};
    snprintf(dir, sizeof dir, "%s/run", test_tmpdir());
    mkdir(dir, 0755);
    assert_int_equal(ckpt_find(dir, path, &err), VD_EX_NOINPUT);
    assert_non_null(strstr(err.msg, "no checkpoint"));
    touch(dir, "ckpt-0000000010.h5", "");
    touch(dir, "ckpt-0000000200.h5", "");
    touch(dir, "ckpt-0000000300.h5.tmp", ""); /* a write in progress */
    err = (VdError){0};
    assert_int_equal(ckpt_find(dir, path, &err), VD_OK);
    assert_non_null(strstr(path, "/run/ckpt-0000000200.h5"));
    touch(dir, "latest", "ckpt-0000000010.h5\n"); /* latest wins */
    assert_int_equal(ckpt_find(dir, path, &err), VD_OK);
    assert_non_null(strstr(path, "/run/ckpt-0000000010.h5"));
    /* RUN/best and RUN/latest name the checkpoint beside them */
    touch(dir, "best", "ckpt-0000000200.h5\n");
    snprintf(path, sizeof path, "%s/best", dir);
    char arg[VD_PATH_MAX];
    snprintf(arg, sizeof arg, "%s", path);
    assert_int_equal(ckpt_find(arg, path, &err), VD_OK);
    assert_non_null(strstr(path, "/run/ckpt-0000000200.h5"));
    snprintf(arg, sizeof arg, "%s/latest", dir);
    assert_int_equal(ckpt_find(arg, path, &err), VD_OK);
    assert_non_null(strstr(path, "/run/ckpt-0000000010.h5"));
    touch(dir, "best", "ckpt-0000000999.h5\n"); /* names a file that is gone */
    snprintf(arg, sizeof arg, "%s/best", dir);
    err = (VdError){0};
    assert_int_equal(ckpt_find(arg, path, &err), VD_EX_NOINPUT);
    snprintf(dir + strlen(dir), sizeof dir - strlen(dir), "/ckpt-0000000200.h5");
    assert_int_equal(ckpt_find(dir, path, &err), VD_OK);
    assert_string_equal(path, dir);
    strcat(dir, "x");
    assert_int_equal(ckpt_find(dir, path, &err), VD_EX_NOINPUT);
}

int main(void)
{
    h5_quiet();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_find_checkpoint),
        cmocka_unit_test(test_round_trip_is_bitwise),
        cmocka_unit_test(test_refuses_other_architecture),
        cmocka_unit_test(test_refuses_corrupt_files),
        cmocka_unit_test(test_model_options),
        cmocka_unit_test(test_hierarchical_options),
        cmocka_unit_test(test_list_and_prune),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
