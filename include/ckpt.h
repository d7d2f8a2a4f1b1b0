/* ckpt.h — HDF5 checkpoints. Rank 0 only: other ranks hold the same replica.
 *
 * Layout (format_version 1), readable with h5py:
 *   /                 attrs format ("vae-dist checkpoint"), format_version,
 *                     step (optimizer steps done), epoch (epochs completed),
 *                     params_checksum (vd_checksum_f32 of all parameters)
 *   /config           one string attribute per training option, as typed on
 *                     the command line, plus n_ranks
 *   /model            attrs n_input, n_latent, hidden (array), input_shape
 *   /params/<name>    float32, e.g. /params/encoder.0.weight (400, 784)
 *   /adam/m/<name>    Adam first moments, same shapes
 *   /adam/v/<name>    Adam second moments
 * Random streams need no state: Philox draws are functions of (seed, step,
 * epoch), all stored above. */
#ifndef VD_CKPT_H
#define VD_CKPT_H

#include <stdint.h>

#include "model.h"
#include "opts.h"
#include "util.h"

#define VD_CKPT_FORMAT "vae-dist checkpoint"
#define VD_CKPT_VERSION 1

typedef struct {
    int64_t step;  /* optimizer steps taken */
    int64_t epoch; /* epochs completed */
} TrainState;

/* Rank 0 only. Writes path via "path.tmp", fsync and rename, so path is
 * either the old file or the complete new one. input_shape (n_dims values)
 * is the shape of one sample. VD_OK, VD_EX_CANTCREAT or VD_EX_IOERR. */
int ckpt_save(const char *path, const Vae *m, const TrainState *st, const int64_t *input_shape,
              int n_dims, const OptSpec *table, const void *cfg, int n_ranks, VdError *err);

/* Local. Reads the model shape stored in a checkpoint. VD_OK, VD_EX_NOINPUT
 * or VD_EX_DATAERR. */
int ckpt_read_shape(const char *path, VaeShape *shape, VdError *err);

/* Local. Loads parameters, Adam moments and state into m, whose shape must
 * equal the checkpoint's. Verifies params_checksum. VD_OK, VD_EX_NOINPUT or
 * VD_EX_DATAERR (naming what differs or is damaged). */
int ckpt_load(const char *path, Vae *m, TrainState *st, VdError *err);

#endif
