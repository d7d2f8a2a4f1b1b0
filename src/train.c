/* train.c — the training driver. See train.h. */
#include "config.h"
#include "train.h"

#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ckpt.h"
#include "data.h"
#include "h5util.h"
#include "image.h"
#include "import.h"
#include "metrics.h"
#include "model.h"
#include "optim.h"
#include "rng.h"
#include "util.h"

#define OFF(f) offsetof(TrainConfig, f)
#define STR(f) OPT_STR, OFF(f), sizeof(((TrainConfig *)0)->f)
#define NUM(t, f) t, OFF(f), 0

const OptSpec train_options[] = {
    {"data", STR(data), "", 0, 0, "FILE", "HDF5 data file ($VAE_DIST_DATA or imported Fashion-MNIST)"},
    {"dataset", STR(dataset), "/train/images", 0, 0, "PATH", "training samples, shaped (N, ...)"},
    {"labels", STR(labels), "/train/labels", 0, 0, "PATH",
     "training labels (N); 'none' to skip; the default is used only if present"},
    {"test-dataset", STR(test_dataset), "/test/images", 0, 0, "PATH",
     "test samples for the per-epoch test ELBO; 'none' to skip; default used if present"},
    {"test-labels", STR(test_labels), "/test/labels", 0, 0, "PATH",
     "test labels; 'none' to skip; default used if present"},
    {"out", STR(out), "runs/%Y%m%d-%H%M%S", 0, 0, "DIR", "run directory (strftime % patterns expand)"},
    {"epochs", NUM(OPT_INT, epochs), "10", 1, 1e6, "N", "passes over the training data"},
    {"batch", NUM(OPT_I64, batch), "128", 1, 1e9, "G", "GLOBAL batch: samples per step, all ranks"},
    {"lr", NUM(OPT_F64, lr), "1e-3", 1e-12, 10, "X", "Adam learning rate"},
    {"beta1", NUM(OPT_F64, beta1), "0.9", 0, 0.999999, "X", "Adam first-moment decay"},
    {"beta2", NUM(OPT_F64, beta2), "0.999", 0, 0.99999999, "X", "Adam second-moment decay"},
    {"adam-eps", NUM(OPT_F64, adam_eps), "1e-8", 1e-30, 1, "X", "Adam epsilon"},
    {"hidden", NUM(OPT_LIST, hidden), "400", 1, 1 << 20, "N[,N...]",
     "encoder hidden widths; the decoder mirrors them"},
    {"latent", NUM(OPT_INT, latent), "20", 1, 256, "N", "latent dimensions"},
    {"seed", NUM(OPT_U64, seed), "1", 0, 0, "N", "seed of every random stream"},
    {"log-every", NUM(OPT_INT, log_every), "100", 1, 1e9, "N", "steps per progress line"},
    {"threads", NUM(OPT_INT, threads), "0", 0, 1024, "N",
     "OpenBLAS threads per rank (0: cores / ranks per node)"},
    {"ckpt-every", NUM(OPT_INT, ckpt_every), "1", 0, 1e6, "N",
     "checkpoint every N epochs (0: only at the end)"},
    {"max-steps", NUM(OPT_I64, max_steps), "0", 0, 1e15, "N", "stop after N steps (0: no limit)"},
    {"profile", NUM(OPT_BOOL, profile), "0", 0, 0, NULL,
     "print a per-step time split at the end"},
    OPT_END};

void vd_default_data_path(char *buf, size_t n)
{
    const char *env = getenv("VAE_DIST_DATA"), *xdg = getenv("XDG_DATA_HOME");
    const char *home = getenv("HOME");
    if (env && *env)
        snprintf(buf, n, "%s", env);
    else if (xdg && *xdg)
        snprintf(buf, n, "%s/vae-dist/fashion-mnist.h5", xdg);
    else
        snprintf(buf, n, "%s/.local/share/vae-dist/fashion-mnist.h5", home ? home : ".");
}

#ifdef HAVE_OPENBLAS_SET_NUM_THREADS
void openblas_set_num_threads(int);
#endif

int vd_set_threads(int threads, MPI_Comm comm)
{
    MPI_Comm node;
    int local = 1;
    MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
    MPI_Comm_size(node, &local);
    MPI_Comm_free(&node);
    if (threads <= 0) {
        const char *env = getenv("OPENBLAS_NUM_THREADS");
        if (env && atoi(env) > 0) {
            threads = atoi(env);
        } else {
            cpu_set_t set;
            long online = sysconf(_SC_NPROCESSORS_ONLN);
            int mine = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : (int)online;
            int share = (int)(online / local);
            threads = mine < share ? mine : share;
            if (threads < 1)
                threads = 1;
        }
    }
#ifdef HAVE_OPENBLAS_SET_NUM_THREADS
    openblas_set_num_threads(threads);
#endif
    return threads;
}

/* ---- helpers ---------------------------------------------------------- */

typedef struct {
    double data, forward, backward, allreduce, optimizer, eval, io;
} Profile;

static void fmt_duration(char *buf, size_t n, double s)
{
    long t = s > 0 && s < 1e9 ? (long)(s + 0.5) : 0;
    if (t >= 3600)
        snprintf(buf, n, "%ldh%02ldm", t / 3600, t / 60 % 60);
    else
        snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
}

/* Image height and width of one sample, or 0 if it is not a picture. */
static void image_dims(const H5Rows *r, int *ih, int *iw)
{
    *ih = *iw = 0;
    if (r->n_dims == 3) {
        *ih = (int)r->dims[1];
        *iw = (int)r->dims[2];
    } else if (r->n_dims == 2) {
        int side = (int)lround(sqrt((double)r->row_len));
        if ((int64_t)side * side == r->row_len)
            *ih = *iw = side;
    }
}

/* Sums of (recon, KL, count) over this rank's test rows, with eps from the
 * eval stream indexed by global row, so the figure does not depend on size. */
static void evaluate(const Vae *m, VaeWork *w, Shard *test, int64_t first_row, uint64_t seed,
                     int64_t epoch, double sums[3])
{
    Rng eval = rng_stream(seed, VD_STREAM_EVAL, 0);
    int d = m->shape.n_latent;
    sums[0] = sums[1] = 0.0;
    sums[2] = (double)test->n;
    for (int64_t i = 0; i < test->n; i += w->max_batch) {
        int n = (int)(test->n - i < w->max_batch ? test->n - i : w->max_batch);
        shard_batch(test, i, n, w->x, NULL);
        rng_normal_fill(&eval, (uint32_t)epoch, (uint64_t)(first_row + i) * (uint64_t)d,
                        (size_t)n * (size_t)d, w->eps);
        vae_forward(m, w, n, 1.0f, 0);
        for (int k = 0; k < n; k++) {
            sums[0] += w->recon[k];
            sums[1] += w->kl[k];
        }
    }
}

/* Rank 0 only: reconstructions of the first test rows and prior samples. */
static int write_figures(const char *dir, const Vae *m, VaeWork *w, const Shard *test,
                         uint64_t seed, int ih, int iw, VdError *err)
{
    enum { COLS = 8, NSAMPLES = 64 };
    int D = m->shape.n_input, d = m->shape.n_latent;
    float *pics = vd_calloc((size_t)NSAMPLES * D, sizeof(float));
    uint8_t *grid = vd_calloc((size_t)(COLS * (iw + 1) + 1) * (8 * (ih + 1) + 1), 1);
    char path[4200];
    int gw, gh, rc = VD_OK;
    if (test && test->n >= 2 * COLS) {
        /* two rows of originals above their reconstructions (z = mu) */
        int n = 2 * COLS;
        shard_batch(test, 0, n, w->x, NULL);
        memset(w->eps, 0, sizeof(float) * (size_t)n * d);
        vae_forward(m, w, n, 1.0f, 0);
        for (int r = 0; r < 2; r++) {
            memcpy(pics + (size_t)(2 * r) * COLS * D, w->x + (size_t)r * COLS * D,
                   sizeof(float) * COLS * D);
            for (int k = 0; k < COLS * D; k++)
                pics[(size_t)(2 * r + 1) * COLS * D + k] =
                    1.0f / (1.0f + expf(-w->logits[(size_t)r * COLS * D + k]));
        }
        image_grid(grid, &gw, &gh, pics, 4 * COLS, ih, iw, COLS);
        snprintf(path, sizeof path, "%s/reconstructions.png", dir);
        rc = png_write_gray(path, grid, gw, gh, err);
    }
    if (rc == VD_OK) {
        Rng prior = rng_stream(seed, VD_STREAM_EVAL, 0);
        for (int k = 0; k < NSAMPLES; k += w->max_batch) {
            int n = NSAMPLES - k < w->max_batch ? NSAMPLES - k : w->max_batch;
            rng_normal_fill(&prior, UINT32_MAX, (uint64_t)k * d, (size_t)n * d, w->z);
            vae_decode(m, w, w->z, n, pics + (size_t)k * D);
        }
        image_grid(grid, &gw, &gh, pics, NSAMPLES, ih, iw, COLS);
        snprintf(path, sizeof path, "%s/samples.png", dir);
        rc = png_write_gray(path, grid, gw, gh, err);
    }
    vd_free(pics);
    vd_free(grid);
    return rc;
}

/* Writes "latest" (the newest checkpoint's file name) atomically. */
static int write_latest(const char *dir, const char *name, VdError *err)
{
    char path[4200], tmp[4300];
    snprintf(path, sizeof path, "%s/latest", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f || fprintf(f, "%s\n", name) < 0 || fflush(f) != 0 || fsync(fileno(f)) != 0 ||
        fclose(f) != 0 || rename(tmp, path) != 0) {
        int saved = errno;
        unlink(tmp);
        return vd_fail(err, VD_EX_IOERR, "writing %s failed: %s", path, strerror(saved));
    }
    return VD_OK;
}

/* Collective. Do all replicas hold bitwise the same parameters? */
static int replicas_agree(const Vae *m, MPI_Comm comm)
{
    uint64_t h = vd_checksum_f32(m->params, m->n_params), pair[2] = {h, ~h}, out[2];
    MPI_Allreduce(pair, out, 2, MPI_UINT64_T, MPI_MAX, comm);
    return out[0] == h && ~out[1] == h;
}

/* Opens an optional dataset: "none" skips it; the default path is skipped
 * when absent; a path the user named must exist. Returns 1 if opened. */
static int open_optional(H5Rows *r, const char *file, const char *path, const char *def,
                         int is_label, VdError *err)
{
    if (strcmp(path, "none") == 0 || (strcmp(path, def) == 0 && !h5_has_path(file, path)))
        return 0;
    return h5rows_open(r, file, path, is_label, err) == VD_OK;
}

int train_step(Vae *m, VaeWork *w, int n, const AdamConfig *adam, long t, MPI_Comm comm,
               StepTimes *tm)
{
    size_t n_red = m->n_params + VD_GRAD_EXTRA;
    double t0 = vd_now();
    memset(m->grads, 0, sizeof(float) * n_red);
    vae_forward(m, w, n, 1.0f, 1);
    double t1 = vd_now();
    vae_backward(m, w, n, 1.0f);
    double rsum = 0, ksum = 0;
    for (int i = 0; i < n; i++) {
        rsum += w->recon[i];
        ksum += w->kl[i];
    }
    float *extra = m->grads + m->n_params;
    extra[VD_EXTRA_RECON] = (float)rsum;
    extra[VD_EXTRA_KL] = (float)ksum;
    extra[VD_EXTRA_COUNT] = (float)n;
    double t2 = vd_now();
    MPI_Allreduce(MPI_IN_PLACE, m->grads, (int)n_red, MPI_FLOAT, MPI_SUM, comm);
    double t3 = vd_now();
    /* NaN and Inf are the floats whose exponent bits are all ones: an
     * integer OR over the reduced buffer finds any, and vectorizes. */
    const uint32_t *bits = (const uint32_t *)m->grads;
    uint32_t nonfinite = 0;
    for (size_t i = 0; i < n_red; i++)
        nonfinite |= (uint32_t)((bits[i] & 0x7f800000u) == 0x7f800000u);
    int finite = !nonfinite;
    if (finite)
        adam_step(adam, t, m->n_params, m->params, m->grads, m->adam_m, m->adam_v,
                  1.0f / extra[VD_EXTRA_COUNT]);
    double t4 = vd_now();
    if (tm)
        *tm = (StepTimes){t1 - t0, t2 - t1, t3 - t2, t4 - t3};
    return finite;
}

/* ---- the driver ------------------------------------------------------- */

int train_main(int argc, char **argv, MPI_Comm comm)
{
    int rank, size;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    TrainConfig cfg;
    memset(&cfg, 0, sizeof cfg);
    VdError err = {0};
    int help = 0;

    opts_defaults(train_options, &cfg);
    vd_default_data_path(cfg.data, sizeof cfg.data);
    opts_parse(train_options, &cfg, argc, argv, &help, &err);
    if (help) {
        if (rank == 0) {
            printf("usage: mpirun -np N vae-dist [train] [options]\n\nTrains a VAE, "
                   "data-parallel over the MPI ranks. Other commands: import, help.\n\n"
                   "options [defaults]:\n");
            opts_help(stdout, train_options, &cfg);
        }
        return VD_OK;
    }
    if (err.code == VD_OK && cfg.hidden.n > VD_MAX_HIDDEN)
        vd_fail(&err, VD_EX_USAGE, "--hidden: at most %d layers", VD_MAX_HIDDEN);
    if (err.code == VD_OK && cfg.batch < size)
        vd_fail(&err, VD_EX_USAGE,
                "--batch %lld is smaller than the %d ranks: every rank needs a sample per step",
                (long long)cfg.batch, size);
    if (vd_error_agree(&err, comm))
        return err.code;

    /* The default data file is imported from Debian's package on first use. */
    char def_data[4096];
    vd_default_data_path(def_data, sizeof def_data);
    if (rank == 0 && strcmp(cfg.data, def_data) == 0 && access(cfg.data, F_OK) != 0) {
        ImportConfig ic = {.force = 0};
        snprintf(ic.train_images, sizeof ic.train_images, "%s/train-images-idx3-ubyte.gz", VD_FASHION_MNIST_DIR);
        snprintf(ic.train_labels, sizeof ic.train_labels, "%s/train-labels-idx1-ubyte.gz", VD_FASHION_MNIST_DIR);
        snprintf(ic.test_images, sizeof ic.test_images, "%s/t10k-images-idx3-ubyte.gz", VD_FASHION_MNIST_DIR);
        snprintf(ic.test_labels, sizeof ic.test_labels, "%s/t10k-labels-idx1-ubyte.gz", VD_FASHION_MNIST_DIR);
        snprintf(ic.out, sizeof ic.out, "%s", cfg.data);
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", cfg.data);
        *strrchr(dir, '/') = '\0';
        if (access(ic.train_images, R_OK) != 0)
            vd_fail(&err, VD_EX_NOINPUT,
                    "no data: %s does not exist and Fashion-MNIST is not installed "
                    "(apt-get install dataset-fashion-mnist, or pass --data FILE)",
                    cfg.data);
        else if (vd_mkdirs(dir) != 0)
            vd_fail(&err, VD_EX_CANTCREAT, "cannot create %s: %s", dir, strerror(errno));
        else {
            printf("importing Fashion-MNIST from %s to %s\n", VD_FASHION_MNIST_DIR, cfg.data);
            vd_import(&ic, &err);
        }
    }
    if (vd_error_agree(&err, comm))
        return err.code;

    /* ---- data ---- */
    H5Rows train_x = {.file = -1, .dset = -1}, train_y = train_x, test_x = train_x, test_y = train_x;
    h5rows_open(&train_x, cfg.data, cfg.dataset, 0, &err);
    int has_train_y = 0, has_test = 0, has_test_y = 0;
    if (err.code == VD_OK)
        has_train_y = open_optional(&train_y, cfg.data, cfg.labels, "/train/labels", 1, &err);
    if (err.code == VD_OK)
        has_test = open_optional(&test_x, cfg.data, cfg.test_dataset, "/test/images", 0, &err);
    if (err.code == VD_OK && has_test)
        has_test_y = open_optional(&test_y, cfg.data, cfg.test_labels, "/test/labels", 1, &err);
    if (err.code == VD_OK && has_train_y && train_y.n_rows != train_x.n_rows)
        vd_fail(&err, VD_EX_DATAERR, "%s has %lld labels for %lld samples", train_y.where,
                (long long)train_y.n_rows, (long long)train_x.n_rows);
    if (err.code == VD_OK && has_test && test_x.row_len != train_x.row_len)
        vd_fail(&err, VD_EX_DATAERR, "%s samples have %lld values, training samples %lld",
                test_x.where, (long long)test_x.row_len, (long long)train_x.row_len);
    if (err.code == VD_OK && has_test_y && test_y.n_rows != test_x.n_rows)
        vd_fail(&err, VD_EX_DATAERR, "%s has %lld labels for %lld samples", test_y.where,
                (long long)test_y.n_rows, (long long)test_x.n_rows);
    if (err.code == VD_OK && train_x.n_rows < cfg.batch)
        vd_fail(&err, VD_EX_DATAERR, "%s has %lld samples, fewer than one global batch (%lld)",
                train_x.where, (long long)train_x.n_rows, (long long)cfg.batch);
    if (err.code == VD_OK && has_test && test_x.n_rows < size)
        vd_fail(&err, VD_EX_DATAERR, "%s has %lld samples, fewer than the %d ranks",
                test_x.where, (long long)test_x.n_rows, size);
    if (err.code == VD_OK && train_x.row_len > (1 << 24))
        vd_fail(&err, VD_EX_DATAERR, "%s: samples of %lld values are too large", train_x.where,
                (long long)train_x.row_len);
    if (vd_error_agree(&err, comm))
        goto close_data;

    /* ---- model ---- */
    VaeShape shape = {.n_input = (int)train_x.row_len, .n_latent = cfg.latent,
                      .n_hidden = cfg.hidden.n};
    memcpy(shape.hidden, cfg.hidden.v, sizeof(int) * (size_t)cfg.hidden.n);
    const char *why = NULL;
    Vae *m = vae_create(&shape, &why);
    if (!m) {
        vd_fail(&err, VD_EX_USAGE, "invalid model: %s", why);
        vd_error_agree(&err, comm);
        goto close_data;
    }
    vae_init_params(m, cfg.seed);
    if (!replicas_agree(m, comm))
        vd_fail(&err, VD_EX_SOFTWARE, "initial parameters differ across ranks");

    /* ---- run directory (rank 0) ---- */
    if (strchr(cfg.out, '%') && rank == 0) { /* rank 0's clock names the run for all */
        char pattern[sizeof cfg.out];
        memcpy(pattern, cfg.out, sizeof pattern);
        time_t now = time(NULL);
        struct tm tm;
        localtime_r(&now, &tm);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral" /* the pattern is the user's, by design */
        size_t len = strftime(cfg.out, sizeof cfg.out, pattern, &tm);
#pragma GCC diagnostic pop
        if (len == 0)
            vd_fail(&err, VD_EX_USAGE, "--out: pattern '%s' expands to nothing", pattern);
    }
    MPI_Bcast(cfg.out, sizeof cfg.out, MPI_CHAR, 0, comm);
    int threads = vd_set_threads(cfg.threads, comm);
    if (rank == 0 && err.code == VD_OK) {
        char latest[4200];
        snprintf(latest, sizeof latest, "%s/latest", cfg.out);
        if (vd_mkdirs(cfg.out) != 0)
            vd_fail(&err, VD_EX_CANTCREAT, "cannot create run directory %s: %s", cfg.out,
                    strerror(errno));
        else if (access(latest, F_OK) == 0)
            vd_fail(&err, VD_EX_CANTCREAT,
                    "run directory %s already holds a run's checkpoints; choose another --out",
                    cfg.out);
        else if (metrics_open(cfg.out, &err) == VD_OK) {
            char path[4200];
            snprintf(path, sizeof path, "%s/config.txt", cfg.out);
            FILE *f = fopen(path, "w");
            if (!f)
                vd_fail(&err, VD_EX_CANTCREAT, "cannot write %s: %s", path, strerror(errno));
            else {
                fprintf(f, "# %s, %d ranks x %d threads\n", PACKAGE_STRING, size, threads);
                opts_print(f, train_options, &cfg);
                fclose(f);
            }
        }
    }
    if (vd_error_agree(&err, comm))
        goto free_model;

    int64_t N = train_x.n_rows, G = cfg.batch;
    int64_t steps_per_epoch = shard_steps_per_epoch(N, G);
    int B = shard_local_batch(G, rank, size);
    int64_t test_begin = 0, test_end = 0;
    if (has_test)
        shard_range(test_x.n_rows, rank, size, &test_begin, &test_end);
    int64_t total_steps = steps_per_epoch * cfg.epochs;
    if (cfg.max_steps > 0 && cfg.max_steps < total_steps)
        total_steps = cfg.max_steps;
    int ih, iw;
    image_dims(&train_x, &ih, &iw);

    if (rank == 0) {
        printf("vae-dist %s: %d ranks x %d threads; model %d", PACKAGE_VERSION, size, threads,
               shape.n_input);
        for (int l = 0; l < shape.n_hidden; l++)
            printf("-%d", shape.hidden[l]);
        printf("-%d (%zu parameters)\n", shape.n_latent, m->n_params);
        printf("data %s: %lld training samples of %lld values%s; %lld test samples\n",
               train_x.where, (long long)N, (long long)train_x.row_len,
               train_x.is_u8 ? " (uint8 / 255)" : "", has_test ? (long long)test_x.n_rows : 0LL);
        printf("%lld steps/epoch of %lld samples (%lld unused per epoch); run directory %s\n",
               (long long)steps_per_epoch, (long long)G, (long long)(N - steps_per_epoch * G),
               cfg.out);
        printf("configuration:\n");
        opts_print(stdout, train_options, &cfg);
        fflush(stdout);
    }

    /* ---- buffers: everything the loop needs, allocated once ---- */
    int work_rows = B > 256 ? B : 256;
    VaeWork *w = vae_work_create(&shape, work_rows);
    int64_t *perm = vd_calloc((size_t)N, sizeof(int64_t));
    int64_t *rows = vd_calloc((size_t)(steps_per_epoch * B), sizeof(int64_t));
    Shard train, test;
    memset(&test, 0, sizeof test);
    shard_init(&train, &train_x, has_train_y ? &train_y : NULL, steps_per_epoch * B, 1);
    if (has_test) {
        int64_t n_test = test_end - test_begin;
        int64_t *test_rows = vd_calloc((size_t)n_test, sizeof(int64_t));
        for (int64_t i = 0; i < n_test; i++)
            test_rows[i] = test_begin + i;
        shard_init(&test, &test_x, has_test_y ? &test_y : NULL, n_test, 1);
        shard_load(&test, test_rows, n_test, &err);
        vd_free(test_rows);
    }
    if (vd_error_agree(&err, comm))
        goto free_all;

    Rng order = rng_stream(cfg.seed, VD_STREAM_ORDER, 0);
    Rng noise = rng_stream(cfg.seed, VD_STREAM_NOISE, (uint32_t)rank);
    AdamConfig adam = {(float)cfg.lr, (float)cfg.beta1, (float)cfg.beta2, (float)cfg.adam_eps};
    TrainState st = {0, 0};
    Profile prof = {0};
    double run_start = vd_now(), ivl_start = run_start;
    double ivl_recon = 0, ivl_kl = 0, ivl_n = 0, ep_loss = 0, ep_n = 0;
    int done = 0;

    for (int64_t epoch = 0; epoch < cfg.epochs && !done; epoch++) {
        double t0 = vd_now(), ep_start = t0;
        rng_permutation(&order, (uint32_t)epoch, perm, N);
        shard_epoch_rows(perm, steps_per_epoch, G, rank, size, rows);
        shard_load(&train, rows, steps_per_epoch * B, &err);
        if (vd_error_agree(&err, comm))
            break;
        prof.data += vd_now() - t0;
        ep_loss = ep_n = 0;
        for (int64_t s = 0; s < steps_per_epoch; s++) {
            double t1 = vd_now();
            shard_batch(&train, s * B, B, w->x, NULL);
            rng_normal_fill(&noise, (uint32_t)st.step, 0, (size_t)B * shape.n_latent, w->eps);
            double t2 = vd_now();
            StepTimes tm;
            int finite = train_step(m, w, B, &adam, st.step + 1, comm, &tm);
            const float *extra = m->grads + m->n_params;
            if (!finite) { /* the reduced sums are the same on every rank: all stop together */
                err.code = VD_EX_SOFTWARE;
                if (rank == 0)
                    fprintf(stderr,
                            "vae-dist: non-finite loss or gradient at step %lld; the step was not "
                            "applied and training stopped (lower --lr?)\n",
                            (long long)st.step + 1);
                done = 1;
                break;
            }
            st.step++;
            prof.data += t2 - t1;
            prof.forward += tm.forward;
            prof.backward += tm.backward;
            prof.allreduce += tm.allreduce;
            prof.optimizer += tm.optimizer;

            ivl_recon += extra[VD_EXTRA_RECON];
            ivl_kl += extra[VD_EXTRA_KL];
            ivl_n += extra[VD_EXTRA_COUNT];
            ep_loss += extra[VD_EXTRA_RECON] + extra[VD_EXTRA_KL];
            ep_n += extra[VD_EXTRA_COUNT];
            int last = st.step == total_steps || s + 1 == steps_per_epoch;
            if (st.step % cfg.log_every == 0 || last) {
                double now = vd_now(), rate = ivl_n / (now - ivl_start);
                double eta = (now - run_start) / (double)st.step * (double)(total_steps - st.step);
                TrainRow row = {(double)st.step, (double)epoch + 1, (ivl_recon + ivl_kl) / ivl_n,
                                ivl_recon / ivl_n, ivl_kl / ivl_n, cfg.lr, rate};
                if (rank == 0) {
                    char etab[32];
                    fmt_duration(etab, sizeof etab, eta);
                    printf("epoch %lld/%d  step %lld/%lld  loss %.2f = %.2f + %.2f  "
                           "%.0f samples/s  ETA %s\n",
                           (long long)epoch + 1, cfg.epochs, (long long)(s + 1),
                           (long long)steps_per_epoch, row.loss, row.recon, row.kl, rate, etab);
                    fflush(stdout);
                    metrics_train(cfg.out, &row, &err);
                }
                ivl_recon = ivl_kl = ivl_n = 0;
                ivl_start = vd_now();
                prof.io += ivl_start - now;
            }
            if (st.step == total_steps) {
                done = cfg.max_steps > 0;
                if (s + 1 < steps_per_epoch)
                    break;
            }
        }
        if (err.code != VD_OK)
            break;
        int epoch_complete = st.step == (epoch + 1) * steps_per_epoch;
        if (epoch_complete)
            st.epoch = epoch + 1;

        /* ---- test ELBO ---- */
        double t7 = vd_now(), sums[3] = {0, 0, 0}, tot[3] = {0, 0, 0};
        if (has_test)
            evaluate(m, w, &test, test_begin, cfg.seed, epoch, sums);
        MPI_Allreduce(sums, tot, 3, MPI_DOUBLE, MPI_SUM, comm);
        double t8 = vd_now();
        prof.eval += t8 - t7;

        /* ---- checkpoint, metrics and figures (rank 0) ---- */
        int last_epoch = epoch + 1 == cfg.epochs || done;
        int want_ckpt = last_epoch || (cfg.ckpt_every > 0 && (epoch + 1) % cfg.ckpt_every == 0);
        if (want_ckpt && !replicas_agree(m, comm))
            vd_fail(&err, VD_EX_SOFTWARE, "replicas diverged: parameter checksums differ at step %lld",
                    (long long)st.step);
        if (rank == 0 && err.code == VD_OK) {
            EpochRow row = {(double)epoch + 1, (double)st.step, ep_n ? ep_loss / ep_n : NAN,
                            has_test ? (tot[0] + tot[1]) / tot[2] : NAN,
                            has_test ? tot[0] / tot[2] : NAN, has_test ? tot[1] / tot[2] : NAN,
                            vd_now() - ep_start};
            if (has_test)
                printf("epoch %lld done: test loss %.2f = %.2f + %.2f nats (%lld samples), "
                       "train loss %.2f, %.1f s\n",
                       (long long)epoch + 1, row.test_loss, row.test_recon, row.test_kl,
                       (long long)tot[2], row.train_loss, row.seconds);
            else
                printf("epoch %lld done: train loss %.2f, %.1f s\n", (long long)epoch + 1,
                       row.train_loss, row.seconds);
            metrics_epoch(cfg.out, &row, &err);
            if (err.code == VD_OK && want_ckpt) {
                char name[64], path[4200];
                snprintf(name, sizeof name, "ckpt-%08lld.h5", (long long)st.step);
                snprintf(path, sizeof path, "%s/%s", cfg.out, name);
                int64_t in_shape[VD_MAX_DIMS];
                for (int i = 1; i < train_x.n_dims; i++)
                    in_shape[i - 1] = train_x.dims[i];
                if (ckpt_save(path, m, &st, in_shape, train_x.n_dims - 1, train_options, &cfg,
                              size, &err) == VD_OK &&
                    write_latest(cfg.out, name, &err) == VD_OK)
                    printf("checkpoint %s\n", path);
            }
            if (err.code == VD_OK && ih > 0)
                write_figures(cfg.out, m, w, has_test ? &test : NULL, cfg.seed, ih, iw, &err);
            fflush(stdout);
        }
        prof.io += vd_now() - t8;
        if (vd_error_agree(&err, comm))
            break;
    }

    if (cfg.profile && err.code == VD_OK) {
        double mine[7] = {prof.data, prof.forward, prof.backward, prof.allreduce,
                          prof.optimizer, prof.eval, prof.io}, mx[7];
        MPI_Reduce(mine, mx, 7, MPI_DOUBLE, MPI_MAX, 0, comm);
        if (rank == 0) {
            static const char *names[7] = {"data", "forward", "backward", "allreduce",
                                           "optimizer", "eval", "io"};
            double steps = st.step ? (double)st.step : 1, total = 0;
            for (int i = 0; i < 5; i++)
                total += mine[i];
            printf("profile (rank 0; max over ranks), per step over %lld steps:\n",
                   (long long)st.step);
            for (int i = 0; i < 7; i++)
                printf("  %-10s %8.3f ms  max %8.3f ms  %5.1f%%%s\n", names[i],
                       1e3 * mine[i] / steps, 1e3 * mx[i] / steps,
                       i < 5 ? 100.0 * mine[i] / total : 0.0, i < 5 ? "" : " (outside steps)");
            double macs = vae_forward_macs(&shape), flops = 2.0 * macs * 3.0 -
                          2.0 * (double)shape.n_input * shape.hidden[0];
            printf("  step %.3f ms, %.0f samples/s, %.2f GFLOP/s per rank\n",
                   1e3 * total / steps, (double)G * steps / total,
                   flops * B * steps / total * 1e-9);
        }
    }
    if (rank == 0 && err.code == VD_OK)
        printf("done: %lld steps in %.1f s; outputs in %s\n", (long long)st.step,
               vd_now() - run_start, cfg.out);

free_all:
    shard_free(&train);
    if (has_test)
        shard_free(&test);
    vd_free(perm);
    vd_free(rows);
    vae_work_free(w);
free_model:
    vae_free(m);
close_data:
    h5rows_close(&train_x);
    h5rows_close(&train_y);
    h5rows_close(&test_x);
    h5rows_close(&test_y);
    return err.code;
}
