/* ckpt.h — HDF5 checkpoints. Rank 0 only: other ranks hold the same replica.
 *
 * Layout (format_version 4; version 3 has n_latent for latent and lacks
 * prior, pseudo_inputs and graph; version 2 also conv, image and layout;
 * version 1 also the model options), readable with h5py
 * (docs/checkpoint-format.md):
 *   /                 attrs format ("vae-dist checkpoint"), format_version,
 *                     step (optimizer steps done), epoch (epochs completed),
 *                     state_checksum (vd_checksum of parameters, then Adam m,
 *                     then Adam v), skipped_steps, and the logging interval
 *                     and epoch in progress: interval_recon, interval_kl,
 *                     interval_count, epoch_loss, epoch_count
 *   /config           one string attribute per training option, as typed on
 *                     the command line, plus n_ranks
 *   /model            attrs n_input, the model's options as model_desc.h's
 *                     table names them (hidden, conv, latent: arrays;
 *                     activation, likelihood, prior: strings; obs_logvar,
 *                     learn_var, n_classes, pseudo_inputs), graph (JSON:
 *                     the nodes they make), input_shape (one sample as
 *                     stored), data_rows (training samples), layout ("hwc",
 *                     "chw": stored channels first, read channels last;
 *                     "none": not images), image (h, w, c, when images)
 *   /params/<name>    float32, e.g. /params/encoder.0.weight (400, 784); a
 *                     convolution's (c_out, 4, 4, c_in)
 *   /adam/m/<name>    Adam first moments, same shapes
 *   /adam/v/<name>    Adam second moments
 * Random numbers need no state: Philox draws are functions of (seed, step,
 * epoch), all stored above; the data order is recomputed from them. */
#ifndef VD_CKPT_H
#define VD_CKPT_H

#include <stdint.h>

#include "h5rows.h"
#include "model.h"
#include "opts.h"
#include "util.h"

#define VD_CKPT_FORMAT "vae-dist checkpoint"
#define VD_CKPT_VERSION 4

/* Everything besides the tensors that a resumed run needs to continue as if
 * never stopped. */
typedef struct {
    int64_t step;          /* optimizer steps taken */
    int64_t epoch;         /* epochs completed */
    int64_t skipped;       /* non-finite steps skipped so far (--max-skips) */
    double ivl_recon, ivl_kl, ivl_count; /* logging interval in progress */
    double ep_loss, ep_count;            /* epoch in progress */
    /* since format 3, each optional (an older file means the defaults):
     * gradient clipping, the plateau schedule, the best checkpoint */
    double ivl_clipped;      /* steps clipped in the interval in progress */
    int64_t clipped;         /* steps clipped so far (--clip-norm) */
    double lr_scale;         /* the plateau schedule's factor so far (1) */
    double plateau_best;     /* the loss it watches: its best (inf), and */
    int64_t plateau_bad;     /* the epochs since that best, or its last cut */
    double best_loss;        /* the best checkpoint's loss (inf: none) */
    int64_t best_step;       /* its step (0: none) */
    int64_t bad_epochs;      /* epochs since the best (--early-stop) */
    /* optional, since this build: the interval's gradient norms */
    double ivl_grad_norm;    /* the sum of the applied steps' norms before clipping */
    double ivl_norm_steps;   /* and their count */
} TrainState;

/* A state that has trained nothing: zeros, and the defaults above. */
void ckpt_state_init(TrainState *st);

/* What a run trained on: one sample's shape as stored, the training rows,
 * and how the samples are images (c = 0: not images). */
typedef struct {
    int n_dims;
    int64_t shape[VD_MAX_DIMS];
    int64_t rows;
    ImageGeom img;
} CkptData;

/* Rank 0 only. Writes path through durable.h, so path is either the old
 * file or the complete new one. VD_OK, VD_EX_CANTCREAT or VD_EX_IOERR. */
int ckpt_save(const char *path, const Vae *m, const TrainState *st, const CkptData *data,
              const OptSpec *table, const void *cfg, int n_ranks, VdError *err);

/* Local. Reads the model shape stored in a checkpoint. VD_OK, VD_EX_NOINPUT
 * or VD_EX_DATAERR. */
int ckpt_read_shape(const char *path, VaeShape *shape, VdError *err);

/* Local. Reads what the model was trained on (before version 3, samples
 * stored channels first with more than one channel read as not images, for
 * they were taken as stored). 0 or -1. */
int ckpt_read_data(const char *path, CkptData *data);

/* Local. Reads the /config attribute name (an option as typed). 0 or -1. */
int ckpt_read_config(const char *path, const char *name, char *buf, size_t n);

/* Local. Loads parameters, Adam moments and state into m, whose shape must
 * equal the checkpoint's. Verifies state_checksum. VD_OK, VD_EX_NOINPUT,
 * VD_EX_DATAERR (damaged: truncated, corrupt, checksum) or VD_EX_USAGE
 * (another architecture, named in the message). */
int ckpt_load(const char *path, Vae *m, TrainState *st, VdError *err);

/* Local. The checkpoint files "ckpt-<step>.h5" in dir, newest (highest
 * step) first: fills names (each of size 64) up to max; returns the count. */
int ckpt_list(const char *dir, char (*names)[64], int max);

/* Most checkpoint files considered in a run directory. */
#define VD_MAX_CKPTS 4096

/* Rank 0 only. Deletes all but the newest keep checkpoints in dir (keep 0
 * keeps all), and never spare (a name, or NULL). */
void ckpt_prune(const char *dir, int keep, const char *spare);

/* Rank 0 only. Replaces dir/which ("latest": the newest complete
 * checkpoint; "best": the best so far) with name, durably. VD_OK,
 * VD_EX_CANTCREAT or VD_EX_IOERR. */
int ckpt_mark(const char *dir, const char *which, const char *name, VdError *err);

/* Local. Resolves a checkpoint argument: a checkpoint file, a run's
 * "latest" or "best" file (the checkpoint it names, beside it), or a run
 * directory (its "latest", else its newest ckpt-*.h5). path (VD_PATH_MAX
 * bytes) gets the file. VD_OK or VD_EX_NOINPUT. */
int ckpt_find(const char *arg, char *path, VdError *err);

#endif
