/* shard.h — the data sharding: which rows each rank trains on, and a
 * rank's rows held in memory.
 *
 * Sharding is pure arithmetic on (n, global batch, rank, size), so tests can
 * simulate ranks in one process. Each epoch every rank draws the same
 * global permutation (VD_RNG_ORDER) and takes disjoint slices of it; a
 * rank reads from the file only the rows it trains on (feed.h reads the
 * training rows; Shard holds test rows and eval's). Local: nothing here
 * talks to other ranks. */
#ifndef VD_SHARD_H
#define VD_SHARD_H

#include <stdint.h>

#include "h5rows.h"

/* ---- which rows: pure functions --------------------------------------- */

/* Steps per epoch: floor(n / G); the last n mod G samples of each epoch's
 * permutation are not visited that epoch (a new permutation next epoch). */
int64_t shard_steps_per_epoch(int64_t n, int64_t global_batch);
/* Samples rank takes of each global batch: G/size, +1 for ranks < G%size. */
int shard_local_batch(int64_t global_batch, int rank, int size);
/* Where rank's samples start inside each global batch. */
int64_t shard_local_offset(int64_t global_batch, int rank, int size);
/* out[s*B + i] = perm[s*G + offset + i] for s < steps, i < B (rank's batch). */
void shard_epoch_rows(const int64_t *perm, int64_t steps, int64_t global_batch, int rank, int size,
                      int64_t *out);
/* The contiguous block [begin, end) of n rows that rank evaluates. */
void shard_range(int64_t n, int rank, int size, int64_t *begin, int64_t *end);

/* Local. The split of n rows by --val-fraction frac: round(frac n) rows
 * held out, a fixed choice given the seed (the first of a permutation from
 * VD_RNG_SPLIT), the same whatever the rank count. Returns the held-out
 * rows (held) or the rest, ascending, and their number in *count. */
int64_t *shard_split_rows(int64_t n, double frac, uint64_t seed, int held, int64_t *count);

/* ---- a rank's rows in memory ----------------------------------------- */

/* The rows one rank works on, held in memory in file order and handed out in
 * training order. Owns its buffers (allocated once for capacity rows) and
 * borrows the H5Rows it reads from. */
typedef struct {
    H5Rows *images, *labels;  /* labels may be NULL */
    int64_t capacity, n;
    int check_unit;           /* float data must lie in [0, 1] (Bernoulli) */
    int n_classes;            /* > 0: labels must lie in [0, n_classes) */
    void *raw;                /* (capacity, row_len) uint8 or float, file order */
    int32_t *lab;             /* (capacity) */
    int64_t *slot;            /* (capacity) training position -> row of raw */
    int64_t *sorted;          /* (capacity) scratch: row numbers ascending */
    int64_t *pairs;           /* (2 capacity) scratch for sorting */
} Shard;

void shard_init(Shard *s, H5Rows *images, H5Rows *labels, int64_t capacity, int check_unit);
void shard_free(Shard *s);

/* Local. Loads the n rows listed in training order (any order, distinct).
 * Returns VD_OK, VD_EX_IOERR, or VD_EX_DATAERR for values outside [0, 1]
 * (with check_unit) or non-finite, and labels outside [0, n_classes) (when
 * set; set it after shard_init). */
int shard_load(Shard *s, const int64_t *rows, int64_t n, VdError *err);

/* Copies training positions [first, first + n) as floats into x (n,
 * row_len) and, if y is not NULL, their labels. */
void shard_batch(const Shard *s, int64_t first, int n, float *x, int32_t *y);

#endif
