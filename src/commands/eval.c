/* eval.c — the eval command. See eval.h. */
#include "config.h"
#include "eval.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "comm.h"
#include "shard.h"
#include "durable.h"
#include "h5util.h"
#include "opts.h"
#include "rng.h"
#include "runtime.h"
#include "trained.h"

typedef struct {
    char ckpt[VD_PATH_MAX], data[VD_PATH_MAX], dataset[256], labels[256], out[VD_PATH_MAX];
    int samples;
    int64_t max_rows;
    uint64_t seed;
    int binarize, threads;
} EvalConfig;

#define EOFF(f) offsetof(EvalConfig, f)
#define ESTR(f) OPT_STR, EOFF(f), sizeof(((EvalConfig *)0)->f)
static const OptSpec eval_options[] = {
    {"ckpt", ESTR(ckpt), "runs/default", 0, 0, "PATH",
     "checkpoint file, run directory (its latest checkpoint), or RUN/best"},
    {"data", ESTR(data), "", 0, 0, "FILE", "HDF5 data file (default: the one the run trained on)"},
    {"dataset", ESTR(dataset), "", 0, 0, "PATH",
     "samples to evaluate, shaped (N, ...) (default: the run's test set)"},
    {"labels", ESTR(labels), "", 0, 0, "PATH",
     "their labels, for a conditional model (it estimates log p(x | y)); default: the run's "
     "test labels, or G/labels for a --dataset G/images"},
    {"samples", OPT_INT, EOFF(samples), 0, "5000", 1, 1e7, "K",
     "importance samples per row (5000 as in the literature; fewer for a quick figure)"},
    {"max-rows", OPT_I64, EOFF(max_rows), 0, "0", 0, 1e15, "N", "evaluate the first N rows (0: all)"},
    {"seed", OPT_U64, EOFF(seed), 0, "1", 0, 0, "N", "seed of the importance samples"},
    {"binarize", OPT_BOOL, EOFF(binarize), 0, "0", 0, 0, NULL,
     "binarize each value with a Bernoulli draw (dynamic binarization)"},
    {"out", ESTR(out), "", 0, 0, "FILE", "also write the results to FILE (.json, .csv or .h5)"},
    {"threads", OPT_INT, EOFF(threads), 0, "0", 0, 1024, "N", trained_threads_help},
    OPT_END};

const OptCommand eval_command = {
    "eval", "mpirun -np N vae-dist eval [options]",
    "The negative ELBO of a data set under a trained model, and the importance-weighted "
    "estimate of its negative log-likelihood, spread across the ranks.",
    eval_options, sizeof(EvalConfig), NULL};

/* Sums over rows, reduced across ranks: count, recon, KL, negative ELBO and
 * its square, -log p(x) and its square. */
enum { S_N, S_RECON, S_KL, S_ELBO, S_ELBO2, S_NLL, S_NLL2, S_COUNT };

/* What one eval holds. */
typedef struct {
    EvalConfig cfg;
    int rank, size, cond;
    char ckpt[VD_PATH_MAX];
    Vae *m;
    H5Rows x, y;
    Shard sh;
    int64_t n_rows, begin, mine; /* rows evaluated; this rank's block [begin, begin + mine) */
} Eval;

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

/* s as a CSV field: quoted when it holds a comma, a quote or a line break. */
static void csv_str(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\n\r")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static int write_h5_results(const Eval *e, const char **names, const double *v, int nv,
                            VdError *err)
{
    DurableFile out;
    if (durable_begin(&out, e->cfg.out, err) != VD_OK)
        return err->code;
    hid_t f = H5Fcreate(out.tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    int bad = f < 0;
    for (int i = 0; !bad && i < nv; i++)
        bad = h5_attr_f64(f, names[i], v[i]) != 0;
    bad = bad || h5_attr_str(f, "checkpoint", e->ckpt) != 0 ||
          h5_attr_str(f, "data", e->x.where) != 0;
    if (f >= 0 && H5Fclose(f) < 0)
        bad = 1;
    if (bad) {
        durable_discard(&out);
        return vd_fail(err, VD_EX_CANTCREAT, "cannot write %s", e->cfg.out);
    }
    return durable_commit(&out, err);
}

static int write_text_results(const Eval *e, const char **names, const double *v, int nv,
                              int json, VdError *err)
{
    DurableFile out;
    if (durable_open(&out, e->cfg.out, "w", err) != VD_OK)
        return err->code;
    FILE *f = out.f;
    if (json) {
        fprintf(f, "{\"checkpoint\": ");
        json_str(f, e->ckpt);
        fprintf(f, ", \"data\": ");
        json_str(f, e->x.where);
        for (int i = 0; i < nv; i++)
            fprintf(f, ", \"%s\": %.9g", names[i], v[i]);
        fprintf(f, "}\n");
    } else {
        for (int i = 0; i < nv; i++)
            fprintf(f, "%s,", names[i]);
        fprintf(f, "checkpoint,data\n");
        for (int i = 0; i < nv; i++)
            fprintf(f, "%.9g,", v[i]);
        csv_str(f, e->ckpt);
        fputc(',', f);
        csv_str(f, e->x.where);
        fputc('\n', f);
    }
    return durable_commit(&out, err);
}

/* Rank 0: the results line, and the results file (--out). */
static int report(const Eval *e, const double *s, VdError *err)
{
    const EvalConfig *cfg = &e->cfg;
    double n = s[S_N], elbo = s[S_ELBO] / n, nll = s[S_NLL] / n;
    double se_elbo = n > 1 ? sqrt(fmax(s[S_ELBO2] / n - elbo * elbo, 0) / (n - 1)) : 0;
    double se_nll = n > 1 ? sqrt(fmax(s[S_NLL2] / n - nll * nll, 0) / (n - 1)) : 0;
    /* active units (Burda et al.): latent dimensions whose posterior mean
     * varies over the rows by more than 0.01 */
    int d = e->m->d_total, active = 0;
    for (int j = 0; j < d; j++) {
        double mean = s[S_COUNT + j] / n;
        active += s[S_COUNT + d + j] / n - mean * mean > 0.01;
    }
    /* nll is -log p(x), or -log p(x | y) for a conditional model; in bits
     * per value for a likelihood of discrete values (a density's has none) */
    double per_dim = e->m->shape.likelihood == VD_LIK_GAUSSIAN
                         ? NAN
                         : 1.0 / (log(2.0) * e->m->shape.n_input);
    const char *names[] = {"rows", "samples", "neg_elbo", "recon", "kl", "nll", "neg_elbo_se",
                           "nll_se", "binarized", "conditional", "active_units", "latent",
                           "nll_bits_per_dim", "neg_elbo_bits_per_dim"};
    double v[] = {n, cfg->samples, elbo, s[S_RECON] / n, s[S_KL] / n, nll, se_elbo, se_nll,
                  cfg->binarize, e->cond, active, d, nll * per_dim, elbo * per_dim};
    int nv = (int)(sizeof v / sizeof *v) - (isnan(per_dim) ? 2 : 0); /* a density: none */
    printf("negative ELBO %.2f = %.2f + %.2f nats (+- %.2f); %s %.2f nats (+- %.2f, "
           "K=%d); gap %.2f; %d of %d latent units active\n",
           elbo, v[3], v[4], se_elbo, e->cond ? "-log p(x|y)" : "-log p(x)", nll, se_nll,
           cfg->samples, elbo - nll, active, d);
    if (e->m->shape.likelihood == VD_LIK_LOGISTIC)
        printf("bits/dim: %.4f (-log p(x)), %.4f (negative ELBO)\n", nll * per_dim,
               elbo * per_dim);
    if (!cfg->out[0])
        return VD_OK;
    const char *ext = strrchr(cfg->out, '.');
    int rc = strcmp(ext, ".h5") == 0 ? write_h5_results(e, names, v, nv, err)
                                     : write_text_results(e, names, v, nv,
                                                          strcmp(ext, ".json") == 0, err);
    if (rc == VD_OK)
        printf("wrote %s\n", cfg->out);
    return rc;
}

/* Local: the model, its data and (conditional) labels, checked. */
static void open_inputs(Eval *e, VdError *err)
{
    EvalConfig *cfg = &e->cfg;
    const char *ext = strrchr(cfg->out, '.');
    if (cfg->out[0] && (!ext || (strcmp(ext, ".json") && strcmp(ext, ".csv") && strcmp(ext, ".h5"))))
        vd_fail(err, VD_EX_USAGE, "--out %s: the name must end in .json, .csv or .h5", cfg->out);
    if (err->code == VD_OK && cfg->out[0] && e->rank == 0) /* before minutes of work */
        durable_check(cfg->out, err);
    if (err->code == VD_OK)
        e->m = trained_load(cfg->ckpt, e->ckpt, err);
    if (err->code == VD_OK) {
        int held = trained_defaults(e->ckpt, e->rank, cfg->data, cfg->dataset,
                                    sizeof cfg->dataset, cfg->labels, sizeof cfg->labels);
        trained_open_data(cfg->data, cfg->dataset, held, e->ckpt, e->m, &e->x, err);
    }
    e->cond = err->code == VD_OK && e->m->shape.classes > 0;
    if (e->cond && !cfg->labels[0]) {
        /* labels for samples the user named: G/images -> G/labels */
        size_t len = strlen(cfg->dataset);
        if (len > 7 && strcmp(cfg->dataset + len - 7, "/images") == 0)
            snprintf(cfg->labels, sizeof cfg->labels, "%.*s/labels", (int)(len - 7), cfg->dataset);
        else
            vd_fail(err, VD_EX_USAGE, "the model in %s is conditional: name the labels of %s "
                    "with --labels PATH", e->ckpt, cfg->dataset);
    }
    if (e->cond && err->code == VD_OK)
        trained_open_labels(cfg->data, cfg->labels, &e->x, &e->y, err);
    if (err->code == VD_OK && cfg->binarize && e->m->shape.likelihood != VD_LIK_BERNOULLI)
        vd_fail(err, VD_EX_USAGE, "--binarize: the model in %s is not Bernoulli", e->ckpt);
}

/* Local: this rank's contiguous block of the rows, in memory. */
static void load_rows(Eval *e, VdError *err)
{
    int64_t end;
    e->n_rows = e->cfg.max_rows > 0 && e->cfg.max_rows < e->x.n_rows ? e->cfg.max_rows
                                                                      : e->x.n_rows;
    shard_range(e->n_rows, e->rank, e->size, &e->begin, &end);
    e->mine = end - e->begin;
    double have = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
    double need = (double)e->mine * ((double)e->x.row_len * (e->x.is_u8 ? 1 : 4) + 40);
    if (have > 0 && need > 0.5 * have / e->size) {
        vd_fail(err, VD_EX_DATAERR, "%s: each of the %d ranks would hold %.1f GiB: use more "
                "ranks or --max-rows", e->x.where, e->size, need / (1 << 30));
        return;
    }
    int64_t *list = vd_calloc((size_t)(e->mine > 0 ? e->mine : 1), sizeof(int64_t));
    for (int64_t i = 0; i < e->mine; i++)
        list[i] = e->begin + i;
    shard_init(&e->sh, &e->x, e->cond ? &e->y : NULL, e->mine,
               vae_unit_data(&e->m->shape));
    e->sh.n_classes = e->m->shape.classes;
    shard_load(&e->sh, list, e->mine, err);
    vd_free(list);
}

/* Local: the sums s (S_COUNT, then the posterior means' sums and sums of
 * squares per latent dimension) over this rank's rows, with a progress line
 * from rank 0 every 5 s. */
static void estimate(Eval *e, double *s)
{
    enum { GROUP = 64 };
    const Vae *m = e->m;
    int D = m->shape.n_input, K = e->cfg.samples, d = m->d_total;
    VaeWork *w = vae_work_create_forward(m, K < 512 ? (K > GROUP ? K : GROUP) : 512);
    float *xb = vd_calloc((size_t)GROUP * D, sizeof(float));
    int32_t *yb = vd_calloc(GROUP, sizeof(int32_t));
    IwRow *rows = vd_calloc(GROUP, sizeof(IwRow));
    Rng iw = rng_for(e->cfg.seed, VD_RNG_IWAE, 0);
    Rng bin = rng_for(e->cfg.seed, VD_RNG_BINARIZE, 0);
    double t0 = vd_now(), shown = t0;
    for (int64_t i = 0; i < e->mine; i += GROUP) {
        int g = (int)(e->mine - i < GROUP ? e->mine - i : GROUP);
        shard_batch(&e->sh, i, g, xb, yb);
        if (e->cfg.binarize)
            rng_binarize(&bin, 0, e->begin + i, g, D, xb);
        /* the posterior means' moments (each layer's given the means above),
         * for the active units */
        memcpy(w->x, xb, sizeof(float) * (size_t)g * D);
        memset(w->eps, 0, sizeof(float) * (size_t)g * d);
        vae_encode(m, w, g);
        for (int l = 0; l < m->n_levels; l++) {
            int dl = m->levels[l].d, off = m->levels[l].eps_off;
            for (int k = 0; k < g; k++)
                for (int j = 0; j < dl; j++) {
                    double mu = vae_mu(m, w, l, k)[j];
                    s[S_COUNT + off + j] += mu;
                    s[S_COUNT + d + off + j] += mu * mu;
                }
        }
        vae_importance(m, w, xb, e->cond ? yb : NULL, g, K, &iw, e->begin + i, rows);
        for (int k = 0; k < g; k++) {
            double elbo = rows[k].recon + rows[k].kl, nll = -rows[k].log_px;
            s[S_N] += 1;
            s[S_RECON] += rows[k].recon;
            s[S_KL] += rows[k].kl;
            s[S_ELBO] += elbo;
            s[S_ELBO2] += elbo * elbo;
            s[S_NLL] += nll;
            s[S_NLL2] += nll * nll;
        }
        double now = vd_now();
        if (e->rank == 0 && (now - shown > 5.0 || i + g == e->mine)) {
            double rate = (double)(i + g) / (now - t0);
            printf("eval: %lld/%lld rows on rank 0  -log p(x) %.2f so far  %.1f rows/s  ETA %.0fs\n",
                   (long long)(i + g), (long long)e->mine, s[S_NLL] / s[S_N], rate,
                   (double)(e->mine - i - g) / rate);
            fflush(stdout);
            shown = now;
        }
    }
    vd_free(rows);
    vd_free(xb);
    vd_free(yb);
    vae_work_free(w);
}

int eval_main(int argc, char **argv, MPI_Comm comm)
{
    Eval *e = vd_calloc(1, sizeof *e);
    VdError err = {0};
    MPI_Comm_rank(comm, &e->rank);
    MPI_Comm_size(comm, &e->size);
    e->x = e->y = (H5Rows){.file = -1, .dset = -1};
    if (opts_command(&eval_command, &e->cfg, argc, argv, e->rank, &err)) {
        vd_free(e);
        return VD_OK;
    }
    if (err.code == VD_OK)
        open_inputs(e, &err);
    if (vd_error_agree(&err, comm) == VD_OK) {
        int threads = runtime_set_threads(e->cfg.threads, comm);
        load_rows(e, &err);
        if (vd_error_agree(&err, comm) == VD_OK) {
            if (e->rank == 0) {
                printf("eval %s on %s: %lld rows, K=%d importance samples, %d rank%s x %d "
                       "thread%s%s%s\n", e->ckpt, e->x.where, (long long)e->n_rows,
                       e->cfg.samples, e->size, e->size == 1 ? "" : "s", threads,
                       threads == 1 ? "" : "s",
                       e->cfg.binarize ? ", dynamically binarized" : "",
                       e->cond ? ", conditional on the labels" : "");
                fflush(stdout);
            }
            int ns = S_COUNT + 2 * e->m->d_total;
            double *s = vd_calloc((size_t)ns, sizeof(double));
            estimate(e, s);
            MPI_Allreduce(MPI_IN_PLACE, s, ns, MPI_DOUBLE, MPI_SUM, comm);
            if (e->rank == 0)
                report(e, s, &err);
            vd_free(s);
            vd_error_agree(&err, comm);
        }
    }
    shard_free(&e->sh);
    h5rows_close(&e->x);
    h5rows_close(&e->y);
    vae_free(e->m);
    vd_free(e);
    return err.code;
}
