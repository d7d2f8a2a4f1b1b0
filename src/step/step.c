/* step.c — one optimizer step. See step.h. */
#include "step.h"

#include <math.h>
#include <string.h>

#include "util.h"
#include "watch.h"

/* step_run's one part: its rows are already in the work. */
static int rows_in_place(void *ctx, int j, VaeWork *w)
{
    (void)j;
    (void)w;
    return *(const int *)ctx;
}

int step_run(Vae *m, VaeWork *w, int n, const Objective *obj, const AdamConfig *adam, long t,
             Reducer *red, StepIO *io)
{
    return step_run_parts(m, w, 1, rows_in_place, &n, obj, adam, t, red, io);
}

int step_run_parts(Vae *m, VaeWork *w, int parts, StepPart load, void *ctx,
                   const Objective *obj, const AdamConfig *adam, long t, Reducer *red,
                   StepIO *io)
{
    double fwd = 0, bwd = 0, rsum = 0, ksum = 0, t1 = 0;
    int count = 0;
    for (int j = 0; j < parts; j++) {
        int n = load(ctx, j, w);
        double t0 = vd_now();
        vae_forward(m, w, n, obj, 1);
        t1 = vd_now();
        fwd += t1 - t0;
        for (int i = 0; i < n; i++) {
            rsum += w->row_recon[i];
            ksum += w->row_kl[i];
        }
        count += n;
        if (j + 1 < parts) { /* a part before the last: its gradient added, no sum yet */
            if (j == 0)
                vae_zero_grads(m);
            vae_backward(m, w, obj, NULL, NULL);
            bwd += vd_now() - t1;
        }
    }
    float *extra = reduce_tail(red);
    extra[VD_EXTRA_RECON] = (float)rsum;
    extra[VD_EXTRA_KL] = (float)ksum;
    extra[VD_EXTRA_COUNT] = (float)count;
    extra[VD_EXTRA_STOP] = io && io->stop ? 1.0f : 0.0f;
    extra[VD_EXTRA_FAIL] = io && io->failed ? 1.0f : 0.0f;
    if (io && io->poison) /* the reduced buffer becomes non-finite, as a bad gradient would */
        extra[VD_EXTRA_RECON] = NAN;
    reduce_begin(red);
    double t1b = vd_now();
    if (parts == 1)
        vae_zero_grads(m);
    vae_backward(m, w, obj, reduce_ready, red); /* the last part: the sum starts during it */
    double t2 = vd_now();
    bwd += t2 - t1b;
    double sumsq = 0.0, clip = io ? io->clip_norm : 0.0;
    int finite = reduce_finish(red, clip > 0 ? &sumsq : NULL);
    double t3 = vd_now();
    const float *sum = reduce_extras(red);
    int failed = sum[VD_EXTRA_FAIL] > 0.0f, apply = finite && !failed;
    float scale = 1.0f / sum[VD_EXTRA_COUNT];
    double norm = NAN; /* of the mean gradient, from the same double on every rank */
    if (clip > 0) {
        norm = sqrt(sumsq) / sum[VD_EXTRA_COUNT];
        io->clipped = apply && norm > clip;
        if (io->clipped)
            scale = (float)(clip / (norm * sum[VD_EXTRA_COUNT]));
    }
    int stop = sum[VD_EXTRA_STOP] > 0.0f;
    reduce_update(red, adam, t, scale, apply);
    double t4 = vd_now();
    if (io) { /* NaN for a step not applied; --reduce shm's fused pass sums it in the update */
        if (clip <= 0)
            norm = sqrt(reduce_grad_sumsq(red)) / sum[VD_EXTRA_COUNT];
        io->grad_norm = apply ? norm : NAN;
        io->stop = stop;
        io->failed = failed;
        io->times = (StepTimes){fwd, bwd, t3 - t2, t4 - t3};
    }
    return finite;
}

/* ---- a VampPrior's pseudo-inputs, split over the ranks ------------------ */

typedef struct {
    VaeGroup g;
    MPI_Comm comm;
    int *counts, *displs;
    float *mine;
    size_t mine_floats;
} StepGroup;

/* Each rank's floats of a K-row buffer of rows of n. */
static void group_layout(StepGroup *s, int K, int n)
{
    for (int r = 0; r < s->g.size; r++) {
        s->displs[r] = vae_group_first(K, r, s->g.size) * n;
        s->counts[r] = vae_group_first(K, r + 1, s->g.size) * n - s->displs[r];
    }
}

static void group_gather(void *ctx, float *buf, int K, int n)
{
    StepGroup *s = ctx;
    group_layout(s, K, n);
    watch_wait("the VampPrior's components");
    MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, s->counts, s->displs, MPI_FLOAT,
                   s->comm);
    watch_done();
}

static void group_sum_slice(void *ctx, float *buf, int K, int n)
{
    StepGroup *s = ctx;
    group_layout(s, K, n);
    size_t need = (size_t)s->counts[s->g.rank] + 1;
    if (need > s->mine_floats) {
        vd_free(s->mine);
        s->mine = vd_calloc(need, sizeof(float));
        s->mine_floats = need;
    }
    watch_wait("the sum of the VampPrior's components' gradient");
    MPI_Reduce_scatter(buf, s->mine, s->counts, MPI_FLOAT, MPI_SUM, s->comm);
    watch_done();
    memcpy(buf + s->displs[s->g.rank], s->mine, sizeof(float) * (size_t)s->counts[s->g.rank]);
}

VaeGroup *step_group_create(MPI_Comm comm)
{
    StepGroup *s = vd_calloc(1, sizeof *s);
    MPI_Comm_dup(comm, &s->comm);
    MPI_Comm_rank(comm, &s->g.rank);
    MPI_Comm_size(comm, &s->g.size);
    s->counts = vd_calloc((size_t)s->g.size, sizeof(int));
    s->displs = vd_calloc((size_t)s->g.size, sizeof(int));
    s->g.gather = group_gather;
    s->g.sum_slice = group_sum_slice;
    s->g.ctx = s;
    return &s->g;
}

void step_group_free(VaeGroup *g)
{
    if (!g)
        return;
    StepGroup *s = g->ctx;
    MPI_Comm_free(&s->comm);
    vd_free(s->counts);
    vd_free(s->displs);
    vd_free(s->mine);
    vd_free(s);
}
