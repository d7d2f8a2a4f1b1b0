/* metrics.h — training metrics as CSV and HDF5 in the run directory. Rank 0
 * only. Files are opened, appended to and closed on each call, so they can be
 * read (and plotted) while training runs, and a crash loses at most the row
 * being written.
 *   metrics.csv, metrics.h5:/train/<column>  one row per logging interval:
 *       step, epoch, loss, recon, kl, lr, samples_per_s
 *   epochs.csv, metrics.h5:/test/<column>    one row per epoch:
 *       epoch, step, train_loss, test_loss, test_recon, test_kl, seconds */
#ifndef VD_METRICS_H
#define VD_METRICS_H

#include <stdint.h>

#include "util.h"

typedef struct {
    double step, epoch, loss, recon, kl, lr, samples_per_s;
} TrainRow;

typedef struct {
    double epoch, step, train_loss, test_loss, test_recon, test_kl, seconds;
} EpochRow;

/* Creates the CSV headers (if the files are new). VD_OK or VD_EX_CANTCREAT. */
int metrics_open(const char *dir, VdError *err);
int metrics_train(const char *dir, const TrainRow *row, VdError *err);
int metrics_epoch(const char *dir, const EpochRow *row, VdError *err);

/* Drops the rows logged after step (from the CSV files and metrics.h5), so
 * a run resumed from a checkpoint at that step logs each row once. Missing
 * files are fine. VD_OK or VD_EX_IOERR. */
int metrics_truncate(const char *dir, int64_t step, VdError *err);

#endif
