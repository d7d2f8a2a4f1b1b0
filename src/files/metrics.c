/* metrics.c — CSV and live (SWMR) HDF5 metrics. See metrics.h. */
#include "metrics.h"

#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "durable.h"

#define NCOLS 9 /* the most a table has, and the stride of its rows in memory */

static const char *train_cols[] = {"step", "epoch", "loss", "recon", "kl", "lr",
                                   "samples_per_s", "clipped", "grad_norm"};
static const char *epoch_cols[] = {"epoch", "step", "train_loss", "test_loss",
                                   "test_recon", "test_kl", "seconds", "active_units"};

/* One table: its CSV file, its metrics.h5 group, and the rows that wait for
 * metrics.h5. */
typedef struct {
    const char *csv, *group, **cols;
    int ncols;             /* columns of this table (<= NCOLS) */
    int step_col;          /* which column is the step */
    hid_t dset[NCOLS];     /* open while metrics.h5 is */
    double *pending;       /* (n_pending, NCOLS) rows not yet in metrics.h5 */
    size_t n_pending, cap;
    int warned_csv;
} Table;

struct Metrics {
    char dir[VD_PATH_MAX], h5path[VD_PATH_MAX];
    hid_t file;            /* metrics.h5, SWMR writer; < 0 while it cannot be opened */
    int warned_h5;
    Table t[2];            /* train, epochs */
};

static void warn(int *once, const char *what)
{
    if (!*once)
        fprintf(stderr, "vae-dist: warning: %s; training goes on, and the rows are written when "
                        "it can be\n", what);
    *once = 1;
}

/* ---- CSV ---------------------------------------------------------------- */

static int append_csv(Metrics *m, Table *t, const double *v)
{
    char path[VD_PATH_MAX];
    vd_path_join(path, m->dir, t->csv);
    FILE *f = fopen(path, "a");
    if (!f)
        return -1;
    for (int i = 0; i < t->ncols; i++)
        fprintf(f, "%.9g%c", v[i], i + 1 < t->ncols ? ',' : '\n');
    return fclose(f);
}

/* Keeps the header and the rows whose step is <= keep, as the current
 * columns: a row of an older layout with fewer columns gets NaN for the
 * new ones. A missing file gets the header. The rows kept go to *kept
 * (n, NCOLS), for metrics.h5 when its own cannot be read. */
static int rewrite_csv(const char *dir, const Table *t, int64_t keep, double **kept, size_t *n_kept,
                       VdError *err)
{
    size_t cap = 0;
    *kept = NULL;
    *n_kept = 0;
    char path[VD_PATH_MAX], line[4096];
    if (vd_path_join(path, dir, t->csv) != 0)
        return vd_fail(err, VD_EX_CANTCREAT, "%s/%s: path too long", dir, t->csv);
    FILE *in = fopen(path, "r");
    DurableFile out;
    if (durable_open(&out, path, "w", err) != VD_OK) {
        if (in)
            fclose(in);
        return err->code;
    }
    for (int i = 0; i < t->ncols; i++)
        fprintf(out.f, "%s%c", t->cols[i], i + 1 < t->ncols ? ',' : '\n');
    for (int first = 1; in && fgets(line, sizeof line, in); first = 0) {
        if (first)
            continue;
        double v[NCOLS] = {0};
        char *p = line;
        int n = 0;
        while (n < t->ncols && *p && *p != '\n') {
            v[n++] = strtod(p, &p);
            p += *p == ',';
        }
        if (n <= t->step_col || v[t->step_col] > (double)keep)
            continue;
        for (int i = n; i < NCOLS; i++)
            v[i] = NAN;
        for (int i = 0; i < t->ncols; i++)
            fprintf(out.f, "%.9g%c", v[i], i + 1 < t->ncols ? ',' : '\n');
        if (*n_kept == cap) {
            cap = cap ? 2 * cap : 64;
            double *grown = vd_calloc(cap, NCOLS * sizeof(double));
            if (*n_kept)
                memcpy(grown, *kept, *n_kept * NCOLS * sizeof(double));
            vd_free(*kept);
            *kept = grown;
        }
        memcpy(*kept + *n_kept * NCOLS, v, sizeof v);
        (*n_kept)++;
    }
    if (in)
        fclose(in);
    return durable_commit(&out, err);
}

/* ---- metrics.h5 ------------------------------------------------------------ */

static hid_t latest_format(void)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST); /* SWMR needs it */
    return fapl;
}

/* Column col of group in file, the rows whose step <= keep, into a new
 * (rows, NCOLS) array of *n rows; NaN where the old file lacks a column. */
static double *read_old(hid_t file, const Table *t, int64_t keep, size_t *n)
{
    *n = 0;
    if (H5Lexists(file, t->group, H5P_DEFAULT) <= 0)
        return NULL;
    hid_t g = H5Gopen2(file, t->group, H5P_DEFAULT);
    double *rows = NULL;
    size_t have = 0;
    for (int c = 0; g >= 0 && c < t->ncols; c++) {
        if (H5Lexists(g, t->cols[c], H5P_DEFAULT) <= 0)
            continue;
        hid_t d = H5Dopen2(g, t->cols[c], H5P_DEFAULT), s = H5Dget_space(d);
        hsize_t len = 0;
        H5Sget_simple_extent_dims(s, &len, NULL);
        H5Sclose(s);
        if (!rows) {
            have = (size_t)len;
            rows = vd_calloc(have ? have : 1, NCOLS * sizeof(double));
            for (size_t i = 0; i < have * NCOLS; i++)
                rows[i] = NAN;
        }
        double *col = vd_calloc(len ? len : 1, sizeof(double));
        if (len && H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, col) >= 0)
            for (size_t i = 0; i < have && i < len; i++)
                rows[i * NCOLS + c] = col[i];
        vd_free(col);
        H5Dclose(d);
    }
    if (g >= 0)
        H5Gclose(g);
    while (*n < have && rows[*n * NCOLS + t->step_col] <= (double)keep)
        (*n)++;
    return rows;
}

/* Creates t's group and columns in file with its rows (n, NCOLS). */
static int create_table(hid_t file, const Table *t, const double *rows, size_t n)
{
    hid_t g = H5Gcreate2(file, t->group, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int bad = g < 0;
    double *col = vd_calloc(n ? n : 1, sizeof(double));
    for (int c = 0; !bad && c < t->ncols; c++) {
        hsize_t len = (hsize_t)n, unlimited = H5S_UNLIMITED, chunk = 256;
        hid_t space = H5Screate_simple(1, &len, &unlimited), dcpl = H5Pcreate(H5P_DATASET_CREATE);
        H5Pset_chunk(dcpl, 1, &chunk);
        hid_t d = H5Dcreate2(g, t->cols[c], H5T_IEEE_F64LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
        for (size_t i = 0; i < n; i++)
            col[i] = rows[i * NCOLS + c];
        bad = d < 0 || (n && H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, col) < 0);
        if (d >= 0)
            H5Dclose(d);
        H5Pclose(dcpl);
        H5Sclose(space);
    }
    vd_free(col);
    if (g >= 0)
        H5Gclose(g);
    return bad ? -1 : 0;
}

/* metrics.h5 anew in the format SWMR needs, with the rows kept from the old
 * one (which a reader may still hold: the old file goes by rename), or from
 * the CSV's (csv, n_csv) where the old one lacks them or cannot be read. */
static int rebuild_h5(Metrics *m, int64_t keep, double **csv, const size_t *n_csv, VdError *err)
{
    size_t n[2] = {0, 0};
    double *rows[2] = {NULL, NULL};
    hid_t old = access(m->h5path, F_OK) == 0 ? H5Fopen(m->h5path, H5F_ACC_RDONLY, H5P_DEFAULT)
                                             : H5I_INVALID_HID;
    for (int k = 0; k < 2; k++) {
        rows[k] = old >= 0 ? read_old(old, &m->t[k], keep, &n[k]) : NULL;
        if (n[k] != n_csv[k]) { /* the CSV is the record */
            vd_free(rows[k]);
            rows[k] = csv[k];
            n[k] = n_csv[k];
            csv[k] = NULL;
        }
    }
    if (old >= 0)
        H5Fclose(old);
    DurableFile out;
    int rc = durable_begin(&out, m->h5path, err);
    hid_t fapl = latest_format();
    hid_t f = rc == VD_OK ? H5Fcreate(out.tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl) : -1;
    H5Pclose(fapl);
    int bad = f < 0;
    for (int k = 0; !bad && k < 2; k++)
        bad = create_table(f, &m->t[k], rows[k], n[k]) != 0;
    if (f >= 0 && H5Fclose(f) < 0)
        bad = 1;
    vd_free(rows[0]);
    vd_free(rows[1]);
    if (rc != VD_OK)
        return rc;
    if (bad) {
        durable_discard(&out);
        return vd_fail(err, VD_EX_IOERR, "cannot write %s", m->h5path);
    }
    return durable_commit(&out, err);
}

static void close_h5(Metrics *m)
{
    for (int k = 0; k < 2; k++)
        for (int c = 0; c < NCOLS; c++) {
            if (m->t[k].dset[c] >= 0)
                H5Dclose(m->t[k].dset[c]);
            m->t[k].dset[c] = H5I_INVALID_HID;
        }
    if (m->file >= 0)
        H5Fclose(m->file);
    m->file = H5I_INVALID_HID;
}

/* Opens metrics.h5 as the SWMR writer, keeping every column open: 0 or -1. */
static int open_h5(Metrics *m)
{
    hid_t fapl = latest_format();
    m->file = H5Fopen(m->h5path, H5F_ACC_RDWR | H5F_ACC_SWMR_WRITE, fapl);
    H5Pclose(fapl);
    int bad = m->file < 0;
    for (int k = 0; !bad && k < 2; k++)
        for (int c = 0; !bad && c < m->t[k].ncols; c++) {
            char name[64];
            snprintf(name, sizeof name, "%s/%s", m->t[k].group, m->t[k].cols[c]);
            bad = (m->t[k].dset[c] = H5Dopen2(m->file, name, H5P_DEFAULT)) < 0;
        }
    if (bad)
        close_h5(m);
    return bad ? -1 : 0;
}

/* Appends the rows (n, NCOLS) to t's columns and flushes them to readers. */
static int append_h5(Table *t, const double *rows, size_t n)
{
    /* The rows go after the shortest column: a write that failed part way
     * (some columns grown, some not) is then redone in place when retried,
     * and the columns stay aligned. */
    hsize_t base = 0, cnt = (hsize_t)n;
    for (int c = 0; c < t->ncols; c++) {
        hsize_t len = 0;
        hid_t space = H5Dget_space(t->dset[c]);
        int got = space >= 0 && H5Sget_simple_extent_dims(space, &len, NULL) >= 0;
        if (space >= 0)
            H5Sclose(space);
        if (!got)
            return -1; /* the rows stay pending: a length taken as 0 would cut the columns */
        base = c == 0 || len < base ? len : base;
    }
    double *col = vd_calloc(n, sizeof(double));
    int bad = 0;
    for (int c = 0; !bad && c < t->ncols; c++) {
        hid_t d = t->dset[c];
        hsize_t newlen = base + cnt;
        for (size_t i = 0; i < n; i++)
            col[i] = rows[i * NCOLS + c];
        bad = H5Dset_extent(d, &newlen) < 0;
        if (!bad) {
            hid_t space = H5Dget_space(d);
            H5Sselect_hyperslab(space, H5S_SELECT_SET, &base, NULL, &cnt, NULL);
            hid_t mem = H5Screate_simple(1, &cnt, NULL);
            bad = H5Dwrite(d, H5T_NATIVE_DOUBLE, mem, space, H5P_DEFAULT, col) < 0 ||
                  H5Dflush(d) < 0;
            H5Sclose(mem);
            H5Sclose(space);
        }
    }
    vd_free(col);
    return bad ? -1 : 0;
}

/* Writes what waits for metrics.h5, opening it if need be (and making it
 * anew, empty, if it is gone: the rows that wait then go into it). */
static void flush_pending(Metrics *m)
{
    VdError ignored = {0};
    if (m->file < 0 && access(m->h5path, F_OK) != 0)
        rebuild_h5(m, -1, (double *[2]){NULL, NULL}, (size_t[2]){0, 0}, &ignored);
    if (m->file < 0 && open_h5(m) != 0) {
        warn(&m->warned_h5, "metrics.h5 cannot be opened for writing (a reader holding it "
                            "should open it with swmr=True)");
        return;
    }
    for (int k = 0; k < 2; k++) {
        Table *t = &m->t[k];
        if (!t->n_pending)
            continue;
        if (append_h5(t, t->pending, t->n_pending) != 0) {
            warn(&m->warned_h5, "writing metrics.h5 failed");
            close_h5(m); /* reopened, and the rows written again, at the next row */
            return;
        }
        t->n_pending = 0;
    }
}

static void add_row(Metrics *m, Table *t, const double *v)
{
    if (append_csv(m, t, v) != 0) {
        char what[VD_PATH_MAX + 64];
        snprintf(what, sizeof what, "appending to %s/%s failed (%s)", m->dir, t->csv,
                 strerror(errno));
        warn(&t->warned_csv, what);
    }
    if (t->n_pending == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 16;
        double *p = vd_calloc(cap, NCOLS * sizeof(double));
        if (t->n_pending)
            memcpy(p, t->pending, t->n_pending * NCOLS * sizeof(double));
        vd_free(t->pending);
        t->pending = p;
        t->cap = cap;
    }
    memset(t->pending + t->n_pending * NCOLS, 0, NCOLS * sizeof(double));
    memcpy(t->pending + t->n_pending * NCOLS, v, (size_t)t->ncols * sizeof(double));
    t->n_pending++;
    flush_pending(m);
}

Metrics *metrics_start(const char *dir, int64_t keep_step, VdError *err)
{
    Metrics *m = vd_calloc(1, sizeof *m);
    m->file = H5I_INVALID_HID;
    m->t[0] = (Table){"metrics.csv", "train", train_cols, (int)(sizeof train_cols / sizeof *train_cols),
                      0, {0}, NULL, 0, 0, 0};
    m->t[1] = (Table){"epochs.csv", "test", epoch_cols, (int)(sizeof epoch_cols / sizeof *epoch_cols),
                      1, {0}, NULL, 0, 0, 0};
    for (int k = 0; k < 2; k++)
        for (int c = 0; c < NCOLS; c++)
            m->t[k].dset[c] = H5I_INVALID_HID;
    snprintf(m->dir, sizeof m->dir, "%s", dir);
    if (vd_path_join(m->h5path, dir, "metrics.h5") != 0) {
        vd_fail(err, VD_EX_CANTCREAT, "%s/metrics.h5: path too long", dir);
        vd_free(m);
        return NULL;
    }
    double *csv[2] = {NULL, NULL};
    size_t n_csv[2] = {0, 0};
    if (rewrite_csv(dir, &m->t[0], keep_step, &csv[0], &n_csv[0], err) ||
        rewrite_csv(dir, &m->t[1], keep_step, &csv[1], &n_csv[1], err)) {
        vd_free(csv[0]);
        vd_free(csv[1]);
        vd_free(m);
        return NULL;
    }
    VdError h5err = {0};
    int rc = rebuild_h5(m, keep_step, csv, n_csv, &h5err);
    vd_free(csv[0]);
    vd_free(csv[1]);
    if (rc != VD_OK) {
        char what[900];
        snprintf(what, sizeof what, "%s", h5err.msg);
        warn(&m->warned_h5, what);
    } else if (open_h5(m) != 0) {
        warn(&m->warned_h5, "metrics.h5 cannot be opened for writing (a reader holding it "
                            "should open it with swmr=True)");
    }
    return m;
}

void metrics_train(Metrics *m, const TrainRow *row) { add_row(m, &m->t[0], &row->step); }
void metrics_epoch(Metrics *m, const EpochRow *row) { add_row(m, &m->t[1], &row->epoch); }

void metrics_close(Metrics *m)
{
    if (!m)
        return;
    if (m->t[0].n_pending || m->t[1].n_pending)
        flush_pending(m);
    if (m->t[0].n_pending || m->t[1].n_pending)
        fprintf(stderr, "vae-dist: warning: %zu + %zu rows are missing from %s (the CSV files "
                        "have them)\n", m->t[0].n_pending, m->t[1].n_pending, m->h5path);
    close_h5(m);
    for (int k = 0; k < 2; k++)
        vd_free(m->t[k].pending);
    vd_free(m);
}
