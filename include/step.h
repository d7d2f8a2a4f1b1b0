/* step.h — one data-parallel optimizer step: forward, backward, the sum over
 * the ranks (reduce.h), the update. */
#ifndef VD_STEP_H
#define VD_STEP_H

#include <mpi.h>

#include "model.h"
#include "optim.h"
#include "reduce.h"

typedef struct {
    double forward, backward, reduce, update; /* seconds */
} StepTimes;

typedef struct {
    int stop;         /* in: this rank was asked to stop; out: some rank was */
    int poison;       /* in: test hook, make this rank's reduced values non-finite */
    int failed;       /* in: this rank's batch is missing; out: some rank's was (not applied) */
    double clip_norm; /* in: > 0, clip the mean gradient to this global norm (--clip-norm) */
    double grad_norm; /* out: the mean gradient's global norm before clipping (NaN if the step
                       * was not applied) */
    int clipped;      /* out: the gradient was scaled down to clip_norm */
    StepTimes times;  /* out */
} StepIO;

/* Collective over the reducer's ranks. One optimizer step on rows [0, n) of
 * w->x with noise w->eps (labels w->y if conditional) and the objective obj
 * (its draws per row, its KL weight): the local sum of per-sample
 * gradients, their sum over the ranks (loss sums, sample count and the
 * stop and failure flags in the tail of the flat buffer), and Adam step t
 * with the gradient divided by the global sample count (and, with
 * io->clip_norm, scaled down to that norm, the same on every rank). The
 * summed tail is in reduce_extras(red) afterwards. Returns 1, or 0 without
 * touching the parameters if any reduced value is not finite (the same
 * verdict on every rank). io may be NULL. */
int step_run(Vae *m, VaeWork *w, int n, const Objective *obj, const AdamConfig *adam, long t,
             Reducer *red, StepIO *io);

/* Puts part j of a step's rows into w (x, eps, and y if conditional) and
 * returns their count. */
typedef int (*StepPart)(void *ctx, int j, VaeWork *w);

/* Collective, as step_run, for a step whose rows come in parts (gradient
 * accumulation, --accumulate): each part's forward and backward add to the
 * gradient, and the sum over the ranks and the update follow once, after
 * the last part. One part is step_run. */
int step_run_parts(Vae *m, VaeWork *w, int parts, StepPart load, void *ctx,
                   const Objective *obj, const AdamConfig *adam, long t, Reducer *red,
                   StepIO *io);

/* Collective over comm: the exchanges of a VampPrior's pseudo-inputs split
 * over comm's ranks (model.h's VaeGroup), each a wait the stall watchdog
 * watches. Free with step_group_free (local). */
VaeGroup *step_group_create(MPI_Comm comm);
void step_group_free(VaeGroup *g);

#endif
