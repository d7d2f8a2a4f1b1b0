/* metrics.c — CSV and HDF5 metrics. See metrics.h. */
#include "metrics.h"

#include <errno.h>
#include <hdf5.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "h5util.h"

static const char *train_cols[] = {"step", "epoch", "loss", "recon", "kl", "lr", "samples_per_s"};
static const char *epoch_cols[] = {"epoch", "step", "train_loss", "test_loss",
                                   "test_recon", "test_kl", "seconds"};
#define NCOLS 7

static int append_csv(const char *dir, const char *file, const char **cols, const double *v,
                      VdError *err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, file);
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
    char path[4200];
    snprintf(path, sizeof path, "%s/metrics.h5", dir);
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
