/* feed_stream.c — the streaming reader: units of chunks read by a thread,
 * batches drawn from a shuffle window. See feed_stream.h. */
#include "feed_stream.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "h5util.h"
#include "rng.h"
#include "shard.h"

#define UNIT_BYTES (1 << 20) /* the reader reads about this much at a time, */
#define UNIT_SHARE 16        /* or 1/16 of the budget if that is less */
#define QUEUE 3              /* units read ahead */

typedef struct {
    char *raw;      /* (unit_rows, row_bytes) */
    int32_t *lab;   /* (unit_rows) */
    int64_t first;  /* dataset row of raw[0] */
    int64_t n;      /* rows of this unit the epoch uses */
} Unit;

struct FeedStream {
    FeedConfig c;
    int rank, size, B;
    size_t row_bytes;
    int64_t n_rows, need;        /* rows in the dataset; rows this rank trains on per epoch */
    double load;                 /* seconds reading */
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

int64_t feed_stream_bytes(const FeedStream *f)
{
    size_t rb = f->row_bytes + 4;
    return (int64_t)((size_t)f->window * (rb + 8) + (size_t)QUEUE * f->unit_rows * rb);
}

double feed_stream_load_seconds(const FeedStream *f) { return f->load; }

/* The units rank takes in epoch (positions rank, rank + p, ... of the
 * epoch's unit permutation) into list; returns their count, and their rows
 * in *supply. */
static int64_t epoch_units(const FeedStream *f, int64_t epoch, int64_t *list, int64_t *supply)
{
    Rng r = rng_for(f->c.seed, VD_RNG_UNITS, 0);
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
static int64_t epoch_total(const FeedStream *f, int64_t supply, int64_t *window)
{
    int64_t w = f->window < supply ? f->window : supply;
    *window = w;
    if (supply >= f->need)
        return supply < w + f->need - 1 ? supply : w + f->need - 1;
    return f->need; /* the units repeat */
}

static void *reader_main(void *arg)
{
    FeedStream *f = arg;
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
                rc = h5rows_check(c->images, c->labels, c->check_unit, c->n_classes, u->raw, u->lab,
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
static int pull(FeedStream *f, int64_t j)
{
    if (f->q_pos == 0) {
        pthread_mutex_lock(&f->mu);
        while (f->q_count == 0 && !f->rerr.code)
            pthread_cond_wait(&f->ready, &f->mu);
        int failed = f->q_count == 0;
        pthread_mutex_unlock(&f->mu);
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
static int64_t draw(FeedStream *f, int64_t w)
{
    while (f->filled < w && f->pulled < f->total && pull(f, f->filled))
        f->filled++;
    if (f->filled == 0)
        return -1; /* the reader failed */
    Rng r = rng_for(f->c.seed, VD_RNG_WINDOW, (uint32_t)f->rank);
    return (int64_t)rng_below(&r, (uint32_t)f->epoch, (uint64_t)f->drawn++, (uint64_t)f->filled);
}

/* Moves the window's last row into j, closing the gap a draw left. */
static void close_gap(FeedStream *f, int64_t j)
{
    int64_t last = --f->filled;
    if (j == last)
        return;
    memcpy(f->win + (size_t)j * f->row_bytes, f->win + (size_t)last * f->row_bytes, f->row_bytes);
    f->win_lab[j] = f->win_lab[last];
    f->win_row[j] = f->win_row[last];
}

void feed_stream_epoch(FeedStream *f, int64_t epoch, int64_t first_step)
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

void feed_stream_batch(FeedStream *f, float *x, int32_t *y, int64_t *rows)
{
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
        h5rows_to_float(f->c.images, f->win + (size_t)j * f->row_bytes,
                     x + (size_t)i * f->c.images->row_len);
        if (y)
            y[i] = f->win_lab[j];
        rows[i] = f->win_row[j];
        close_gap(f, j);
    }
}

FeedStream *feed_stream_open(const FeedConfig *c, VdError *err)
{
    FeedStream *f = vd_calloc(1, sizeof *f);
    f->c = *c;
    MPI_Comm_rank(c->comm, &f->rank);
    MPI_Comm_size(c->comm, &f->size);
    f->B = shard_local_batch(c->global_batch, f->rank, f->size);
    f->row_bytes = (size_t)c->images->row_len * (c->images->is_u8 ? 1 : sizeof(float));
    f->n_rows = c->images->n_rows;
    f->need = c->steps_per_epoch * f->B;
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->ready, NULL);
    pthread_cond_init(&f->space, NULL);
    double rb = (double)f->row_bytes + 4;
    /* units of whole chunks, about UNIT_BYTES, at least one per rank */
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
        return f;
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
    return f;
}

int feed_stream_error(FeedStream *f, VdError *err)
{
    pthread_mutex_lock(&f->mu);
    if (f->rerr.code != VD_OK && err->code == VD_OK)
        *err = f->rerr;
    int code = f->rerr.code;
    pthread_mutex_unlock(&f->mu);
    return code;
}

void feed_stream_close(FeedStream *f)
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
