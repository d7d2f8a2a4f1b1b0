/* schedule.c — learning-rate schedules and the KL warm-up. See schedule.h. */
#include "schedule.h"

#include <math.h>

double sched_lr(const Schedule *s, double scale, int64_t t, int64_t spe, int64_t total)
{
    double lr = s->lr;
    if (s->kind == VD_SCHED_COSINE) {
        double span = (double)(total - s->warmup), done = (double)(t - s->warmup);
        double p = span > 0 ? (done < 0 ? 0 : done > span ? 1 : done / span) : 1;
        lr = s->lr_min + (s->lr - s->lr_min) * 0.5 * (1.0 + cos(M_PI * p));
    } else if (s->kind == VD_SCHED_STEP && s->step_epochs > 0) {
        int64_t epoch = (t - 1) / (spe > 0 ? spe : 1);
        lr = s->lr * pow(s->gamma, (double)(epoch / s->step_epochs));
    } else if (s->kind == VD_SCHED_PLATEAU) {
        lr = s->lr * scale;
    }
    if (s->warmup > 0 && t < s->warmup)
        lr *= (double)t / (double)s->warmup;
    return lr;
}

int sched_plateau(const Schedule *s, double loss, double *best, int64_t *bad, double *scale)
{
    if (s->kind != VD_SCHED_PLATEAU || !isfinite(loss))
        return 0;
    if (loss < *best - 1e-4 * fabs(*best) || !isfinite(*best)) {
        *best = loss;
        *bad = 0;
        return 0;
    }
    if (++*bad <= s->patience)
        return 0;
    *scale *= s->gamma;
    *bad = 0;
    return 1;
}

double sched_kl_weight(double beta, int64_t warmup, int64_t t)
{
    return warmup > 0 && t < warmup ? beta * (double)t / (double)warmup : beta;
}
