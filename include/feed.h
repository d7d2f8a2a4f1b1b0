/* feed.h — the training batches of one rank, read ahead of the step.
 *
 * Two modes, each in its own file; both read from the file only this
 * rank's part of it:
 *
 *   feed_resident.h  --data-mode resident: the rank's block of rows held in
 *                    memory, each epoch's rows exchanged between the ranks
 *                    an epoch ahead; bitwise the same for any rank count.
 *   feed_stream.h    --data-mode stream, the streaming reader: for data
 *                    larger than the budget, units of chunks read by a
 *                    thread, batches drawn from a shuffle window.
 *
 * auto picks resident if it fits the budget on every rank.
 *
 * A thread other than the caller calls into HDF5 only in stream mode, and
 * always under h5_lock() (h5util.h); callers that use HDF5 while a feed is
 * open must hold that lock too (HDF5 is not built thread-safe). */
#ifndef VD_FEED_H
#define VD_FEED_H

#include <mpi.h>
#include <stdint.h>

#include "h5rows.h"

enum { VD_FEED_AUTO, VD_FEED_RESIDENT, VD_FEED_STREAM };

typedef struct {
    H5Rows *images, *labels;  /* borrowed; labels may be NULL */
    int check_unit;           /* float values must lie in [0, 1] */
    int n_classes;            /* > 0: labels must lie in [0, n_classes) */
    int64_t global_batch, steps_per_epoch, epochs;
    uint64_t seed;
    int64_t budget;           /* bytes of rows this rank may hold */
    int mode;                 /* VD_FEED_AUTO picks resident if it fits the budget */
    int collective;           /* resident: load the blocks with MPI-IO collective reads */
    MPI_Comm comm;
} FeedConfig;

typedef struct Feed Feed;

/* Collective. Opens the feed (resident: loads and checks this rank's block).
 * Returns VD_OK, VD_EX_IOERR, VD_EX_DATAERR (bad values, as shard_load), or
 * VD_EX_USAGE when the budget cannot hold one local batch (stream) or the
 * forced resident mode does not fit. Agreed across ranks. */
int feed_open(Feed **out, const FeedConfig *c, VdError *err);

/* Local: the bytes of rows this rank may hold (FeedConfig.budget). */
int64_t feed_budget(const Feed *f);

/* Collective. Makes epoch's batches ready from local step first_step on
 * (a resumed run starts inside an epoch) and starts reading the next
 * epoch's. Returns VD_OK or the agreed error. */
int feed_epoch(Feed *f, int64_t epoch, int64_t first_step, VdError *err);

/* Local. The rank's batch at local step s of the current epoch (s counts up
 * by one from first_step): n rows as float into x (n, row_len), labels into
 * y when not NULL, and the rows' indices in the dataset into rows. Stream
 * mode may block until the reader catches up; a read error is reported by
 * the next feed_epoch or feed_check. */
void feed_batch(Feed *f, int64_t s, float *x, int32_t *y, int64_t *rows);

/* Local. Has the reader thread failed? The step that drew zeros for the
 * missing rows must not be applied. */
int feed_failed(Feed *f);

/* Collective. VD_OK, or the reader thread's error, agreed. */
int feed_check(Feed *f, VdError *err);

/* Collective (completes the exchange in flight); NULL is fine. */
void feed_close(Feed *f);

int feed_mode(const Feed *f);
/* Bytes of rows the feed holds (its buffers; not HDF5's caches). */
int64_t feed_bytes(const Feed *f);
/* Seconds spent reading. */
double feed_load_seconds(const Feed *f);

#endif
