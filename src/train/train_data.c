/* train_data.c — the data sets of a training run: opening and checking them
 * before anything is trained, the feed of training batches and the test
 * rows. See run.h. */
#include "run.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "comm.h"

/* Opens an optional dataset: "none" skips it; the default path is skipped
 * when absent; a path the user named must exist. Returns 1 if opened. */
static int open_optional(H5Rows *r, const char *file, const char *path, const char *def,
                         int named, int is_label, VdError *err)
{
    if (strcmp(path, "none") == 0 || (!named && strcmp(path, def) == 0 && !h5rows_exists(file, path)))
        return 0;
    return h5rows_open(r, file, path, is_label, err) == VD_OK;
}

/* Opens the labels at path (default def). A model without --classes uses
 * them only to colour latent.png: default labels that are not usable
 * (floats, strings, -1 for "unlabelled" is fine) are then a note, not an
 * error; a conditional model's error says what it needs. Returns 1 if
 * opened. */
static int open_labels(Run *r, H5Rows *y, const char *path, const char *def, int named,
                       const char *option, VdError *err)
{
    VdError e = {0};
    int classes = r->plan.cfg.model.classes;
    if (open_optional(y, r->plan.cfg.data, path, def, named, 1, &e))
        return 1;
    if (e.code == VD_OK)
        return 0;
    if (classes == 0 && !named && strcmp(path, def) == 0 && e.code == VD_EX_DATAERR) {
        if (r->plan.rank == 0)
            printf("note: %s; the model uses no labels, so they are left out\n", e.msg);
        h5rows_close(y);
        return 0;
    }
    *err = e;
    size_t len = strlen(err->msg);
    if (e.code == VD_EX_DATAERR && classes > 0)
        snprintf(err->msg + len, sizeof err->msg - len,
                 " (--classes %d needs integer labels 0..%d, shaped (N) or (N, 1))", classes,
                 classes - 1);
    else if (e.code == VD_EX_DATAERR)
        snprintf(err->msg + len, sizeof err->msg - len,
                 " (the model uses no labels: %s none leaves them out)", option);
    return 0;
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

/* The labels the model needs are there, and in range (rank 0 reads them). */
static void check_labels(Run *r, VdError *err)
{
    const TrainConfig *cfg = &r->plan.cfg;
    if (cfg->model.classes == 0)
        return;
    if (!r->data.has_train_y)
        vd_fail(err, VD_EX_USAGE, "--classes %d needs training labels (--labels PATH)",
                cfg->model.classes);
    else if (r->data.has_test && !r->data.has_test_y)
        vd_fail(err, VD_EX_USAGE,
                "--classes %d needs test labels (--test-labels PATH, or --test-dataset none)",
                cfg->model.classes);
    else if (r->plan.rank == 0 &&
             check_label_range(&r->data.train_y, cfg->model.classes, err) == VD_OK &&
             r->data.has_test_y)
        check_label_range(&r->data.test_y, cfg->model.classes, err);
}

/* The test rows this rank will hold, checked before anything is allocated:
 * a hostile or mistaken header must not become an out-of-memory abort.
 * (The training rows obey --data-budget.) */
static void check_test_memory(const Run *r, VdError *err)
{
    const H5Rows *tx = &r->data.test_x;
    double esize = tx->is_u8 ? 1 : 4;
    double need = ((double)tx->n_rows / r->plan.size + 1) * ((double)tx->row_len * esize + 40);
    double have = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
    if (have > 0 && need > 0.5 * have / r->plan.size)
        vd_fail(err, VD_EX_DATAERR,
                "%s: each of the %d ranks would hold %.1f GiB of test samples, more than half "
                "its share of this machine's %.1f GiB: use more ranks, or --test-dataset none",
                tx->where, r->plan.size, need / (1 << 30), have / (1 << 30));
}

/* How the samples are images (--layout), the test set's as the training
 * set's, and images for a convolutional model. */
static int check_images(Run *r, VdError *err)
{
    const TrainConfig *cfg = &r->plan.cfg;
    H5Rows *x = &r->data.train_x, *tx = &r->data.test_x;
    if (h5rows_layout(x, cfg->layout, VD_LAYOUT_AUTO, err) != VD_OK)
        return err->code;
    int as_train = !x->img.c ? VD_LAYOUT_NONE : x->img.chw ? VD_LAYOUT_CHW : VD_LAYOUT_HWC;
    if (r->data.has_test && h5rows_layout(tx, as_train, as_train, err) != VD_OK)
        return err->code;
    if (r->data.has_test && memcmp(&tx->img, &x->img, sizeof x->img) != 0)
        return vd_fail(err, VD_EX_DATAERR, "%s samples are %s images of %dx%dx%d, %s's %s of %dx%dx%d",
                       tx->where, image_layout_name(&tx->img), tx->img.h, tx->img.w, tx->img.c,
                       x->where, image_layout_name(&x->img), x->img.h, x->img.w, x->img.c);
    if (!vae_shape_image(&cfg->model) || x->img.c)
        return VD_OK;
    const char *what = cfg->model.preset ? "--preset" : "--conv";
    if (x->n_dims == 4)
        return vd_fail(err, VD_EX_USAGE, "%s: %s is shaped (N, %lld, %lld, %lld), and neither "
                       "its second nor its last axis is plainly the channels: pass --layout hwc "
                       "or --layout chw", what, x->where, (long long)x->dims[1],
                       (long long)x->dims[2], (long long)x->dims[3]);
    return vd_fail(err, VD_EX_USAGE, "%s needs image samples, (N, H, W), (N, H, W, C) or "
                   "(N, C, H, W); %s has %lld values per sample", what, x->where,
                   (long long)x->row_len);
}

/* --val-fraction: the training rows split in two views of the same
 * datasets, the held-out part becoming the test set. */
static void hold_out(Run *r, VdError *err)
{
    const TrainConfig *cfg = &r->plan.cfg;
    if (r->data.has_test) {
        vd_fail(err, VD_EX_USAGE, "--val-fraction holds out a test set when the data has none, "
                "and %s is one: pass --test-dataset none to hold out training rows instead",
                r->data.test_x.where);
        return;
    }
    int64_t n = r->data.train_x.n_rows, n_keep, n_held;
    int64_t *keep = shard_split_rows(n, cfg->val_fraction, cfg->seed, 0, &n_keep);
    int64_t *held = shard_split_rows(n, cfg->val_fraction, cfg->seed, 1, &n_held);
    if (n_held < 1 || n_keep < 1) {
        vd_free(keep);
        vd_free(held);
        vd_fail(err, VD_EX_USAGE, "--val-fraction %g of %s's %lld rows leaves %s",
                cfg->val_fraction, r->data.train_x.where, (long long)n,
                n_held < 1 ? "no row held out" : "no row to train on");
        return;
    }
    if (h5rows_open(&r->data.test_x, cfg->data, cfg->dataset, 0, err) != VD_OK ||
        h5rows_layout(&r->data.test_x, cfg->layout, VD_LAYOUT_AUTO, err) != VD_OK ||
        (r->data.has_train_y &&
         h5rows_open(&r->data.test_y, cfg->data, cfg->labels, 1, err) != VD_OK)) {
        vd_free(keep);
        vd_free(held);
        return;
    }
    h5rows_select(&r->data.train_x, keep, n_keep);
    h5rows_select(&r->data.test_x, held, n_held);
    if (r->data.has_train_y) {
        h5rows_select_like(&r->data.train_y, &r->data.train_x);
        h5rows_select_like(&r->data.test_y, &r->data.test_x);
    }
    r->data.has_test = 1;
    r->data.has_test_y = r->data.has_train_y;
    snprintf(r->data.test_x.where, sizeof r->data.test_x.where, "%.480s (held out)",
             r->data.train_x.where);
}

void train_data_open(Run *r, VdError *err)
{
    const TrainConfig *cfg = &r->plan.cfg;
    if (h5rows_open(&r->data.train_x, cfg->data, cfg->dataset, 0, err) != VD_OK)
        return;
    r->data.has_train_y = open_labels(r, &r->data.train_y, cfg->labels, "/train/labels",
                                      cfg->named_labels, "--labels", err);
    if (err->code == VD_OK)
        r->data.has_test = open_optional(&r->data.test_x, cfg->data, cfg->test_dataset,
                                         "/test/images", cfg->named_test_dataset, 0, err);
    if (err->code == VD_OK && r->data.has_test)
        r->data.has_test_y = open_labels(r, &r->data.test_y, cfg->test_labels, "/test/labels",
                                         cfg->named_test_labels, "--test-labels", err);
    if (err->code == VD_OK && cfg->val_fraction > 0)
        hold_out(r, err);
    if (err->code != VD_OK)
        return;
    if (check_images(r, err) != VD_OK)
        return;
    const H5Rows *x = &r->data.train_x, *y = &r->data.train_y, *tx = &r->data.test_x,
                 *ty = &r->data.test_y;
    if (r->data.has_train_y && y->n_rows != x->n_rows)
        vd_fail(err, VD_EX_DATAERR, "%s has %lld labels for %lld samples", y->where,
                (long long)y->n_rows, (long long)x->n_rows);
    else if (r->data.has_test && tx->row_len != x->row_len)
        vd_fail(err, VD_EX_DATAERR, "%s samples have %lld values, training samples %lld",
                tx->where, (long long)tx->row_len, (long long)x->row_len);
    else if (r->data.has_test_y && ty->n_rows != tx->n_rows)
        vd_fail(err, VD_EX_DATAERR, "%s has %lld labels for %lld samples", ty->where,
                (long long)ty->n_rows, (long long)tx->n_rows);
    else
        check_labels(r, err);
    if (err->code != VD_OK)
        return;
    char step_rows[96];
    train_step_rows(cfg, step_rows, sizeof step_rows);
    if (x->n_rows < r->plan.batch)
        vd_fail(err, VD_EX_DATAERR, "%s has %lld samples, fewer than one step's %s", x->where,
                (long long)x->n_rows, step_rows);
    else if (r->data.has_test && tx->n_rows < r->plan.size)
        vd_fail(err, VD_EX_DATAERR, "%s has %lld samples, fewer than the %d ranks", tx->where,
                (long long)tx->n_rows, r->plan.size);
    else if (r->data.has_test)
        check_test_memory(r, err);
}

/* Collective: bytes of training rows a rank may hold (--data-budget). */
static int64_t data_budget(const TrainConfig *cfg, MPI_Comm comm)
{
    if (cfg->data_budget > 0)
        return (int64_t)(cfg->data_budget * (1 << 20));
    int local = comm_node_ranks(comm);
    double have = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
    double share = have > 0 ? have / 4 / local : (double)(1 << 30);
    MPI_Allreduce(MPI_IN_PLACE, &share, 1, MPI_DOUBLE, MPI_MIN, comm);
    return (int64_t)share;
}

/* Local: this rank's block of test rows, and room for their latent means
 * when latent.png will be drawn. */
static void load_test_rows(Run *r, int unit, VdError *err)
{
    int64_t n_test = r->plan.test_end - r->plan.test_begin;
    int64_t *test_rows = vd_calloc((size_t)n_test, sizeof(int64_t));
    for (int64_t i = 0; i < n_test; i++)
        test_rows[i] = r->plan.test_begin + i;
    shard_init(&r->data.test, &r->data.test_x, r->data.has_test_y ? &r->data.test_y : NULL, n_test,
               unit);
    r->data.test.n_classes = r->plan.cfg.model.classes;
    shard_load(&r->data.test, test_rows, n_test, err);
    vd_free(test_rows);
    if (vae_top_latent(r->live.m) == 2 && r->data.has_test_y) {
        r->live.test_mu = vd_calloc((size_t)(2 * n_test), sizeof(float));
        r->live.test_lab = vd_calloc((size_t)n_test, sizeof(int32_t));
        if (r->plan.rank == 0) {
            r->live.all_mu = vd_calloc((size_t)(2 * r->data.test_x.n_rows), sizeof(float));
            r->live.all_lab = vd_calloc((size_t)r->data.test_x.n_rows, sizeof(int32_t));
        }
    }
}

int train_data_load(Run *r, VdError *err)
{
    const TrainConfig *cfg = &r->plan.cfg;
    int unit = vae_unit_data(&cfg->model);
    FeedConfig fc = {&r->data.train_x,
                     r->data.has_train_y ? &r->data.train_y : NULL,
                     unit,
                     cfg->model.classes,
                     r->plan.batch,
                     r->plan.steps_per_epoch,
                     cfg->epochs,
                     cfg->seed,
                     data_budget(cfg, r->plan.comm),
                     cfg->data_mode,
                     cfg->parallel_io && !r->data.train_x.map,
                     r->plan.comm};
    if (feed_open(&r->data.feed, &fc, err))
        return err->code;
    if (r->data.has_test)
        load_test_rows(r, unit, err);
    return vd_error_agree(err, r->plan.comm);
}

void train_data_print(const Run *r)
{
    const Feed *feed = r->data.feed;
    double mib = (double)feed_bytes(feed) / (1 << 20), budget = (double)feed_budget(feed) / (1 << 20);
    int parallel = r->plan.cfg.parallel_io;
    if (feed_mode(feed) == VD_FEED_RESIDENT)
        printf("data: resident, %.1f MiB per rank (budget %.0f MiB), read in %.2f s%s\n", mib, budget,
               feed_load_seconds(feed),
               parallel && !r->data.train_x.map ? " (MPI-IO collective)"
               : parallel                       ? " (not collective: --val-fraction picks rows)"
                                                : "");
    else
        printf("data: streamed, %.1f MiB per rank (budget %.0f MiB)\n", mib, budget);
    fflush(stdout);
}
