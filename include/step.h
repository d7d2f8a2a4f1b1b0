/* step.h — one data-parallel optimizer step: forward, backward, the sum over
 * the ranks (reduce.h), the update. */
#ifndef VD_STEP_H
#define VD_STEP_H

#include "model.h"
#include "optim.h"
#include "reduce.h"

typedef struct {
    double forward, backward, reduce, update; /* seconds */
} StepTimes;

typedef struct {
    int stop;        /* in: this rank was asked to stop; out: some rank was */
    int poison;      /* in: test hook, make this rank's reduced values non-finite */
    int failed;      /* in: this rank's batch is missing; out: some rank's was (not applied) */
    StepTimes times; /* out */
} StepIO;

/* Collective over the reducer's ranks. One optimizer step on rows [0, n) of
 * w->x with noise w->eps (labels w->y if conditional), KL weight beta: the
 * local sum of per-sample gradients, their sum over the ranks (loss sums,
 * sample count and the stop and failure flags in the tail of the flat
 * buffer), and Adam step t with the gradient divided by the global sample
 * count. The summed tail is in m->grads afterwards. Returns 1, or 0 without
 * touching the parameters if any reduced value is not finite (the same
 * verdict on every rank). io may be NULL. */
int train_step(Vae *m, VaeWork *w, int n, float beta, const AdamConfig *adam, long t,
               Reducer *red, StepIO *io);

/* The KL weight at optimizer step t (from 1): beta * min(1, t / warmup). */
double step_kl_weight(double beta, int64_t warmup, int64_t t);

#endif
