/* data.h — reading training data from HDF5, and splitting it across ranks.
 *
 * A data set is any HDF5 dataset shaped (N, ...): N samples, each the
 * flattened trailing dims. uint8 is scaled to [0, 1]; float32 and float64 (any
 * byte order, any chunking or filter HDF5 can decode) are read as float.
 * Labels are an optional integer dataset shaped (N) or (N, 1).
 *
 * Sharding is pure arithmetic on (n, global batch, rank, size), so tests can
 * simulate ranks in one process. Each epoch every rank draws the same
 * global permutation (VD_STREAM_ORDER) and takes disjoint slices of it; a rank
 * reads from the file only the rows it trains on. */
#ifndef VD_DATA_H
#define VD_DATA_H

#include <hdf5.h>
#include <stdint.h>

#include "image.h"
#include "util.h"

#define VD_MAX_DIMS 8
#define VD_MAX_ROW_LEN (1 << 24)          /* values per sample */
#define VD_MAX_CHUNK_BYTES (256 << 20)    /* largest HDF5 chunk we let HDF5 decode */

/* An open (N, ...) dataset. Owns its HDF5 handles. */
typedef struct {
    hid_t file, dset;
    char where[512];            /* "file:/path", for messages */
    int n_dims;
    int64_t dims[VD_MAX_DIMS];
    int64_t n_rows;             /* dims[0], or the rows of a view (h5rows_select) */
    int64_t row_len;            /* product of dims[1..] (1 for labels) */
    int is_u8;                  /* stored as uint8: scaled by 1/255 when used */
    int is_label;               /* integer labels, read as int32 */
    int64_t chunk_rows;         /* rows per chunk, 0 when not chunked by rows */
    void *block;                /* (chunk_rows, row_len) scratch for chunk reads */
    ImageGeom img;              /* the samples as images (h5rows_layout); c = 0: not images */
    int64_t *map;               /* a view: (n_rows) its rows in the dataset, ascending; NULL: all */
} H5Rows;

/* Local. Opens path:dset for reading. Returns VD_OK, or VD_EX_NOINPUT
 * (missing file or dataset), VD_EX_DATAERR (not HDF5, bad shape or type,
 * samples over VD_MAX_ROW_LEN values, chunks over VD_MAX_CHUNK_BYTES).
 * With is_label the dataset must be integer (N) or (N, 1). */
int h5rows_open(H5Rows *r, const char *path, const char *dset, int is_label, VdError *err);
void h5rows_close(H5Rows *r);

/* Local. Decides how r's samples are images (image_geom: want is --layout,
 * tie the layout for shapes the rule leaves open), into r->img; samples
 * stored channels first are then permuted to channels last by row_to_float.
 * VD_OK, or VD_EX_USAGE when want contradicts the shape. */
int h5rows_layout(H5Rows *r, int want, int tie, VdError *err);

/* Local. Reads the n distinct rows listed in ascending order into out: n *
 * row_len values of uint8 (is_u8), int32 (is_label) or float. Returns VD_OK or
 * VD_EX_IOERR.
 * A chunked dataset is read one chunk-aligned block of rows at a time, only
 * for blocks holding a wanted row: HDF5 decodes whole chunks anyway, and
 * regular selections avoid its slow per-element chunk mapping of irregular
 * ones. Other layouts are read as unions of runs of rows. */
int h5rows_read(H5Rows *r, const int64_t *rows, int64_t n, void *out, VdError *err);

/* Local. Makes r a view of n of its rows, listed ascending in rows (taken
 * over, freed by h5rows_close): row i of the view is row rows[i] of the
 * dataset, for every reader above (n_rows becomes n). */
void h5rows_select(H5Rows *r, int64_t *rows, int64_t n);

/* Local. y, the labels of x, becomes the same view as x. */
void h5rows_select_like(H5Rows *y, const H5Rows *x);

/* Local. The split of n rows by --val-fraction frac: round(frac n) rows
 * held out, a fixed choice given the seed (the first of a permutation from
 * VD_STREAM_SPLIT), the same whatever the rank count. Returns the held-out
 * rows (held) or the rest, ascending, and their number in *count. */
int64_t *rows_split(int64_t n, double frac, uint64_t seed, int held, int64_t *count);

/* Does the file hold an object at path? Local; 0 if the file cannot be opened,
 * -1 if HDF5 cannot read the groups on the way (a damaged file). */
int h5_has_path(const char *file, const char *path);

/* ---- sharding: pure functions ---------------------------------------- */

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

/* Local. Checks n rows read into raw (n, row_len) and lab (when labels):
 * labels in [0, n_classes) when n_classes > 0 (a model without classes takes
 * any, -1 for unlabelled too), float values finite (and in [0, 1] with
 * check_unit).
 * row_ids name the rows in messages. VD_OK or VD_EX_DATAERR. */
int rows_check(const H5Rows *images, const H5Rows *labels, int check_unit, int n_classes,
               const void *raw, const int32_t *lab, const int64_t *row_ids, int64_t n,
               VdError *err);

/* One row as stored (uint8 or float) to floats, uint8 scaled by 1/255, and
 * channels last when the file holds them first (images->img.chw). */
void row_to_float(const H5Rows *images, const void *src, float *dst);

/* Copies training positions [first, first + n) as floats into x (n,
 * row_len) and, if y is not NULL, their labels. */
void shard_batch(const Shard *s, int64_t first, int n, float *x, int32_t *y);

#endif
