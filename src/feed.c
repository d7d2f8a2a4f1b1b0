/* feed.c — a rank's training batches, read ahead of the step. See feed.h. */
#include "feed.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "comm.h"
#include "h5util.h"
#include "rng.h"
#include "watch.h"

#define UNIT_BYTES (1 << 20) /* stream mode reads about this much at a time, */
#define UNIT_SHARE 16        /* or 1/16 of the budget if that is less */
#define QUEUE 3              /* units read ahead in stream mode */

typedef struct {
    char *raw;      /* (unit_rows, row_bytes) */
    int32_t *lab;   /* (unit_rows) */
    int64_t first;  /* dataset row of raw[0] */
    int64_t n;      /* rows of this unit the epoch uses */
} Unit;

struct Feed {
    FeedConfig c;
    int mode, rank, size, B;
    size_t row_bytes;
    int64_t n_rows, need; /* rows in the dataset; rows this rank trains on per epoch */
    double wait, load;

    /* resident */
    int64_t b0, nb;              /* this rank's block of rows */
    char *block;                 /* (nb, row_bytes) */
    int32_t *block_lab;          /* (nb) */
    int64_t *perm;               /* (n_rows) */
    int64_t *rows[2], *slot[2];  /* (need) per epoch buffer: dataset row, where it is */
    char *recv[2];               /* (need, row_bytes) rows from other ranks */
    int32_t *recv_lab[2];
    char *send;                  /* (nb, row_bytes) */
    int32_t *send_lab;
    int *counts;                 /* 4 size: send counts, send displs, recv counts, recv displs */
    MPI_Datatype row_type;
    MPI_Request req[2];
    int64_t pending;             /* epoch whose exchange is posted into buf, or -1 */
    int cur, pending_buf;        /* buffers of the current and the posted epoch */

    /* stream */
    int64_t unit_rows, n_units, window; /* rows per unit, units, window capacity in rows */
    char *win;                   /* (window, row_bytes) */
    int32_t *win_lab;
    int64_t *win_row;
    int64_t filled, pulled, drawn, total, epoch; /* the consumer's place in the epoch */
    Unit q[QUEUE];
    int q_head, q_count;         /* consumer reads q[q_head]; q_count units ready */
    int64_t q_pos;               /* next row of q[q_head] */
    int64_t window_cap;          /* the window's capacity this epoch */
    int64_t *unit_list;          /* (n_units) reader scratch */
    int64_t *main_list;          /* (n_units) the consumer's */
    int64_t *row_list;           /* (unit_rows) reader scratch */
    pthread_t reader;
    int reader_started, quit;
    int64_t reader_epoch;        /* first epoch the reader serves */
    pthread_mutex_t mu;
    pthread_cond_t ready, space;
    VdError rerr;                /* the reader's error */
};

int feed_mode(const Feed *f) { return f->mode; }
double feed_wait_seconds(const Feed *f) { return f->wait; }
double feed_load_seconds(const Feed *f) { return f->load; }

static int64_t need_rows(const FeedConfig *c, int rank, int size)
{
    return c->steps_per_epoch * shard_local_batch(c->global_batch, rank, size);
}

int64_t feed_bytes(const Feed *f)
{
    size_t rb = f->row_bytes + 4;
    if (f->mode == VD_FEED_RESIDENT)
        return (int64_t)((size_t)f->nb * 2 * rb + (size_t)f->need * 2 * (rb + 16) +
                         (size_t)f->n_rows * 8);
    return (int64_t)((size_t)f->window * (rb + 8) + (size_t)QUEUE * f->unit_rows * rb);
}

/* ---- resident ----------------------------------------------------------- */

/* The rank whose block (shard_range) holds row. */
static int owner(int64_t row, int64_t n, int size)
{
    int64_t base = n / size, extra = n % size, big = extra * (base + 1);
    return row < big ? (int)(row / (base + 1)) : (int)(extra + (row - big) / base);
}

/* Reads rows [first, first + n) of r into raw (and lab): independent reads
 * through the H5Rows, or, collectively, by reopening the file with MPI-IO. */
static int read_range(const Feed *f, H5Rows *r, int64_t first, int64_t n, void *out,
                      int collective, VdError *err)
{
    if (!collective) {
        int64_t *ids = malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
        if (!ids)
            return vd_fail(err, VD_EX_IOERR, "out of memory listing %lld rows", (long long)n);
        for (int64_t i = 0; i < n; i++)
            ids[i] = first + i;
        int rc = h5rows_read(r, ids, n, out, err);
        free(ids);
        return rc;
    }
    char path[VD_PATH_MAX], name[512];
    if (H5Fget_name(r->file, path, sizeof path) < 0 || H5Iget_name(r->dset, name, sizeof name) < 0)
        return vd_fail(err, VD_EX_IOERR, "%s: cannot name the dataset", r->where);
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS), dxpl = H5Pcreate(H5P_DATASET_XFER);
    H5Pset_fapl_mpio(fapl, f->c.comm, MPI_INFO_NULL);
    H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE);
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    hid_t dset = file >= 0 ? H5Dopen2(file, name, H5P_DEFAULT) : H5I_INVALID_HID;
    hid_t fspace = dset >= 0 ? H5Dget_space(dset) : H5I_INVALID_HID;
    hsize_t start[VD_MAX_DIMS] = {0}, cnt[VD_MAX_DIMS];
    for (int i = 0; i < r->n_dims; i++)
        cnt[i] = (hsize_t)r->dims[i];
    start[0] = (hsize_t)first;
    cnt[0] = (hsize_t)n;
    hid_t mspace = H5Screate_simple(r->n_dims, cnt, NULL);
    hid_t mtype = r->is_label ? H5T_NATIVE_INT32 : r->is_u8 ? H5T_NATIVE_UINT8 : H5T_NATIVE_FLOAT;
    herr_t rc = -1;
    if (fspace >= 0) {
        if (n == 0) {
            H5Sselect_none(fspace);
            H5Sselect_none(mspace);
        } else {
            H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, cnt, NULL);
        }
        rc = H5Dread(dset, mtype, mspace, fspace, dxpl, out); /* every rank calls it */
    }
    H5Sclose(mspace);
    if (fspace >= 0)
        H5Sclose(fspace);
    if (dset >= 0)
        H5Dclose(dset);
    if (file >= 0)
        H5Fclose(file);
    H5Pclose(fapl);
    H5Pclose(dxpl);
    return rc < 0 ? vd_fail(err, VD_EX_IOERR, "%s: collective read of rows %lld..%lld failed",
                            r->where, (long long)first, (long long)(first + n - 1))
                  : VD_OK;
}

static int resident_open(Feed *f, VdError *err)
{
    const FeedConfig *c = &f->c;
    int64_t b1;
    shard_range(f->n_rows, f->rank, f->size, &f->b0, &b1);
    f->nb = b1 - f->b0;
    size_t rb = f->row_bytes;
    f->block = vd_calloc((size_t)f->nb + 1, rb);
    f->block_lab = vd_calloc((size_t)f->nb + 1, sizeof(int32_t));
    f->perm = vd_calloc((size_t)f->n_rows, sizeof(int64_t));
    for (int b = 0; b < 2; b++) {
        f->rows[b] = vd_calloc((size_t)f->need, sizeof(int64_t));
        f->slot[b] = vd_calloc((size_t)f->need, sizeof(int64_t));
        if (f->size > 1) {
            f->recv[b] = vd_calloc((size_t)f->need + 1, rb);
            f->recv_lab[b] = vd_calloc((size_t)f->need + 1, sizeof(int32_t));
        }
    }
    if (f->size > 1) {
        f->send = vd_calloc((size_t)f->nb + 1, rb);
        f->send_lab = vd_calloc((size_t)f->nb + 1, sizeof(int32_t));
    }
    f->counts = vd_calloc(4 * (size_t)f->size, sizeof(int));
    MPI_Type_contiguous((int)rb, MPI_BYTE, &f->row_type);
    MPI_Type_commit(&f->row_type);
    f->req[0] = f->req[1] = MPI_REQUEST_NULL;
    f->pending = -1;

    double t0 = vd_now();
    int rc = read_range(f, c->images, f->b0, f->nb, f->block, c->collective, err);
    /* collective reads are made by every rank, whatever its first one gave */
    if (c->labels && (rc == VD_OK || c->collective)) {
        VdError lerr = {0};
        int lrc = read_range(f, c->labels, f->b0, f->nb, f->block_lab, c->collective, &lerr);
        if (rc == VD_OK && lrc != VD_OK) {
            rc = lrc;
            *err = lerr;
        }
    }
    if (rc == VD_OK) {
        int64_t *ids = vd_calloc((size_t)f->nb + 1, sizeof(int64_t));
        for (int64_t i = 0; i < f->nb; i++)
            ids[i] = f->b0 + i;
        rc = rows_check(c->images, c->labels, c->check_unit, c->n_classes, f->block,
                        f->block_lab, ids, f->nb, err);
        vd_free(ids);
    }
    f->load = vd_now() - t0;
    return rc;
}

/* Plans epoch's rows into buffer b and posts the exchange that brings the
 * rows held by other ranks. */
static void resident_post(Feed *f, int64_t epoch, int b)
{
    const FeedConfig *c = &f->c;
    int p = f->size, me = f->rank;
    Rng order = rng_stream(c->seed, VD_STREAM_ORDER, 0);
    rng_permutation(&order, (uint32_t)epoch, f->perm, f->n_rows);
    shard_epoch_rows(f->perm, c->steps_per_epoch, c->global_batch, me, p, f->rows[b]);
    if (p == 1) {
        for (int64_t i = 0; i < f->need; i++)
            f->slot[b][i] = f->rows[b][i] - f->b0;
        f->pending = epoch;
        f->pending_buf = b;
        return;
    }
    int *scount = f->counts, *sdispl = scount + p, *rcount = sdispl + p, *rdispl = rcount + p;
    memset(f->counts, 0, 4 * (size_t)p * sizeof(int));
    /* receive side: my rows held elsewhere, grouped by owner in training order */
    for (int64_t i = 0; i < f->need; i++) {
        int o = owner(f->rows[b][i], f->n_rows, p);
        if (o != me)
            rcount[o]++;
    }
    for (int q = 1; q < p; q++)
        rdispl[q] = rdispl[q - 1] + rcount[q - 1];
    int *fill = sdispl; /* borrowed as a cursor, rebuilt below */
    memcpy(fill, rdispl, sizeof(int) * (size_t)p);
    for (int64_t i = 0; i < f->need; i++) {
        int64_t row = f->rows[b][i];
        int o = owner(row, f->n_rows, p);
        f->slot[b][i] = o == me ? row - f->b0 : f->nb + fill[o]++;
    }
    /* send side: for each rank q in q's training order, the rows of my block it
     * trains on (every rank sees the same permutation, so no request is sent) */
    int64_t n_sent = 0;
    for (int q = 0; q < p; q++) {
        int Bq = shard_local_batch(c->global_batch, q, p);
        int64_t off = shard_local_offset(c->global_batch, q, p);
        sdispl[q] = (int)n_sent;
        scount[q] = 0;
        if (q == me)
            continue;
        for (int64_t s = 0; s < c->steps_per_epoch; s++)
            for (int k = 0; k < Bq; k++) {
                int64_t row = f->perm[s * c->global_batch + off + k];
                if (row >= f->b0 && row < f->b0 + f->nb) {
                    memcpy(f->send + (size_t)n_sent * f->row_bytes,
                           f->block + (size_t)(row - f->b0) * f->row_bytes, f->row_bytes);
                    f->send_lab[n_sent] = f->block_lab[row - f->b0];
                    n_sent++;
                    scount[q]++;
                }
            }
    }
    MPI_Ialltoallv(f->send, scount, sdispl, f->row_type, f->recv[b], rcount, rdispl, f->row_type,
                   c->comm, &f->req[0]);
    if (c->labels)
        MPI_Ialltoallv(f->send_lab, scount, sdispl, MPI_INT32_T, f->recv_lab[b], rcount, rdispl,
                       MPI_INT32_T, c->comm, &f->req[1]);
    f->pending = epoch;
    f->pending_buf = b;
}

static void resident_epoch(Feed *f, int64_t epoch)
{
    double t0 = vd_now();
    watch_wait("the exchange of training rows");
    if (f->pending != epoch) { /* the first epoch, or resumed: nothing read ahead */
        MPI_Waitall(2, f->req, MPI_STATUSES_IGNORE);
        resident_post(f, epoch, 0);
    }
    MPI_Waitall(2, f->req, MPI_STATUSES_IGNORE);
    watch_done();
    f->wait += vd_now() - t0;
    f->cur = f->pending_buf;
    if (epoch + 1 < f->c.epochs)
        resident_post(f, epoch + 1, f->cur ^ 1);
}

static void resident_batch(Feed *f, int64_t s, float *x, int32_t *y, int64_t *rows)
{
    int flag; /* lets the exchange in flight move on between steps */
    if (f->req[0] != MPI_REQUEST_NULL)
        MPI_Testall(2, f->req, &flag, MPI_STATUSES_IGNORE);
    int b = f->cur;
    for (int i = 0; i < f->B; i++) {
        int64_t pos = s * f->B + i, sl = f->slot[b][pos];
        const char *src = sl < f->nb ? f->block + (size_t)sl * f->row_bytes
                                     : f->recv[b] + (size_t)(sl - f->nb) * f->row_bytes;
        row_to_float(f->c.images, src, x + (size_t)i * f->c.images->row_len);
        if (y)
            y[i] = sl < f->nb ? f->block_lab[sl] : f->recv_lab[b][sl - f->nb];
        rows[i] = f->rows[b][pos];
    }
}

/* ---- stream ------------------------------------------------------------- */

/* The units rank takes in epoch (positions rank, rank + p, ... of the
 * epoch's unit permutation) into list; returns their count, and their rows
 * in *supply. */
static int64_t epoch_units(const Feed *f, int64_t epoch, int64_t *list, int64_t *supply)
{
    Rng r = rng_stream(f->c.seed, VD_STREAM_UNITS, 0);
    int64_t *perm = list; /* permuted in place, then compacted */
    rng_permutation(&r, (uint32_t)epoch, perm, f->n_units);
    int64_t k = 0, rows = 0;
    for (int64_t i = f->rank; i < f->n_units; i += f->size) {
        int64_t u = perm[i];
        list[k++] = u;
        int64_t first = u * f->unit_rows;
        rows += (first + f->unit_rows <= f->n_rows ? f->unit_rows : f->n_rows - first);
    }
    *supply = rows;
    return k;
}

/* Rows the epoch pulls from the rank's units into the window, and the
 * window's capacity that epoch: every pulled row is drawn by the end. */
static int64_t epoch_total(const Feed *f, int64_t supply, int64_t *window)
{
    int64_t w = f->window < supply ? f->window : supply;
    *window = w;
    if (supply >= f->need)
        return supply < w + f->need - 1 ? supply : w + f->need - 1;
    return f->need; /* the units repeat */
}

static void *reader_main(void *arg)
{
    Feed *f = arg;
    const FeedConfig *c = &f->c;
    int slot = 0;
    for (int64_t e = f->reader_epoch; e < c->epochs; e++) {
        int64_t supply, w;
        int64_t k = epoch_units(f, e, f->unit_list, &supply);
        int64_t total = epoch_total(f, supply, &w), produced = 0;
        for (int64_t i = 0; produced < total; i = (i + 1) % k) {
            pthread_mutex_lock(&f->mu);
            while (f->q_count == QUEUE && !f->quit)
                pthread_cond_wait(&f->space, &f->mu);
            int quit = f->quit;
            pthread_mutex_unlock(&f->mu);
            if (quit)
                return NULL;
            Unit *u = &f->q[slot];
            u->first = f->unit_list[i] * f->unit_rows;
            int64_t n = u->first + f->unit_rows <= f->n_rows ? f->unit_rows : f->n_rows - u->first;
            for (int64_t j = 0; j < n; j++)
                f->row_list[j] = u->first + j;
            VdError err = {0};
            double t0 = vd_now();
            h5_lock();
            int rc = h5rows_read(c->images, f->row_list, n, u->raw, &err);
            if (rc == VD_OK && c->labels)
                rc = h5rows_read(c->labels, f->row_list, n, u->lab, &err);
            h5_unlock();
            if (rc == VD_OK)
                rc = rows_check(c->images, c->labels, c->check_unit, c->n_classes, u->raw, u->lab,
                                f->row_list, n, &err);
            u->n = n < total - produced ? n : total - produced;
            produced += u->n;
            pthread_mutex_lock(&f->mu);
            f->load += vd_now() - t0;
            if (rc != VD_OK) {
                f->rerr = err;
                f->quit = 1;
            }
            f->q_count++;
            pthread_cond_signal(&f->ready);
            pthread_mutex_unlock(&f->mu);
            if (rc != VD_OK)
                return NULL;
            slot = (slot + 1) % QUEUE;
        }
    }
    return NULL;
}

/* The next row of the rank's stream into window position j; 0 if the
 * reader failed (the row is left as it was). */
static int pull(Feed *f, int64_t j)
{
    if (f->q_pos == 0) {
        double t0 = vd_now();
        pthread_mutex_lock(&f->mu);
        while (f->q_count == 0 && !f->rerr.code)
            pthread_cond_wait(&f->ready, &f->mu);
        int failed = f->q_count == 0;
        pthread_mutex_unlock(&f->mu);
        f->wait += vd_now() - t0;
        if (failed)
            return 0;
    }
    Unit *u = &f->q[f->q_head];
    memcpy(f->win + (size_t)j * f->row_bytes, u->raw + (size_t)f->q_pos * f->row_bytes,
           f->row_bytes);
    f->win_lab[j] = u->lab[f->q_pos];
    f->win_row[j] = u->first + f->q_pos;
    if (++f->q_pos == u->n) {
        f->q_pos = 0;
        f->q_head = (f->q_head + 1) % QUEUE;
        pthread_mutex_lock(&f->mu);
        f->q_count--;
        pthread_cond_signal(&f->space);
        pthread_mutex_unlock(&f->mu);
    }
    f->pulled++;
    return 1;
}

/* One draw from the window: its position, after topping the window up. */
static int64_t draw(Feed *f, int64_t w)
{
    while (f->filled < w && f->pulled < f->total && pull(f, f->filled))
        f->filled++;
    if (f->filled == 0)
        return -1; /* the reader failed */
    Rng r = rng_stream(f->c.seed, VD_STREAM_WINDOW, (uint32_t)f->rank);
    return (int64_t)rng_below(&r, (uint32_t)f->epoch, (uint64_t)f->drawn++, (uint64_t)f->filled);
}

/* Moves the window's last row into j, closing the gap a draw left. */
static void close_gap(Feed *f, int64_t j)
{
    int64_t last = --f->filled;
    if (j == last)
        return;
    memcpy(f->win + (size_t)j * f->row_bytes, f->win + (size_t)last * f->row_bytes, f->row_bytes);
    f->win_lab[j] = f->win_lab[last];
    f->win_row[j] = f->win_row[last];
}

static void stream_epoch(Feed *f, int64_t epoch, int64_t first_step)
{
    if (!f->reader_started) {
        f->reader_epoch = epoch;
        f->reader_started = 1;
        if (pthread_create(&f->reader, NULL, reader_main, f) != 0)
            VD_ABORT("cannot start the data reader thread");
    }
    /* the queue holds this epoch's rows next: the previous epoch drew all
     * it pulled, and a run that stops inside an epoch does not go on */
    int64_t supply, w;
    epoch_units(f, epoch, f->main_list, &supply);
    f->epoch = epoch;
    f->total = epoch_total(f, supply, &w);
    f->window_cap = w;
    f->filled = f->pulled = f->drawn = 0;
    for (int64_t d = 0; d < first_step * f->B; d++) { /* a resumed epoch: replay the draws */
        int64_t j = draw(f, w);
        if (j < 0)
            break;
        close_gap(f, j);
    }
}

static void stream_batch(Feed *f, int64_t s, float *x, int32_t *y, int64_t *rows)
{
    (void)s;
    for (int i = 0; i < f->B; i++) {
        int64_t j = draw(f, f->window_cap);
        if (j < 0) { /* the reader failed: zeros, and the step is refused */
            memset(x + (size_t)i * f->c.images->row_len, 0,
                   sizeof(float) * (size_t)f->c.images->row_len);
            if (y)
                y[i] = 0;
            rows[i] = 0;
            continue;
        }
        row_to_float(f->c.images, f->win + (size_t)j * f->row_bytes,
                     x + (size_t)i * f->c.images->row_len);
        if (y)
            y[i] = f->win_lab[j];
        rows[i] = f->win_row[j];
        close_gap(f, j);
    }
}

/* ---- entry points --------------------------------------------------------- */

int feed_open(Feed **out, const FeedConfig *c, VdError *err)
{
    Feed *f = vd_calloc(1, sizeof *f);
    *out = f;
    f->c = *c;
    MPI_Comm_rank(c->comm, &f->rank);
    MPI_Comm_size(c->comm, &f->size);
    f->B = shard_local_batch(c->global_batch, f->rank, f->size);
    f->row_bytes = (size_t)c->images->row_len * (c->images->is_u8 ? 1 : sizeof(float));
    f->n_rows = c->images->n_rows;
    f->need = need_rows(c, f->rank, f->size);
    f->req[0] = f->req[1] = MPI_REQUEST_NULL;
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->ready, NULL);
    pthread_cond_init(&f->space, NULL);

    /* what resident mode would hold on the fullest rank */
    double rb = (double)f->row_bytes + 4, blk = (double)(f->n_rows / f->size + 1);
    double resident = 2 * blk * rb + 2 * (double)f->need * (rb + 16) + 8.0 * (double)f->n_rows;
    MPI_Allreduce(MPI_IN_PLACE, &resident, 1, MPI_DOUBLE, MPI_MAX, c->comm);
    f->mode = c->mode != VD_FEED_AUTO ? c->mode
              : resident <= (double)c->budget ? VD_FEED_RESIDENT : VD_FEED_STREAM;
    if (f->mode == VD_FEED_RESIDENT) {
        if (resident > (double)c->budget)
            vd_fail(err, VD_EX_USAGE,
                    "--data-mode resident needs %.3g MiB per rank, more than --data-budget "
                    "(%.3g MiB): raise the budget, add ranks, or use --data-mode stream",
                    resident / (1 << 20), (double)c->budget / (1 << 20));
        else
            resident_open(f, err);
        return vd_error_agree(err, c->comm);
    }
    /* stream: units of whole chunks, about UNIT_BYTES, at least one per rank */
    int64_t chunk = c->images->chunk_rows > 0 ? c->images->chunk_rows : 1;
    double unit_bytes = (double)c->budget / UNIT_SHARE < UNIT_BYTES ? (double)c->budget / UNIT_SHARE
                                                                     : UNIT_BYTES;
    int64_t per = (int64_t)(unit_bytes / ((double)chunk * (double)f->row_bytes));
    f->unit_rows = chunk * (per > 1 ? per : 1);
    if (f->unit_rows > f->n_rows / f->size)
        f->unit_rows = f->n_rows / f->size > 0 ? f->n_rows / f->size : 1;
    f->n_units = (f->n_rows + f->unit_rows - 1) / f->unit_rows;
    double queue = (double)QUEUE * (double)f->unit_rows * rb;
    f->window = (int64_t)(((double)c->budget - queue) / (rb + 8));
    int64_t min_window = shard_local_batch(c->global_batch, 0, f->size);
    if (f->window < min_window) {
        vd_fail(err, VD_EX_USAGE,
                "--data-budget %.3g MiB is too small to stream: reading ahead takes %.3g MiB "
                "and one local batch %.3g MiB more",
                (double)c->budget / (1 << 20), queue / (1 << 20),
                (double)min_window * (rb + 8) / (1 << 20));
        return vd_error_agree(err, c->comm);
    }
    /* the window never holds more than the rank's units supply in an epoch:
     * a budget far larger than the data must not become gigabytes (the draws,
     * which see min(window, supply), are the same) */
    int64_t most = (f->n_units + f->size - 1) / f->size * f->unit_rows;
    if (f->window > most)
        f->window = most;
    f->win = vd_calloc((size_t)f->window, f->row_bytes);
    f->win_lab = vd_calloc((size_t)f->window, sizeof(int32_t));
    f->win_row = vd_calloc((size_t)f->window, sizeof(int64_t));
    for (int i = 0; i < QUEUE; i++) {
        f->q[i].raw = vd_calloc((size_t)f->unit_rows, f->row_bytes);
        f->q[i].lab = vd_calloc((size_t)f->unit_rows, sizeof(int32_t));
    }
    f->unit_list = vd_calloc((size_t)f->n_units, sizeof(int64_t));
    f->main_list = vd_calloc((size_t)f->n_units, sizeof(int64_t));
    f->row_list = vd_calloc((size_t)f->unit_rows, sizeof(int64_t));
    return vd_error_agree(err, c->comm);
}

int feed_epoch(Feed *f, int64_t epoch, int64_t first_step, VdError *err)
{
    if (f->mode == VD_FEED_RESIDENT) {
        resident_epoch(f, epoch);
        return vd_error_agree(err, f->c.comm);
    }
    stream_epoch(f, epoch, first_step);
    return feed_check(f, err);
}

void feed_batch(Feed *f, int64_t s, float *x, int32_t *y, int64_t *rows)
{
    if (f->mode == VD_FEED_RESIDENT)
        resident_batch(f, s, x, y, rows);
    else
        stream_batch(f, s, x, y, rows);
}

int feed_failed(Feed *f)
{
    if (f->mode == VD_FEED_RESIDENT)
        return 0;
    pthread_mutex_lock(&f->mu);
    int failed = f->rerr.code != VD_OK;
    pthread_mutex_unlock(&f->mu);
    return failed;
}

int feed_check(Feed *f, VdError *err)
{
    if (f->mode == VD_FEED_STREAM && err->code == VD_OK) {
        pthread_mutex_lock(&f->mu);
        if (f->rerr.code != VD_OK)
            *err = f->rerr;
        pthread_mutex_unlock(&f->mu);
    }
    return vd_error_agree(err, f->c.comm);
}

void feed_close(Feed *f)
{
    if (!f)
        return;
    if (f->reader_started) {
        pthread_mutex_lock(&f->mu);
        f->quit = 1;
        pthread_cond_broadcast(&f->space);
        pthread_mutex_unlock(&f->mu);
        pthread_join(f->reader, NULL);
    }
    if (f->req[0] != MPI_REQUEST_NULL || f->req[1] != MPI_REQUEST_NULL)
        MPI_Waitall(2, f->req, MPI_STATUSES_IGNORE);
    if (f->counts)
        MPI_Type_free(&f->row_type);
    vd_free(f->block);
    vd_free(f->block_lab);
    vd_free(f->perm);
    for (int b = 0; b < 2; b++) {
        vd_free(f->rows[b]);
        vd_free(f->slot[b]);
        vd_free(f->recv[b]);
        vd_free(f->recv_lab[b]);
    }
    vd_free(f->send);
    vd_free(f->send_lab);
    vd_free(f->counts);
    vd_free(f->win);
    vd_free(f->win_lab);
    vd_free(f->win_row);
    for (int i = 0; i < QUEUE; i++) {
        vd_free(f->q[i].raw);
        vd_free(f->q[i].lab);
    }
    vd_free(f->unit_list);
    vd_free(f->main_list);
    vd_free(f->row_list);
    pthread_mutex_destroy(&f->mu);
    pthread_cond_destroy(&f->ready);
    pthread_cond_destroy(&f->space);
    vd_free(f);
}
