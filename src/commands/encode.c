/* encode.c — the encode and interpolate commands. See encode.h. */
#include "encode.h"

#include <hdf5.h>
#include <math.h>
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

static const char ckpt_help[] =
    "checkpoint file, run directory (its latest checkpoint), or RUN/best";

/* ---- encode ----------------------------------------------------------- */

typedef struct {
    char ckpt[VD_PATH_MAX], data[VD_PATH_MAX], dataset[256], labels[256], out[VD_PATH_MAX];
    int sample, threads;
    uint64_t seed;
} EncodeConfig;

#define EOFF(f) offsetof(EncodeConfig, f)
#define ESTR(f) OPT_STR, EOFF(f), sizeof(((EncodeConfig *)0)->f)
static const OptSpec encode_options[] = {
    {"ckpt", ESTR(ckpt), "runs/default", 0, 0, "PATH", ckpt_help},
    {"data", ESTR(data), "", 0, 0, "FILE", "HDF5 data file (default: the one the run trained on)"},
    {"dataset", ESTR(dataset), "", 0, 0, "PATH", "samples to encode (default: the run's test set)"},
    {"labels", ESTR(labels), "", 0, 0, "PATH",
     "labels copied to /labels (default: the run's test labels, or G/labels beside a "
     "--dataset G/images, when there; none: no labels)"},
    {"out", ESTR(out), "encoded.h5", 0, 0, "FILE",
     "writes FILE (.h5): /mu and /logvar (N, d) in row order (with several stochastic "
     "layers, /mu1, /logvar1, /mu2, ... by layer, each given the means of the layers above "
     "it), /labels (N) where there are labels, and /rows (N), the rows' indices in the "
     "dataset, for the held-out rows"},
    {"sample", OPT_BOOL, EOFF(sample), 0, "0", 0, 0, NULL,
     "also /z (N, d): one draw z = mu + exp(logvar / 2) eps per row (by layer: /z1, /z2, "
     "..., each layer's posterior given the draws above it)"},
    {"seed", OPT_U64, EOFF(seed), 0, "1", 0, 0, "N",
     "seed of the --sample draws (the same eps as reconstruct --sample)"},
    {"threads", OPT_INT, EOFF(threads), 0, "0", 0, 1024, "N", trained_threads_help},
    OPT_END};

const OptCommand encode_command = {
    "encode", "vae-dist encode [options]",
    "Encodes a data set: the posterior q(z|x) = N(mu, exp(logvar)) of every row, in an HDF5 "
    "file. The rows are split across the ranks; rank 0 writes.",
    encode_options, sizeof(EncodeConfig), NULL};

/* Rows are encoded in groups of GROUP, counted from row 0 of the data and
 * dealt to the ranks in contiguous blocks: each row goes through the same
 * products, in a batch of the same rows, whatever the rank count, so the
 * output is bitwise the same. Each rank encodes up to ROUND rows between
 * two writes. */
enum { GROUP = 64, ROUND = 1024 };

typedef struct {
    EncodeConfig cfg;
    char ckpt[VD_PATH_MAX];
    int rank, size, has_y;
    MPI_Comm comm;
    Vae *m;
    H5Rows x, y;
    int64_t begin, mine; /* this rank's block of rows */
} Encode;

/* Local: the model, the samples and (when there) the labels. */
static void encode_open(Encode *e, VdError *err)
{
    EncodeConfig *cfg = &e->cfg;
    const char *ext = strrchr(cfg->out, '.');
    if (!ext || strcmp(ext, ".h5") != 0)
        vd_fail(err, VD_EX_USAGE, "--out %s: the name must end in .h5", cfg->out);
    if (err->code == VD_OK && e->rank == 0) /* before the work */
        durable_check(cfg->out, err);
    if (err->code == VD_OK)
        e->m = trained_load(cfg->ckpt, e->ckpt, err);
    if (err->code != VD_OK)
        return;
    int named_labels = cfg->labels[0] != '\0', named_data = cfg->dataset[0] != '\0';
    int held = trained_defaults(e->ckpt, e->rank, cfg->data, cfg->dataset, sizeof cfg->dataset,
                                cfg->labels, sizeof cfg->labels);
    if (trained_open_data(cfg->data, cfg->dataset, held, e->ckpt, e->m, &e->x, err) != VD_OK)
        return;
    size_t len = strlen(cfg->dataset);
    if (!named_labels && named_data && len > 7 && !strcmp(cfg->dataset + len - 7, "/images"))
        snprintf(cfg->labels, sizeof cfg->labels, "%.*s/labels", (int)(len - 7), cfg->dataset);
    if (!cfg->labels[0] || !strcmp(cfg->labels, "none"))
        return;
    if (!named_labels && !h5rows_exists(cfg->data, cfg->labels))
        return; /* labels only where there are some */
    e->has_y = trained_open_labels(cfg->data, cfg->labels, &e->x, &e->y, err) == VD_OK;
}

/* Rank 0: a chunked float dataset name (n, d) in f. */
static hid_t create_rows(hid_t f, const char *name, hid_t type, int64_t n, int64_t d)
{
    hsize_t dims[2] = {(hsize_t)n, (hsize_t)d}, chunk[2] = {(hsize_t)(n < 4096 ? n : 4096), (hsize_t)d};
    hid_t space = H5Screate_simple(d > 0 ? 2 : 1, dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (n > 0)
        H5Pset_chunk(dcpl, d > 0 ? 2 : 1, chunk);
    hid_t ds = H5Dcreate2(f, name, type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5Pclose(dcpl);
    H5Sclose(space);
    return ds;
}

/* Rank 0: rows [row, row + n) of ds (rows of d values; d = 0: a vector). */
static int write_rows(hid_t ds, hid_t mtype, int64_t row, int64_t n, int64_t d, const void *buf)
{
    if (n == 0)
        return 0;
    hsize_t start[2] = {(hsize_t)row, 0}, cnt[2] = {(hsize_t)n, (hsize_t)d};
    int rank = d > 0 ? 2 : 1;
    hid_t fs = H5Dget_space(ds), ms = H5Screate_simple(rank, cnt, NULL);
    int bad = H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, cnt, NULL) < 0 ||
              H5Dwrite(ds, mtype, ms, fs, H5P_DEFAULT, buf) < 0;
    H5Sclose(ms);
    H5Sclose(fs);
    return bad;
}

/* Rank 0's output: the file being written and its datasets: per layer mu,
 * logvar and z (cols[l][0..3)), and the labels. */
typedef struct {
    DurableFile out;
    hid_t f, cols[VD_MAX_LEVELS][3], y; /* z, y: 0 when not written */
} EncodeOut;

/* A layer's dataset: "mu", "logvar", "z" with one layer, else "mu1", ... */
static void column_name(char *buf, size_t n, const Vae *m, int l, int col)
{
    static const char *names[] = {"mu", "logvar", "z"};
    if (m->n_levels == 1)
        snprintf(buf, n, "%s", names[col]);
    else
        snprintf(buf, n, "%s%d", names[col], l + 1);
}

static void open_output(const Encode *e, EncodeOut *o, VdError *err)
{
    const Vae *m = e->m;
    int sample = e->cfg.sample, bad = 0;
    int64_t n = e->x.n_rows;
    *o = (EncodeOut){.f = H5I_INVALID_HID, .y = -1};
    if (durable_begin(&o->out, e->cfg.out, err) != VD_OK)
        return;
    hid_t f = o->f = H5Fcreate(o->out.tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    for (int l = 0; l < m->n_levels; l++)
        for (int col = 0; col < 3; col++) {
            char name[16];
            column_name(name, sizeof name, m, l, col);
            o->cols[l][col] = f < 0 ? -1 : col < 2 || sample
                                  ? create_rows(f, name, H5T_IEEE_F32LE, n, m->levels[l].d) : 0;
            bad |= o->cols[l][col] < 0;
        }
    o->y = f >= 0 && e->has_y ? create_rows(f, "labels", H5T_STD_I32LE, n, 0) : 0;
    if (f >= 0 && e->x.map) { /* held-out rows: which rows of the dataset they are */
        hid_t ds = create_rows(f, "rows", H5T_STD_I64LE, n, 0);
        if (ds < 0 || write_rows(ds, H5T_NATIVE_INT64, 0, n, 0, e->x.map))
            vd_fail(err, VD_EX_CANTCREAT, "cannot write %s", e->cfg.out);
        if (ds >= 0)
            H5Dclose(ds);
    }
    if (bad || o->y < 0 || h5_attr_str(f, "checkpoint", e->ckpt) ||
        h5_attr_str(f, "data", e->x.where) || (sample && h5_attr_u64(f, "seed", e->cfg.seed)))
        vd_fail(err, VD_EX_CANTCREAT, "cannot write %s", e->cfg.out);
}

static void close_output(const Encode *e, EncodeOut *o, VdError *err)
{
    for (int l = 0; l < e->m->n_levels; l++)
        for (int col = 0; col < 3; col++)
            if (o->cols[l][col] > 0)
                H5Dclose(o->cols[l][col]);
    if (o->y > 0)
        H5Dclose(o->y);
    if (o->f >= 0 && H5Fclose(o->f) < 0 && err->code == VD_OK)
        vd_fail(err, VD_EX_IOERR, "cannot write %s", e->cfg.out);
    char rows[64] = ""; /* the datasets of one value per row */
    if (e->has_y || e->x.map)
        snprintf(rows, sizeof rows, "; %s%s: %lld", e->has_y ? "/labels" : "",
                 e->x.map ? (e->has_y ? ", /rows" : "/rows") : "", (long long)e->x.n_rows);
    if (o->out.tmp[0] && err->code == VD_OK && durable_commit(&o->out, err) == VD_OK) {
        int L = e->m->n_levels;
        char widths[64] = "";
        for (int l = 0; l < L; l++)
            snprintf(widths + strlen(widths), sizeof widths - strlen(widths), "%s%d", l ? "," : "",
                     e->m->levels[l].d);
        if (L == 1)
            printf("wrote %s (/mu, /logvar%s: %lld x %s%s)\n", e->cfg.out,
                   e->cfg.sample ? ", /z" : "", (long long)e->x.n_rows, widths, rows);
        else /* by layer, z_1 first: /mu1, /logvar1, /z1, /mu2, ... */
            printf("wrote %s (/muL, /logvarL%s for L = 1..%d: %lld x %s%s)\n", e->cfg.out,
                   e->cfg.sample ? ", /zL" : "", L, (long long)e->x.n_rows, widths, rows);
    } else if (o->out.tmp[0])
        durable_discard(&o->out);
}

/* Local. Encodes the g rows of this rank from row first into mine, one
 * packed row of per floats each (every layer's mu and logvar, then every
 * layer's z if sampled, the label's bits). */
static void encode_part(const Encode *e, VaeWork *w, Shard *sh, Rng *draws, int64_t first, int g,
                        float *xb, int32_t *yb, float *mine, VdError *err)
{
    const Vae *m = e->m;
    int d = m->d_total, D = m->shape.n_input, sample = e->cfg.sample;
    int per = 2 * d + sample * d + 1;
    int64_t *list = vd_calloc(g > 0 ? (size_t)g : 1, sizeof(int64_t));
    for (int i = 0; i < g; i++)
        list[i] = first + i;
    if (g > 0 && shard_load(sh, list, g, err) == VD_OK) {
        shard_batch(sh, 0, g, xb, yb);
        for (int b = 0; b < g; b += w->max_rows) {
            int c = g - b < w->max_rows ? g - b : w->max_rows;
            memcpy(w->x, xb + (size_t)b * D, sizeof(float) * (size_t)c * D);
            if (sample) /* else every layer at its mean, given the means above */
                rng_normal_fill(draws, 0, (uint64_t)(first + b) * d, (size_t)c * d, w->eps);
            else
                memset(w->eps, 0, sizeof(float) * (size_t)c * d);
            vae_encode(m, w, c);
            for (int i = 0; i < c; i++) {
                float *row = mine + (size_t)(b + i) * per;
                for (int l = 0; l < m->n_levels; l++) {
                    int dl = m->levels[l].d, off = m->levels[l].eps_off;
                    memcpy(row + 2 * off, vae_mu(m, w, l, i), sizeof(float) * (size_t)dl);
                    memcpy(row + 2 * off + dl, vae_logvar(m, w, l, i), sizeof(float) * (size_t)dl);
                    if (sample)
                        memcpy(row + 2 * d + off, vae_latent(m, w, l, i), sizeof(float) * (size_t)dl);
                }
                memcpy(row + per - 1, yb + b + i, sizeof(float)); /* the label's bits */
            }
        }
    }
    vd_free(list);
}

/* Rank 0: writes rows packed rows from src (as encode_part makes them) to
 * the datasets from row first; part is scratch of ROUND rows. */
static void write_part(const Encode *e, EncodeOut *o, const float *src, int rows, int64_t first,
                       float *part, VdError *err)
{
    const Vae *m = e->m;
    int d = m->d_total, sample = e->cfg.sample;
    int per = 2 * d + sample * d + 1, bad = 0;
    for (int l = 0; l < m->n_levels; l++) /* mu, logvar, z: each (rows, d_l) */
        for (int col = 0; col < 2 + sample && !bad; col++) {
            int dl = m->levels[l].d, off = m->levels[l].eps_off;
            int at = col < 2 ? 2 * off + col * dl : 2 * d + off;
            for (int i = 0; i < rows; i++)
                memcpy(part + (size_t)i * dl, src + (size_t)i * per + at, sizeof(float) * (size_t)dl);
            bad = write_rows(o->cols[l][col], H5T_NATIVE_FLOAT, first, rows, dl, part);
        }
    if (!bad && e->has_y) {
        int32_t *lab = (int32_t *)part;
        for (int i = 0; i < rows; i++)
            memcpy(lab + i, src + (size_t)i * per + per - 1, sizeof *lab);
        bad = write_rows(o->y, H5T_NATIVE_INT32, first, rows, 0, lab);
    }
    if (bad)
        vd_fail(err, VD_EX_IOERR, "writing rows of %s failed", e->cfg.out);
}

/* Collective. Each round, every rank encodes up to ROUND rows of its block
 * and rank 0 gathers and writes them where they belong, so memory stays
 * bounded whatever the data's size. */
static void encode_rows(Encode *e, VdError *err)
{
    const Vae *m = e->m;
    int d = m->d_total, D = m->shape.n_input;
    int per = 2 * d + e->cfg.sample * d + 1; /* floats a row sends: mu, logvar, z, label */
    int64_t most = e->mine; /* the largest block sets the rounds */
    MPI_Allreduce(MPI_IN_PLACE, &most, 1, MPI_INT64_T, MPI_MAX, e->comm);
    int64_t rounds = (most + ROUND - 1) / ROUND;
    VaeWork *w = vae_work_create_forward(m, GROUP);
    Shard sh;
    shard_init(&sh, &e->x, e->has_y ? &e->y : NULL, ROUND, vae_unit_data(&m->shape));
    float *mine = vd_calloc((size_t)ROUND * per, sizeof(float));
    float *xb = vd_calloc((size_t)ROUND * D, sizeof(float));
    int32_t *yb = vd_calloc(ROUND, sizeof(int32_t));
    float *all = NULL, *part = NULL;
    int *counts = NULL, *displs = NULL;
    int64_t *firsts = NULL;
    EncodeOut o = {.f = H5I_INVALID_HID};
    Rng draws = rng_for(e->cfg.seed, VD_RNG_IWAE, 0);
    if (e->rank == 0) {
        all = vd_calloc((size_t)ROUND * e->size * per, sizeof(float));
        part = vd_calloc((size_t)ROUND * per, sizeof(float));
        counts = vd_calloc((size_t)e->size, sizeof(int));
        displs = vd_calloc((size_t)e->size, sizeof(int));
        firsts = vd_calloc((size_t)e->size, sizeof(int64_t));
        open_output(e, &o, err);
    }
    for (int64_t k = 0; k < rounds && vd_error_agree(err, e->comm) == VD_OK; k++) {
        int64_t first = e->begin + k * ROUND, left = e->mine - k * ROUND;
        int g = (int)(left < 0 ? 0 : left < ROUND ? left : ROUND);
        encode_part(e, w, &sh, &draws, first, g, xb, yb, mine, err);
        int sent = err->code == VD_OK ? g * per : 0;
        MPI_Gather(&sent, 1, MPI_INT, counts, 1, MPI_INT, 0, e->comm);
        MPI_Gather(&first, 1, MPI_INT64_T, firsts, 1, MPI_INT64_T, 0, e->comm);
        if (e->rank == 0)
            for (int r = 0, at = 0; r < e->size; at += counts[r++])
                displs[r] = at;
        MPI_Gatherv(mine, sent, MPI_FLOAT, all, counts, displs, MPI_FLOAT, 0, e->comm);
        for (int r = 0; e->rank == 0 && err->code == VD_OK && r < e->size; r++)
            write_part(e, &o, all + displs[r], counts[r] / per, firsts[r], part, err);
    }
    if (e->rank == 0)
        close_output(e, &o, err);
    vd_error_agree(err, e->comm);
    shard_free(&sh);
    vae_work_free(w);
    vd_free(mine);
    vd_free(xb);
    vd_free(yb);
    vd_free(all);
    vd_free(part);
    vd_free(counts);
    vd_free(displs);
    vd_free(firsts);
}

int encode_main(int argc, char **argv, MPI_Comm comm)
{
    Encode *e = vd_calloc(1, sizeof *e);
    VdError err = {0};
    MPI_Comm_rank(comm, &e->rank);
    MPI_Comm_size(comm, &e->size);
    e->comm = comm;
    e->x = e->y = (H5Rows){.file = -1, .dset = -1};
    if (opts_command(&encode_command, &e->cfg, argc, argv, e->rank, &err)) {
        vd_free(e);
        return VD_OK;
    }
    if (err.code == VD_OK) /* the same verdict on every rank */
        runtime_set_threads(e->cfg.threads, comm);
    if (err.code == VD_OK)
        encode_open(e, &err);
    if (vd_error_agree(&err, comm) == VD_OK) {
        int64_t g0, g1, n = e->x.n_rows;
        shard_range((n + GROUP - 1) / GROUP, e->rank, e->size, &g0, &g1);
        e->begin = g0 * GROUP < n ? g0 * GROUP : n;
        e->mine = (g1 * GROUP < n ? g1 * GROUP : n) - e->begin;
        if (e->rank == 0) {
            printf("encode %s on %s: %lld rows, %d rank%s\n", e->ckpt, e->x.where,
                   (long long)e->x.n_rows, e->size, e->size == 1 ? "" : "s");
            fflush(stdout);
        }
        encode_rows(e, &err);
    }
    h5rows_close(&e->x);
    h5rows_close(&e->y);
    vae_free(e->m);
    vd_free(e);
    return err.code;
}

/* ---- interpolate ------------------------------------------------------ */

typedef struct {
    char ckpt[VD_PATH_MAX], data[VD_PATH_MAX], dataset[256], out[VD_PATH_MAX];
    int64_t from, to;
    int steps, slerp, threads, figure_scale;
} InterpConfig;

#define IOFF(f) offsetof(InterpConfig, f)
#define ISTR(f) OPT_STR, IOFF(f), sizeof(((InterpConfig *)0)->f)
static const OptSpec interp_options[] = {
    {"ckpt", ISTR(ckpt), "runs/default", 0, 0, "PATH", ckpt_help},
    {"data", ISTR(data), "", 0, 0, "FILE", "HDF5 data file (default: the one the run trained on)"},
    {"dataset", ISTR(dataset), "", 0, 0, "PATH", "samples the rows come from (default: the run's test set)"},
    {"from", OPT_I64, IOFF(from), 0, "0", 0, 1e15, "I", "the row the line starts at"},
    {"to", OPT_I64, IOFF(to), 0, "1", 0, 1e15, "J", "the row the line ends at"},
    {"steps", OPT_INT, IOFF(steps), 0, "10", 2, 1024, "K", "points on the line, both ends included"},
    {"slerp", OPT_BOOL, IOFF(slerp), 0, "0", 0, 0, NULL,
     "along the great circle between the two means (spherical), not the straight line"},
    {"out", ISTR(out), "interpolation", 0, 0, "NAME",
     "writes NAME.png (row I, the K decoded points, row J) for images, and NAME.h5 (/z, /t, "
     "/samples)"},
    {"threads", OPT_INT, IOFF(threads), 0, "0", 0, 1024, "N", trained_threads_help},
    {"figure-scale", OPT_INT, IOFF(figure_scale), 0, "0", 0, 64, "S", trained_figure_scale_help},
    OPT_END};

const OptCommand interpolate_command = {
    "interpolate", "vae-dist interpolate [options]",
    "Decodes K points on the line between the latent means of two data rows, mu_I and mu_J: "
    "z = (1 - t) mu_I + t mu_J for t from 0 to 1 (with --slerp, the spherical interpolation).",
    interp_options, sizeof(InterpConfig), NULL};

/* z = the point t of the way from a to b (d values), straight or spherical
 * (Shoemake's slerp; straight where a and b are nearly parallel). */
static void interp_point(float *z, const float *a, const float *b, int d, double t, int slerp)
{
    double wa = 1 - t, wb = t;
    if (slerp) {
        double ab = 0, aa = 0, bb = 0;
        for (int j = 0; j < d; j++) {
            ab += (double)a[j] * b[j];
            aa += (double)a[j] * a[j];
            bb += (double)b[j] * b[j];
        }
        double c = aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : 1;
        double omega = acos(c < -1 ? -1 : c > 1 ? 1 : c), s = sin(omega);
        if (s > 1e-6) {
            wa = sin((1 - t) * omega) / s;
            wb = sin(t * omega) / s;
        }
    }
    for (int j = 0; j < d; j++)
        z[j] = (float)(wa * a[j] + wb * b[j]);
}

/* Rank 0: NAME.h5 (/z, /t, /samples in the stored layout) and, for images,
 * NAME.png. */
static int write_interp(const InterpConfig *cfg, const char *ckpt, const H5Rows *x,
                        const float *ends, const float *pics, const float *z, const double *t,
                        int d, int D, VdError *err)
{
    int K = cfg->steps;
    CkptData data;
    if (ckpt_read_data(ckpt, &data) != 0)
        return vd_fail(err, VD_EX_DATAERR, "%s: /model's input_shape is missing or invalid", ckpt);
    char path[VD_PATH_MAX];
    if (x->img.c) { /* the strip: row I, the K points, row J */
        float *strip = vd_calloc((size_t)(K + 2) * D, sizeof(float));
        memcpy(strip, ends, sizeof(float) * (size_t)D);
        memcpy(strip + D, pics, sizeof(float) * (size_t)K * D);
        memcpy(strip + (size_t)(K + 1) * D, ends + D, sizeof(float) * (size_t)D);
        trained_out_path(path, cfg->out, ".png");
        int rc = image_grid_png(path, strip, K + 2, &x->img, K + 2, cfg->figure_scale, NULL, NULL, err);
        vd_free(strip);
        if (rc != VD_OK)
            return err->code;
        image_note_scale(stdout, path, cfg->figure_scale,
                         image_grid_scale(&x->img, K + 2, K + 2, cfg->figure_scale));
        printf("wrote %s (row %lld, %d points, row %lld)\n", path, (long long)cfg->from, K,
               (long long)cfg->to);
    } else {
        printf("no PNG: the samples are not images\n");
    }
    trained_out_path(path, cfg->out, ".h5");
    DurableFile out;
    if (durable_begin(&out, path, err) != VD_OK)
        return err->code;
    int64_t dims[VD_MAX_DIMS + 1] = {K};
    for (int i = 0; i < data.n_dims; i++)
        dims[i + 1] = data.shape[i];
    float *stored = vd_calloc((size_t)K * D, sizeof(float)), *tf = vd_calloc((size_t)K, sizeof(float));
    for (int k = 0; k < K; k++)
        tf[k] = (float)t[k];
    if (data.img.chw) { /* back to channels first, as the data were stored */
        size_t plane = (size_t)data.img.h * data.img.w;
        for (int k = 0; k < K; k++)
            for (int c = 0; c < data.img.c; c++)
                for (size_t p = 0; p < plane; p++)
                    stored[(size_t)k * D + c * plane + p] = pics[(size_t)k * D + p * data.img.c + c];
    } else {
        memcpy(stored, pics, sizeof(float) * (size_t)K * D);
    }
    int64_t ft[2] = {cfg->from, cfg->to}; /* as the dataset numbers them */
    if (x->map) {
        ft[0] = x->map[cfg->from];
        ft[1] = x->map[cfg->to];
    }
    hid_t f = H5Fcreate(out.tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    int bad = f < 0 || h5_write_f32(f, "z", z, K, d) || h5_write_f32(f, "t", tf, K, 0) ||
              h5_write_f32_nd(f, "samples", stored, dims, data.n_dims + 1) ||
              h5_attr_str(f, "checkpoint", ckpt) || h5_attr_str(f, "data", x->where) ||
              h5_attr_i64(f, "rows", ft, 2) ||
              h5_attr_str(f, "path", cfg->slerp ? "spherical" : "straight");
    if (f >= 0 && H5Fclose(f) < 0)
        bad = 1;
    vd_free(stored);
    vd_free(tf);
    if (bad) {
        durable_discard(&out);
        return vd_fail(err, VD_EX_CANTCREAT, "cannot write %s", path);
    }
    if (durable_commit(&out, err) != VD_OK)
        return err->code;
    printf("wrote %s (/z %d x %d, /t, /samples)\n", path, K, d);
    return VD_OK;
}

/* Rank 0: the two rows' means, the points between them, decoded. */
static void interpolate(const InterpConfig *cfg, const char *ckpt, const Vae *m, H5Rows *x,
                        VdError *err)
{
    int D = m->shape.n_input, d = vae_top_latent(m), K = cfg->steps, top = m->n_levels - 1;
    int64_t list[2] = {cfg->from < cfg->to ? cfg->from : cfg->to,
                       cfg->from < cfg->to ? cfg->to : cfg->from};
    int n = cfg->from == cfg->to ? 1 : 2;
    VaeWork *w = vae_work_create_forward(m, K > 2 ? K : 2);
    Shard sh;
    shard_init(&sh, x, NULL, 2, vae_unit_data(&m->shape));
    float *ends = vd_calloc((size_t)2 * D, sizeof(float)), *mu = vd_calloc((size_t)2 * d, sizeof(float));
    float *z = vd_calloc((size_t)K * d, sizeof(float)), *pics = vd_calloc((size_t)K * D, sizeof(float));
    double *t = vd_calloc((size_t)K, sizeof(double));
    if (shard_load(&sh, list, n, err) == VD_OK) {
        shard_batch(&sh, 0, n, w->x, NULL);
        /* ends[0] is row I, ends[1] row J, whichever order the file has them in */
        int swap = cfg->from > cfg->to;
        memcpy(ends + (size_t)swap * D, w->x, sizeof(float) * (size_t)D);
        memcpy(ends + (size_t)!swap * D, w->x + (size_t)(n - 1) * D, sizeof(float) * (size_t)D);
        memcpy(w->x, ends, sizeof(float) * (size_t)2 * D);
        memset(w->eps, 0, sizeof(float) * (size_t)2 * m->d_total);
        vae_encode(m, w, 2);
        for (int i = 0; i < 2; i++) /* the top layer's means */
            memcpy(mu + (size_t)i * d, vae_mu(m, w, top, i), sizeof(float) * (size_t)d);
        for (int k = 0; k < K; k++) {
            t[k] = (double)k / (K - 1);
            interp_point(z + (size_t)k * d, mu, mu + d, d, t[k], cfg->slerp);
        }
        vae_generate(m, w, z, NULL, K, NULL, pics); /* lower layers at their priors' means */
        write_interp(cfg, ckpt, x, ends, pics, z, t, d, D, err);
    }
    shard_free(&sh);
    vae_work_free(w);
    vd_free(ends);
    vd_free(mu);
    vd_free(z);
    vd_free(pics);
    vd_free(t);
}

int interpolate_main(int argc, char **argv, MPI_Comm comm)
{
    int rank;
    MPI_Comm_rank(comm, &rank);
    InterpConfig cfg;
    VdError err = {0};
    if (opts_command(&interpolate_command, &cfg, argc, argv, rank, &err))
        return VD_OK;
    if (err.code == VD_OK)
        runtime_set_threads(cfg.threads, comm);
    char ckpt[VD_PATH_MAX];
    Vae *m = NULL;
    H5Rows x = {.file = -1, .dset = -1};
    int held = 0;
    if (rank == 0 && err.code == VD_OK && (m = trained_load(cfg.ckpt, ckpt, &err)))
        held = trained_defaults(ckpt, rank, cfg.data, cfg.dataset, sizeof cfg.dataset, NULL, 0);
    if (rank == 0 && err.code == VD_OK &&
        trained_open_data(cfg.data, cfg.dataset, held, ckpt, m, &x, &err) == VD_OK) {
        int64_t worst = cfg.from > cfg.to ? cfg.from : cfg.to;
        if (worst >= x.n_rows)
            vd_fail(&err, VD_EX_USAGE, "--%s %lld: %s has %lld rows (0..%lld)",
                    cfg.from > cfg.to ? "from" : "to", (long long)worst, x.where,
                    (long long)x.n_rows, (long long)x.n_rows - 1);
    }
    if (rank == 0 && err.code == VD_OK)
        trained_check_outputs(cfg.out, ckpt, &err);
    if (rank == 0 && err.code == VD_OK)
        interpolate(&cfg, ckpt, m, &x, &err);
    h5rows_close(&x);
    vae_free(m);
    return vd_error_agree(&err, comm);
}
