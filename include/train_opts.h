/* train_opts.h — the train command's options: the configuration a run is
 * trained with (stored in each checkpoint's /config), its option table, and
 * the checks the table cannot express. Local. */
#ifndef VD_TRAIN_OPTS_H
#define VD_TRAIN_OPTS_H

#include <stdint.h>

#include "model.h"
#include "opts.h"
#include "util.h"

typedef struct {
    char data[VD_PATH_MAX];
    char dataset[256], labels[256], test_dataset[256], test_labels[256];
    char out[VD_PATH_MAX];
    int epochs;
    int64_t batch; /* GLOBAL: samples per micro-batch over all ranks */
    int accumulate; /* micro-batches of batch per optimizer step */
    double lr, beta1, beta2, adam_eps;
    int lr_schedule;       /* SchedKind */
    int64_t lr_warmup, lr_step, lr_patience;
    double lr_min, lr_gamma;
    double clip_norm;      /* > 0: clip the mean gradient's global norm */
    double weight_decay;   /* decoupled (AdamW) */
    int early_stop;        /* > 0: stop after that many epochs without a better loss */
    double val_fraction;   /* > 0: hold out that part of the training rows as the test set */
    VaeShape model;     /* the model's options (model_desc.c), the data's shape filled later */
    int iw_samples;     /* draws per sample: 1 the ELBO, K > 1 the importance-weighted bound */
    int layout;         /* VdLayout of the samples */
    uint64_t seed;
    int log_every;
    int threads;
    int ckpt_every;
    int keep;
    int fresh;
    int max_skips;
    int compress;         /* CompressMode of what crosses nodes */
    double stall_timeout; /* seconds a wait on other ranks may last (0: no watchdog) */
    int64_t max_steps;
    int profile;
    int show_config;    /* print the whole configuration at the start */
    int quiet;          /* no progress, epoch or checkpoint lines */
    int figure_scale;   /* pixels per image pixel in the PNGs (0: image_auto_scale) */
    int binarize;
    double beta;        /* KL weight */
    int64_t warmup;     /* steps over which the KL weight rises linearly from 0 to beta */
    int data_mode;      /* VD_FEED_AUTO, _RESIDENT, _STREAM */
    double data_budget; /* MiB of training rows per rank; 0: a quarter of the node's memory */
    int parallel_io;    /* resident blocks read with MPI-IO collective reads */
    double bucket_mib;  /* allreduce bucket, MiB; 0: one blocking allreduce */
    int reduce;         /* ReduceMode */
    int node_sum;       /* NodeSum: where shm sums on one node */
    /* not options: which of them the command line named (opts_named), where
     * a default and the same value typed mean different things */
    int named_labels, named_test_dataset, named_test_labels, named_node_sum;
} TrainConfig;

/* --node-sum, in the option's order. */
enum NodeSum { NODE_SUM_ADAM = 0, NODE_SUM_BACKWARD = 1 };

/* The train command's options (train_opts.c), the model's among them
 * (model_desc.h); its defaults include the default data file (runtime.h). */
extern const OptSpec *const train_options;
extern const OptCommand train_command;

/* Local. cfg from the train command's argv, as opts_command: 1 if --help
 * was asked for (rank 0 printed it), else 0 with err set on a bad command
 * line. A --preset's sizes are the defaults the other options override. */
int train_parse(TrainConfig *cfg, int argc, char **argv, int rank, VdError *err);

/* Local. Checks what the table's ranges cannot: --variance (resolved into
 * cfg->model's obs_logvar and learn_var), option combinations. VD_OK or
 * VD_EX_USAGE. */
int train_check_options(TrainConfig *cfg, VdError *err);

/* The samples of an optimizer step, as the options set them, into buf (n
 * bytes): "--batch G", or "--batch G x --accumulate N (M samples)". */
void train_step_rows(const TrainConfig *cfg, char *buf, size_t n);

#endif
