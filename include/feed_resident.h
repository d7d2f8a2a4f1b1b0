/* feed_resident.h — --data-mode resident (feed.h): a rank loads its
 * contiguous block of rows (shard_range) once. Each epoch every rank draws
 * the same global permutation (VD_RNG_ORDER) and takes its slice of
 * each global batch, exactly as data.h describes; the rows of that slice
 * that other ranks hold arrive by one MPI_Ialltoallv, posted an epoch
 * ahead so that it completes behind the current epoch's steps. Training is
 * bitwise the same whatever the rank count's block split. Memory: about
 * 4 n/p rows (block, send buffer, two epochs' received rows). */
#ifndef VD_FEED_RESIDENT_H
#define VD_FEED_RESIDENT_H

#include <stdint.h>

#include "feed.h"

typedef struct FeedResident FeedResident;

/* Local: the bytes of rows the fullest rank would hold (feed_resident_bytes
 * of the rank with the largest block). */
double feed_resident_need(const FeedConfig *c);

/* Local, or collective over c->comm with c->collective (MPI-IO reads):
 * loads and checks this rank's block. Returns the feed, with err set
 * (VD_EX_IOERR, or VD_EX_DATAERR for bad values) when the block could not
 * be had; the caller agrees the error and closes it. */
FeedResident *feed_resident_open(const FeedConfig *c, VdError *err);

/* Collective: epoch's rows in place (waits for the exchange posted an
 * epoch ahead, or makes it now), and the next epoch's exchange posted. */
void feed_resident_epoch(FeedResident *f, int64_t epoch);

/* Local: local step s's batch (feed_batch). */
void feed_resident_batch(FeedResident *f, int64_t s, float *x, int32_t *y, int64_t *rows);

/* Collective (completes the exchange in flight); NULL is fine. */
void feed_resident_close(FeedResident *f);

int64_t feed_resident_bytes(const FeedResident *f);
double feed_resident_load_seconds(const FeedResident *f);

#endif
