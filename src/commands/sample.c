/* sample.c — the sample and reconstruct commands. See sample.h. */
#include "sample.h"

#include <hdf5.h>
#include <stdio.h>
#include <string.h>

#include "ckpt.h"
#include "comm.h"
#include "shard.h"
#include "durable.h"
#include "h5util.h"
#include "image.h"
#include "model.h"
#include "rng.h"
#include "runtime.h"
#include "trained.h"

/* ---- sample ----------------------------------------------------------- */

typedef struct {
    char ckpt[VD_PATH_MAX], out[VD_PATH_MAX];
    int n, cols, cls, noise, threads, figure_scale;
    uint64_t seed;
} SampleConfig;

#define SOFF(f) offsetof(SampleConfig, f)
#define SSTR(f) OPT_STR, SOFF(f), sizeof(((SampleConfig *)0)->f)
static const OptSpec sample_options[] = {
    {"ckpt", SSTR(ckpt), "runs/default", 0, 0, "PATH",
     "checkpoint file, run directory (its latest checkpoint), or RUN/best"},
    {"n", OPT_INT, SOFF(n), 0, "0", 0, 65536, "N",
     "draws from the prior (0: 64, or --cols per class for a conditional model)"},
    {"cols", OPT_INT, SOFF(cols), 0, "8", 1, 1024, "N", "images per row of the grid"},
    {"class", OPT_INT, SOFF(cls), 0, "-1", -1, 1 << 20, "C",
     "conditional model: draw from class C's prior N(m_C, I) (-1: grid row r is class r mod C)"},
    {"noise", OPT_BOOL, SOFF(noise), 0, "0", 0, 0, NULL,
     "draw each sample from p(x|z) (0 or 1 for a Bernoulli model, the mean plus noise for a "
     "Gaussian, a level for a logistic), not only its mean"},
    {"seed", OPT_U64, SOFF(seed), 0, "1", 0, 0, "N",
     "seed of the draws (the run's seed gives its samples.png)"},
    {"out", SSTR(out), "samples", 0, 0, "NAME",
     "writes NAME.png (the grid) and NAME.h5 (/samples, /z; /classes if conditional)"},
    {"threads", OPT_INT, SOFF(threads), 0, "0", 0, 1024, "N", trained_threads_help},
    {"figure-scale", OPT_INT, SOFF(figure_scale), 0, "0", 0, 64, "S", trained_figure_scale_help},
    OPT_END};

const OptCommand sample_command = {
    "sample", "vae-dist sample [options]",
    "Draws z from the prior, N(0, I) (or a class's N(m_c, I)), and decodes them: a PNG grid of "
    "the decoder's means and an HDF5 file with the images, their latent draws and their "
    "classes.",
    sample_options, sizeof(SampleConfig), NULL};

/* pics (n, D), channels last, back into the layout the data were stored
 * in (g->chw: channels first), into out. */
static void to_stored_layout(float *out, const float *pics, int n, const ImageGeom *g, int D)
{
    if (!g->chw) {
        memcpy(out, pics, sizeof(float) * (size_t)n * D);
        return;
    }
    size_t plane = (size_t)g->h * g->w;
    for (int k = 0; k < n; k++)
        for (int c = 0; c < g->c; c++)
            for (size_t p = 0; p < plane; p++)
                out[(size_t)k * D + c * plane + p] = pics[(size_t)k * D + p * g->c + c];
}

/* Rank 0: NAME.h5 with /samples (n, ...) shaped like the training samples
 * as stored, /z (n, d) and, for a conditional model, /classes. */
static int write_samples_h5(const SampleConfig *cfg, const char *ckpt, const Vae *m,
                            const CkptData *data, const float *pics, const float *z,
                            const int32_t *cls, VdError *err)
{
    char path[VD_PATH_MAX];
    DurableFile out;
    trained_out_path(path, cfg->out, ".h5");
    if (durable_begin(&out, path, err) != VD_OK)
        return err->code;
    int d = m->d_total, D = m->shape.n_input, L = m->n_levels;
    int64_t dims[VD_MAX_DIMS + 1] = {cfg->n};
    for (int i = 0; i < data->n_dims; i++)
        dims[i + 1] = data->shape[i];
    float *stored = vd_calloc((size_t)cfg->n * D, sizeof(float));
    to_stored_layout(stored, pics, cfg->n, &data->img, D);
    hid_t f = H5Fcreate(out.tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    int bad = f < 0 || h5_write_f32_nd(f, "samples", stored, dims, data->n_dims + 1) != 0;
    if (!bad && m->shape.classes > 0)
        bad = h5_write_i32(f, "classes", cls, cfg->n) != 0;
    /* /z the top layer's draws (all of z for one layer); /z1 .. the lower layers' */
    float *col = vd_calloc((size_t)cfg->n * d, sizeof(float));
    for (int l = L - 1; l >= 0 && !bad; l--) {
        int dl = m->levels[l].d, off = m->levels[l].eps_off;
        char name[16];
        snprintf(name, sizeof name, l == L - 1 ? "z" : "z%d", l + 1);
        for (int k = 0; k < cfg->n; k++)
            memcpy(col + (size_t)k * dl, z + (size_t)k * d + off, sizeof(float) * (size_t)dl);
        bad = h5_write_f32(f, name, col, cfg->n, dl) != 0;
    }
    vd_free(col);
    bad = bad || h5_attr_str(f, "checkpoint", ckpt) != 0 || h5_attr_u64(f, "seed", cfg->seed) != 0;
    if (f >= 0 && H5Fclose(f) < 0)
        bad = 1;
    vd_free(stored);
    if (bad) {
        durable_discard(&out);
        return vd_fail(err, VD_EX_CANTCREAT, "cannot write %s", path);
    }
    if (durable_commit(&out, err) != VD_OK)
        return err->code;
    char shape[96] = "";
    for (int i = 0; i < data->n_dims + 1; i++)
        snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%s%lld", i ? " x " : "",
                 (long long)dims[i]);
    printf("wrote %s (/samples %s, /z %d x %d%s)\n", path, shape, cfg->n, vae_top_latent(m),
           L > 1 ? ", and the lower layers' /z1 .." : "");
    return VD_OK;
}

/* Rank 0: the grid of n images as NAME.png, and what it wrote. */
static int write_grid(const char *name, const float *pics, int n, const ImageGeom *g, int cols,
                      int scale, VdError *err)
{
    char path[VD_PATH_MAX];
    int w, h;
    trained_out_path(path, name, ".png");
    if (image_grid_png(path, pics, n, g, cols, scale, &w, &h, err) != VD_OK)
        return err->code;
    image_note_scale(stdout, path, scale, image_grid_scale(g, n, cols, scale));
    printf("wrote %s (%d x %d%s)\n", path, w, h, g->c >= 3 ? ", RGB" : "");
    return VD_OK;
}

/* Rank 0: the draws, decoded, and the files: the PNG only for images. */
static void draw_samples(SampleConfig *cfg, const char *ckpt, const Vae *m, VdError *err)
{
    int C = m->shape.classes;
    CkptData data;
    if (ckpt_read_data(ckpt, &data) != 0) {
        vd_fail(err, VD_EX_DATAERR, "%s: /model's input_shape is missing or invalid", ckpt);
        return;
    }
    if (cfg->n == 0)
        cfg->n = C > 0 && cfg->cls < 0 ? (cfg->cols * C < 4096 ? cfg->cols * C : 4096) : 64;
    int D = m->shape.n_input, d = m->d_total, B = cfg->n < 256 ? cfg->n : 256;
    VaeWork *w = vae_work_create_forward(m, B);
    float *pics = vd_calloc((size_t)cfg->n * D, sizeof(float));
    float *z = vd_calloc((size_t)cfg->n * d, sizeof(float));
    int32_t *cls = vd_calloc((size_t)cfg->n, sizeof(int32_t));
    int cols = cfg->cols < cfg->n ? cfg->cols : cfg->n;
    vae_sample(m, w, cfg->seed, cfg->n, cols, cfg->cls, cfg->noise, z, cls, pics);
    if (data.img.c)
        write_grid(cfg->out, pics, cfg->n, &data.img, cols, cfg->figure_scale, err);
    else
        printf("no PNG: the model's samples are not images\n");
    if (err->code == VD_OK)
        write_samples_h5(cfg, ckpt, m, &data, pics, z, cls, err);
    vd_free(z);
    vd_free(cls);
    vd_free(pics);
    vae_work_free(w);
}

int sample_main(int argc, char **argv, MPI_Comm comm)
{
    int rank;
    MPI_Comm_rank(comm, &rank);
    SampleConfig cfg;
    VdError err = {0};
    if (opts_command(&sample_command, &cfg, argc, argv, rank, &err))
        return VD_OK;
    if (err.code == VD_OK) /* the same verdict on every rank */
        runtime_set_threads(cfg.threads, comm);
    char ckpt[VD_PATH_MAX];
    Vae *m = NULL;
    if (rank == 0 && err.code == VD_OK && (m = trained_load(cfg.ckpt, ckpt, &err)) &&
        cfg.cls >= 0 && cfg.cls >= m->shape.classes)
        vd_fail(&err, VD_EX_USAGE, "--class %d: the model in %s %s", cfg.cls, ckpt,
                m->shape.classes ? "has fewer classes" : "is not conditional");
    if (rank == 0 && err.code == VD_OK)
        trained_check_outputs(cfg.out, ckpt, &err);
    if (rank == 0 && err.code == VD_OK)
        draw_samples(&cfg, ckpt, m, &err);
    vae_free(m);
    return vd_error_agree(&err, comm);
}

/* ---- reconstruct ------------------------------------------------------ */

typedef struct {
    char ckpt[VD_PATH_MAX], data[VD_PATH_MAX], dataset[256], out[VD_PATH_MAX];
    int64_t first;
    int n, cols, sample, binarize, threads, figure_scale;
    uint64_t seed;
} ReconConfig;

#define ROFF(f) offsetof(ReconConfig, f)
#define RSTR(f) OPT_STR, ROFF(f), sizeof(((ReconConfig *)0)->f)
static const OptSpec recon_options[] = {
    {"ckpt", RSTR(ckpt), "runs/default", 0, 0, "PATH",
     "checkpoint file, run directory (its latest checkpoint), or RUN/best"},
    {"data", RSTR(data), "", 0, 0, "FILE", "HDF5 data file (default: the one the run trained on)"},
    {"dataset", RSTR(dataset), "", 0, 0, "PATH", "samples to reconstruct (default: the run's test set)"},
    {"first", OPT_I64, ROFF(first), 0, "0", 0, 1e15, "I", "first row"},
    {"n", OPT_INT, ROFF(n), 0, "32", 1, 4096, "N", "rows to reconstruct"},
    {"cols", OPT_INT, ROFF(cols), 0, "8", 1, 1024, "N", "images per row of the grid"},
    {"sample", OPT_BOOL, ROFF(sample), 0, "0", 0, 0, NULL,
     "decode a draw z ~ q(z|x) instead of its mean"},
    {"binarize", OPT_BOOL, ROFF(binarize), 0, "0", 0, 0, NULL,
     "binarize the inputs first (as eval --binarize does)"},
    {"seed", OPT_U64, ROFF(seed), 0, "1", 0, 0, "N", "seed of --sample and --binarize draws"},
    {"out", RSTR(out), "reconstructions", 0, 0, "NAME",
     "writes NAME.h5 (/x, the rows as the model read them, /reconstruction, /rows) and, for "
     "images, NAME.png"},
    {"threads", OPT_INT, ROFF(threads), 0, "0", 0, 1024, "N", trained_threads_help},
    {"figure-scale", OPT_INT, ROFF(figure_scale), 0, "0", 0, 64, "S", trained_figure_scale_help},
    OPT_END};

const OptCommand reconstruct_command = {
    "reconstruct", "vae-dist reconstruct [options]",
    "Data rows and their reconstructions, the decoder's mean for z = mu (or a draw, with "
    "--sample): an HDF5 file for any data, and for images a PNG grid of the rows (odd grid "
    "rows) above their reconstructions.",
    recon_options, sizeof(ReconConfig), NULL};

/* Rank 0: NAME.h5, /x and /reconstruction (n, ...) as the samples are
 * stored (float, as the model read them: uint8 / 255), from the grid pics
 * (rows of cols originals, then their reconstructions), and /rows (n), the
 * rows' indices in the dataset. */
static int write_recon_h5(const ReconConfig *cfg, const char *ckpt, const H5Rows *x,
                          const float *pics, int cols, VdError *err)
{
    int n = cfg->n, D = (int)x->row_len;
    float *orig = vd_calloc((size_t)n * D, sizeof(float)), *recon = vd_calloc((size_t)n * D, sizeof(float));
    float *stored = vd_calloc((size_t)n * D, sizeof(float));
    int64_t *rows = vd_calloc((size_t)n, sizeof(int64_t)), dims[VD_MAX_DIMS + 1] = {n};
    for (int i = 0; i < n; i++) {
        const float *o = pics + ((size_t)(i / cols) * 2 * cols + i % cols) * D;
        memcpy(orig + (size_t)i * D, o, sizeof(float) * (size_t)D);
        memcpy(recon + (size_t)i * D, o + (size_t)cols * D, sizeof(float) * (size_t)D);
        rows[i] = x->map ? x->map[cfg->first + i] : cfg->first + i;
    }
    for (int i = 1; i < x->n_dims; i++)
        dims[i] = x->dims[i];
    char path[VD_PATH_MAX];
    DurableFile out;
    trained_out_path(path, cfg->out, ".h5");
    int bad = durable_begin(&out, path, err) != VD_OK;
    hid_t f = bad ? H5I_INVALID_HID : H5Fcreate(out.tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    bad = bad || f < 0;
    to_stored_layout(stored, orig, n, &x->img, D);
    bad = bad || h5_write_f32_nd(f, "x", stored, dims, x->n_dims);
    to_stored_layout(stored, recon, n, &x->img, D);
    bad = bad || h5_write_f32_nd(f, "reconstruction", stored, dims, x->n_dims);
    hid_t space = bad ? H5I_INVALID_HID : H5Screate_simple(1, (hsize_t[]){(hsize_t)n}, NULL);
    hid_t ds = space < 0 ? H5I_INVALID_HID
                         : H5Dcreate2(f, "rows", H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    bad = bad || ds < 0 || H5Dwrite(ds, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows) < 0;
    if (ds >= 0)
        H5Dclose(ds);
    if (space >= 0)
        H5Sclose(space);
    bad = bad || h5_attr_str(f, "checkpoint", ckpt) || h5_attr_str(f, "data", x->where) ||
          h5_attr_str(f, "z", cfg->sample ? "a draw from q(z|x)" : "the mean of q(z|x)") ||
          (cfg->sample && h5_attr_u64(f, "seed", cfg->seed));
    if (f >= 0 && H5Fclose(f) < 0)
        bad = 1;
    vd_free(orig);
    vd_free(recon);
    vd_free(stored);
    vd_free(rows);
    if (bad && err->code == VD_OK) {
        durable_discard(&out);
        return vd_fail(err, VD_EX_CANTCREAT, "cannot write %s", path);
    }
    if (err->code != VD_OK || durable_commit(&out, err) != VD_OK)
        return err->code;
    char shape[96] = "";
    for (int i = 0; i < x->n_dims; i++)
        snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%s%lld", i ? " x " : "",
                 (long long)dims[i]);
    printf("wrote %s (/x, /reconstruction %s; /rows %d)\n", path, shape, n);
    return VD_OK;
}

/* Rank 0: rows [first, first + n) of x and their reconstructions: NAME.h5,
 * and for images NAME.png, the rows above their reconstructions. */
static void reconstruct_rows(const ReconConfig *cfg, const char *ckpt, const Vae *m, H5Rows *x,
                             VdError *err)
{
    int D = m->shape.n_input, d = m->d_total, n = cfg->n, cols = cfg->cols < n ? cfg->cols : n;
    Objective elbo = vae_elbo(1.0f);
    VaeWork *w = vae_work_create_forward(m, n);
    int64_t *list = vd_calloc((size_t)n, sizeof(int64_t));
    for (int i = 0; i < n; i++)
        list[i] = cfg->first + i;
    Shard sh;
    shard_init(&sh, x, NULL, n, vae_unit_data(&m->shape));
    if (shard_load(&sh, list, n, err) == VD_OK) {
        shard_batch(&sh, 0, n, w->x, NULL);
        if (cfg->binarize) {
            Rng bin = rng_for(cfg->seed, VD_RNG_BINARIZE, 0);
            rng_binarize(&bin, 0, cfg->first, n, D, w->x);
        }
        if (cfg->sample) {
            Rng r = rng_for(cfg->seed, VD_RNG_IWAE, 0);
            rng_normal_fill(&r, 0, (uint64_t)cfg->first * d, (size_t)n * d, w->eps);
        } else {
            memset(w->eps, 0, sizeof(float) * (size_t)n * d);
        }
        vae_forward(m, w, n, &elbo, 0); /* z from q (its means, or a draw), decoded */
        /* grid rows alternate: cols originals, then their reconstructions */
        int groups = (n + cols - 1) / cols;
        float *pics = vd_calloc((size_t)groups * 2 * cols * D, sizeof(float));
        for (int i = 0; i < n; i++) {
            float *orig = pics + ((size_t)(i / cols) * 2 * cols + i % cols) * D;
            memcpy(orig, w->x + (size_t)i * D, sizeof(float) * (size_t)D);
            vae_output_mean(m, vae_outputs(m, w) + (size_t)i * D, 1, orig + (size_t)cols * D);
        }
        if (x->img.c)
            write_grid(cfg->out, pics, groups * 2 * cols, &x->img, cols, cfg->figure_scale, err);
        else
            printf("no PNG: the samples are not images\n");
        if (err->code == VD_OK)
            write_recon_h5(cfg, ckpt, x, pics, cols, err);
        vd_free(pics);
    }
    shard_free(&sh);
    vd_free(list);
    vae_work_free(w);
}

int reconstruct_main(int argc, char **argv, MPI_Comm comm)
{
    int rank;
    MPI_Comm_rank(comm, &rank);
    ReconConfig cfg;
    VdError err = {0};
    if (opts_command(&reconstruct_command, &cfg, argc, argv, rank, &err))
        return VD_OK;
    if (err.code == VD_OK)
        runtime_set_threads(cfg.threads, comm);
    char ckpt[VD_PATH_MAX];
    Vae *m = NULL;
    H5Rows x = {.file = -1, .dset = -1};
    if (rank == 0 && err.code == VD_OK && (m = trained_load(cfg.ckpt, ckpt, &err)) &&
        cfg.binarize && m->shape.likelihood != VD_LIK_BERNOULLI)
        vd_fail(&err, VD_EX_USAGE, "--binarize: the model in %s is not Bernoulli", ckpt);
    int held = 0;
    if (rank == 0 && err.code == VD_OK)
        held = trained_defaults(ckpt, rank, cfg.data, cfg.dataset, sizeof cfg.dataset, NULL, 0);
    if (rank == 0 && err.code == VD_OK &&
        trained_open_data(cfg.data, cfg.dataset, held, ckpt, m, &x, &err) == VD_OK) {
        if (cfg.first + cfg.n > x.n_rows)
            vd_fail(&err, VD_EX_USAGE, "--first %lld --n %d: %s has %lld rows",
                    (long long)cfg.first, cfg.n, x.where, (long long)x.n_rows);
    }
    if (rank == 0 && err.code == VD_OK)
        trained_check_outputs(cfg.out, ckpt, &err);
    if (rank == 0 && err.code == VD_OK)
        reconstruct_rows(&cfg, ckpt, m, &x, &err);
    h5rows_close(&x);
    vae_free(m);
    return vd_error_agree(&err, comm);
}
