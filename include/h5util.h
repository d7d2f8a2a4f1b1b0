/* h5util.h — small HDF5 helpers shared by checkpoints, metrics, the data
 * reader and the importer, and the lock around HDF5. Local. The attribute
 * and dataset helpers return 0 or -1. */
#ifndef VD_H5UTIL_H
#define VD_H5UTIL_H

#include <hdf5.h>
#include <stdint.h>

int h5_attr_str(hid_t obj, const char *name, const char *value);
/* n == 1 is written as a scalar; h5_attr_i64_array always as an array of n */
int h5_attr_i64(hid_t obj, const char *name, const int64_t *v, int n);
int h5_attr_i64_array(hid_t obj, const char *name, const int64_t *v, int n);
int h5_attr_u64(hid_t obj, const char *name, uint64_t v);
int h5_attr_f64(hid_t obj, const char *name, double v);
/* Reads an integer attribute array of at most max values; returns the count or -1. */
int h5_attr_read_i64(hid_t obj, const char *name, int64_t *v, int max);
int h5_attr_read_u64(hid_t obj, const char *name, uint64_t *v);
/* Reads a scalar numeric attribute as double. */
int h5_attr_read_f64(hid_t obj, const char *name, double *v);
/* Reads a string attribute into buf (truncated to n - 1). */
int h5_attr_read_str(hid_t obj, const char *name, char *buf, size_t n);
/* Creates a float32 dataset of rank 1 or 2 (cols == 0: rank 1), written from data. */
int h5_write_f32(hid_t loc, const char *name, const float *data, int64_t rows, int64_t cols);
/* The same of nd (1 to 8) dims. */
int h5_write_f32_nd(hid_t loc, const char *name, const float *data, const int64_t *dims, int nd);
/* Creates a 1-D int32 dataset written from data. */
int h5_write_i32(hid_t loc, const char *name, const int32_t *data, int64_t n);
/* HDF5 locks each file it opens (flock), and where the file system refuses
 * locks (some NFS and Lustre mounts) HDF5 1.10 reports only a failed open.
 * Probes path (a file, or a directory): if flock is refused there, turns
 * HDF5's locking off for this process, as HDF5_USE_FILE_LOCKING=FALSE does,
 * with one note from rank 0. Left alone when the user set
 * HDF5_USE_FILE_LOCKING. */
void h5_locking_probe(const char *path);

/* After a failed open: HDF5_USE_FILE_LOCKING asks for locks (set, and not
 * FALSE) and path's file system refuses them. */
int h5_locks_forced_but_refused(const char *path);
/* Silences HDF5's own error stack printing: vae-dist reports errors itself. */
void h5_quiet(void);

/* HDF5 is not built thread-safe: a thread other than the main one calls
 * into it only under this lock (the streaming reader, feed_stream.h), and
 * the main thread takes it around its HDF5 calls while such a thread may
 * run. Not recursive. */
void h5_lock(void);
void h5_unlock(void);

#endif
