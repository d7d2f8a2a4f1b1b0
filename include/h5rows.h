/* h5rows.h — training data read from HDF5, row by row.
 *
 * A data set is any HDF5 dataset shaped (N, ...): N samples, each the
 * flattened trailing dims. uint8 is scaled to [0, 1]; float32 and float64 (any
 * byte order, any chunking or filter HDF5 can decode) are read as float.
 * Labels are an optional integer dataset shaped (N) or (N, 1). A rank reads
 * only the rows it is given (shard.h says which). Local: nothing here
 * talks to other ranks. */
#ifndef VD_H5ROWS_H
#define VD_H5ROWS_H

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
 * stored channels first are then permuted to channels last by h5rows_to_float.
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

/* Does the file hold an object at path? Local; 0 if the file cannot be opened,
 * -1 if HDF5 cannot read the groups on the way (a damaged file). */
int h5rows_exists(const char *file, const char *path);

/* Local. Checks n rows read into raw (n, row_len) and lab (when labels):
 * labels in [0, n_classes) when n_classes > 0 (a model without classes takes
 * any, -1 for unlabelled too), float values finite (and in [0, 1] with
 * check_unit).
 * row_ids name the rows in messages. VD_OK or VD_EX_DATAERR. */
int h5rows_check(const H5Rows *images, const H5Rows *labels, int check_unit, int n_classes,
                 const void *raw, const int32_t *lab, const int64_t *row_ids, int64_t n,
                 VdError *err);

/* One row as stored (uint8 or float) to floats, uint8 scaled by 1/255, and
 * channels last when the file holds them first (images->img.chw). */
void h5rows_to_float(const H5Rows *images, const void *src, float *dst);

#endif
