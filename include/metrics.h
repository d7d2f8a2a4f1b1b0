/* metrics.h — training metrics as CSV and HDF5 in the run directory. Rank 0
 * only.
 *   metrics.csv, metrics.h5:/train/<column>  one row per logging interval:
 *       step, epoch, loss, recon, kl, lr, samples_per_s, clipped, grad_norm
 *   epochs.csv, metrics.h5:/test/<column>    one row per epoch:
 *       epoch, step, train_loss, test_loss, test_recon, test_kl, seconds,
 *       active_units
 *
 * The CSV files are appended and closed at each row. metrics.h5 stays open
 * for the whole run in HDF5's single-writer/multiple-reader mode (SWMR), so
 * a plotting script can follow it live by opening it with swmr=True
 * (jobs/follow-metrics.py); each row is flushed as it is written. A reader
 * can never stop training: a metrics.h5 that cannot be opened or written
 * (held by a reader without SWMR, a full disk) costs one warning, and its
 * rows wait in memory and are written as soon as it can be opened again,
 * at the latest when the run ends. */
#ifndef VD_METRICS_H
#define VD_METRICS_H

#include <stdint.h>

#include "util.h"

typedef struct {
    double step, epoch, loss, recon, kl, lr, samples_per_s, clipped;
    double grad_norm; /* the mean over the interval's steps of the global norm before clipping */
} TrainRow;

typedef struct {
    double epoch, step, train_loss, test_loss, test_recon, test_kl, seconds, active_units;
} EpochRow;

typedef struct Metrics Metrics;

/* Starts the metrics of the run in dir: keeps the rows logged up to
 * keep_step (a run resumed from a checkpoint at that step logs each row
 * once; 0: none), in both files, rewriting rows of an older layout to the
 * current columns (the new ones NaN), and opens metrics.h5 for writing with
 * SWMR. NULL with err set (VD_EX_CANTCREAT or VD_EX_IOERR) when the CSV
 * files cannot be written; metrics.h5 failing is a warning. */
Metrics *metrics_start(const char *dir, int64_t keep_step, VdError *err);

/* Append a row to the CSV and to metrics.h5. Never fatal: a failure is one
 * warning on stderr (per file), and the row is kept for a later write. */
void metrics_train(Metrics *m, const TrainRow *row);
void metrics_epoch(Metrics *m, const EpochRow *row);

/* Writes what still waits and closes metrics.h5. NULL is fine. */
void metrics_close(Metrics *m);

#endif
