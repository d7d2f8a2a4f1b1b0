/* feed_stream.h — --data-mode stream (feed.h), the streaming reader, for
 * data larger than the budget. The rows are cut into units of whole HDF5
 * chunks (about 1 MiB). Each epoch all ranks draw one permutation of the
 * units (VD_RNG_UNITS) and rank r takes units r, r + p, ...; a
 * background thread reads them into a queue while the steps run. Batches
 * are drawn uniformly from a shuffle window of W rows, each drawn row
 * replaced by the next row of the rank's units (VD_RNG_WINDOW, one per
 * rank). This changes the sampling: an epoch still visits each row at most
 * once, but a batch mixes only the units whose rows are in the window
 * (about W/unit of them) and of this rank's units only, and the order
 * depends on the rank count. A rank whose units hold fewer rows than its
 * share of the epoch reads its first units again. Memory: W rows plus the
 * queue, within the budget.
 *
 * The reader thread calls into HDF5 only under h5_lock() (h5util.h). */
#ifndef VD_FEED_STREAM_H
#define VD_FEED_STREAM_H

#include <stdint.h>

#include "feed.h"

typedef struct FeedStream FeedStream;

/* Local: sizes the units, the queue and the window for c->budget. Returns
 * the feed, with err set (VD_EX_USAGE) when the budget cannot hold the
 * read-ahead and one local batch; the caller agrees the error and closes
 * it. Reads nothing yet. */
FeedStream *feed_stream_open(const FeedConfig *c, VdError *err);

/* Local: epoch's draws from local step first_step on (a resumed epoch
 * replays the draws before it); the first call starts the reader thread. */
void feed_stream_epoch(FeedStream *f, int64_t epoch, int64_t first_step);

/* Local: the next local batch (feed_batch); blocks until the reader has
 * the rows. Rows the failed reader cannot give are zeros. */
void feed_stream_batch(FeedStream *f, float *x, int32_t *y, int64_t *rows);

/* Local: VD_OK, or the reader thread's error, copied into err (when err
 * holds none yet). */
int feed_stream_error(FeedStream *f, VdError *err);

/* Local: stops and joins the reader; NULL is fine. */
void feed_stream_close(FeedStream *f);

int64_t feed_stream_bytes(const FeedStream *f);
double feed_stream_load_seconds(const FeedStream *f);

#endif
