/* train.c — the training driver. See train.h. */
#include "config.h"
#include "train.h"

#include <cblas.h>
#include <errno.h>
#include <malloc.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ckpt.h"
#include "data.h"
#include "eval.h"
#include "feed.h"
#include "h5util.h"
#include "image.h"
#include "import.h"
#include "metrics.h"
#include "model.h"
#include "optim.h"
#include "plot.h"
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
    {"out", STR(out), "runs/default", 0, 0, "DIR",
     "run directory; an existing run there resumes (strftime % patterns expand)"},
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
    {"keep", NUM(OPT_INT, keep), "3", 0, 1e6, "N", "checkpoints kept in the run directory (0: all)"},
    {"fresh", NUM(OPT_BOOL, fresh), "0", 0, 0, NULL,
     "start over: move a previous run's files aside instead of resuming"},
    {"max-skips", NUM(OPT_INT, max_skips), "0", 0, 1e9, "N",
     "non-finite steps to skip before stopping (0: stop at the first)"},
    {"max-steps", NUM(OPT_I64, max_steps), "0", 0, 1e15, "N", "stop after N steps (0: no limit)"},
    {"profile", NUM(OPT_BOOL, profile), "0", 0, 0, NULL,
     "print a per-step time split at the end"},
    {"binarize", NUM(OPT_BOOL, binarize), "0", 0, 0, NULL,
     "dynamic binarization: each value becomes 1 with its probability, redrawn every epoch"},
    {"beta", NUM(OPT_F64, beta), "1", 0, 1e6, "X",
     "weight of the KL term in the training loss (the reported ELBO is unweighted)"},
    {"warmup", NUM(OPT_I64, warmup), "0", 0, 1e15, "N",
     "KL warm-up: the weight rises linearly from 0 to --beta over N steps"},
    {"activation", NUM(OPT_CHOICE, activation), "relu", 0, 0, "relu|tanh",
     "activation of the hidden layers"},
    {"likelihood", NUM(OPT_CHOICE, likelihood), "bernoulli", 0, 0, "bernoulli|gaussian",
     "p(x|z): Bernoulli (data in [0, 1]) or Gaussian (continuous data)"},
    {"variance", STR(variance), "learned", 0, 0, "S2|learned",
     "the Gaussian's variance s^2: fixed at S2, or learned (one scalar)"},
    {"classes", NUM(OPT_INT, classes), "0", 0, 1 << 20, "C",
     "conditional VAE: a learned prior mean per class 0..C-1, from the labels (0: off)"},
    {"data-mode", NUM(OPT_CHOICE, data_mode), "auto", 0, 0, "auto|resident|stream",
     "resident: each rank holds its block of rows; stream: reads them in a window "
     "(see README); auto: resident if it fits --data-budget"},
    {"data-budget", NUM(OPT_F64, data_budget), "0", 0, 1e9, "MIB",
     "MiB of training rows each rank may hold (0: a quarter of the node's memory over its ranks)"},
    {"parallel-io", NUM(OPT_BOOL, parallel_io), "0", 0, 0, NULL,
     "read the resident blocks with MPI-IO collective reads (parallel HDF5)"},
    {"reduce", NUM(OPT_CHOICE, reduce), "shm", 0, 0, "shm|mpi",
     "sum gradients in node shared memory, each rank updating a slice of the parameters "
     "(shm), or allreduce them and update on every rank (mpi)"},
    {"bucket", NUM(OPT_F64, bucket_mib), "1", 0, 1024, "MIB",
     "--reduce mpi: allreduce buckets of MIB, overlapped with backward (0: one allreduce after it)"},
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

/* Collective: how many ranks of comm share this rank's node. */
static int node_ranks(MPI_Comm comm)
{
    MPI_Comm node;
    int local = 1;
    MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
    MPI_Comm_size(node, &local);
    MPI_Comm_free(&node);
    return local;
}

int vd_set_threads(int threads, MPI_Comm comm)
{
    int local = node_ranks(comm);
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
    double data, forward, backward, allreduce, optimizer, eval, io; /* seconds */
    int64_t steps;
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
 * eval stream indexed by global row, so the figure does not depend on size.
 * With mu not NULL, also each row's latent mean (test->n, d) and label. */
static void evaluate(const Vae *m, VaeWork *w, Shard *test, int64_t first_row, uint64_t seed,
                     int64_t epoch, int binarize, double sums[3], float *mu, int32_t *lab)
{
    Rng eval = rng_stream(seed, VD_STREAM_EVAL, 0), bin = rng_stream(seed, VD_STREAM_BINARIZE, 0);
    int d = m->shape.n_latent;
    sums[0] = sums[1] = 0.0;
    sums[2] = (double)test->n;
    for (int64_t i = 0; i < test->n; i += w->max_batch) {
        int n = (int)(test->n - i < w->max_batch ? test->n - i : w->max_batch);
        shard_batch(test, i, n, w->x, w->y);
        if (binarize) /* one fixed draw, as `vae-dist eval --binarize` makes */
            vd_binarize(w->x, n, m->shape.n_input, &bin, 0, first_row + i);
        rng_normal_fill(&eval, (uint32_t)epoch, (uint64_t)(first_row + i) * (uint64_t)d,
                        (size_t)n * (size_t)d, w->eps);
        vae_forward(m, w, n, 1.0f, 0);
        for (int k = 0; k < n; k++) {
            sums[0] += w->recon[k];
            sums[1] += w->kl[k];
            if (mu) {
                memcpy(mu + (size_t)(i + k) * d, w->head + (size_t)k * 2 * d, sizeof(float) * d);
                lab[i + k] = w->y[k];
            }
        }
    }
}

/* Rank 0: a figure that cannot be written is worth a warning, not the run. */
static void figure_warning(const VdError *e)
{
    if (e->code != VD_OK)
        fprintf(stderr, "vae-dist: warning: %s (training goes on)\n", e->msg);
}

/* Rank 0 only: reconstructions of the first test rows and prior samples
 * (for a conditional model, one grid row per class). */
static int write_figures(const char *dir, const Vae *m, VaeWork *w, const Shard *test,
                         uint64_t seed, int ih, int iw, VdError *err)
{
    enum { COLS = 8 };
    int D = m->shape.n_input, d = m->shape.n_latent, C = m->shape.n_classes;
    int nsamples = C > 0 ? (C < 32 ? C : 32) * COLS : 64;
    int nrows = (nsamples > 32 ? nsamples : 32) / COLS; /* 4 for the reconstructions */
    float *pics = vd_calloc((size_t)nsamples * D, sizeof(float));
    float *z = vd_calloc((size_t)nsamples * d, sizeof(float));
    int32_t *cls = vd_calloc((size_t)nsamples, sizeof(int32_t));
    uint8_t *grid = vd_calloc((size_t)(COLS * (iw + 1) + 1) * (nrows * (ih + 1) + 1), 1);
    char path[4200];
    int gw, gh, rc = VD_OK;
    if (test && test->n >= 2 * COLS) {
        /* two rows of originals above their reconstructions (z = mu) */
        int n = 2 * COLS;
        shard_batch(test, 0, n, w->x, w->y);
        memset(w->eps, 0, sizeof(float) * (size_t)n * d);
        vae_forward(m, w, n, 1.0f, 0);
        for (int r = 0; r < 2; r++) {
            memcpy(pics + (size_t)(2 * r) * COLS * D, w->x + (size_t)r * COLS * D,
                   sizeof(float) * COLS * D);
            vae_output_mean(m, w->logits + (size_t)r * COLS * D, COLS,
                            pics + (size_t)(2 * r + 1) * COLS * D);
        }
        image_grid(grid, &gw, &gh, pics, 4 * COLS, ih, iw, COLS);
        snprintf(path, sizeof path, "%s/reconstructions.png", dir);
        rc = png_write_gray(path, grid, gw, gh, err);
    }
    if (rc == VD_OK) {
        vd_prior_draws(m, seed, nsamples, COLS, -1, z, cls);
        for (int k = 0; k < nsamples; k += w->max_batch) {
            int n = nsamples - k < w->max_batch ? nsamples - k : w->max_batch;
            vae_decode(m, w, z + (size_t)k * d, n, pics + (size_t)k * D);
        }
        image_grid(grid, &gw, &gh, pics, nsamples, ih, iw, COLS);
        snprintf(path, sizeof path, "%s/samples.png", dir);
        rc = png_write_gray(path, grid, gw, gh, err);
    }
    vd_free(pics);
    vd_free(z);
    vd_free(cls);
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

/* --variance: 1 for "learned" (*s2 = 1, the initial value), 0 for a fixed
 * number (in *s2), -1 if neither. */
static int parse_variance(const char *text, double *s2)
{
    char *end = NULL;
    if (strcmp(text, "learned") == 0) {
        *s2 = 1.0;
        return 1;
    }
    *s2 = strtod(text, &end);
    return *text && !*end && *s2 >= 1e-12 && *s2 <= 1e12 ? 0 : -1;
}

double vd_kl_weight(double beta, int64_t warmup, int64_t t)
{
    return warmup > 0 && t < warmup ? beta * (double)t / (double)warmup : beta;
}

/* The gradient's allreduce in buckets, each posted as soon as backward has
 * finished its slice of the flat buffer, and moved on between layers. */
typedef struct {
    float *grads;
    size_t sent;   /* grads[sent ..) are posted */
    size_t bucket; /* floats per bucket; 0: one allreduce after backward */
    int n_req;
    MPI_Request req[VD_MAX_TENSORS + 1];
    MPI_Comm comm;
} Buckets;

static void bucket_post(Buckets *b, size_t from)
{
    if (b->n_req == VD_MAX_TENSORS + 1)
        VD_ABORT("more gradient buckets than tensors");
    MPI_Iallreduce(MPI_IN_PLACE, b->grads + from, (int)(b->sent - from), MPI_FLOAT, MPI_SUM, b->comm,
                   &b->req[b->n_req++]);
    b->sent = from;
}

static void bucket_ready(void *ctx, size_t offset)
{
    Buckets *b = ctx;
    if (b->bucket == 0)
        return;
    if (b->sent - offset >= b->bucket)
        bucket_post(b, offset);
    int done; /* Open MPI moves non-blocking collectives on inside MPI calls */
    MPI_Testall(b->n_req, b->req, &done, MPI_STATUSES_IGNORE);
}

int train_step(Vae *m, VaeWork *w, int n, float beta, const AdamConfig *adam, long t,
               MPI_Comm comm, StepIO *io)
{
    size_t n_red = m->n_params + VD_GRAD_EXTRA;
    double t0 = vd_now();
    vae_forward(m, w, n, beta, 1);
    double t1 = vd_now();
    double rsum = 0, ksum = 0;
    for (int i = 0; i < n; i++) {
        rsum += w->recon[i];
        ksum += w->kl[i];
    }
    float *extra = m->grads + m->n_params;
    extra[VD_EXTRA_RECON] = (float)rsum;
    extra[VD_EXTRA_KL] = (float)ksum;
    extra[VD_EXTRA_COUNT] = (float)n;
    extra[VD_EXTRA_STOP] = io && io->stop ? 1.0f : 0.0f;
    extra[VD_EXTRA_FAIL] = io && io->failed ? 1.0f : 0.0f;
    if (io && io->poison) /* the reduced buffer becomes non-finite, as a bad gradient would */
        extra[VD_EXTRA_RECON] = NAN;
    /* the extras, after the parameters, travel with the first bucket */
    NodeShare *share = io ? io->share : NULL;
    Buckets b = {m->grads, n_red, io && !share ? io->bucket : 0, 0, {0}, comm};
    vae_backward_hook(m, w, n, beta, bucket_ready, &b);
    double t2 = vd_now();
    int finite;
    if (share) {
        finite = share_reduce(share, m);
    } else {
        if (b.sent > 0)
            bucket_post(&b, 0);
        MPI_Waitall(b.n_req, b.req, MPI_STATUSES_IGNORE);
        finite = vd_all_finite(m->grads, n_red);
    }
    double t3 = vd_now();
    int failed = extra[VD_EXTRA_FAIL] > 0.0f;
    float scale = 1.0f / extra[VD_EXTRA_COUNT];
    if (share)
        share_adam(share, m, adam, t, scale, finite && !failed);
    else if (finite && !failed)
        adam_step(adam, t, m->n_params, m->params, m->grads, m->adam_m, m->adam_v, scale);
    double t4 = vd_now();
    if (io) {
        io->stop = extra[VD_EXTRA_STOP] > 0.0f;
        io->failed = failed;
        io->times = (StepTimes){t1 - t0, t2 - t1, t3 - t2, t4 - t3};
    }
    return finite;
}

/* ---- signals ---------------------------------------------------------- */

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig) { stop_signal = sig; }

/* SIGTERM, SIGUSR1 and SIGINT only set a flag; the ranks agree on stopping
 * through the next step's allreduce. A second SIGINT kills (SA_RESETHAND). */
static void install_signal_handlers(void)
{
    int sigs[3] = {SIGTERM, SIGUSR1, SIGINT};
    for (int i = 0; i < 3; i++) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = sigs[i] == SIGINT ? SA_RESETHAND : 0;
        sigaction(sigs[i], &sa, NULL);
    }
}

/* ---- the driver ------------------------------------------------------- */

#define VD_MAX_CKPTS 4096 /* checkpoint files considered in a run directory */

/* Everything one training run holds; the functions below share it. */
typedef struct {
    TrainConfig cfg;
    int rank, size, threads;
    MPI_Comm comm;
    H5Rows train_x, train_y, test_x, test_y;
    int has_train_y, has_test, has_test_y;
    Vae *m;
    VaeWork *w;
    NodeShare *share; /* --reduce shm, from the first step to the last */
    double shared_mib; /* its segment, on each node */
    Shard test;
    Feed *feed;
    int64_t *batch_rows; /* (B) dataset rows of the current batch */
    int64_t n_rows, steps_per_epoch, total_steps, test_begin, test_end;
    int B, ih, iw;
    float *test_mu, *all_mu;     /* latent means of the test rows: 2-D latent with labels */
    int32_t *test_lab, *all_lab; /* (this rank's; all on rank 0) */
    TrainState st;
    Profile prof;
} Run;

/* Collective: rank 0 writes latent.png, the test set's latent means (2-D)
 * coloured by label, from every rank's rows. */
static void write_latent_scatter(Run *r, int64_t epoch, VdError *err)
{
    int64_t n_test = r->test_x.n_rows, mine = r->test_end - r->test_begin;
    int *counts = vd_calloc((size_t)r->size, sizeof(int));
    int *displs = vd_calloc((size_t)r->size, sizeof(int));
    for (int k = 0; k < r->size; k++) {
        int64_t b, e;
        shard_range(n_test, k, r->size, &b, &e);
        counts[k] = (int)(e - b);
        displs[k] = (int)b;
    }
    MPI_Gatherv(r->test_lab, (int)mine, MPI_INT32_T, r->all_lab, counts, displs, MPI_INT32_T, 0,
                r->comm);
    for (int k = 0; k < r->size; k++) {
        counts[k] *= 2;
        displs[k] *= 2;
    }
    MPI_Gatherv(r->test_mu, (int)(2 * mine), MPI_FLOAT, r->all_mu, counts, displs, MPI_FLOAT, 0,
                r->comm);
    if (r->rank == 0 && err->code == VD_OK) {
        char path[4200], title[64];
        snprintf(path, sizeof path, "%s/latent.png", r->cfg.out);
        snprintf(title, sizeof title, "LATENT MEANS, EPOCH %lld", (long long)epoch + 1);
        int64_t classes = r->m->shape.n_classes;
        for (int64_t i = 0; i < n_test && !r->m->shape.n_classes; i++)
            classes = r->all_lab[i] >= classes ? (int64_t)r->all_lab[i] + 1 : classes;
        VdError fig = {0};
        plot_scatter_png(path, r->all_mu, r->all_lab, (int)n_test,
                         classes < 1 << 20 ? (int)classes : 1 << 20, title, &fig);
        figure_warning(&fig);
    }
    vd_free(counts);
    vd_free(displs);
}

/* Rank 0: imports Fashion-MNIST to the default data path if it is missing. */
static void import_default_data(const TrainConfig *cfg, VdError *err)
{
    char def_data[4096];
    vd_default_data_path(def_data, sizeof def_data);
    if (strcmp(cfg->data, def_data) != 0 || access(cfg->data, F_OK) == 0)
        return;
    ImportConfig ic = {.force = 0};
    snprintf(ic.train_images, sizeof ic.train_images, "%s/train-images-idx3-ubyte.gz", VD_FASHION_MNIST_DIR);
    snprintf(ic.train_labels, sizeof ic.train_labels, "%s/train-labels-idx1-ubyte.gz", VD_FASHION_MNIST_DIR);
    snprintf(ic.test_images, sizeof ic.test_images, "%s/t10k-images-idx3-ubyte.gz", VD_FASHION_MNIST_DIR);
    snprintf(ic.test_labels, sizeof ic.test_labels, "%s/t10k-labels-idx1-ubyte.gz", VD_FASHION_MNIST_DIR);
    snprintf(ic.out, sizeof ic.out, "%s", cfg->data);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", cfg->data);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    if (access(ic.train_images, R_OK) != 0)
        vd_fail(err, VD_EX_NOINPUT,
                "no data: %s does not exist and Fashion-MNIST is not installed "
                "(apt-get install dataset-fashion-mnist, or pass --data FILE)",
                cfg->data);
    else if (slash && vd_mkdirs(dir) != 0)
        vd_fail(err, VD_EX_CANTCREAT, "cannot create %s: %s", dir, strerror(errno));
    else {
        printf("importing Fashion-MNIST from %s to %s\n", VD_FASHION_MNIST_DIR, cfg->data);
        vd_import(&ic, err);
    }
}

/* Every label in [0, classes), read in blocks: a bad one fails the run now,
 * not in whichever epoch first draws its row. */
static int check_label_range(H5Rows *y, int classes, VdError *err)
{
    enum { BLOCK = 1 << 16 };
    int64_t *rows = vd_calloc(BLOCK, sizeof *rows);
    int32_t *lab = vd_calloc(BLOCK, sizeof *lab);
    for (int64_t b = 0; b < y->n_rows && err->code == VD_OK; b += BLOCK) {
        int64_t n = y->n_rows - b < BLOCK ? y->n_rows - b : BLOCK;
        for (int64_t i = 0; i < n; i++)
            rows[i] = b + i;
        if (h5rows_read(y, rows, n, lab, err) != VD_OK)
            break;
        for (int64_t i = 0; i < n; i++)
            if (lab[i] < 0 || lab[i] >= classes) {
                vd_fail(err, VD_EX_DATAERR,
                        "%s: label %d at row %lld is outside 0..%d (--classes %d)", y->where,
                        lab[i], (long long)(b + i), classes - 1, classes);
                break;
            }
    }
    vd_free(rows);
    vd_free(lab);
    return err->code;
}

/* Local: opens the training and test datasets and checks they fit together. */
static void open_data(Run *r, VdError *err)
{
    const TrainConfig *cfg = &r->cfg;
    if (h5rows_open(&r->train_x, cfg->data, cfg->dataset, 0, err) != VD_OK)
        return;
    r->has_train_y = open_optional(&r->train_y, cfg->data, cfg->labels, "/train/labels", 1, err);
    if (err->code == VD_OK)
        r->has_test = open_optional(&r->test_x, cfg->data, cfg->test_dataset, "/test/images", 0, err);
    if (err->code == VD_OK && r->has_test)
        r->has_test_y = open_optional(&r->test_y, cfg->data, cfg->test_labels, "/test/labels", 1, err);
    if (err->code != VD_OK)
        return;
    const H5Rows *x = &r->train_x, *y = &r->train_y, *tx = &r->test_x, *ty = &r->test_y;
    if (r->has_train_y && y->n_rows != x->n_rows)
        vd_fail(err, VD_EX_DATAERR, "%s has %lld labels for %lld samples", y->where,
                (long long)y->n_rows, (long long)x->n_rows);
    else if (r->has_test && tx->row_len != x->row_len)
        vd_fail(err, VD_EX_DATAERR, "%s samples have %lld values, training samples %lld",
                tx->where, (long long)tx->row_len, (long long)x->row_len);
    else if (r->has_test_y && ty->n_rows != tx->n_rows)
        vd_fail(err, VD_EX_DATAERR, "%s has %lld labels for %lld samples", ty->where,
                (long long)ty->n_rows, (long long)tx->n_rows);
    else if (cfg->classes > 0 && !r->has_train_y)
        vd_fail(err, VD_EX_USAGE, "--classes %d needs training labels (--labels PATH)",
                cfg->classes);
    else if (cfg->classes > 0 && r->has_test && !r->has_test_y)
        vd_fail(err, VD_EX_USAGE,
                "--classes %d needs test labels (--test-labels PATH, or --test-dataset none)",
                cfg->classes);
    else if (cfg->classes > 0 && r->rank == 0 &&
             check_label_range(&r->train_y, cfg->classes, err) == VD_OK && r->has_test_y)
        check_label_range(&r->test_y, cfg->classes, err);
    if (err->code != VD_OK)
        return;
    if (x->n_rows < cfg->batch)
        vd_fail(err, VD_EX_DATAERR, "%s has %lld samples, fewer than one global batch (%lld)",
                x->where, (long long)x->n_rows, (long long)cfg->batch);
    else if (r->has_test && tx->n_rows < r->size)
        vd_fail(err, VD_EX_DATAERR, "%s has %lld samples, fewer than the %d ranks", tx->where,
                (long long)tx->n_rows, r->size);
    if (err->code != VD_OK)
        return;
    /* The test rows this rank will hold, checked before anything is
     * allocated: a hostile or mistaken header must not become an
     * out-of-memory abort. (The training rows obey --data-budget.) */
    if (!r->has_test)
        return;
    double esize = tx->is_u8 ? 1 : 4;
    double need = ((double)tx->n_rows / r->size + 1) * ((double)tx->row_len * esize + 40);
    double have = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
    if (have > 0 && need > 0.5 * have / r->size)
        vd_fail(err, VD_EX_DATAERR,
                "%s: each of the %d ranks would hold %.1f GiB of test samples, more than half "
                "its share of this machine's %.1f GiB: use more ranks, or --test-dataset none",
                tx->where, r->size, need / (1 << 30), have / (1 << 30));
}

/* Rank 0: moves a previous run's files into DIR/replaced-<time>/ (--fresh). */
static void set_aside_previous_run(const char *dir, VdError *err)
{
    static const char *files[] = {"latest", "metrics.csv", "epochs.csv", "metrics.h5",
                                  "config.txt", "loss.png", "samples.png",
                                  "reconstructions.png", "latent.png"};
    char (*names)[64] = vd_calloc(VD_MAX_CKPTS, 64), aside[4200], from[4200], to[4400];
    int n = ckpt_list(dir, names, VD_MAX_CKPTS), moved = 0;
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    size_t len = (size_t)snprintf(aside, sizeof aside, "%s/replaced-", dir);
    strftime(aside + len, sizeof aside - len, "%Y%m%d-%H%M%S", &tm);
    int n_files = (int)(sizeof files / sizeof *files);
    for (int i = 0; i < n + n_files && err->code == VD_OK; i++) {
        const char *name = i < n ? names[i] : files[i - n];
        snprintf(from, sizeof from, "%s/%s", dir, name);
        if (access(from, F_OK) != 0)
            continue;
        if (!moved++ && vd_mkdirs(aside) != 0)
            vd_fail(err, VD_EX_CANTCREAT, "cannot create %s: %s", aside, strerror(errno));
        snprintf(to, sizeof to, "%s/%s", aside, name);
        if (err->code == VD_OK && rename(from, to) != 0)
            vd_fail(err, VD_EX_CANTCREAT, "cannot move %s aside: %s", from, strerror(errno));
    }
    if (moved && err->code == VD_OK)
        printf("--fresh: the previous run's files are now in %s\n", aside);
    vd_free(names);
}

/* Does option name (as typed) differ between this run and checkpoint path?
 * Fills have (the checkpoint's) and want (this run's), each of size n. */
static int option_differs(const Run *r, const char *path, const char *name, char *have,
                          char *want, size_t n)
{
    const OptSpec *o = train_options;
    while (strcmp(o->name, name) != 0)
        o++;
    opts_format(o, &r->cfg, want, n);
    return ckpt_read_config(path, name, have, n) == 0 && strcmp(have, want) != 0;
}

/* Rank 0: why checkpoint path cannot continue this run (VD_EX_USAGE), or VD_OK. */
static int check_resumable(const Run *r, const char *path, VdError *err)
{
    static const char *must_match[] = {"batch", "seed", "dataset"};
    char have[4200], want[4200];
    for (size_t i = 0; i < sizeof must_match / sizeof *must_match; i++)
        if (option_differs(r, path, must_match[i], have, want, sizeof have))
            return vd_fail(err, VD_EX_USAGE,
                           "%s was made with --%s %s, this run has --%s %s: use the same value, "
                           "another --out, or --fresh",
                           path, must_match[i], have, must_match[i], want);
    int64_t shape[VD_MAX_DIMS], rows = 0;
    int nd = ckpt_read_data_shape(path, shape, VD_MAX_DIMS, &rows);
    int same = nd == r->train_x.n_dims - 1 && rows == r->n_rows;
    for (int i = 0; same && i < nd; i++)
        same = shape[i] == r->train_x.dims[i + 1];
    if (nd >= 0 && !same) {
        have[0] = want[0] = '\0';
        for (int i = 0; i < nd; i++)
            snprintf(have + strlen(have), sizeof have - strlen(have), "%s%lld", i ? "x" : "",
                     (long long)shape[i]);
        for (int i = 1; i < r->train_x.n_dims; i++)
            snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", i > 1 ? "x" : "",
                     (long long)r->train_x.dims[i]);
        return vd_fail(err, VD_EX_USAGE,
                       "%s was trained on %lld samples of %s, %s has %lld of %s: use another "
                       "--out, or --fresh",
                       path, (long long)rows, have, r->train_x.where, (long long)r->n_rows, want);
    }
    return VD_OK;
}

/* Rank 0: the options a resumed run may change (the optimizer's and the
 * objective's), said out loud when they differ from the checkpoint's. */
static void note_changed_options(const Run *r, const char *path)
{
    static const char *may_change[] = {"lr", "beta1", "beta2", "adam-eps", "beta", "warmup",
                                       "binarize"};
    char have[64], want[64];
    for (size_t i = 0; i < sizeof may_change / sizeof *may_change; i++)
        if (option_differs(r, path, may_change[i], have, want, sizeof have))
            printf("note: continuing with --%s %s; the run so far had %s\n", may_change[i], want,
                   have);
}

/* Collective. Continues from the newest valid checkpoint in the run
 * directory, if any: rank 0 loads it (falling back to older ones when it is
 * damaged) and broadcasts the state. Returns 1 if resumed. */
static int resume(Run *r, VdError *err)
{
    int resumed = 0;
    if (r->rank == 0) {
        char (*names)[64] = vd_calloc(VD_MAX_CKPTS, 64), path[4200];
        int n = ckpt_list(r->cfg.out, names, VD_MAX_CKPTS);
        VdError why = {0};
        for (int i = 0; i < n && !resumed && err->code == VD_OK; i++) {
            snprintf(path, sizeof path, "%s/%s", r->cfg.out, names[i]);
            VdError e = {0};
            if (check_resumable(r, path, err) != VD_OK)
                break;
            int rc = ckpt_load(path, r->m, &r->st, &e);
            if (rc == VD_OK) {
                resumed = 1;
                printf("resuming from %s: step %lld, epoch %lld\n", path, (long long)r->st.step,
                       (long long)r->st.epoch);
                note_changed_options(r, path);
                if (i > 0)
                    fprintf(stderr, "vae-dist: warning: resumed from %s, an older checkpoint "
                                    "(newer ones are damaged)\n", names[i]);
            } else if (rc == VD_EX_USAGE) {
                vd_fail(err, rc, "%s; use another --out, or --fresh", e.msg);
            } else {
                fprintf(stderr, "vae-dist: warning: %s; trying an older checkpoint\n", e.msg);
                if (!why.code)
                    why = e;
            }
        }
        vd_free(names);
        if (!resumed && err->code == VD_OK && why.code)
            vd_fail(err, VD_EX_DATAERR,
                    "no valid checkpoint in %s (newest: %s); pass --fresh to start over",
                    r->cfg.out, why.msg);
        if (resumed && r->st.step > 0)
            metrics_truncate(r->cfg.out, r->st.step, err);
        else if (!resumed && err->code == VD_OK)
            metrics_truncate(r->cfg.out, 0, err); /* rows of a run that never checkpointed */
    }
    if (vd_error_agree(err, r->comm))
        return 0;
    MPI_Bcast(&resumed, 1, MPI_INT, 0, r->comm);
    if (resumed) {
        MPI_Bcast(&r->st, (int)sizeof r->st, MPI_BYTE, 0, r->comm);
        MPI_Bcast(r->m->params, (int)r->m->n_params, MPI_FLOAT, 0, r->comm);
        MPI_Bcast(r->m->adam_m, (int)r->m->n_params, MPI_FLOAT, 0, r->comm);
        MPI_Bcast(r->m->adam_v, (int)r->m->n_params, MPI_FLOAT, 0, r->comm);
    }
    return resumed;
}

/* Rank 0: checkpoint, "latest", and pruning to --keep. */
static int save_checkpoint(Run *r, VdError *err)
{
    char name[64], path[4200];
    snprintf(name, sizeof name, "ckpt-%010lld.h5", (long long)r->st.step);
    snprintf(path, sizeof path, "%s/%s", r->cfg.out, name);
    int64_t in_shape[VD_MAX_DIMS];
    for (int i = 1; i < r->train_x.n_dims; i++)
        in_shape[i - 1] = r->train_x.dims[i];
    if (ckpt_save(path, r->m, &r->st, in_shape, r->train_x.n_dims - 1, r->n_rows, train_options,
                  &r->cfg, r->size, err) != VD_OK ||
        write_latest(r->cfg.out, name, err) != VD_OK)
        return err->code;
    ckpt_prune(r->cfg.out, r->cfg.keep);
    printf("checkpoint %s\n", path);
    return VD_OK;
}

/* Collective: test ELBO, epoch metrics, checkpoint and figures at an epoch's end. */
static void end_epoch(Run *r, int64_t epoch, double ep_start, int want_ckpt, VdError *err)
{
    double t0 = vd_now(), sums[3] = {0, 0, 0}, tot[3] = {0, 0, 0};
    if (r->has_test)
        evaluate(r->m, r->w, &r->test, r->test_begin, r->cfg.seed, epoch, r->cfg.binarize, sums,
                 r->test_mu, r->test_lab);
    MPI_Allreduce(sums, tot, 3, MPI_DOUBLE, MPI_SUM, r->comm);
    double t1 = vd_now();
    r->prof.eval += t1 - t0;
    if (want_ckpt && !replicas_agree(r->m, r->comm))
        vd_fail(err, VD_EX_SOFTWARE, "replicas diverged: parameter checksums differ at step %lld",
                (long long)r->st.step);
    if (r->rank == 0 && err->code == VD_OK) {
        TrainState *st = &r->st;
        EpochRow row = {(double)epoch + 1, (double)st->step,
                        st->ep_count ? st->ep_loss / st->ep_count : NAN,
                        r->has_test ? (tot[0] + tot[1]) / tot[2] : NAN,
                        r->has_test ? tot[0] / tot[2] : NAN, r->has_test ? tot[1] / tot[2] : NAN,
                        vd_now() - ep_start};
        if (r->has_test)
            printf("epoch %lld done: test loss %.2f = %.2f + %.2f nats (%lld samples), "
                   "train loss %.2f, %.1f s\n",
                   (long long)epoch + 1, row.test_loss, row.test_recon, row.test_kl,
                   (long long)tot[2], row.train_loss, row.seconds);
        else
            printf("epoch %lld done: train loss %.2f, %.1f s\n", (long long)epoch + 1,
                   row.train_loss, row.seconds);
        st->ep_loss = st->ep_count = 0;
        vd_h5_lock(); /* the stream reader's thread may be in HDF5 */
        metrics_epoch(r->cfg.out, &row, err);
        if (err->code == VD_OK && want_ckpt)
            save_checkpoint(r, err);
        vd_h5_unlock();
        VdError fig = {0}, plot = {0};
        if (err->code == VD_OK && r->ih > 0)
            write_figures(r->cfg.out, r->m, r->w, r->has_test ? &r->test : NULL, r->cfg.seed,
                          r->ih, r->iw, &fig);
        if (err->code == VD_OK) /* redrawn every epoch, from the metrics files */
            plot_run_losses(r->cfg.out, (double)r->steps_per_epoch, &plot);
        figure_warning(&fig);
        figure_warning(&plot);
        fflush(stdout);
    }
    if (r->test_mu)
        write_latent_scatter(r, epoch, err);
    r->st.ep_loss = r->st.ep_count = 0;
    r->prof.io += vd_now() - t1;
}

/* Rank 0: one progress line and metrics row for the interval that ends now. */
static void log_interval(Run *r, int64_t epoch, int64_t s, double *ivl_start, double run_start,
                         int64_t run_first_step, VdError *err)
{
    TrainState *st = &r->st;
    if (st->ivl_count == 0) /* every step of the interval was skipped */
        return;
    double now = vd_now(), rate = st->ivl_count / (now - *ivl_start);
    double eta = (now - run_start) / (double)(st->step - run_first_step) *
                 (double)(r->total_steps - st->step);
    TrainRow row = {(double)st->step, (double)epoch + 1,
                    (st->ivl_recon + st->ivl_kl) / st->ivl_count, st->ivl_recon / st->ivl_count,
                    st->ivl_kl / st->ivl_count, r->cfg.lr, rate};
    if (r->rank == 0) {
        char etab[32];
        fmt_duration(etab, sizeof etab, eta);
        printf("epoch %lld/%d  step %lld/%lld  loss %.2f = %.2f + %.2f  %.0f samples/s  ETA %s\n",
               (long long)epoch + 1, r->cfg.epochs, (long long)(s + 1),
               (long long)r->steps_per_epoch, row.loss, row.recon, row.kl, rate, etab);
        fflush(stdout);
        vd_h5_lock(); /* the stream reader's thread may be in HDF5 */
        metrics_train(r->cfg.out, &row, err);
        vd_h5_unlock();
    }
    st->ivl_recon = st->ivl_kl = st->ivl_count = 0;
    *ivl_start = vd_now();
    r->prof.io += *ivl_start - now;
}

static void print_profile(const Run *r)
{
    const Profile *p = &r->prof;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double mine[8] = {p->data, p->forward, p->backward, p->allreduce, p->optimizer, p->eval, p->io,
                      (double)ru.ru_maxrss / 1024.0}; /* Linux: KiB */
    double mx[8];
    MPI_Reduce(mine, mx, 8, MPI_DOUBLE, MPI_MAX, 0, r->comm);
    if (r->rank != 0)
        return;
    static const char *names[7] = {"data", "forward", "backward", "allreduce", "optimizer",
                                   "eval", "io"};
    double steps = p->steps ? (double)p->steps : 1, total = 0;
    for (int i = 0; i < 5; i++)
        total += mine[i];
    printf("profile (rank 0; max over ranks), per step over %lld steps:\n", (long long)p->steps);
    for (int i = 0; i < 7; i++)
        printf("  %-10s %8.3f ms  max %8.3f ms  %5.1f%%%s\n", names[i], 1e3 * mine[i] / steps,
               1e3 * mx[i] / steps, i < 5 ? 100.0 * mine[i] / total : 0.0,
               i < 5 ? "" : " (outside steps)");
    const VaeShape *s = &r->m->shape;
    double flops = 6.0 * vae_forward_macs(s) - 2.0 * (double)s->n_input * s->hidden[0];
    printf("  step %.3f ms, %.0f samples/s, %.2f GFLOP/s per rank\n", 1e3 * total / steps,
           (double)r->cfg.batch * steps / total, flops * r->B * steps / total * 1e-9);
    printf("  peak resident memory %.1f MiB (rank 0), %.1f MiB (max over ranks)\n", mine[7], mx[7]);
    if (r->shared_mib > 0)
        printf("  of which shared by the node's ranks (counted in each): up to %.1f MiB\n",
               r->shared_mib);
}

/* Collective. Trains from r->st to the end (or a stop); returns the exit code. */
/* Collective: bytes of training rows a rank may hold (--data-budget). */
static int64_t data_budget(const TrainConfig *cfg, MPI_Comm comm)
{
    if (cfg->data_budget > 0)
        return (int64_t)(cfg->data_budget * (1 << 20));
    int local = node_ranks(comm);
    double have = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
    double share = have > 0 ? have / 4 / local : (double)(1 << 30);
    MPI_Allreduce(MPI_IN_PLACE, &share, 1, MPI_DOUBLE, MPI_MIN, comm);
    return (int64_t)share;
}

/* Collective: --reduce shm over more than one rank, or a note why not. */
static void open_share(Run *r)
{
    const char *why = "";
    if (r->cfg.reduce == VD_REDUCE_SHM && r->size > 1)
        r->share = share_create(r->m, r->comm, MPI_COMM_NULL, &why);
    if (r->share)
        malloc_trim(0); /* hand back the private buffers it replaced (M_TRIM_THRESHOLD, main.c) */
    else if (r->cfg.reduce == VD_REDUCE_SHM && r->size > 1 && r->rank == 0)
        fprintf(stderr, "vae-dist: note: %s; summing gradients with MPI_Allreduce instead "
                        "(--reduce mpi)\n", why);
    if (r->rank != 0 || r->size == 1)
        return;
    if (r->share)
        printf("gradients: summed in shared memory, %d ranks per node on %d node%s; each rank "
               "updates 1/%d of the parameters\n", share_node_size(r->share),
               share_nodes(r->share), share_nodes(r->share) > 1 ? "s" : "",
               share_node_size(r->share));
    else if (r->cfg.bucket_mib > 0)
        printf("gradients: MPI_Allreduce in buckets of %g MiB during backward\n",
               r->cfg.bucket_mib);
    else
        printf("gradients: one MPI_Allreduce after backward\n");
    fflush(stdout);
}

static int train_loop(Run *r, VdError *err)
{
    TrainConfig *cfg = &r->cfg;
    TrainState *st = &r->st;
    Rng noise = rng_stream(cfg->seed, VD_STREAM_NOISE, (uint32_t)r->rank);
    Rng bin = rng_stream(cfg->seed, VD_STREAM_BINARIZE, 0);
    int D = r->m->shape.n_input;
    AdamConfig adam = {(float)cfg->lr, (float)cfg->beta1, (float)cfg->beta2, (float)cfg->adam_eps};
    const char *nan_step = getenv("VAE_DIST_TEST_NAN_STEP"); /* test hook, see README */
    int64_t poison_step = nan_step ? atoll(nan_step) : -1, first_step = st->step;
    double run_start = vd_now(), ivl_start = run_start;
    int stop = 0, code = VD_OK;

    for (int64_t epoch = st->step / r->steps_per_epoch; epoch < cfg->epochs && !stop; epoch++) {
        double t0 = vd_now(), ep_start = t0;
        if (feed_epoch(r->feed, epoch, st->step % r->steps_per_epoch, err))
            return err->code;
        r->prof.data += vd_now() - t0;
        for (int64_t s = st->step % r->steps_per_epoch; s < r->steps_per_epoch; s++) {
            double t1 = vd_now();
            feed_batch(r->feed, s, r->w->x, r->w->y, r->batch_rows);
            if (cfg->binarize) /* by (epoch, row): independent of the rank count */
                for (int i = 0; i < r->B; i++)
                    vd_binarize(r->w->x + (size_t)i * D, 1, D, &bin, (uint32_t)epoch,
                                r->batch_rows[i]);
            rng_normal_fill(&noise, (uint32_t)st->step, 0, (size_t)r->B * r->m->shape.n_latent,
                            r->w->eps);
            r->prof.data += vd_now() - t1;
            StepIO io = {.stop = stop_signal != 0,
                         .poison = st->step + 1 == poison_step && r->rank == r->size - 1,
                         .failed = feed_failed(r->feed),
                         .bucket = (size_t)(cfg->bucket_mib * (1 << 20) / sizeof(float)),
                         .share = r->share};
            float beta = (float)vd_kl_weight(cfg->beta, cfg->warmup, st->step + 1);
            int finite = train_step(r->m, r->w, r->B, beta, &adam, st->step + 1, r->comm, &io);
            r->prof.forward += io.times.forward;
            r->prof.backward += io.times.backward;
            r->prof.allreduce += io.times.allreduce;
            r->prof.optimizer += io.times.optimizer;
            r->prof.steps++;
            if (io.failed) /* a rank's reader failed: the step was not applied */
                return feed_check(r->feed, err) ? err->code
                                                : vd_fail(err, VD_EX_SOFTWARE, "data feed failed");
            if (!finite) { /* every rank sees the same reduced values: all decide alike */
                if (st->skipped >= cfg->max_skips) {
                    vd_fail(err, VD_EX_DIVERGED,
                            "non-finite loss or gradient at step %lld; the step was not applied "
                            "and training stopped (last checkpoint kept; lower --lr?)",
                            (long long)st->step + 1);
                    return vd_error_agree(err, r->comm);
                }
                st->skipped++;
                if (r->rank == 0)
                    fprintf(stderr, "vae-dist: warning: non-finite loss or gradient at step %lld; "
                                    "step skipped (%lld of --max-skips %d)\n",
                            (long long)st->step + 1, (long long)st->skipped, cfg->max_skips);
            }
            st->step++; /* a skipped step still consumes its batch and noise */
            if (finite) {
                const float *extra = r->m->grads + r->m->n_params;
                st->ivl_recon += extra[VD_EXTRA_RECON];
                st->ivl_kl += extra[VD_EXTRA_KL];
                st->ivl_count += extra[VD_EXTRA_COUNT];
                st->ep_loss += extra[VD_EXTRA_RECON] + extra[VD_EXTRA_KL];
                st->ep_count += extra[VD_EXTRA_COUNT];
            }
            if (st->step % cfg->log_every == 0 || s + 1 == r->steps_per_epoch)
                log_interval(r, epoch, s, &ivl_start, run_start, first_step, err);
            if (io.stop || st->step == r->total_steps) {
                stop = 1;
                if (io.stop) {
                    code = VD_EX_TEMPFAIL;
                    if (r->rank == 0)
                        printf("stop requested by a signal: checkpointing at step %lld\n",
                               (long long)st->step);
                }
                break;
            }
        }
        int complete = st->step == (epoch + 1) * r->steps_per_epoch;
        if (complete) {
            st->epoch = epoch + 1;
            int want = stop || epoch + 1 == cfg->epochs ||
                       (cfg->ckpt_every > 0 && (epoch + 1) % cfg->ckpt_every == 0);
            end_epoch(r, epoch, ep_start, want, err);
        } else { /* stopped inside the epoch: checkpoint without the epoch's end */
            if (!replicas_agree(r->m, r->comm))
                vd_fail(err, VD_EX_SOFTWARE, "replicas diverged at step %lld",
                        (long long)st->step);
            if (r->rank == 0 && err->code == VD_OK) {
                vd_h5_lock();
                save_checkpoint(r, err);
                vd_h5_unlock();
            }
        }
        if (vd_error_agree(err, r->comm))
            return err->code;
    }
    if (r->rank == 0)
        printf("%s: %lld steps in %.1f s; outputs in %s\n",
               code == VD_EX_TEMPFAIL ? "preempted" : "done", (long long)(st->step - first_step),
               vd_now() - run_start, cfg->out);
    return code;
}

int train_main(int argc, char **argv, MPI_Comm comm)
{
    Run *r = vd_calloc(1, sizeof *r);
    TrainConfig *cfg = &r->cfg;
    VdError err = {0};
    int help = 0, code = VD_OK;
    r->comm = comm;
    MPI_Comm_rank(comm, &r->rank);
    MPI_Comm_size(comm, &r->size);
    r->train_x = (H5Rows){.file = -1, .dset = -1};
    r->train_y = r->test_x = r->test_y = r->train_x;

    install_signal_handlers(); /* a stop asked for during setup is honoured at step 1 */
    opts_defaults(train_options, cfg);
    vd_default_data_path(cfg->data, sizeof cfg->data);
    opts_parse(train_options, cfg, argc, argv, &help, &err);
    if (help) {
        if (r->rank == 0) {
            printf("usage: mpirun -np N vae-dist [train] [options]\n\nTrains a VAE, "
                   "data-parallel over the MPI ranks. Other commands: import, help.\n\n"
                   "options [defaults]:\n");
            opts_help(stdout, train_options, cfg);
        }
        vd_free(r);
        return VD_OK;
    }
    if (err.code == VD_OK && cfg->hidden.n > VD_MAX_HIDDEN)
        vd_fail(&err, VD_EX_USAGE, "--hidden: at most %d layers", VD_MAX_HIDDEN);
    double s2 = 0;
    if (err.code == VD_OK && parse_variance(cfg->variance, &s2) < 0)
        vd_fail(&err, VD_EX_USAGE, "--variance: '%s' is neither 'learned' nor a number in "
                "[1e-12, 1e12]", cfg->variance);
    if (err.code == VD_OK && cfg->binarize && cfg->likelihood != VD_LIK_BERNOULLI)
        vd_fail(&err, VD_EX_USAGE, "--binarize makes binary data for --likelihood bernoulli");
    if (err.code == VD_OK && cfg->batch < r->size)
        vd_fail(&err, VD_EX_USAGE,
                "--batch %lld is smaller than the %d ranks: every rank needs a sample per step",
                (long long)cfg->batch, r->size);
    if (err.code == VD_OK && r->rank == 0)
        import_default_data(cfg, &err);
    if (vd_error_agree(&err, comm))
        goto done;

    open_data(r, &err);
    if (vd_error_agree(&err, comm))
        goto done;

    VaeShape shape = {.n_input = (int)r->train_x.row_len, .n_latent = cfg->latent,
                      .n_hidden = cfg->hidden.n, .activation = cfg->activation,
                      .likelihood = cfg->likelihood, .n_classes = cfg->classes};
    memcpy(shape.hidden, cfg->hidden.v, sizeof(int) * (size_t)cfg->hidden.n);
    if (cfg->likelihood == VD_LIK_GAUSSIAN) {
        shape.learn_var = parse_variance(cfg->variance, &s2);
        shape.obs_logvar = (float)log(s2);
    }
    const char *why = NULL;
    r->m = vae_create(&shape, &why);
    if (!r->m)
        vd_fail(&err, VD_EX_USAGE, "invalid model: %s", why);
    if (vd_error_agree(&err, comm))
        goto done;
    vae_init_params(r->m, cfg->seed);

    /* run directory: rank 0 names (strftime patterns expand on its clock) and creates it */
    if (r->rank == 0 && strchr(cfg->out, '%')) {
        char pattern[sizeof cfg->out];
        memcpy(pattern, cfg->out, sizeof pattern);
        time_t now = time(NULL);
        struct tm tm;
        localtime_r(&now, &tm);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral" /* the pattern is the user's, by design */
        size_t len = strftime(cfg->out, sizeof cfg->out, pattern, &tm);
#pragma GCC diagnostic pop
        if (len == 0)
            vd_fail(&err, VD_EX_USAGE, "--out: pattern '%s' expands to nothing", pattern);
    }
    MPI_Bcast(cfg->out, sizeof cfg->out, MPI_CHAR, 0, comm);
    r->threads = vd_set_threads(cfg->threads, comm);
    if (r->rank == 0 && err.code == VD_OK) {
        if (vd_mkdirs(cfg->out) != 0)
            vd_fail(&err, VD_EX_CANTCREAT, "cannot create run directory %s: %s", cfg->out,
                    strerror(errno));
        else if (cfg->fresh)
            set_aside_previous_run(cfg->out, &err);
    }
    if (vd_error_agree(&err, comm))
        goto done;

    r->n_rows = r->train_x.n_rows;
    r->steps_per_epoch = shard_steps_per_epoch(r->n_rows, cfg->batch);
    r->B = shard_local_batch(cfg->batch, r->rank, r->size);
    int resumed = resume(r, &err);
    if (err.code != VD_OK)
        goto done;
    if (!replicas_agree(r->m, comm))
        vd_fail(&err, VD_EX_SOFTWARE, "initial parameters differ across ranks");
    if (r->rank == 0 && err.code == VD_OK) {
        if (metrics_open(cfg->out, &err) == VD_OK) {
            char path[4200];
            snprintf(path, sizeof path, "%s/config.txt", cfg->out);
            FILE *f = fopen(path, "w");
            if (!f)
                vd_fail(&err, VD_EX_CANTCREAT, "cannot write %s: %s", path, strerror(errno));
            else {
                fprintf(f, "# %s, %d ranks x %d threads\n", PACKAGE_STRING, r->size, r->threads);
                opts_print(f, train_options, cfg);
                fclose(f);
            }
        }
    }
    if (vd_error_agree(&err, comm))
        goto done;

    if (r->has_test)
        shard_range(r->test_x.n_rows, r->rank, r->size, &r->test_begin, &r->test_end);
    r->total_steps = r->steps_per_epoch * cfg->epochs;
    if (cfg->max_steps > 0 && cfg->max_steps < r->total_steps)
        r->total_steps = cfg->max_steps;
    image_dims(&r->train_x, &r->ih, &r->iw);
    if (r->rank == 0) {
        char desc[160];
        vae_shape_text(&shape, desc, sizeof desc);
        printf("vae-dist %s: %d ranks x %d threads; model %s (%zu parameters)\n",
               PACKAGE_VERSION, r->size, r->threads, desc, r->m->n_params);
        printf("data %s: %lld training samples of %lld values%s; %lld test samples\n",
               r->train_x.where, (long long)r->n_rows, (long long)r->train_x.row_len,
               r->train_x.is_u8 ? " (uint8 / 255)" : "",
               r->has_test ? (long long)r->test_x.n_rows : 0LL);
        printf("%lld steps/epoch of %lld samples (%lld unused per epoch); run directory %s\n",
               (long long)r->steps_per_epoch, (long long)cfg->batch,
               (long long)(r->n_rows - r->steps_per_epoch * cfg->batch), cfg->out);
        printf("configuration:\n");
        opts_print(stdout, train_options, cfg);
        fflush(stdout);
    }
    if (r->st.step >= r->total_steps) {
        if (r->rank == 0)
            printf("nothing to do: the run is at step %lld of %lld%s\n", (long long)r->st.step,
                   (long long)r->total_steps, resumed ? " (raise --epochs to continue)" : "");
        goto done;
    }

    /* everything the loop needs, allocated once */
    r->w = vae_work_create(&shape, r->B > 256 ? r->B : 256);
    r->batch_rows = vd_calloc((size_t)r->B, sizeof(int64_t));
    int unit = cfg->likelihood == VD_LIK_BERNOULLI;
    FeedConfig fc = {&r->train_x, r->has_train_y ? &r->train_y : NULL, unit, cfg->classes,
                     cfg->batch, r->steps_per_epoch, cfg->epochs, cfg->seed,
                     data_budget(cfg, comm), cfg->data_mode, cfg->parallel_io, comm};
    if (feed_open(&r->feed, &fc, &err))
        goto done;
    if (r->rank == 0) {
        double mib = (double)feed_bytes(r->feed) / (1 << 20);
        if (feed_mode(r->feed) == VD_FEED_RESIDENT)
            printf("data: resident, %.1f MiB per rank (budget %.0f MiB), read in %.2f s%s\n", mib,
                   (double)fc.budget / (1 << 20), feed_load_seconds(r->feed),
                   cfg->parallel_io ? " (MPI-IO collective)" : "");
        else
            printf("data: streamed, %.1f MiB per rank (budget %.0f MiB)\n", mib,
                   (double)fc.budget / (1 << 20));
        fflush(stdout);
    }
    if (r->has_test) {
        int64_t n_test = r->test_end - r->test_begin;
        int64_t *test_rows = vd_calloc((size_t)n_test, sizeof(int64_t));
        for (int64_t i = 0; i < n_test; i++)
            test_rows[i] = r->test_begin + i;
        shard_init(&r->test, &r->test_x, r->has_test_y ? &r->test_y : NULL, n_test, unit);
        r->test.n_classes = cfg->classes;
        shard_load(&r->test, test_rows, n_test, &err);
        vd_free(test_rows);
        if (shape.n_latent == 2 && r->has_test_y) {
            r->test_mu = vd_calloc((size_t)(2 * n_test), sizeof(float));
            r->test_lab = vd_calloc((size_t)n_test, sizeof(int32_t));
            if (r->rank == 0) {
                r->all_mu = vd_calloc((size_t)(2 * r->test_x.n_rows), sizeof(float));
                r->all_lab = vd_calloc((size_t)r->test_x.n_rows, sizeof(int32_t));
            }
        }
    }
    if (vd_error_agree(&err, comm))
        goto done;

    open_share(r);
    code = train_loop(r, &err);
    r->shared_mib = r->share ? (double)share_bytes(r->share) / (1 << 20) : 0;
    share_free(r->share, r->m, 0); /* the model is not used again */
    r->share = NULL;
    if (cfg->profile && err.code == VD_OK)
        print_profile(r);

done:
    if (err.code != VD_OK)
        code = err.code;
    feed_close(r->feed);
    shard_free(&r->test);
    vd_free(r->batch_rows);
    vd_free(r->test_mu);
    vd_free(r->test_lab);
    vd_free(r->all_mu);
    vd_free(r->all_lab);
    vae_work_free(r->w);
    vae_free(r->m);
    h5rows_close(&r->train_x);
    h5rows_close(&r->train_y);
    h5rows_close(&r->test_x);
    h5rows_close(&r->test_y);
    vd_free(r);
    return code;
}
