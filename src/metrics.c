/* metrics.c — CSV and HDF5 metrics. See metrics.h. */
#include "metrics.h"

#include <errno.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "durable.h"
#include "h5util.h"

static const char *train_cols[] = {"step", "epoch", "loss", "recon", "kl", "lr", "samples_per_s"};
static const char *epoch_cols[] = {"epoch", "step", "train_loss", "test_loss",
                                   "test_recon", "test_kl", "seconds"};
#define NCOLS 7

static int append_csv(const char *dir, const char *file, const char **cols, const double *v,
                      VdError *err)
{
    char path[VD_PATH_MAX];
    if (vd_path_join(path, dir, file) != 0)
        return vd_fail(err, VD_EX_CANTCREAT, "%s/%s: path too long", dir, file);
    int fresh = access(path, F_OK) != 0;
    FILE *f = fopen(path, "a");
    if (!f)
        return vd_fail(err, VD_EX_CANTCREAT, "cannot open %s: %s", path, strerror(errno));
    if (fresh)
        for (int i = 0; i < NCOLS; i++)
            fprintf(f, "%s%c", cols[i], i + 1 < NCOLS ? ',' : '\n');
    if (v)
        for (int i = 0; i < NCOLS; i++)
            fprintf(f, "%.9g%c", v[i], i + 1 < NCOLS ? ',' : '\n');
    if (fclose(f) != 0)
        return vd_fail(err, VD_EX_IOERR, "writing %s failed: %s", path, strerror(errno));
    return VD_OK;
}

static int append_h5(const char *dir, const char *group, const char **cols, const double *v,
                     VdError *err)
{
    char path[VD_PATH_MAX];
    if (vd_path_join(path, dir, "metrics.h5") != 0)
        return vd_fail(err, VD_EX_CANTCREAT, "%s/metrics.h5: path too long", dir);
    hid_t f = access(path, F_OK) == 0 ? H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT)
                                      : H5Fcreate(path, H5F_ACC_EXCL, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0)
        return vd_fail(err, VD_EX_CANTCREAT, "cannot open %s for writing", path);
    hid_t g = H5Lexists(f, group, H5P_DEFAULT) > 0
                  ? H5Gopen2(f, group, H5P_DEFAULT)
                  : H5Gcreate2(f, group, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int bad = g < 0;
    for (int i = 0; !bad && i < NCOLS; i++)
        bad = h5_append_f64(g, cols[i], v[i]) != 0;
    if (g >= 0)
        H5Gclose(g);
    bad |= H5Fclose(f) < 0;
    return bad ? vd_fail(err, VD_EX_IOERR, "appending to %s:/%s failed", path, group) : VD_OK;
}

int metrics_open(const char *dir, VdError *err)
{
    int rc = append_csv(dir, "metrics.csv", train_cols, NULL, err);
    return rc ? rc : append_csv(dir, "epochs.csv", epoch_cols, NULL, err);
}

int metrics_train(const char *dir, const TrainRow *row, VdError *err)
{
    const double *v = &row->step;
    int rc = append_csv(dir, "metrics.csv", train_cols, v, err);
    return rc ? rc : append_h5(dir, "train", train_cols, v, err);
}

int metrics_epoch(const char *dir, const EpochRow *row, VdError *err)
{
    const double *v = &row->epoch;
    int rc = append_csv(dir, "epochs.csv", epoch_cols, v, err);
    return rc ? rc : append_h5(dir, "test", epoch_cols, v, err);
}

/* Keeps the header and the rows whose column col (0-based) is <= step. */
static int truncate_csv(const char *dir, const char *file, int col, int64_t step, VdError *err)
{
    char path[VD_PATH_MAX], line[4096];
    if (vd_path_join(path, dir, file) != 0)
        return vd_fail(err, VD_EX_IOERR, "%s/%s: path too long", dir, file);
    FILE *in = fopen(path, "r");
    if (!in)
        return VD_OK;
    DurableFile out;
    if (durable_open(&out, path, "w", err) != VD_OK) {
        fclose(in);
        return err->code;
    }
    for (int first = 1; fgets(line, sizeof line, in); first = 0) {
        const char *p = line;
        for (int c = 0; c < col && p; c++)
            p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL;
        if (first || (p && strtod(p, NULL) <= (double)step))
            fputs(line, out.f);
    }
    fclose(in);
    return durable_commit(&out, err);
}

/* Shrinks every column of group to the rows whose "step" is <= step. */
static int truncate_h5_group(hid_t f, const char *group, const char **cols, int64_t step)
{
    if (H5Lexists(f, group, H5P_DEFAULT) <= 0)
        return 0;
    hid_t g = H5Gopen2(f, group, H5P_DEFAULT);
    hid_t d = H5Dopen2(g, "step", H5P_DEFAULT);
    if (g < 0 || d < 0)
        return -1;
    hid_t space = H5Dget_space(d);
    hsize_t n = 0;
    H5Sget_simple_extent_dims(space, &n, NULL);
    H5Sclose(space);
    double *v = vd_calloc(n ? n : 1, sizeof(double));
    int rc = n ? (H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0 ? -1 : 0) : 0;
    H5Dclose(d);
    hsize_t keep = 0;
    while (keep < n && v[keep] <= (double)step)
        keep++;
    vd_free(v);
    for (int i = 0; rc == 0 && i < NCOLS; i++) {
        d = H5Dopen2(g, cols[i], H5P_DEFAULT);
        rc = d < 0 || H5Dset_extent(d, &keep) < 0 ? -1 : 0;
        if (d >= 0)
            H5Dclose(d);
    }
    H5Gclose(g);
    return rc;
}

int metrics_truncate(const char *dir, int64_t step, VdError *err)
{
    if (truncate_csv(dir, "metrics.csv", 0, step, err) || truncate_csv(dir, "epochs.csv", 1, step, err))
        return err->code;
    char path[VD_PATH_MAX];
    if (vd_path_join(path, dir, "metrics.h5") != 0 || access(path, F_OK) != 0)
        return VD_OK;
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    int bad = f < 0 || truncate_h5_group(f, "train", train_cols, step) != 0 ||
              truncate_h5_group(f, "test", epoch_cols, step) != 0;
    if (f >= 0)
        bad |= H5Fclose(f) < 0;
    return bad ? vd_fail(err, VD_EX_IOERR, "cannot truncate %s to step %lld", path, (long long)step)
               : VD_OK;
}
