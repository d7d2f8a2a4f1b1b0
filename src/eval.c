/* eval.c — the eval, sample and reconstruct commands. See eval.h. */
#include "config.h"
#include "eval.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ckpt.h"
#include "data.h"
#include "h5util.h"
#include "image.h"
#include "opts.h"
#include "train.h"

/* ---- kernels ---------------------------------------------------------- */

void vae_importance(const Vae *m, VaeWork *w, const float *x, const int32_t *y, int n, int K,
                    const Rng *rng, int64_t row0, IwRow *out)
{
    int D = m->shape.n_input, d = m->shape.n_latent;
    int chunk = K < w->max_batch ? K : w->max_batch;
    double *lw = w->kl; /* (chunk) log weights; vae_encode leaves w->kl alone */
    memcpy(w->x, x, sizeof(float) * (size_t)n * D);
    vae_encode(m, w, n);
    for (int i = 0; i < n; i++) {
        const float *mu = w->head + (size_t)i * 2 * d, *lv = mu + d;
        const float *prior = m->p.prior_mean ? m->p.prior_mean + (size_t)y[i] * d : NULL;
        double kl = 0.0, half_lv = 0.0;
        for (int j = 0; j < d; j++) {
            double c = prior ? (double)mu[j] - prior[j] : mu[j];
            kl += 0.5 * (c * c + exp((double)lv[j]) - lv[j] - 1.0);
            half_lv += 0.5 * lv[j];
        }
        /* the decoder's target: chunk copies of row i (w->x is free after encoding) */
        for (int k = 0; k < chunk; k++)
            memcpy(w->x + (size_t)k * D, x + (size_t)i * D, sizeof(float) * (size_t)D);
        double top = -INFINITY, sum = 0.0, recon = 0.0;
        for (int k0 = 0; k0 < K; k0 += chunk) {
            int c = K - k0 < chunk ? K - k0 : chunk;
            rng_normal_fill(rng, 0, ((uint64_t)(row0 + i) * (uint64_t)K + (uint64_t)k0) * (uint64_t)d,
                            (size_t)c * d, w->eps);
            for (int k = 0; k < c; k++) {
                const float *e = w->eps + (size_t)k * d;
                float *z = w->z + (size_t)k * d;
                double t = 0.0;
                for (int j = 0; j < d; j++) {
                    z[j] = mu[j] + expf(0.5f * lv[j]) * e[j];
                    double zc = prior ? (double)z[j] - prior[j] : z[j];
                    t += (double)e[j] * e[j] - zc * zc;
                }
                lw[k] = 0.5 * t + half_lv;
            }
            vae_decode_logits(m, w, w->z, c);
            vae_recon(m, w, c);
            for (int k = 0; k < c; k++) {
                double v = lw[k] - w->recon[k];
                recon += w->recon[k];
                if (v > top) { /* rescale the running sum to the new maximum */
                    sum = sum * exp(top - v) + 1.0;
                    top = v;
                } else {
                    sum += exp(v - top);
                }
            }
        }
        out[i].recon = recon / K;
        out[i].kl = kl;
        out[i].log_px = top + log(sum) - log((double)K);
    }
}

void vd_binarize(float *x, int n, int D, const Rng *rng, uint32_t a, int64_t row0)
{
    uint64_t first = (uint64_t)row0 * (uint64_t)D;
    size_t total = (size_t)n * (size_t)D;
    uint32_t block[4];
    for (size_t i = 0; i < total; i++) {
        uint64_t e = first + i;
        if (i == 0 || e % 4 == 0)
            rng_block(rng, a, e / 4, block);
        float u = (float)(block[e % 4] >> 8) * 0x1p-24f; /* [0, 1) */
        x[i] = u < x[i] ? 1.0f : 0.0f;
    }
}

void vd_prior_draws(const Vae *m, uint64_t seed, int n, int cols, int cls, float *z, int32_t *y)
{
    int d = m->shape.n_latent, C = m->shape.n_classes;
    Rng prior = rng_stream(seed, VD_STREAM_EVAL, 0);
    rng_normal_fill(&prior, UINT32_MAX, 0, (size_t)n * d, z);
    for (int k = 0; k < n; k++) {
        y[k] = C == 0 ? 0 : cls >= 0 ? cls : k / cols % C;
        if (C > 0)
            for (int j = 0; j < d; j++)
                z[(size_t)k * d + j] += m->p.prior_mean[(size_t)y[k] * d + j];
    }
}

int vd_find_checkpoint(const char *arg, char *path, size_t n, VdError *err)
{
    struct stat sb;
    if (stat(arg, &sb) != 0)
        return vd_fail(err, VD_EX_NOINPUT, "%s: no such checkpoint or run directory", arg);
    if (!S_ISDIR(sb.st_mode)) {
        snprintf(path, n, "%s", arg);
        return VD_OK;
    }
    char latest[4200], name[64] = "";
    snprintf(latest, sizeof latest, "%s/latest", arg);
    FILE *f = fopen(latest, "r");
    if (f) {
        if (!fgets(name, sizeof name, f))
            name[0] = '\0';
        fclose(f);
        name[strcspn(name, "\n")] = '\0';
    }
    if (!name[0] || strchr(name, '/')) {
        char(*names)[64] = vd_calloc(1, 64);
        if (ckpt_list(arg, names, 1) == 1)
            snprintf(name, sizeof name, "%s", names[0]);
        vd_free(names);
    }
    if (!name[0])
        return vd_fail(err, VD_EX_NOINPUT, "%s holds no checkpoint (ckpt-*.h5)", arg);
    snprintf(path, n, "%s/%s", arg, name);
    return VD_OK;
}

/* ---- shared by the commands ------------------------------------------- */

/* Local: the model stored in the checkpoint that arg names, or NULL. */
static Vae *load_model(const char *arg, char *path, size_t n, VdError *err)
{
    VaeShape shape;
    if (vd_find_checkpoint(arg, path, n, err) != VD_OK ||
        ckpt_read_shape(path, &shape, err) != VD_OK)
        return NULL;
    const char *why = NULL;
    Vae *m = vae_create(&shape, &why);
    if (!m) {
        vd_fail(err, VD_EX_DATAERR, "%s: invalid model: %s", path, why);
        return NULL;
    }
    TrainState st;
    if (ckpt_load(path, m, &st, err) != VD_OK) {
        vae_free(m);
        return NULL;
    }
    return m;
}

/* Local: opens file:dataset for the model in ckpt, after defaulting an
 * empty file (size n) to the one the run trained on, else the default data
 * file. Its samples must have the model's size. */
static int open_model_data(char *file, size_t n, const char *dataset, const char *ckpt,
                           const Vae *m, H5Rows *x, VdError *err)
{
    if (!file[0] && (ckpt_read_config(ckpt, "data", file, n) != 0 || !file[0]))
        vd_default_data_path(file, n);
    if (h5rows_open(x, file, dataset, 0, err) == VD_OK && x->row_len != m->shape.n_input)
        vd_fail(err, VD_EX_DATAERR, "%s samples have %lld values, the model in %s takes %d",
                x->where, (long long)x->row_len, ckpt, m->shape.n_input);
    return err->code;
}

/* Local: opens file:path, the labels of x, for a conditional model. */
static int open_model_labels(const char *file, const char *path, const H5Rows *x, H5Rows *y,
                             VdError *err)
{
    if (h5rows_open(y, file, path, 1, err) == VD_OK && y->n_rows != x->n_rows)
        vd_fail(err, VD_EX_DATAERR, "%s has %lld labels for %lld samples", y->where,
                (long long)y->n_rows, (long long)x->n_rows);
    else if (err->code != VD_OK)
        snprintf(err->msg + strlen(err->msg), sizeof err->msg - strlen(err->msg),
                 " (the model is conditional: --labels PATH)");
    return err->code;
}

/* Image height and width of one of the model's samples; VD_EX_DATAERR when
 * its shape (from the checkpoint) is not a picture. */
static int model_image_dims(const char *ckpt, int D, int *ih, int *iw, VdError *err)
{
    int64_t shape[VD_MAX_DIMS], rows;
    int nd = ckpt_read_data_shape(ckpt, shape, VD_MAX_DIMS, &rows);
    int side = (int)lround(sqrt((double)D));
    if (nd == 2) {
        *ih = (int)shape[0];
        *iw = (int)shape[1];
    } else if (nd <= 1 && side * side == D) {
        *ih = *iw = side;
    } else {
        return vd_fail(err, VD_EX_DATAERR,
                       "%s: the model's %d-value samples are not images (h x w or a square)",
                       ckpt, D);
    }
    return VD_OK;
}

/* "name" without a trailing ".png" or ".h5", plus ext. */
static void out_path(char *buf, size_t n, const char *name, const char *ext)
{
    size_t len = strlen(name);
    if (len > 4 && strcmp(name + len - 4, ".png") == 0)
        len -= 4;
    else if (len > 3 && strcmp(name + len - 3, ".h5") == 0)
        len -= 3;
    snprintf(buf, n, "%.*s%s", (int)len, name, ext);
}

/* Sets cfg (size bytes) to table's defaults and parses argv into it;
 * prints usage and the options on rank 0 and returns 1 for --help. */
static int command_options(const OptSpec *table, void *cfg, size_t size, int argc, char **argv,
                           int rank, const char *usage, VdError *err)
{
    int help = 0;
    memset(cfg, 0, size);
    opts_defaults(table, cfg);
    opts_parse(table, cfg, argc, argv, &help, err);
    if (help && rank == 0) {
        printf("%s\n\noptions [defaults]:\n", usage);
        opts_help(stdout, table, cfg);
    }
    return help;
}

/* ---- eval ------------------------------------------------------------- */

typedef struct {
    char ckpt[4096], data[4096], dataset[256], labels[256], out[4096];
    int samples;
    int64_t max_rows;
    uint64_t seed;
    int binarize, threads;
} EvalConfig;

#define EOFF(f) offsetof(EvalConfig, f)
#define ESTR(f) OPT_STR, EOFF(f), sizeof(((EvalConfig *)0)->f)
static const OptSpec eval_options[] = {
    {"ckpt", ESTR(ckpt), "runs/default", 0, 0, "PATH",
     "checkpoint file, or run directory (its newest checkpoint)"},
    {"data", ESTR(data), "", 0, 0, "FILE", "HDF5 data file (default: the one the run trained on)"},
    {"dataset", ESTR(dataset), "/test/images", 0, 0, "PATH", "samples to evaluate, shaped (N, ...)"},
    {"labels", ESTR(labels), "/test/labels", 0, 0, "PATH",
     "their labels, for a conditional model (it estimates log p(x | y)); default: the "
     "dataset's group's labels"},
    {"samples", OPT_INT, EOFF(samples), 0, "5000", 1, 1e7, "K",
     "importance samples per row (5000 as in the literature; fewer for a quick figure)"},
    {"max-rows", OPT_I64, EOFF(max_rows), 0, "0", 0, 1e15, "N", "evaluate the first N rows (0: all)"},
    {"seed", OPT_U64, EOFF(seed), 0, "1", 0, 0, "N", "seed of the importance samples"},
    {"binarize", OPT_BOOL, EOFF(binarize), 0, "0", 0, 0, NULL,
     "binarize each value with a Bernoulli draw (dynamic binarization)"},
    {"out", ESTR(out), "", 0, 0, "FILE", "also write the results to FILE (.json, .csv or .h5)"},
    {"threads", OPT_INT, EOFF(threads), 0, "0", 0, 1024, "N",
     "OpenBLAS threads per rank (0: cores / ranks per node)"},
    OPT_END};

/* Sums over rows, reduced across ranks: count, recon, KL, negative ELBO and
 * its square, -log p(x) and its square. */
enum { S_N, S_RECON, S_KL, S_ELBO, S_ELBO2, S_NLL, S_NLL2, S_COUNT };

/* s as a JSON string. */
static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static int write_eval_results(const EvalConfig *cfg, const char *ckpt, const char *where,
                              int cond, const double *s, VdError *err)
{
    double n = s[S_N], elbo = s[S_ELBO] / n, nll = s[S_NLL] / n;
    double se_elbo = n > 1 ? sqrt(fmax(s[S_ELBO2] / n - elbo * elbo, 0) / (n - 1)) : 0;
    double se_nll = n > 1 ? sqrt(fmax(s[S_NLL2] / n - nll * nll, 0) / (n - 1)) : 0;
    /* nll is -log p(x), or -log p(x | y) for a conditional model */
    const char *names[] = {"rows", "samples", "neg_elbo", "recon", "kl", "nll", "neg_elbo_se",
                           "nll_se", "binarized", "conditional"};
    double v[] = {n, cfg->samples, elbo, s[S_RECON] / n, s[S_KL] / n, nll, se_elbo, se_nll,
                  cfg->binarize, cond};
    int nv = (int)(sizeof v / sizeof *v);
    printf("negative ELBO %.2f = %.2f + %.2f nats (+- %.2f); %s %.2f nats (+- %.2f, "
           "K=%d); gap %.2f\n",
           elbo, v[3], v[4], se_elbo, cond ? "-log p(x|y)" : "-log p(x)", nll, se_nll,
           cfg->samples, elbo - nll);
    if (!cfg->out[0])
        return VD_OK;
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", cfg->out);
    const char *ext = strrchr(cfg->out, '.');
    ext = ext ? ext : "";
    if (strcmp(ext, ".h5") == 0) {
        hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
        int bad = f < 0;
        for (int i = 0; !bad && i < nv; i++)
            bad = h5_attr_f64(f, names[i], v[i]) != 0;
        bad = bad || h5_attr_str(f, "checkpoint", ckpt) != 0 || h5_attr_str(f, "data", where) != 0;
        if (f >= 0 && H5Fclose(f) < 0)
            bad = 1;
        if (bad) {
            unlink(tmp);
            return vd_fail(err, VD_EX_CANTCREAT, "cannot write %s", cfg->out);
        }
    } else {
        int json = strcmp(ext, ".json") == 0;
        FILE *f = fopen(tmp, "w");
        if (!f)
            return vd_fail(err, VD_EX_CANTCREAT, "cannot create %s: %s", tmp, strerror(errno));
        if (json) {
            fprintf(f, "{\"checkpoint\": ");
            json_str(f, ckpt);
            fprintf(f, ", \"data\": ");
            json_str(f, where);
            for (int i = 0; i < nv; i++)
                fprintf(f, ", \"%s\": %.9g", names[i], v[i]);
            fprintf(f, "}\n");
        } else {
            for (int i = 0; i < nv; i++)
                fprintf(f, "%s,", names[i]);
            fprintf(f, "checkpoint,data\n");
            for (int i = 0; i < nv; i++)
                fprintf(f, "%.9g,", v[i]);
            fprintf(f, "%s,%s\n", ckpt, where);
        }
        if (fclose(f) != 0) {
            unlink(tmp);
            return vd_fail(err, VD_EX_IOERR, "writing %s failed: %s", cfg->out, strerror(errno));
        }
    }
    if (rename(tmp, cfg->out) != 0) {
        unlink(tmp);
        return vd_fail(err, VD_EX_CANTCREAT, "cannot write %s: %s", cfg->out, strerror(errno));
    }
    printf("wrote %s\n", cfg->out);
    return VD_OK;
}

int eval_main(int argc, char **argv, MPI_Comm comm)
{
    int rank, size;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    EvalConfig cfg;
    VdError err = {0};
    if (command_options(eval_options, &cfg, sizeof cfg, argc, argv, rank,
                      "usage: mpirun -np N vae-dist eval [options]\n\n"
                      "The negative ELBO of a data set under a trained model, and the importance-\n"
                      "weighted estimate of its negative log-likelihood, spread across the ranks.",
                      &err))
        return VD_OK;
    const char *ext = strrchr(cfg.out, '.');
    if (cfg.out[0] && (!ext || (strcmp(ext, ".json") && strcmp(ext, ".csv") && strcmp(ext, ".h5"))))
        vd_fail(&err, VD_EX_USAGE, "--out %s: the name must end in .json, .csv or .h5", cfg.out);
    char ckpt[4200];
    Vae *m = err.code == VD_OK ? load_model(cfg.ckpt, ckpt, sizeof ckpt, &err) : NULL;
    H5Rows x = {.file = -1, .dset = -1}, y = x;
    Shard sh = {0};
    VaeWork *w = NULL;
    float *xb = NULL;
    int32_t *yb = NULL;
    IwRow *rows = NULL;
    if (err.code == VD_OK)
        open_model_data(cfg.data, sizeof cfg.data, cfg.dataset, ckpt, m, &x, &err);
    int cond = err.code == VD_OK && m->shape.n_classes > 0;
    if (cond && strcmp(cfg.labels, "/test/labels") == 0 &&
        strcmp(cfg.dataset, "/test/images") != 0) {
        /* the default labels go with the default samples: G/images -> G/labels */
        size_t len = strlen(cfg.dataset);
        if (len > 7 && strcmp(cfg.dataset + len - 7, "/images") == 0)
            snprintf(cfg.labels, sizeof cfg.labels, "%.*s/labels", (int)(len - 7), cfg.dataset);
        else
            vd_fail(&err, VD_EX_USAGE, "the model in %s is conditional: name the labels of %s "
                    "with --labels PATH", ckpt, cfg.dataset);
    }
    if (cond && err.code == VD_OK)
        open_model_labels(cfg.data, cfg.labels, &x, &y, &err);
    if (err.code == VD_OK && cfg.binarize && m->shape.likelihood != VD_LIK_BERNOULLI)
        vd_fail(&err, VD_EX_USAGE, "--binarize: the model in %s is not Bernoulli", ckpt);
    if (vd_error_agree(&err, comm))
        goto done;
    int threads = vd_set_threads(cfg.threads, comm);
    int64_t n_rows = cfg.max_rows > 0 && cfg.max_rows < x.n_rows ? cfg.max_rows : x.n_rows;
    int64_t begin, end;
    shard_range(n_rows, rank, size, &begin, &end);
    int64_t mine = end - begin;
    double have = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
    double need = (double)mine * ((double)x.row_len * (x.is_u8 ? 1 : 4) + 40);
    if (have > 0 && need > 0.5 * have / size)
        vd_fail(&err, VD_EX_DATAERR, "%s: each of the %d ranks would hold %.1f GiB: use more ranks "
                "or --max-rows", x.where, size, need / (1 << 30));
    else {
        int64_t *list = vd_calloc((size_t)(mine > 0 ? mine : 1), sizeof(int64_t));
        for (int64_t i = 0; i < mine; i++)
            list[i] = begin + i;
        shard_init(&sh, &x, cond ? &y : NULL, mine, m->shape.likelihood == VD_LIK_BERNOULLI);
        sh.n_classes = m->shape.n_classes;
        shard_load(&sh, list, mine, &err);
        vd_free(list);
    }
    if (vd_error_agree(&err, comm))
        goto done;

    enum { GROUP = 64 };
    int D = m->shape.n_input, K = cfg.samples;
    w = vae_work_create(&m->shape, K < 512 ? (K > GROUP ? K : GROUP) : 512);
    xb = vd_calloc((size_t)GROUP * D, sizeof(float));
    yb = vd_calloc(GROUP, sizeof(int32_t));
    rows = vd_calloc(GROUP, sizeof(IwRow));
    Rng iw = rng_stream(cfg.seed, VD_STREAM_IWAE, 0), bin = rng_stream(cfg.seed, VD_STREAM_BINARIZE, 0);
    if (rank == 0) {
        printf("eval %s on %s: %lld rows, K=%d importance samples, %d ranks x %d threads%s%s\n",
               ckpt, x.where, (long long)n_rows, K, size, threads,
               cfg.binarize ? ", dynamically binarized" : "",
               cond ? ", conditional on the labels" : "");
        fflush(stdout);
    }
    double s[S_COUNT] = {0}, t0 = vd_now(), shown = t0;
    for (int64_t i = 0; i < mine; i += GROUP) {
        int g = (int)(mine - i < GROUP ? mine - i : GROUP);
        shard_batch(&sh, i, g, xb, yb);
        if (cfg.binarize)
            vd_binarize(xb, g, D, &bin, 0, begin + i);
        vae_importance(m, w, xb, cond ? yb : NULL, g, K, &iw, begin + i, rows);
        for (int k = 0; k < g; k++) {
            double e = rows[k].recon + rows[k].kl, l = -rows[k].log_px;
            s[S_N] += 1;
            s[S_RECON] += rows[k].recon;
            s[S_KL] += rows[k].kl;
            s[S_ELBO] += e;
            s[S_ELBO2] += e * e;
            s[S_NLL] += l;
            s[S_NLL2] += l * l;
        }
        double now = vd_now();
        if (rank == 0 && (now - shown > 5.0 || i + g == mine)) {
            double rate = (double)(i + g) / (now - t0);
            printf("eval: %lld/%lld rows on rank 0  -log p(x) %.2f so far  %.1f rows/s  ETA %.0fs\n",
                   (long long)(i + g), (long long)mine, s[S_NLL] / s[S_N], rate,
                   (double)(mine - i - g) / rate);
            fflush(stdout);
            shown = now;
        }
    }
    MPI_Allreduce(MPI_IN_PLACE, s, S_COUNT, MPI_DOUBLE, MPI_SUM, comm);
    if (rank == 0)
        write_eval_results(&cfg, ckpt, x.where, cond, s, &err);
    vd_error_agree(&err, comm);

done:
    vd_free(rows);
    vd_free(xb);
    vd_free(yb);
    vae_work_free(w);
    shard_free(&sh);
    h5rows_close(&x);
    h5rows_close(&y);
    vae_free(m);
    return err.code;
}

/* ---- sample ----------------------------------------------------------- */

typedef struct {
    char ckpt[4096], out[4096];
    int n, cols, cls;
    uint64_t seed;
} SampleConfig;

#define SOFF(f) offsetof(SampleConfig, f)
static const OptSpec sample_options[] = {
    {"ckpt", OPT_STR, SOFF(ckpt), sizeof(((SampleConfig *)0)->ckpt), "runs/default", 0, 0, "PATH",
     "checkpoint file, or run directory (its newest checkpoint)"},
    {"n", OPT_INT, SOFF(n), 0, "0", 0, 65536, "N",
     "draws from the prior (0: 64, or --cols per class for a conditional model)"},
    {"cols", OPT_INT, SOFF(cols), 0, "8", 1, 1024, "N", "images per row of the grid"},
    {"class", OPT_INT, SOFF(cls), 0, "-1", -1, 1 << 20, "C",
     "conditional model: draw from class C's prior N(m_C, I) (-1: grid row r is class r mod C)"},
    {"seed", OPT_U64, SOFF(seed), 0, "1", 0, 0, "N",
     "seed of the draws (the run's seed gives its samples.png)"},
    {"out", OPT_STR, SOFF(out), sizeof(((SampleConfig *)0)->out), "samples", 0, 0, "NAME",
     "writes NAME.png (the grid) and NAME.h5 (/samples, /z; /classes if conditional)"},
    OPT_END};

/* Rank 0: the grid of n images as a PNG. */
static int write_grid(const char *path, const float *pics, int n, int ih, int iw, int cols,
                      VdError *err)
{
    if (cols > n)
        cols = n;
    int rows = (n + cols - 1) / cols, gw, gh;
    uint8_t *grid = vd_calloc((size_t)(cols * (iw + 1) + 1) * (size_t)(rows * (ih + 1) + 1), 1);
    image_grid(grid, &gw, &gh, pics, n, ih, iw, cols);
    int rc = png_write_gray(path, grid, gw, gh, err);
    vd_free(grid);
    if (rc == VD_OK)
        printf("wrote %s (%d x %d)\n", path, gw, gh);
    return rc;
}

int sample_main(int argc, char **argv, MPI_Comm comm)
{
    int rank;
    MPI_Comm_rank(comm, &rank);
    SampleConfig cfg;
    VdError err = {0};
    if (command_options(sample_options, &cfg, sizeof cfg, argc, argv, rank,
                      "usage: vae-dist sample [options]\n\n"
                      "Draws z from the prior, N(0, I) (or a class's N(m_c, I)), and decodes\n"
                      "them: a PNG grid of the decoder's means and an HDF5 file with the\n"
                      "images, their latent draws and their classes.",
                      &err))
        return VD_OK;
    char ckpt[4200], path[4200];
    int ih = 0, iw = 0;
    Vae *m = NULL;
    if (rank == 0 && err.code == VD_OK && (m = load_model(cfg.ckpt, ckpt, sizeof ckpt, &err)) &&
        model_image_dims(ckpt, m->shape.n_input, &ih, &iw, &err) == VD_OK && cfg.cls >= 0 &&
        cfg.cls >= m->shape.n_classes)
        vd_fail(&err, VD_EX_USAGE, "--class %d: the model in %s %s", cfg.cls, ckpt,
                m->shape.n_classes ? "has fewer classes" : "is not conditional");
    if (rank == 0 && err.code == VD_OK) {
        int C = m->shape.n_classes;
        if (cfg.n == 0)
            cfg.n = C > 0 && cfg.cls < 0 ? (cfg.cols * C < 4096 ? cfg.cols * C : 4096) : 64;
        int D = m->shape.n_input, d = m->shape.n_latent, B = cfg.n < 256 ? cfg.n : 256;
        VaeWork *w = vae_work_create(&m->shape, B);
        float *pics = vd_calloc((size_t)cfg.n * D, sizeof(float));
        float *z = vd_calloc((size_t)cfg.n * d, sizeof(float));
        int32_t *cls = vd_calloc((size_t)cfg.n, sizeof(int32_t));
        int cols = cfg.cols < cfg.n ? cfg.cols : cfg.n;
        vd_prior_draws(m, cfg.seed, cfg.n, cols, cfg.cls, z, cls);
        for (int k = 0; k < cfg.n; k += B) {
            int c = cfg.n - k < B ? cfg.n - k : B;
            vae_decode(m, w, z + (size_t)k * d, c, pics + (size_t)k * D);
        }
        out_path(path, sizeof path, cfg.out, ".png");
        if (write_grid(path, pics, cfg.n, ih, iw, cols, &err) == VD_OK) {
            char tmp[4300];
            out_path(path, sizeof path, cfg.out, ".h5");
            snprintf(tmp, sizeof tmp, "%s.tmp", path);
            hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
            int bad = f < 0;
            if (!bad) {
                hsize_t dims[3] = {(hsize_t)cfg.n, (hsize_t)ih, (hsize_t)iw};
                hid_t space = H5Screate_simple(3, dims, NULL);
                hid_t ds = H5Dcreate2(f, "samples", H5T_IEEE_F32LE, space, H5P_DEFAULT,
                                      H5P_DEFAULT, H5P_DEFAULT);
                bad = ds < 0 || H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, pics) < 0;
                if (ds >= 0)
                    H5Dclose(ds);
                H5Sclose(space);
                if (!bad && m->shape.n_classes > 0)
                    bad = h5_write_i32(f, "classes", cls, cfg.n) != 0;
                bad = bad || h5_write_f32(f, "z", z, cfg.n, d) != 0 ||
                      h5_attr_str(f, "checkpoint", ckpt) != 0 || h5_attr_u64(f, "seed", cfg.seed) != 0;
                if (H5Fclose(f) < 0)
                    bad = 1;
            }
            if (bad || rename(tmp, path) != 0) {
                unlink(tmp);
                vd_fail(&err, VD_EX_CANTCREAT, "cannot write %s", path);
            } else {
                printf("wrote %s (/samples %d x %d x %d, /z %d x %d)\n", path, cfg.n, ih, iw,
                       cfg.n, d);
            }
        }
        vd_free(z);
        vd_free(cls);
        vd_free(pics);
        vae_work_free(w);
    }
    vae_free(m);
    return vd_error_agree(&err, comm);
}

/* ---- reconstruct ------------------------------------------------------ */

typedef struct {
    char ckpt[4096], data[4096], dataset[256], out[4096];
    int64_t first;
    int n, cols, sample, binarize;
    uint64_t seed;
} ReconConfig;

#define ROFF(f) offsetof(ReconConfig, f)
#define RSTR(f) OPT_STR, ROFF(f), sizeof(((ReconConfig *)0)->f)
static const OptSpec recon_options[] = {
    {"ckpt", RSTR(ckpt), "runs/default", 0, 0, "PATH",
     "checkpoint file, or run directory (its newest checkpoint)"},
    {"data", RSTR(data), "", 0, 0, "FILE", "HDF5 data file (default: the one the run trained on)"},
    {"dataset", RSTR(dataset), "/test/images", 0, 0, "PATH", "samples to reconstruct"},
    {"first", OPT_I64, ROFF(first), 0, "0", 0, 1e15, "I", "first row"},
    {"n", OPT_INT, ROFF(n), 0, "32", 1, 4096, "N", "rows to reconstruct"},
    {"cols", OPT_INT, ROFF(cols), 0, "8", 1, 1024, "N", "images per row of the grid"},
    {"sample", OPT_BOOL, ROFF(sample), 0, "0", 0, 0, NULL,
     "decode a draw z ~ q(z|x) instead of its mean"},
    {"binarize", OPT_BOOL, ROFF(binarize), 0, "0", 0, 0, NULL,
     "binarize the inputs first (as eval --binarize does)"},
    {"seed", OPT_U64, ROFF(seed), 0, "1", 0, 0, "N", "seed of --sample and --binarize draws"},
    {"out", RSTR(out), "reconstructions", 0, 0, "NAME", "writes NAME.png"},
    OPT_END};

int reconstruct_main(int argc, char **argv, MPI_Comm comm)
{
    int rank;
    MPI_Comm_rank(comm, &rank);
    ReconConfig cfg;
    VdError err = {0};
    if (command_options(recon_options, &cfg, sizeof cfg, argc, argv, rank,
                      "usage: vae-dist reconstruct [options]\n\n"
                      "A PNG grid of data rows (odd grid rows) above their reconstructions, the\n"
                      "decoder's mean for z = mu (or a draw, with --sample).",
                      &err))
        return VD_OK;
    char ckpt[4200], path[4200];
    int ih = 0, iw = 0;
    Vae *m = NULL;
    H5Rows x = {0};
    if (rank == 0 && err.code == VD_OK && (m = load_model(cfg.ckpt, ckpt, sizeof ckpt, &err)) &&
        cfg.binarize && m->shape.likelihood != VD_LIK_BERNOULLI)
        vd_fail(&err, VD_EX_USAGE, "--binarize: the model in %s is not Bernoulli", ckpt);
    if (rank == 0 && err.code == VD_OK &&
        model_image_dims(ckpt, m->shape.n_input, &ih, &iw, &err) == VD_OK &&
        open_model_data(cfg.data, sizeof cfg.data, cfg.dataset, ckpt, m, &x, &err) == VD_OK &&
        cfg.first + cfg.n > x.n_rows)
        vd_fail(&err, VD_EX_USAGE, "--first %lld --n %d: %s has %lld rows", (long long)cfg.first,
                cfg.n, x.where, (long long)x.n_rows);
    if (rank == 0 && err.code == VD_OK) {
        int D = m->shape.n_input, d = m->shape.n_latent, n = cfg.n, cols = cfg.cols < n ? cfg.cols : n;
        VaeWork *w = vae_work_create(&m->shape, n);
        int64_t *list = vd_calloc((size_t)n, sizeof(int64_t));
        for (int i = 0; i < n; i++)
            list[i] = cfg.first + i;
        Shard sh;
        shard_init(&sh, &x, NULL, n, m->shape.likelihood == VD_LIK_BERNOULLI);
        if (shard_load(&sh, list, n, &err) == VD_OK) {
            shard_batch(&sh, 0, n, w->x, NULL);
            if (cfg.binarize) {
                Rng bin = rng_stream(cfg.seed, VD_STREAM_BINARIZE, 0);
                vd_binarize(w->x, n, D, &bin, 0, cfg.first);
            }
            if (cfg.sample) {
                Rng r = rng_stream(cfg.seed, VD_STREAM_IWAE, 0);
                rng_normal_fill(&r, 0, (uint64_t)cfg.first * d, (size_t)n * d, w->eps);
            } else {
                memset(w->eps, 0, sizeof(float) * (size_t)n * d);
            }
            vae_encode(m, w, n); /* z = mu + sigma eps, then the decoder */
            for (int i = 0; i < n; i++) {
                const float *h = w->head + (size_t)i * 2 * d, *e = w->eps + (size_t)i * d;
                float *z = w->z + (size_t)i * d;
                for (int j = 0; j < d; j++)
                    z[j] = h[j] + sqrtf(expf(h[d + j])) * e[j];
            }
            vae_decode_logits(m, w, w->z, n);
            /* grid rows alternate: cols originals, then their reconstructions */
            int groups = (n + cols - 1) / cols;
            float *pics = vd_calloc((size_t)groups * 2 * cols * D, sizeof(float));
            for (int i = 0; i < n; i++) {
                float *orig = pics + ((size_t)(i / cols) * 2 * cols + i % cols) * D;
                float *rec = orig + (size_t)cols * D;
                memcpy(orig, w->x + (size_t)i * D, sizeof(float) * (size_t)D);
                vae_output_mean(m, w->logits + (size_t)i * D, 1, rec);
            }
            out_path(path, sizeof path, cfg.out, ".png");
            write_grid(path, pics, groups * 2 * cols, ih, iw, cols, &err);
            vd_free(pics);
        }
        shard_free(&sh);
        vd_free(list);
        vae_work_free(w);
    }
    h5rows_close(&x);
    vae_free(m);
    return vd_error_agree(&err, comm);
}
