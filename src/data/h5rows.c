/* h5rows.c — training data read from HDF5, row by row. See h5rows.h. */
#include "h5rows.h"

#include "h5util.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* 1: the path exists; 0: it does not; -1: HDF5 cannot read the groups on
 * the way (a damaged file). */
static int has_path(const char *file, const char *path)
{
    hid_t f = H5Fopen(file, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0)
        return 0;
    /* check each prefix: H5Lexists fails on a missing intermediate group */
    char buf[512];
    snprintf(buf, sizeof buf, "%s", path);
    int ok = 1;
    for (char *p = buf + 1; ok > 0; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            htri_t e = H5Lexists(f, buf, H5P_DEFAULT);
            ok = e > 0 ? 1 : e == 0 ? 0 : -1;
            *p = c;
            if (c == '\0')
                break;
        }
    }
    H5Fclose(f);
    return ok;
}

/* The file and the dataset, both there and what they claim to be. */
static int open_dataset(H5Rows *r, const char *path, const char *dset, VdError *err)
{
    if (access(path, R_OK) != 0)
        return vd_fail(err, VD_EX_NOINPUT, "cannot read %s: %s", path, strerror(errno));
    h5_locking_probe(path);
    if (H5Fis_hdf5(path) <= 0)
        return vd_fail(err, VD_EX_DATAERR, "%s is not an HDF5 file (or is truncated)", path);
    r->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (r->file < 0 && h5_locks_forced_but_refused(path))
        return vd_fail(err, VD_EX_IOERR, "cannot open %s: its file system refuses file locks, "
                       "which HDF5_USE_FILE_LOCKING=%s asks for (unset it, or set it to FALSE)",
                       path, getenv("HDF5_USE_FILE_LOCKING"));
    if (r->file < 0)
        return vd_fail(err, VD_EX_DATAERR, "cannot open %s as HDF5 (truncated or corrupt?)", path);
    int there = dset[0] == '/' ? has_path(path, dset) : 0;
    if (there < 0)
        return vd_fail(err, VD_EX_DATAERR, "cannot read the groups of %s on the way to %s "
                       "(corrupt file?)", path, dset);
    if (!there)
        return vd_fail(err, VD_EX_NOINPUT, "%s has no dataset %s", path, dset);
    H5O_info_t info;
    if (H5Oget_info_by_name(r->file, dset, &info, H5P_DEFAULT) < 0 || info.type != H5O_TYPE_DATASET)
        return vd_fail(err, VD_EX_DATAERR, "%s is not a dataset", r->where);
    r->dset = H5Dopen2(r->file, dset, H5P_DEFAULT);
    if (r->dset < 0)
        return vd_fail(err, VD_EX_DATAERR, "cannot open dataset %s", r->where);
    return VD_OK;
}

/* (N, ...) with N >= 1 and samples of sane size; labels (N) or (N, 1). */
static int check_shape(H5Rows *r, VdError *err)
{
    hid_t space = H5Dget_space(r->dset);
    int nd = H5Sget_simple_extent_ndims(space);
    hsize_t dims[H5S_MAX_RANK];
    if (nd > 0)
        H5Sget_simple_extent_dims(space, dims, NULL);
    H5Sclose(space);
    if (nd < 1 || nd > VD_MAX_DIMS)
        return vd_fail(err, VD_EX_DATAERR, "%s: need a dataset shaped (N, ...), got rank %d",
                       r->where, nd);
    if (r->is_label ? !(nd == 1 || (nd == 2 && dims[1] == 1)) : nd < 2)
        return vd_fail(err, VD_EX_DATAERR, "%s: %s, got rank %d", r->where,
                       r->is_label ? "labels must be shaped (N) or (N, 1)"
                                   : "samples must be shaped (N, ...) with rank >= 2",
                       nd);
    r->n_dims = nd;
    r->row_len = 1;
    for (int i = 0; i < nd; i++) {
        r->dims[i] = (int64_t)dims[i];
        if (i > 0) {
            if (dims[i] == 0 || r->row_len > (INT64_C(1) << 31) / (int64_t)dims[i])
                return vd_fail(err, VD_EX_DATAERR, "%s: sample size is zero or too large",
                               r->where);
            r->row_len *= (int64_t)dims[i];
        }
    }
    r->n_rows = r->dims[0];
    if (r->n_rows < 1)
        return vd_fail(err, VD_EX_DATAERR, "%s has no rows", r->where);
    if (r->row_len > VD_MAX_ROW_LEN)
        return vd_fail(err, VD_EX_DATAERR, "%s: samples of %lld values are too large (max %d)",
                       r->where, (long long)r->row_len, VD_MAX_ROW_LEN);
    return VD_OK;
}

/* Every filter of the dataset is one this HDF5 can decode: a filter of a
 * plugin that is not installed (h5py's lzf, blosc, ...) otherwise fails at
 * the first read, looking like a damaged file. */
static int check_filters(H5Rows *r, hid_t dcpl, VdError *err)
{
    int n = H5Pget_nfilters(dcpl);
    for (int i = 0; i < n; i++) {
        unsigned flags = 0, config = 0;
        size_t nv = 0;
        char name[64] = "";
        H5Z_filter_t id = H5Pget_filter2(dcpl, (unsigned)i, &flags, &nv, NULL, sizeof name, name,
                                         &config);
        if (id < 0 || H5Zfilter_avail(id) > 0)
            continue;
        return vd_fail(err, VD_EX_DATAERR,
                       "%s is compressed with the '%s' filter (HDF5 filter %d), which this HDF5 "
                       "cannot decode: write it with gzip (h5py: compression='gzip'), or convert "
                       "it where the filter is installed, e.g. h5repack -f GZIP=4 IN.h5 OUT.h5",
                       r->where, name[0] ? name : "unknown", (int)id);
    }
    return VD_OK;
}

/* Chunks HDF5 can decode without gigabytes of work, covering written data;
 * sets r->chunk_rows when chunks hold whole rows. */
static int check_chunks(H5Rows *r, hid_t dcpl, VdError *err)
{
    int nd = r->n_dims;
    hsize_t chunk[H5S_MAX_RANK];
    if (H5Pget_layout(dcpl) != H5D_CHUNKED || H5Pget_chunk(dcpl, nd, chunk) != nd)
        return VD_OK;
    double chunk_bytes = 8, n_chunks = 1, data_bytes = 8.0 * (double)r->n_rows * (double)r->row_len;
    for (int i = 0; i < nd; i++) {
        chunk_bytes *= (double)chunk[i];
        n_chunks *= ceil((double)r->dims[i] / (double)(chunk[i] ? chunk[i] : 1));
    }
    /* HDF5 decodes whole chunks: a damaged header must not make it allocate
     * gigabytes */
    if (chunk_bytes > VD_MAX_CHUNK_BYTES)
        return vd_fail(err, VD_EX_DATAERR, "%s: chunks of %.0f MiB are too large to read (max %d MiB)",
                       r->where, chunk_bytes / (1 << 20), VD_MAX_CHUNK_BYTES >> 20);
    /* Chunks much larger than the data they cover (say, 9475 rows per chunk
     * for 7 rows, tiled 5548 times along a row) make HDF5 decode or fill
     * gigabytes to read kilobytes: a fuzzed file took minutes. */
    if (n_chunks * chunk_bytes > 8 * data_bytes + 64.0 * (1 << 20))
        return vd_fail(err, VD_EX_DATAERR,
                       "%s: its chunks cover %.0f times the data's size; reading it would "
                       "decode %.1f GiB (rechunk it, e.g. with h5repack -l)",
                       r->where, n_chunks * chunk_bytes / data_bytes,
                       n_chunks * chunk_bytes / (1 << 30));
    /* A chunk never written reads as the fill value: a header claiming far
     * more rows than the file holds would train on zeros (and, streamed, for
     * ever). */
    hsize_t written = 0;
    hid_t all = H5Dget_space(r->dset);
    herr_t got = H5Dget_num_chunks(r->dset, all, &written);
    H5Sclose(all);
    if (got >= 0 && (double)written < n_chunks)
        return vd_fail(err, VD_EX_DATAERR,
                       "%s: only %llu of its %.0f chunks were ever written, so most of its "
                       "%lld rows are fill values (an incomplete or damaged file)",
                       r->where, (unsigned long long)written, n_chunks, (long long)r->n_rows);
    int whole_rows = 1;
    for (int i = 1; i < nd; i++)
        whole_rows &= (int64_t)chunk[i] == r->dims[i];
    /* blocks of at most 64 MiB of scratch; else fall back to unions */
    if (whole_rows && (double)chunk[0] * (double)r->row_len * 8 <= 64.0 * (1 << 20))
        r->chunk_rows = (int64_t)chunk[0];
    return VD_OK;
}

/* uint8, float32 or float64 samples; integer labels. */
static int check_type(H5Rows *r, VdError *err)
{
    hid_t type = H5Dget_type(r->dset);
    H5T_class_t cls = H5Tget_class(type);
    size_t tsize = H5Tget_size(type);
    H5T_sign_t sign = cls == H5T_INTEGER ? H5Tget_sign(type) : H5T_SGN_ERROR;
    H5Tclose(type);
    if (r->is_label) {
        if (cls != H5T_INTEGER || tsize > 8)
            return vd_fail(err, VD_EX_DATAERR, "%s: labels must be integers", r->where);
    } else if (cls == H5T_INTEGER && tsize == 1 && sign == H5T_SGN_NONE) {
        r->is_u8 = 1;
    } else if (!(cls == H5T_FLOAT && (tsize == 4 || tsize == 8))) {
        return vd_fail(err, VD_EX_DATAERR,
                       "%s: unsupported type (need uint8, float32 or float64)", r->where);
    }
    return VD_OK;
}

static int open_rows(H5Rows *r, const char *path, const char *dset, int is_label, VdError *err)
{
    memset(r, 0, sizeof *r);
    r->file = r->dset = H5I_INVALID_HID;
    r->is_label = is_label;
    snprintf(r->where, sizeof r->where, "%s:%s", path, dset);
    if (open_dataset(r, path, dset, err) != VD_OK || check_shape(r, err) != VD_OK)
        return err->code;
    hid_t dcpl = H5Dget_create_plist(r->dset);
    int rc = check_filters(r, dcpl, err);
    if (rc == VD_OK)
        rc = check_chunks(r, dcpl, err);
    H5Pclose(dcpl);
    if (rc != VD_OK || check_type(r, err) != VD_OK)
        return err->code;
    if (r->chunk_rows)
        r->block = vd_calloc((size_t)(r->chunk_rows * r->row_len), r->is_u8 ? 1 : 4);
    return VD_OK;
}

void h5rows_close(H5Rows *r)
{
    if (!r)
        return;
    if (r->dset > 0)
        H5Dclose(r->dset);
    if (r->file > 0)
        H5Fclose(r->file);
    r->dset = r->file = H5I_INVALID_HID;
    vd_free(r->block);
    vd_free(r->map);
    r->block = NULL;
    r->map = NULL;
}

void h5rows_select(H5Rows *r, int64_t *rows, int64_t n)
{
    vd_free(r->map);
    r->map = rows;
    r->n_rows = n;
}

void h5rows_select_like(H5Rows *y, const H5Rows *x)
{
    if (!x->map)
        return;
    int64_t *rows = vd_calloc((size_t)(x->n_rows ? x->n_rows : 1), sizeof(int64_t));
    memcpy(rows, x->map, sizeof(int64_t) * (size_t)x->n_rows);
    h5rows_select(y, rows, x->n_rows);
}

/* Reads count rows from first (a regular selection) into dst. */
static int read_block(H5Rows *r, hid_t fspace, hid_t mtype, int64_t first, int64_t count,
                      void *dst)
{
    hsize_t start[VD_MAX_DIMS] = {0}, cnt[VD_MAX_DIMS];
    for (int i = 0; i < r->n_dims; i++)
        cnt[i] = (hsize_t)r->dims[i];
    start[0] = (hsize_t)first;
    cnt[0] = (hsize_t)count;
    H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, cnt, NULL);
    hid_t mspace = H5Screate_simple(r->n_dims, cnt, NULL);
    herr_t rc = H5Dread(r->dset, mtype, mspace, fspace, H5P_DEFAULT, dst);
    H5Sclose(mspace);
    return rc < 0 ? -1 : 0;
}

static int read_rows(H5Rows *r, const int64_t *rows, int64_t n, void *out, VdError *err)
{
    hid_t mtype = r->is_label ? H5T_NATIVE_INT32 : r->is_u8 ? H5T_NATIVE_UINT8 : H5T_NATIVE_FLOAT;
    size_t esize = r->is_label ? 4 : r->is_u8 ? 1 : 4, row_bytes = (size_t)r->row_len * esize;
    hid_t fspace = H5Dget_space(r->dset);
    int rc = VD_OK;
    int64_t i = 0;
    while (i < n && rc == VD_OK) {
        int64_t j = i + 1, first, count;
        if (r->chunk_rows) {
            /* all wanted rows in this chunk's block */
            int64_t c = rows[i] / r->chunk_rows;
            first = c * r->chunk_rows;
            count = first + r->chunk_rows <= r->dims[0] ? r->chunk_rows : r->dims[0] - first;
            while (j < n && rows[j] < first + count)
                j++;
            if (read_block(r, fspace, mtype, first, count, r->block) == 0) {
                for (int64_t k = i; k < j; k++)
                    memcpy((char *)out + (size_t)k * row_bytes,
                           (char *)r->block + (size_t)(rows[k] - first) * row_bytes, row_bytes);
            } else {
                count = 0;
            }
        } else {
            /* a run of consecutive rows */
            while (j < n && rows[j] == rows[j - 1] + 1)
                j++;
            first = rows[i];
            count = j - i;
            if (read_block(r, fspace, mtype, first, count, (char *)out + (size_t)i * row_bytes))
                count = 0;
        }
        if (count == 0)
            rc = vd_fail(err, VD_EX_IOERR, "%s: reading rows %lld..%lld failed (corrupt file?)",
                         r->where, (long long)rows[i], (long long)rows[j - 1]);
        i = j;
    }
    H5Sclose(fspace);
    return rc;
}

/* The public entry points run under the crash guard (util.h): HDF5 is not
 * hardened against damaged files. */
int h5rows_exists(const char *file, const char *path)
{
    vd_guard_arm(file);
    int rc = has_path(file, path);
    vd_guard_disarm();
    return rc;
}

int h5rows_open(H5Rows *r, const char *path, const char *dset, int is_label, VdError *err)
{
    vd_guard_arm(path);
    int rc = open_rows(r, path, dset, is_label, err);
    vd_guard_disarm();
    return rc;
}

int h5rows_read(H5Rows *r, const int64_t *rows, int64_t n, void *out, VdError *err)
{
    int64_t *in_file = NULL; /* a view's rows, as the dataset numbers them */
    if (r->map) {
        in_file = malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
        if (!in_file)
            return vd_fail(err, VD_EX_IOERR, "out of memory listing %lld rows", (long long)n);
        for (int64_t i = 0; i < n; i++)
            in_file[i] = r->map[rows[i]];
        rows = in_file;
    }
    vd_guard_arm(r->where);
    int rc = read_rows(r, rows, n, out, err);
    vd_guard_disarm();
    free(in_file);
    return rc;
}

int h5rows_check(const H5Rows *images, const H5Rows *labels, int check_unit, int n_classes,
               const void *raw, const int32_t *lab, const int64_t *row_ids, int64_t n,
               VdError *err)
{
    if (labels && n_classes > 0) /* a model without classes only colours by them */
        for (int64_t i = 0; i < n; i++)
            if (lab[i] < 0 || lab[i] >= n_classes)
                return vd_fail(err, VD_EX_DATAERR,
                               "%s: label %d at row %lld is outside 0..%d (the model's classes)",
                               labels->where, lab[i], (long long)row_ids[i], n_classes - 1);
    if (!images->is_u8) {
        const float *v = raw;
        int64_t len = images->row_len;
        for (int64_t i = 0; i < n * len; i++) {
            if (!isfinite(v[i]))
                return vd_fail(err, VD_EX_DATAERR, "%s: non-finite value in row %lld",
                               images->where, (long long)row_ids[i / len]);
            if (check_unit && (v[i] < 0.0f || v[i] > 1.0f))
                return vd_fail(err, VD_EX_DATAERR,
                               "%s: value %g in row %lld is outside [0, 1], which the "
                               "Bernoulli and logistic likelihoods need (--likelihood gaussian?)",
                               images->where, v[i], (long long)row_ids[i / len]);
        }
    }
    return VD_OK;
}

int h5rows_layout(H5Rows *r, int want, int tie, VdError *err)
{
    char why[256];
    if (image_geom(r->dims + 1, r->n_dims - 1, want, tie, &r->img, why, sizeof why) != 0)
        return vd_fail(err, VD_EX_USAGE, "%s: %s", r->where, why);
    return VD_OK;
}

void h5rows_to_float(const H5Rows *images, const void *src, float *dst)
{
    size_t len = (size_t)images->row_len;
    const ImageGeom *g = &images->img;
    if (g->chw) { /* (c, h, w) as stored -> (h, w, c) */
        size_t plane = (size_t)g->h * g->w;
        for (int c = 0; c < g->c; c++)
            for (size_t p = 0; p < plane; p++) {
                size_t from = (size_t)c * plane + p;
                dst[p * g->c + c] = images->is_u8 ? (float)((const uint8_t *)src)[from] * (1.0f / 255.0f)
                                                  : ((const float *)src)[from];
            }
    } else if (images->is_u8) {
        const uint8_t *u = src;
        for (size_t j = 0; j < len; j++)
            dst[j] = (float)u[j] * (1.0f / 255.0f);
    } else {
        memcpy(dst, src, len * sizeof(float));
    }
}
