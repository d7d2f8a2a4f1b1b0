/* run.h — one training run, shared by the parts of the train command
 * (train.c, train_data.c, rundir.c, figures.c, loop.c; see train.h), split
 * into what is configuration, what a checkpoint saves, and what lives only
 * while the process does. Private to that command. */
#ifndef VD_RUN_H
#define VD_RUN_H

#include <mpi.h>
#include <stdint.h>

#include "ckpt.h"
#include "shard.h"
#include "feed.h"
#include "model.h"
#include "reduce.h"
#include "train_opts.h"

/* Seconds spent per part, summed over the run's steps. */
typedef struct {
    double data, forward, backward, reduce, update, eval, io;
    int64_t steps;
} Profile;

/* What the run is: the options, and what follows from them, the data's
 * size and the ranks. Set by train.c before the first step, and read-only
 * after. */
typedef struct {
    TrainConfig cfg;     /* the options, stored in each checkpoint's /config */
    int rank, size, threads;
    MPI_Comm comm;
    int64_t n_rows;      /* training rows */
    int64_t steps_per_epoch, total_steps;
    int64_t batch;       /* global samples per optimizer step: --batch x --accumulate */
    int B;               /* local batch: this rank's samples per step */
    int parts, part;     /* a step's parts (--accumulate), and rows of a part (up to) */
    int64_t test_begin, test_end; /* this rank's block of test rows */
} RunPlan;

/* The data sets, opened and checked by train_data.c, and what reads them:
 * the feed of training batches and this rank's test rows. */
typedef struct {
    H5Rows train_x, train_y, test_x, test_y;
    int has_train_y, has_test, has_test_y;
    Feed *feed;
    Shard test;          /* this rank's block of test rows */
} RunData;

/* The machinery of this process: rebuilt by a resumed run, never saved. */
typedef struct {
    Vae *m;              /* its tensors are checkpointed, with Run.st */
    VaeWork *w;
    Reducer *red;        /* from the first step to the last */
    double shared_mib;   /* --reduce shm: the node's segment */
    struct Metrics *metrics;     /* rank 0 */
    int64_t *batch_rows;         /* (B) dataset rows of the current batch */
    float *stage_x, *stage_eps;  /* with parts: the step's rows and noise, then each part's */
    int32_t *stage_y;
    float *test_mu, *all_mu;     /* latent means of the test rows: 2-D latent with labels */
    int32_t *test_lab, *all_lab; /* (this rank's; all on rank 0) */
    char resumed_from[VD_PATH_MAX]; /* rank 0: the checkpoint the run continues, or "" */
    int started;                    /* the start lines are printed */
    int lock_fd;                    /* rank 0: RUN/lock, held while the run lives (-1: none) */
    int claimed;                    /* rank 0: the run directory is checked and locked */
    Profile prof;
} RunLive;

/* A training run: configuration (plan), the state a checkpoint saves
 * besides the model's tensors (st), and the live machinery (data, live). */
typedef struct {
    RunPlan plan;
    TrainState st;
    RunData data;
    RunLive live;
} Run;

/* train_data.c. Local: opens the training and test data sets and checks
 * they fit together and the model's options (labels in range on rank 0). */
void train_data_open(Run *r, VdError *err);
/* Collective: the training feed and this rank's test rows, read and
 * checked (resident rows now, streamed ones as they are read). */
int train_data_load(Run *r, VdError *err);
/* Rank 0: the line that says how the training rows are held. */
void train_data_print(const Run *r);

/* rundir.c. Collective, before the data are read: names the run directory
 * (strftime patterns expand on rank 0) and, if it exists, claims it: refuses
 * files of a run's names that vae-dist did not write, takes RUN/lock, and
 * refuses a newest checkpoint that cannot continue this run (its options,
 * the data's shape, its model). Creates nothing where there is nothing. */
int rundir_claim(Run *r, VdError *err);
/* Collective, once the data are read and checked: creates the run
 * directory and claims it if rundir_claim found none, and sets a previous
 * run aside with --fresh. */
int rundir_prepare(Run *r, VdError *err);
/* Collective. Continues from the newest valid checkpoint in the run
 * directory, if any: rank 0 picks and loads it (falling back to older ones
 * when it is damaged) and broadcasts the state. Returns 1 if resumed. */
int rundir_resume(Run *r, VdError *err);
/* Rank 0: a note for each option the resumed run changes (those it may). */
void rundir_note_changes(const Run *r);
/* Rank 0: the metrics files (metrics.h) and config.txt. */
int rundir_start_logs(Run *r, VdError *err);
/* Rank 0: checkpoint, "latest" (and "best" when best), and pruning to
 * --keep, which never takes the best; its file name goes to saved (64
 * bytes; NULL: not wanted). */
int rundir_save(Run *r, int best, char *saved, VdError *err);
/* Rank 0, at the end: RUN/status, one line for batch scripts: "done STEP",
 * "paused STEP" (--max-steps ended it before its last epoch: exit 0, more
 * to do), "stopped STEP" (exit 75) or "failed CODE STEP", STEP the newest
 * checkpoint's. Best effort. */
void rundir_status(const Run *r, int code);

/* figures.c. Rank 0: loss.png, and for image data reconstructions.png and
 * samples.png of the model as it is; a figure that cannot be written is a
 * warning. */
void figures_images(Run *r);
/* Rank 0: image_note_scale's line when --figure-scale is lowered for
 * samples.png. */
void figures_note_scale(const Run *r);
/* Collective: latent.png, the test set's latent means of a 2-D latent. */
void figures_latent(Run *r, int64_t epoch);

/* loop.c. Collective. Trains from r->st to the end (or a stop); returns
 * the exit code. */
int loop_run(Run *r, VdError *err);
/* Collective: the per-step time split, printed by rank 0. */
void loop_print_profile(const Run *r);

#endif
