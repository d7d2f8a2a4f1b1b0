/* import.h — IDX files (MNIST, Fashion-MNIST; gzip or plain) to one HDF5
 * file with /train/images, /train/labels, /test/images, /test/labels. Local:
 * the caller runs it on one rank. */
#ifndef VD_IMPORT_H
#define VD_IMPORT_H

#include <stdint.h>

#include "util.h"

/* Where Debian's dataset-fashion-mnist package puts its files. */
#define VD_FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"

typedef struct {
    int n_dims;
    int64_t dims[4];
    uint8_t *data; /* owned; product of dims bytes */
} IdxArray;

/* Reads an unsigned-byte IDX file (gzip or plain). VD_OK, VD_EX_NOINPUT or
 * VD_EX_DATAERR (bad magic, type, size, or length not matching the header). */
int idx_read(const char *path, IdxArray *out, VdError *err);
void idx_free(IdxArray *a);

typedef struct {
    char train_images[4096], train_labels[4096];
    char test_images[4096], test_labels[4096];
    char out[4096];
    int force; /* replace an existing output file */
} ImportConfig;

/* Writes cfg->out through a temporary file renamed into place, so a failure
 * never leaves a half-written file or harms an existing one. Returns VD_OK,
 * VD_EX_NOINPUT, VD_EX_DATAERR, VD_EX_CANTCREAT (output exists without
 * force, or can't be created) or VD_EX_IOERR. */
int vd_import(const ImportConfig *cfg, VdError *err);

#endif
