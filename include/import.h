/* import.h — the `import` command: IDX files (MNIST, Fashion-MNIST; gzip or
 * plain) to one HDF5 file with /train/images, /train/labels, /test/images,
 * /test/labels. The conversion is local, run on rank 0. */
#ifndef VD_IMPORT_H
#define VD_IMPORT_H

#include <mpi.h>
#include <stdint.h>

#include "opts.h"
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
    char train_images[VD_PATH_MAX], train_labels[VD_PATH_MAX];
    char test_images[VD_PATH_MAX], test_labels[VD_PATH_MAX];
    char out[VD_PATH_MAX];
    int force; /* replace an existing output file */
} ImportConfig;

/* cfg = the import command's defaults: Debian's Fashion-MNIST files, out
 * the default data file (runtime.h). */
void import_defaults(ImportConfig *cfg);

/* Local. Writes cfg->out through a temporary file renamed into place
 * (durable.h), so a failure never leaves a half-written file or harms an
 * existing one. Returns VD_OK, VD_EX_NOINPUT, VD_EX_DATAERR,
 * VD_EX_CANTCREAT (output exists without force, or can't be created) or
 * VD_EX_IOERR. */
int import_idx(const ImportConfig *cfg, VdError *err);

/* Rank 0 only. When data is the built-in default data file (runtime.h) and
 * does not exist, imports Fashion-MNIST there from Debian's package; a
 * missing file that $VAE_DIST_DATA names is VD_EX_NOINPUT, as a --data
 * one. VD_OK, VD_EX_NOINPUT (also: the package is not installed),
 * VD_EX_CANTCREAT or an import_idx error. */
int import_default_data(const char *data, VdError *err);

extern const OptCommand import_command;

/* Collective over comm: the import command (argv after its name); rank 0
 * converts, the others wait for its verdict. Returns the exit code. */
int import_main(int argc, char **argv, MPI_Comm comm);

#endif
