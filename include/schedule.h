/* schedule.h — what changes with the step: the learning rate in force
 * (--lr-schedule, --lr-warmup) and the KL weight (--beta, --warmup). Pure
 * functions of the options, the step and the little state a checkpoint
 * keeps (the plateau schedule's), so a resumed run continues exactly.
 * Local. */
#ifndef VD_SCHEDULE_H
#define VD_SCHEDULE_H

#include <stdint.h>

/* The --lr-schedule choices, in the option's order. */
typedef enum { VD_SCHED_CONSTANT, VD_SCHED_COSINE, VD_SCHED_STEP, VD_SCHED_PLATEAU } SchedKind;

typedef struct {
    int kind;            /* SchedKind */
    double lr, lr_min;   /* --lr; cosine's floor (--lr-min) */
    double gamma;        /* step and plateau: the factor of each cut (--lr-gamma) */
    int64_t warmup;      /* --lr-warmup: steps of the linear warm-up (0: none) */
    int64_t step_epochs; /* step: epochs between cuts (--lr-step) */
    int64_t patience;    /* plateau: epochs without improvement before a cut */
} Schedule;

/* The learning rate at step t (from 1) of a run of total steps, spe steps
 * per epoch, with the plateau schedule's factor scale so far:
 *   constant  lr
 *   cosine    lr_min + (lr - lr_min) (1 + cos(pi p)) / 2, p the fraction of
 *             the steps after the warm-up that are done
 *   step      lr gamma^floor(epoch / step_epochs), epoch = (t - 1) / spe
 *   plateau   lr scale
 * times min(1, t / warmup) during the warm-up. */
double sched_lr(const Schedule *s, double scale, int64_t t, int64_t spe, int64_t total);

/* The plateau schedule after an epoch whose watched loss (the test -ELBO,
 * or the training loss without a test set) is loss: an improvement (by more
 * than a relative 1e-4) resets the count of epochs since the best; more
 * than patience of them cut *scale by gamma. Returns 1 after a cut. */
int sched_plateau(const Schedule *s, double loss, double *best, int64_t *bad, double *scale);

/* The KL weight at step t (from 1): beta * min(1, t / warmup). */
double sched_kl_weight(double beta, int64_t warmup, int64_t t);

#endif
