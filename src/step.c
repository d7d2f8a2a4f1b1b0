/* step.c — one optimizer step. See step.h. */
#include "step.h"

#include <math.h>

#include "util.h"

int train_step(Vae *m, VaeWork *w, int n, const Objective *obj, const AdamConfig *adam, long t,
               Reducer *red, StepIO *io)
{
    double t0 = vd_now();
    vae_forward(m, w, n, obj, 1);
    double t1 = vd_now();
    double rsum = 0, ksum = 0;
    for (int i = 0; i < n; i++) {
        rsum += w->row_recon[i];
        ksum += w->row_kl[i];
    }
    float *extra = m->grads + m->n_params;
    extra[VD_EXTRA_RECON] = (float)rsum;
    extra[VD_EXTRA_KL] = (float)ksum;
    extra[VD_EXTRA_COUNT] = (float)n;
    extra[VD_EXTRA_STOP] = io && io->stop ? 1.0f : 0.0f;
    extra[VD_EXTRA_FAIL] = io && io->failed ? 1.0f : 0.0f;
    if (io && io->poison) /* the reduced buffer becomes non-finite, as a bad gradient would */
        extra[VD_EXTRA_RECON] = NAN;
    reduce_begin(red);
    vae_zero_grads(m);
    vae_backward(m, w, obj, reduce_ready, red);
    double t2 = vd_now();
    double sumsq = 0.0, clip = io ? io->clip_norm : 0.0;
    int finite = reduce_finish(red, clip > 0 ? &sumsq : NULL);
    double t3 = vd_now();
    const float *sum = reduce_extras(red);
    int failed = sum[VD_EXTRA_FAIL] > 0.0f;
    float scale = 1.0f / sum[VD_EXTRA_COUNT];
    if (clip > 0) { /* the norm of the mean gradient, from the same double on every rank */
        io->grad_norm = sqrt(sumsq) / sum[VD_EXTRA_COUNT];
        io->clipped = finite && io->grad_norm > clip;
        if (io->clipped)
            scale = (float)(clip / (io->grad_norm * sum[VD_EXTRA_COUNT]));
    }
    int stop = sum[VD_EXTRA_STOP] > 0.0f;
    reduce_update(red, adam, t, scale, finite && !failed);
    double t4 = vd_now();
    if (io) {
        io->stop = stop;
        io->failed = failed;
        io->times = (StepTimes){t1 - t0, t2 - t1, t3 - t2, t4 - t3};
    }
    return finite;
}
