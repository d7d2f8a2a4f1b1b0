/* import.c — IDX to HDF5. See import.h. */
#include "config.h"
#include "import.h"

#include <errno.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "comm.h"
#include "durable.h"
#include "h5util.h"
#include "opts.h"
#include "runtime.h"

#define IDX_MAX_BYTES (INT64_C(1) << 34)

static int read_exact(gzFile f, void *buf, size_t n)
{
    char *p = buf;
    while (n > 0) {
        unsigned chunk = n > (1u << 30) ? (1u << 30) : (unsigned)n;
        int got = gzread(f, p, chunk);
        if (got <= 0)
            return -1;
        p += got;
        n -= (size_t)got;
    }
    return 0;
}

int idx_read(const char *path, IdxArray *out, VdError *err)
{
    memset(out, 0, sizeof *out);
    if (access(path, R_OK) != 0)
        return vd_fail(err, VD_EX_NOINPUT, "cannot read %s: %s", path, strerror(errno));
    gzFile f = gzopen(path, "rb"); /* reads plain files too */
    if (!f)
        return vd_fail(err, VD_EX_NOINPUT, "cannot open %s: %s", path, strerror(errno));
    int rc = VD_OK;
    unsigned char head[4], dimb[4];
    if (read_exact(f, head, 4) != 0) {
        rc = vd_fail(err, VD_EX_DATAERR, "%s: too short for an IDX header", path);
        goto done;
    }
    if (head[0] != 0 || head[1] != 0 || head[2] != 0x08 || head[3] < 1 || head[3] > 4) {
        rc = vd_fail(err, VD_EX_DATAERR,
                     "%s: not an unsigned-byte IDX file (magic %02x%02x%02x%02x)", path, head[0],
                     head[1], head[2], head[3]);
        goto done;
    }
    out->n_dims = head[3];
    int64_t total = 1;
    for (int i = 0; i < out->n_dims; i++) {
        if (read_exact(f, dimb, 4) != 0) {
            rc = vd_fail(err, VD_EX_DATAERR, "%s: truncated IDX header", path);
            goto done;
        }
        out->dims[i] = (int64_t)dimb[0] << 24 | dimb[1] << 16 | dimb[2] << 8 | dimb[3];
        if (out->dims[i] == 0 || total > IDX_MAX_BYTES / out->dims[i]) {
            rc = vd_fail(err, VD_EX_DATAERR, "%s: IDX dimension %d is zero or too large", path, i);
            goto done;
        }
        total *= out->dims[i];
    }
    out->data = malloc((size_t)total);
    if (!out->data) {
        rc = vd_fail(err, VD_EX_SOFTWARE, "%s: out of memory for %lld bytes", path,
                     (long long)total);
        goto done;
    }
    if (read_exact(f, out->data, (size_t)total) != 0) {
        rc = vd_fail(err, VD_EX_DATAERR, "%s: truncated: header promises %lld bytes of data",
                     path, (long long)total);
        goto done;
    }
    char extra;
    if (gzread(f, &extra, 1) != 0)
        rc = vd_fail(err, VD_EX_DATAERR, "%s: trailing bytes after the IDX data", path);
done:
    gzclose(f);
    if (rc != VD_OK)
        idx_free(out);
    return rc;
}

void idx_free(IdxArray *a)
{
    if (!a)
        return;
    free(a->data);
    a->data = NULL;
}

/* One uint8 dataset, chunked by rows and gzip-compressed. */
static int write_u8(hid_t file, const char *name, const IdxArray *a)
{
    hsize_t dims[4], chunk[4];
    int64_t row = 1;
    for (int i = 0; i < a->n_dims; i++) {
        dims[i] = chunk[i] = (hsize_t)a->dims[i];
        if (i)
            row *= a->dims[i];
    }
    /* ~64 KiB chunks: random row access decodes little more than it needs */
    int64_t rows = row >= 65536 ? 1 : 65536 / row;
    chunk[0] = (hsize_t)(rows < a->dims[0] ? rows : a->dims[0]);
    hid_t space = H5Screate_simple(a->n_dims, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, a->n_dims, chunk);
    H5Pset_deflate(dcpl, 4);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t d = H5Dcreate2(file, name, H5T_STD_U8LE, space, lcpl, dcpl, H5P_DEFAULT);
    int rc = d < 0 ? -1 : H5Dwrite(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, a->data);
    if (d >= 0)
        H5Dclose(d);
    H5Pclose(lcpl);
    H5Pclose(dcpl);
    H5Sclose(space);
    return rc < 0 ? -1 : 0;
}

int import_idx(const ImportConfig *cfg, VdError *err)
{
    const char *srcs[4] = {cfg->train_images, cfg->train_labels, cfg->test_images,
                           cfg->test_labels};
    const char *names[4] = {"/train/images", "/train/labels", "/test/images", "/test/labels"};
    IdxArray arr[4] = {{0}};
    DurableFile out = {.tmp = ""};
    hid_t file = H5I_INVALID_HID;
    int rc = VD_OK;

    if (!cfg->force && access(cfg->out, F_OK) == 0)
        return vd_fail(err, VD_EX_CANTCREAT, "%s exists; pass --force to replace it", cfg->out);
    for (int i = 0; i < 4; i++)
        if ((rc = idx_read(srcs[i], &arr[i], err)) != VD_OK)
            goto fail;
    for (int s = 0; s < 4; s += 2) {
        if (arr[s].n_dims < 2 || arr[s + 1].n_dims != 1 || arr[s].dims[0] != arr[s + 1].dims[0]) {
            rc = vd_fail(err, VD_EX_DATAERR,
                         "%s (%lld rows) and %s (%lld labels) do not pair up as images and labels",
                         srcs[s], (long long)arr[s].dims[0], srcs[s + 1],
                         (long long)arr[s + 1].dims[0]);
            goto fail;
        }
    }
    if (arr[0].n_dims != arr[2].n_dims || memcmp(arr[0].dims + 1, arr[2].dims + 1,
                                                 sizeof(int64_t) * (size_t)(arr[0].n_dims - 1))) {
        rc = vd_fail(err, VD_EX_DATAERR, "train and test images differ in shape");
        goto fail;
    }
    int max_label = 0;
    for (int s = 1; s < 4; s += 2)
        for (int64_t i = 0; i < arr[s].dims[0]; i++)
            if (arr[s].data[i] > max_label)
                max_label = arr[s].data[i];

    if ((rc = durable_begin(&out, cfg->out, err)) != VD_OK)
        goto fail;
    file = H5Fcreate(out.tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (file < 0) {
        rc = vd_fail(err, VD_EX_CANTCREAT, "cannot create %s", out.tmp);
        goto fail;
    }
    for (int i = 0; i < 4; i++) {
        if (write_u8(file, names[i], &arr[i]) != 0) {
            rc = vd_fail(err, VD_EX_IOERR, "writing %s to %s failed (disk full?)", names[i],
                         out.tmp);
            goto fail;
        }
    }
    char classes[16];
    snprintf(classes, sizeof classes, "%d", max_label + 1);
    if (h5_attr_str(file, "source_train_images", cfg->train_images) ||
        h5_attr_str(file, "source_test_images", cfg->test_images) ||
        h5_attr_str(file, "num_classes", classes) ||
        h5_attr_str(file, "created_by", PACKAGE_STRING)) {
        rc = vd_fail(err, VD_EX_IOERR, "writing attributes to %s failed", out.tmp);
        goto fail;
    }
    herr_t closed = H5Fclose(file);
    file = H5I_INVALID_HID;
    if (closed < 0) {
        rc = vd_fail(err, VD_EX_IOERR, "closing %s failed (disk full?)", out.tmp);
        goto fail;
    }
    rc = durable_commit(&out, err);
    for (int i = 0; i < 4; i++)
        idx_free(&arr[i]);
    return rc;
fail:
    if (file >= 0)
        H5Fclose(file);
    durable_discard(&out);
    for (int i = 0; i < 4; i++)
        idx_free(&arr[i]);
    return rc;
}

int import_default_data(const char *data, VdError *err)
{
    char def[VD_PATH_MAX];
    runtime_default_data(def);
    if (strcmp(data, def) != 0 || access(data, F_OK) == 0)
        return VD_OK;
    /* a file the user named is never made up: only the built-in default is imported */
    const char *named = getenv("VAE_DIST_DATA");
    if (named && *named)
        return vd_fail(err, VD_EX_NOINPUT,
                       "no data: $VAE_DIST_DATA names %s, which does not exist (unset it for "
                       "Fashion-MNIST, or pass --data FILE)", data);
    ImportConfig ic;
    import_defaults(&ic);
    snprintf(ic.out, sizeof ic.out, "%s", data);
    char dir[VD_PATH_MAX];
    snprintf(dir, sizeof dir, "%s", data);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    if (access(ic.train_images, R_OK) != 0)
        return vd_fail(err, VD_EX_NOINPUT,
                       "no data: %s does not exist and Fashion-MNIST is not installed "
                       "(apt-get install dataset-fashion-mnist, or pass --data FILE)",
                       data);
    if (slash && slash != dir && vd_mkdirs(dir) != 0)
        return vd_fail(err, VD_EX_CANTCREAT, "cannot create %s: %s", dir, strerror(errno));
    printf("importing Fashion-MNIST from %s to %s\n", VD_FASHION_MNIST_DIR, data);
    return import_idx(&ic, err);
}

/* ---- the command ------------------------------------------------------ */

#define IOFF(f) OPT_STR, offsetof(ImportConfig, f), sizeof(((ImportConfig *)0)->f)
#define FMNIST VD_FASHION_MNIST_DIR "/"

static const OptSpec import_options[] = {
    {"train-images", IOFF(train_images), FMNIST "train-images-idx3-ubyte.gz", 0, 0, "FILE",
     "IDX training images (.gz or plain)"},
    {"train-labels", IOFF(train_labels), FMNIST "train-labels-idx1-ubyte.gz", 0, 0, "FILE",
     "IDX training labels"},
    {"test-images", IOFF(test_images), FMNIST "t10k-images-idx3-ubyte.gz", 0, 0, "FILE",
     "IDX test images"},
    {"test-labels", IOFF(test_labels), FMNIST "t10k-labels-idx1-ubyte.gz", 0, 0, "FILE",
     "IDX test labels"},
    {"out", IOFF(out), "", 0, 0, "FILE", "HDF5 file to write (default: the default --data)"},
    {"force", OPT_BOOL, offsetof(ImportConfig, force), 0, "0", 0, 0, NULL,
     "replace an existing output file"},
    OPT_END};

static void import_defaults_of(void *cfg) { import_defaults(cfg); }

const OptCommand import_command = {
    "import", "vae-dist import [options]",
    "Writes /train/images, /train/labels, /test/images and /test/labels (uint8, chunked, gzip) "
    "to one HDF5 file, from IDX files (gzip or plain) such as MNIST's.",
    import_options, sizeof(ImportConfig), import_defaults_of};

void import_defaults(ImportConfig *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    opts_defaults(import_options, cfg);
    runtime_default_data(cfg->out);
}

int import_main(int argc, char **argv, MPI_Comm comm)
{
    int rank;
    MPI_Comm_rank(comm, &rank);
    ImportConfig cfg;
    VdError err = {0};
    if (opts_command(&import_command, &cfg, argc, argv, rank, &err))
        return VD_OK;
    if (err.code == VD_OK && rank == 0) {
        char dir[VD_PATH_MAX];
        snprintf(dir, sizeof dir, "%s", cfg.out);
        char *slash = strrchr(dir, '/');
        if (slash && slash != dir) {
            *slash = '\0';
            if (vd_mkdirs(dir) != 0)
                vd_fail(&err, VD_EX_CANTCREAT, "cannot create directory %s: %s", dir,
                        strerror(errno));
        }
        if (err.code == VD_OK && (cfg.force || access(cfg.out, F_OK) != 0))
            durable_check(cfg.out, &err); /* before the IDX files are read */
        if (err.code == VD_OK && import_idx(&cfg, &err) == VD_OK)
            printf("wrote %s\n", cfg.out);
    }
    return vd_error_agree(&err, comm);
}
