/* h5util.c — HDF5 helpers. See h5util.h. */
#include "h5util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "util.h"

void h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

/* errno of a refused shared flock on path, or 0 (granted, busy, or no file). */
static int lock_refused(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0; /* the open that follows reports it */
    int refused = flock(fd, LOCK_SH | LOCK_NB) != 0 && errno != EWOULDBLOCK;
    int why = refused ? errno : 0;
    if (!refused)
        flock(fd, LOCK_UN);
    close(fd);
    return why;
}

int h5_locks_forced_but_refused(const char *path)
{
    const char *v = getenv("HDF5_USE_FILE_LOCKING");
    return v && strcmp(v, "FALSE") != 0 && lock_refused(path) != 0;
}

void h5_locking_probe(const char *path)
{
    if (getenv("HDF5_USE_FILE_LOCKING"))
        return; /* the user's choice, or ours already */
    int why = lock_refused(path);
    if (!why)
        return;
    setenv("HDF5_USE_FILE_LOCKING", "FALSE", 1); /* read by HDF5 at each open */
    if (vd_process_rank() == 0)
        fprintf(stderr, "vae-dist: note: the file system of %s refuses file locks (%s); HDF5's "
                "locking is off for this run, as with HDF5_USE_FILE_LOCKING=FALSE: nothing "
                "then keeps another program from writing these files meanwhile\n", path,
                strerror(why));
}

static pthread_mutex_t h5_mutex = PTHREAD_MUTEX_INITIALIZER;
void h5_lock(void) { pthread_mutex_lock(&h5_mutex); }
void h5_unlock(void) { pthread_mutex_unlock(&h5_mutex); }

static int write_attr(hid_t obj, const char *name, hid_t ftype, hid_t mtype, hid_t space,
                      const void *v)
{
    if (H5Aexists(obj, name) > 0)
        H5Adelete(obj, name);
    hid_t a = H5Acreate2(obj, name, ftype, space, H5P_DEFAULT, H5P_DEFAULT);
    int rc = a < 0 ? -1 : H5Awrite(a, mtype, v);
    if (a >= 0)
        H5Aclose(a);
    H5Sclose(space);
    return rc < 0 ? -1 : 0;
}

int h5_attr_str(hid_t obj, const char *name, const char *value)
{
    /* variable-length UTF-8: h5py reads it as str, not bytes */
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, H5T_VARIABLE);
    H5Tset_cset(type, H5T_CSET_UTF8);
    int rc = write_attr(obj, name, type, type, H5Screate(H5S_SCALAR), &value);
    H5Tclose(type);
    return rc;
}

int h5_attr_i64(hid_t obj, const char *name, const int64_t *v, int n)
{
    hsize_t dim = (hsize_t)n;
    hid_t space = n == 1 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &dim, NULL);
    return write_attr(obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, space, v);
}

int h5_attr_i64_array(hid_t obj, const char *name, const int64_t *v, int n)
{
    hsize_t dim = (hsize_t)n;
    return write_attr(obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, H5Screate_simple(1, &dim, NULL), v);
}

int h5_attr_u64(hid_t obj, const char *name, uint64_t v)
{
    return write_attr(obj, name, H5T_STD_U64LE, H5T_NATIVE_UINT64, H5Screate(H5S_SCALAR), &v);
}

int h5_attr_f64(hid_t obj, const char *name, double v)
{
    return write_attr(obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, H5Screate(H5S_SCALAR), &v);
}

int h5_attr_read_i64(hid_t obj, const char *name, int64_t *v, int max)
{
    if (H5Aexists(obj, name) <= 0)
        return -1;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0)
        return -1;
    hid_t space = H5Aget_space(a);
    hssize_t n = H5Sget_simple_extent_npoints(space);
    H5Sclose(space);
    hid_t type = H5Aget_type(a);
    int is_int = H5Tget_class(type) == H5T_INTEGER;
    H5Tclose(type);
    int rc = -1;
    if (is_int && n >= 1 && n <= max && H5Aread(a, H5T_NATIVE_INT64, v) >= 0)
        rc = (int)n;
    H5Aclose(a);
    return rc;
}

int h5_attr_read_u64(hid_t obj, const char *name, uint64_t *v)
{
    int64_t x;
    if (h5_attr_read_i64(obj, name, &x, 1) != 1)
        return -1;
    /* read again unsigned: values above INT64_MAX would have been clipped */
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    int rc = H5Aread(a, H5T_NATIVE_UINT64, v) < 0 ? -1 : 0;
    H5Aclose(a);
    return rc;
}

int h5_attr_read_f64(hid_t obj, const char *name, double *v)
{
    if (H5Aexists(obj, name) <= 0)
        return -1;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    hid_t space = H5Aget_space(a);
    int ok = H5Sget_simple_extent_npoints(space) == 1 && H5Aread(a, H5T_NATIVE_DOUBLE, v) >= 0;
    H5Sclose(space);
    H5Aclose(a);
    return ok ? 0 : -1;
}

int h5_attr_read_str(hid_t obj, const char *name, char *buf, size_t n)
{
    if (H5Aexists(obj, name) <= 0)
        return -1;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    hid_t type = H5Aget_type(a), space = H5Aget_space(a);
    int rc = -1;
    if (H5Tget_class(type) == H5T_STRING && H5Sget_simple_extent_npoints(space) == 1) {
        hid_t mtype = H5Tcopy(H5T_C_S1);
        H5Tset_cset(mtype, H5Tget_cset(type)); /* HDF5 converts no ASCII <-> UTF-8 */
        if (H5Tis_variable_str(type) > 0) {
            char *value = NULL;
            H5Tset_size(mtype, H5T_VARIABLE);
            if (H5Aread(a, mtype, &value) >= 0 && value) {
                snprintf(buf, n, "%s", value);
                rc = 0;
            }
            H5free_memory(value);
        } else {
            size_t len = H5Tget_size(type);
            char *tmp = len > 0 && len < (1 << 20) ? calloc(1, len + 1) : NULL;
            H5Tset_size(mtype, len + 1);
            if (tmp && H5Aread(a, mtype, tmp) >= 0) {
                snprintf(buf, n, "%s", tmp);
                rc = 0;
            }
            free(tmp);
        }
        H5Tclose(mtype);
    }
    H5Sclose(space);
    H5Tclose(type);
    H5Aclose(a);
    return rc;
}

/* A dataset of nd dims of file type ftype, written from data of memory type mtype. */
static int write_dataset(hid_t loc, const char *name, hid_t ftype, hid_t mtype, const void *data,
                         const int64_t *shape, int nd)
{
    hsize_t dims[8];
    for (int i = 0; i < nd && i < 8; i++)
        dims[i] = (hsize_t)shape[i];
    hid_t space = H5Screate_simple(nd, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_obj_track_times(dcpl, 0); /* same content, same bytes */
    hid_t d = H5Dcreate2(loc, name, ftype, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    int rc = d < 0 ? -1 : H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
    if (d >= 0)
        H5Dclose(d);
    H5Pclose(dcpl);
    H5Sclose(space);
    return rc < 0 ? -1 : 0;
}

int h5_write_f32(hid_t loc, const char *name, const float *data, int64_t rows, int64_t cols)
{
    int64_t dims[2] = {rows, cols};
    return write_dataset(loc, name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, data, dims, cols ? 2 : 1);
}

int h5_write_f32_nd(hid_t loc, const char *name, const float *data, const int64_t *dims, int nd)
{
    return nd < 1 || nd > 8 ? -1
                            : write_dataset(loc, name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, data, dims, nd);
}

int h5_write_i32(hid_t loc, const char *name, const int32_t *data, int64_t n)
{
    return write_dataset(loc, name, H5T_STD_I32LE, H5T_NATIVE_INT32, data, &n, 1);
}
