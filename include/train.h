/* train.h — the `train` subcommand: data-parallel training over MPI.
 *
 * Every rank holds the full model and reads only its slice of each epoch's
 * global permutation. Per step: local forward/backward (sum of per-sample
 * gradients), the sum over ranks of the flat gradient buffer (with the loss
 * sums in its tail), divided by the global sample count, and an identical
 * Adam step: by default through node shared memory with the update sharded
 * over the node's ranks (share.h), or one allreduce and the whole update on
 * every rank (--reduce mpi). Rank 0 alone writes checkpoints, metrics and
 * figures. */
#ifndef VD_TRAIN_H
#define VD_TRAIN_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "model.h"
#include "optim.h"
#include "opts.h"
#include "share.h"

typedef struct {
    char data[4096];
    char dataset[256], labels[256], test_dataset[256], test_labels[256];
    char out[4096];
    int epochs;
    int64_t batch; /* GLOBAL: samples per optimizer step over all ranks */
    double lr, beta1, beta2, adam_eps;
    OptList hidden;
    int latent;
    uint64_t seed;
    int log_every;
    int threads;
    int ckpt_every;
    int keep;
    int fresh;
    int max_skips;
    int64_t max_steps;
    int profile;
    int binarize;
    double beta;      /* KL weight */
    int64_t warmup;   /* steps over which the KL weight rises linearly from 0 to beta */
    int activation;   /* VdActivation */
    int likelihood;   /* VdLikelihood */
    char variance[32]; /* Gaussian s^2: a number, or "learned" */
    int classes;      /* > 0: conditional VAE with that many classes */
    int data_mode;    /* VD_FEED_AUTO, _RESIDENT, _STREAM */
    double data_budget; /* MiB of training rows per rank; 0: a quarter of the node's memory */
    int parallel_io;  /* resident blocks read with MPI-IO collective reads */
    double bucket_mib; /* allreduce bucket, MiB; 0: one blocking allreduce */
    int reduce;       /* VD_REDUCE_SHM or VD_REDUCE_MPI */
} TrainConfig;

/* --reduce: node shared memory with a sharded Adam (share.h), or MPI_Allreduce
 * of the whole gradient and Adam on every rank. */
enum { VD_REDUCE_SHM = 0, VD_REDUCE_MPI = 1 };

extern const OptSpec train_options[];

/* The data file used when --data is not given:
 * $VAE_DIST_DATA, else ${XDG_DATA_HOME:-$HOME/.local/share}/vae-dist/fashion-mnist.h5 */
void vd_default_data_path(char *buf, size_t n);

/* Collective over comm. Parses argv (the arguments after "train") and
 * trains. Returns the exit code, the same on every rank. */
int train_main(int argc, char **argv, MPI_Comm comm);

typedef struct {
    double forward, backward, allreduce, optimizer; /* seconds */
} StepTimes;

typedef struct {
    int stop;         /* in: this rank was asked to stop; out: some rank was */
    int poison;       /* in: test hook, make this rank's reduced values non-finite */
    int failed;       /* in: this rank's batch is missing; out: some rank's was (not applied) */
    size_t bucket;    /* in: floats per allreduce bucket, overlapped with backward; 0: one
                       * blocking allreduce after backward */
    NodeShare *share; /* in: reduce and update through node shared memory (bucket unused) */
    StepTimes times;  /* out */
} StepIO;

/* Collective. One optimizer step on rows [0, n) of w->x with noise w->eps
 * (labels w->y if conditional), KL weight beta: local sum of per-sample
 * gradients, their sum over ranks (loss sums, sample count and the stop and
 * failure flags in the tail of the flat buffer), Adam step t with the
 * gradient divided by the global sample count. The sum is an allreduce of
 * m->grads (in buckets posted during backward when io->bucket > 0, else one
 * call after it), or with io->share, share_reduce and share_adam; the
 * summed tail is in m->grads either way. Returns 1, or 0 without touching
 * the parameters if any reduced value is not finite (the same verdict on
 * every rank). io may be NULL. */
int train_step(Vae *m, VaeWork *w, int n, float beta, const AdamConfig *adam, long t,
               MPI_Comm comm, StepIO *io);

/* The KL weight at optimizer step t (from 1): beta * min(1, t / warmup). */
double vd_kl_weight(double beta, int64_t warmup, int64_t t);

/* Collective. Sets OpenBLAS threads per rank: threads > 0 as given; 0 means
 * $OPENBLAS_NUM_THREADS if set, else the cores this rank may use divided by
 * the ranks sharing its node (at least 1). Returns the count set. */
int vd_set_threads(int threads, MPI_Comm comm);

#endif
