/* loop.c — the epochs and steps of a training run, the per-epoch test ELBO,
 * the progress lines and metrics rows, and the profile printout. See run.h. */
#include "run.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "comm.h"
#include "h5util.h"
#include "metrics.h"
#include "rng.h"
#include "schedule.h"
#include "signals.h"
#include "step.h"
#include "watch.h"

/* What the loop carries from step to step, besides the run's state. */
typedef struct {
    Rng noise, bin;
    AdamConfig adam;
    Schedule sched;
    double lr;           /* the rate of the last step */
    int64_t poison_step; /* test hook $VAE_DIST_TEST_NAN_STEP (docs/faults-and-resume.md) */
    int64_t kill_step;   /* test hook $VAE_DIST_TEST_KILL_STEP: the last rank dies there */
    int64_t first_step;  /* where this process started */
    double run_start, ivl_start;
    double ivl_fresh;    /* samples of the interval stepped by this process: a resumed
                          * interval's earlier samples were not, and do not count in its rate */
    int stop, code;
    int early;           /* stopped by --early-stop */
    int cut;             /* the plateau schedule cut the rate at this epoch's end */
} Loop;

/* The test set's figures of one epoch, summed over the ranks. */
enum { T_RECON, T_KL, T_COUNT, T_N };

static void fmt_duration(char *buf, size_t n, double s)
{
    long t = s > 0 && s < 1e9 ? (long)(s + 0.5) : 0;
    if (t >= 3600)
        snprintf(buf, n, "%ldh%02ldm", t / 3600, t / 60 % 60);
    else
        snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
}

/* Collective. The test set's ELBO sums of (recon, KL, count) in tot, with
 * eps from the eval generator indexed by global row, so the figure does not
 * depend on the rank count; the posterior means' first two moments per
 * latent dimension (of every layer) give the active units (Burda et al.:
 * dimensions whose posterior mean varies over the data by more than 0.01);
 * with test_mu, each row's top-layer mean and label too. */
static void test_figures(Run *r, int64_t epoch, double tot[T_N], int *active)
{
    const Vae *m = r->live.m;
    VaeWork *w = r->live.w;
    Rng eval = rng_for(r->plan.cfg.seed, VD_RNG_EVAL, 0);
    Rng bin = rng_for(r->plan.cfg.seed, VD_RNG_BINARIZE, 0);
    int d = m->d_total, top = m->n_levels - 1, dt = vae_top_latent(m);
    Objective elbo = vae_elbo(1.0f);
    double *sums = vd_calloc((size_t)(T_N + 2 * d), sizeof(double)), *mom = sums + T_N;
    sums[T_COUNT] = (double)r->data.test.n;
    for (int64_t i = 0; i < r->data.test.n; i += w->max_rows) {
        int n = (int)(r->data.test.n - i < w->max_rows ? r->data.test.n - i : w->max_rows);
        int64_t row0 = r->plan.test_begin + i;
        shard_batch(&r->data.test, i, n, w->x, w->y);
        if (r->plan.cfg.binarize) /* one fixed draw, as `vae-dist eval --binarize` makes */
            rng_binarize(&bin, 0, row0, n, m->shape.n_input, w->x);
        rng_normal_fill(&eval, (uint32_t)epoch, (uint64_t)row0 * (uint64_t)d,
                        (size_t)n * (size_t)d, w->eps);
        vae_forward(m, w, n, &elbo, 0);
        for (int k = 0; k < n; k++) {
            sums[T_RECON] += w->row_recon[k];
            sums[T_KL] += w->row_kl[k];
            for (int l = 0; l < m->n_levels; l++) {
                int dl = m->levels[l].d, off = m->levels[l].eps_off;
                const float *mu = vae_mu(m, w, l, k);
                for (int j = 0; j < dl; j++) {
                    mom[off + j] += mu[j];
                    mom[d + off + j] += (double)mu[j] * mu[j];
                }
            }
            if (r->live.test_mu) {
                memcpy(r->live.test_mu + (size_t)(i + k) * dt, vae_mu(m, w, top, k),
                       sizeof(float) * (size_t)dt);
                r->live.test_lab[i + k] = w->y[k];
            }
        }
    }
    watch_wait("the sum of the test-set figures");
    MPI_Allreduce(MPI_IN_PLACE, sums, T_N + 2 * d, MPI_DOUBLE, MPI_SUM, r->plan.comm);
    watch_done();
    memcpy(tot, sums, sizeof(double) * T_N);
    *active = 0;
    for (int j = 0; j < d && tot[T_COUNT] > 0; j++) {
        double mean = mom[j] / tot[T_COUNT];
        *active += mom[d + j] / tot[T_COUNT] - mean * mean > 0.01;
    }
    vd_free(sums);
}

/* Rank 0: the epoch's metrics row, and its line into line (n bytes), for
 * after the checkpoint (whose name it then ends with). */
static void epoch_report(Run *r, int64_t epoch, double ep_start, const double tot[T_N],
                         int active, int best, char *line, size_t n_line)
{
    TrainState *st = &r->st;
    double n = tot[T_COUNT];
    EpochRow row = {(double)epoch + 1, (double)st->step,
                    st->ep_count ? st->ep_loss / st->ep_count : NAN,
                    r->data.has_test ? (tot[T_RECON] + tot[T_KL]) / n : NAN,
                    r->data.has_test ? tot[T_RECON] / n : NAN,
                    r->data.has_test ? tot[T_KL] / n : NAN, vd_now() - ep_start,
                    r->data.has_test ? active : NAN};
    if (r->data.has_test)
        snprintf(line, n_line, "epoch %lld done: test loss %.2f = %.2f + %.2f nats (%lld samples, "
                 "%d of %d latent units active), train loss %.2f, %.1f s%s",
                 (long long)epoch + 1, row.test_loss, row.test_recon, row.test_kl, (long long)n,
                 active, r->live.m->d_total, row.train_loss, row.seconds, best ? ", best" : "");
    else
        snprintf(line, n_line, "epoch %lld done: train loss %.2f, %.1f s%s", (long long)epoch + 1,
                 row.train_loss, row.seconds, best ? ", best" : "");
    h5_lock(); /* the streaming reader's thread may be in HDF5 */
    metrics_epoch(r->live.metrics, &row);
    h5_unlock();
}

/* Collective, the same verdicts on every rank (the losses are reduced): the
 * watched loss (test, else training) against the best and the plateau
 * schedule. Returns 1 if this epoch is the best so far. */
static int judge_epoch(Run *r, Loop *l, const double tot[T_N])
{
    TrainState *st = &r->st;
    double watch = r->data.has_test ? (tot[T_RECON] + tot[T_KL]) / tot[T_COUNT]
                   : st->ep_count ? st->ep_loss / st->ep_count : NAN;
    int best = isfinite(watch) && watch < st->best_loss;
    if (best) {
        st->best_loss = watch;
        st->best_step = st->step;
        st->bad_epochs = 0;
    } else {
        st->bad_epochs++;
    }
    l->cut = sched_plateau(&l->sched, watch, &st->plateau_best, &st->plateau_bad, &st->lr_scale);
    if (r->plan.cfg.early_stop && st->bad_epochs >= r->plan.cfg.early_stop && !l->stop)
        l->stop = l->early = 1;
    return best;
}

/* Rank 0: what judge_epoch decided, after the epoch's line. */
static void judge_report(const Run *r, const Loop *l)
{
    const TrainState *st = &r->st;
    if (l->cut)
        printf("note: no better loss in %lld epoch%s: the learning rate is now %g\n",
               (long long)l->sched.patience + 1, l->sched.patience ? "s" : "",
               l->sched.lr * st->lr_scale);
    if (l->early)
        printf("early stop: no better loss in %lld epochs; the best, %.2f, is step %lld's "
               "checkpoint (%s/best)\n", (long long)st->bad_epochs, st->best_loss,
               (long long)st->best_step, r->plan.cfg.out);
}

/* Rank 0: one progress line and metrics row for the interval that ends now
 * (local step s of epoch). */
static void log_interval(Run *r, Loop *l, int64_t epoch, int64_t s)
{
    TrainState *st = &r->st;
    if (st->ivl_count == 0) /* every step of the interval was skipped */
        return;
    double now = vd_now(), rate = l->ivl_fresh / (now - l->ivl_start);
    double eta = l->early ? 0
                          : (now - l->run_start) / (double)(st->step - l->first_step) *
                                (double)(r->plan.total_steps - st->step);
    TrainRow row = {(double)st->step, (double)epoch + 1,
                    (st->ivl_recon + st->ivl_kl) / st->ivl_count, st->ivl_recon / st->ivl_count,
                    st->ivl_kl / st->ivl_count, l->lr, rate, st->ivl_clipped,
                    st->ivl_norm_steps ? st->ivl_grad_norm / st->ivl_norm_steps : NAN};
    if (r->plan.rank == 0 && !r->plan.cfg.quiet) {
        char etab[32];
        fmt_duration(etab, sizeof etab, eta);
        /* the importance-weighted bound's second term (the rest of the
         * loss, not a KL) may be negative: "+ -0.93" reads as a bug */
        printf("epoch %lld/%d  step %lld/%lld  loss %.2f = %.2f %c %.2f  lr %.3g  %.0f samples/s  "
               "ETA %s\n", (long long)epoch + 1, r->plan.cfg.epochs, (long long)(s + 1),
               (long long)r->plan.steps_per_epoch, row.loss, row.recon, row.kl < 0 ? '-' : '+',
               fabs(row.kl), l->lr, rate, etab);
        fflush(stdout);
    }
    if (r->plan.rank == 0) {
        h5_lock(); /* the streaming reader's thread may be in HDF5 */
        metrics_train(r->live.metrics, &row);
        h5_unlock();
    }
    st->ivl_recon = st->ivl_kl = st->ivl_count = st->ivl_clipped = l->ivl_fresh = 0;
    st->ivl_grad_norm = st->ivl_norm_steps = 0;
    l->ivl_start = vd_now();
    r->live.prof.io += l->ivl_start - now;
}

/* Collective: test ELBO, epoch metrics, checkpoint and figures at an epoch's
 * end; the best epoch is always checkpointed. */
static void end_epoch(Run *r, Loop *l, int64_t epoch, double ep_start, int want_ckpt,
                      VdError *err)
{
    double t0 = vd_now(), tot[T_N] = {0, 0, 0};
    int active = 0;
    if (r->data.has_test)
        test_figures(r, epoch, tot, &active);
    double t1 = vd_now();
    r->live.prof.eval += t1 - t0;
    int best = judge_epoch(r, l, tot);
    if (l->early) { /* the run ends for good: its interval is logged, not left to a resume */
        l->ivl_start += vd_now() - t0; /* the test pass is not stepping */
        log_interval(r, l, epoch, r->plan.steps_per_epoch - 1);
    }
    want_ckpt |= best || l->stop;
    if (want_ckpt && !comm_same_bits(r->live.m->params, r->live.m->n_params, r->plan.comm))
        vd_fail(err, VD_EX_SOFTWARE, "replicas diverged: parameter checksums differ at step %lld",
                (long long)r->st.step);
    if (r->plan.rank == 0 && err->code == VD_OK) {
        char line[512], saved[64] = "";
        epoch_report(r, epoch, ep_start, tot, active, best, line, sizeof line);
        r->st.ep_loss = r->st.ep_count = 0; /* before the checkpoint: a resumed epoch starts empty */
        if (want_ckpt)
            rundir_save(r, best, saved, err);
        if (!r->plan.cfg.quiet) /* one line an epoch, the checkpoint's name on it */
            printf("%s%s%s\n", line, saved[0] ? "; checkpoint " : "", saved);
        judge_report(r, l);
        if (err->code == VD_OK)
            figures_images(r);
        fflush(stdout);
    }
    if (r->live.test_mu)
        figures_latent(r, epoch);
    r->st.ep_loss = r->st.ep_count = 0;
    r->live.prof.io += vd_now() - t1;
}

/* Collective: a checkpoint of a run stopped inside an epoch. */
static void save_inside_epoch(Run *r, VdError *err)
{
    if (!comm_same_bits(r->live.m->params, r->live.m->n_params, r->plan.comm))
        vd_fail(err, VD_EX_SOFTWARE, "replicas diverged at step %lld", (long long)r->st.step);
    char saved[64];
    if (r->plan.rank == 0 && err->code == VD_OK && rundir_save(r, 0, saved, err) == VD_OK &&
        !r->plan.cfg.quiet)
        printf("checkpoint %s/%s\n", r->plan.cfg.out, saved);
}

/* Test hook: this rank dies by SIGKILL, as on a lost node; with
 * $VAE_DIST_TEST_KILL_ONCE=FILE only if FILE does not exist yet (it is
 * made first), so that the next attempt gets past. */
static void test_kill(void)
{
    const char *once = getenv("VAE_DIST_TEST_KILL_ONCE");
    if (once && *once) {
        FILE *f = fopen(once, "wx");
        if (!f)
            return;
        fclose(f);
    }
    fflush(stdout);
    raise(SIGKILL);
}

/* Rank 0: the stop signal as a user knows it: this rank's own (Ctrl-C is
 * SIGINT); one that reached only other ranks is "a signal". */
static const char *stop_cause(void)
{
    switch (signals_stop_asked()) {
    case SIGINT: return "SIGINT (Ctrl-C)";
    case SIGTERM: return "SIGTERM";
    case SIGUSR1: return "SIGUSR1";
    default: return "a signal to another rank";
    }
}

/* Local: the batch of local step s of epoch, binarized if asked, and its
 * noise: into r->live.w, or with parts into the stage they are handed out
 * from (the same rows and noise either way). */
static void next_batch(Run *r, Loop *l, int64_t epoch, int64_t s)
{
    int D = r->live.m->shape.n_input, parts = r->plan.parts > 1;
    float *x = parts ? r->live.stage_x : r->live.w->x;
    feed_batch(r->data.feed, s, x, parts ? r->live.stage_y : r->live.w->y, r->live.batch_rows);
    if (r->plan.cfg.binarize) /* by (epoch, row): independent of the rank count */
        for (int i = 0; i < r->plan.B; i++)
            rng_binarize(&l->bin, (uint32_t)epoch, r->live.batch_rows[i], 1, D, x + (size_t)i * D);
    rng_normal_fill(&l->noise, (uint32_t)r->st.step, 0,
                    (size_t)r->plan.B * (size_t)r->plan.cfg.iw_samples * (size_t)r->live.m->d_total,
                    parts ? r->live.stage_eps : r->live.w->eps);
}

/* StepPart: part j of the staged batch (rows [j part, (j + 1) part)). */
static int stage_part(void *ctx, int j, VaeWork *w)
{
    const Run *r = ctx;
    int first = j * r->plan.part, n = r->plan.B - first < r->plan.part ? r->plan.B - first
                                                                        : r->plan.part;
    size_t D = (size_t)r->live.m->shape.n_input;
    size_t e = (size_t)r->plan.cfg.iw_samples * (size_t)r->live.m->d_total;
    n = n < 0 ? 0 : n;
    memcpy(w->x, r->live.stage_x + (size_t)first * D, sizeof(float) * (size_t)n * D);
    memcpy(w->y, r->live.stage_y + first, sizeof(int32_t) * (size_t)n);
    memcpy(w->eps, r->live.stage_eps + (size_t)first * e, sizeof(float) * (size_t)n * e);
    return n;
}

/* Collective: one step and its bookkeeping. Returns 1 to go on, 0 when the
 * run stops here (l->stop: asked to; else err holds why). */
static int one_step(Run *r, Loop *l, int64_t epoch, int64_t s, VdError *err)
{
    TrainState *st = &r->st;
    double t0 = vd_now();
    next_batch(r, l, epoch, s);
    r->live.prof.data += vd_now() - t0;
    StepIO io = {.stop = signals_stop_asked() != 0,
                 .poison = st->step + 1 == l->poison_step && r->plan.rank == r->plan.size - 1,
                 .failed = feed_failed(r->data.feed), .clip_norm = r->plan.cfg.clip_norm};
    watch_step(st->step + 1);
    if (st->step + 1 == l->kill_step && r->plan.rank == r->plan.size - 1)
        test_kill();
    float beta = (float)sched_kl_weight(r->plan.cfg.beta, r->plan.cfg.warmup, st->step + 1);
    int K = r->plan.cfg.iw_samples;
    Objective obj = {K > 1 ? VD_OBJ_IWAE : VD_OBJ_ELBO, K, beta, 0};
    l->lr = sched_lr(&l->sched, st->lr_scale, st->step + 1, r->plan.steps_per_epoch,
                     r->plan.steps_per_epoch * r->plan.cfg.epochs);
    l->adam.lr = (float)l->lr;
    int finite = r->plan.parts > 1
                     ? step_run_parts(r->live.m, r->live.w, r->plan.parts, stage_part, r, &obj,
                                      &l->adam, st->step + 1, r->live.red, &io)
                     : step_run(r->live.m, r->live.w, r->plan.B, &obj, &l->adam, st->step + 1,
                                r->live.red, &io);
    r->live.prof.forward += io.times.forward;
    r->live.prof.backward += io.times.backward;
    r->live.prof.reduce += io.times.reduce;
    r->live.prof.update += io.times.update;
    r->live.prof.steps++;
    if (io.failed) /* a rank's reader failed: the step was not applied */
        return feed_check(r->data.feed, err) ? 0
               : (vd_fail(err, VD_EX_SOFTWARE, "data feed failed"), 0);
    if (!finite) { /* every rank sees the same reduced values: all decide alike */
        if (st->skipped >= r->plan.cfg.max_skips) {
            vd_fail(err, VD_EX_DIVERGED,
                    "non-finite loss or gradient at step %lld; the step was not applied "
                    "and training stopped (last checkpoint kept; lower --lr?)",
                    (long long)st->step + 1);
            return 0;
        }
        st->skipped++;
        if (r->plan.rank == 0)
            fprintf(stderr, "vae-dist: warning: non-finite loss or gradient at step %lld; "
                            "step skipped (%lld of --max-skips %d)\n",
                    (long long)st->step + 1, (long long)st->skipped, r->plan.cfg.max_skips);
    }
    st->step++; /* a skipped step still consumes its batch and noise */
    st->clipped += io.clipped;
    st->ivl_clipped += io.clipped;
    if (finite && isfinite(io.grad_norm)) { /* the norm of each step applied, before clipping */
        st->ivl_grad_norm += io.grad_norm;
        st->ivl_norm_steps += 1;
    }
    if (finite) {
        const float *extra = reduce_extras(r->live.red);
        st->ivl_recon += extra[VD_EXTRA_RECON];
        st->ivl_kl += extra[VD_EXTRA_KL];
        st->ivl_count += extra[VD_EXTRA_COUNT];
        l->ivl_fresh += extra[VD_EXTRA_COUNT];
        st->ep_loss += extra[VD_EXTRA_RECON] + extra[VD_EXTRA_KL];
        st->ep_count += extra[VD_EXTRA_COUNT];
    }
    /* every --log-every steps, whatever the epochs (an interval cut at each
     * epoch's end would be short and its loss noisy), and at the last step
     * of the last epoch (an early stop logs at its epoch's end); a stop
     * before (--max-steps, a signal) leaves the interval to the checkpoint,
     * so a resumed run logs the same rows */
    if (st->step % r->plan.cfg.log_every == 0 ||
        st->step == r->plan.steps_per_epoch * r->plan.cfg.epochs)
        log_interval(r, l, epoch, s);
    if (!io.stop && st->step < r->plan.total_steps)
        return 1;
    l->stop = 1;
    if (io.stop) {
        l->code = VD_EX_TEMPFAIL;
        if (r->plan.rank == 0)
            printf("stop requested by %s: checkpointing at step %lld\n", stop_cause(),
                   (long long)st->step);
    }
    return 0;
}

/* Collective: the rest of one epoch, from wherever the run stands in it. */
static int run_epoch(Run *r, Loop *l, int64_t epoch, VdError *err)
{
    TrainState *st = &r->st;
    double ep_start = vd_now();
    if (feed_epoch(r->data.feed, epoch, st->step % r->plan.steps_per_epoch, err))
        return err->code;
    r->live.prof.data += vd_now() - ep_start;
    for (int64_t s = st->step % r->plan.steps_per_epoch; s < r->plan.steps_per_epoch; s++)
        if (!one_step(r, l, epoch, s, err))
            break;
    watch_rank0_io(1); /* the others wait while rank 0 writes */
    double end_start = vd_now();
    if (err->code == VD_OK && st->step == (epoch + 1) * r->plan.steps_per_epoch) {
        st->epoch = epoch + 1;
        int want = l->stop || epoch + 1 == r->plan.cfg.epochs ||
                   (r->plan.cfg.ckpt_every > 0 && (epoch + 1) % r->plan.cfg.ckpt_every == 0);
        end_epoch(r, l, epoch, ep_start, want, err);
    } else if (err->code == VD_OK) { /* stopped inside the epoch */
        save_inside_epoch(r, err);
    }
    int rc = vd_error_agree(err, r->plan.comm);
    watch_rank0_io(0);
    /* the interval in progress goes on into the next epoch; its rate leaves
     * this epoch's end (test pass, checkpoint, figures) out */
    l->ivl_start += vd_now() - end_start;
    return rc;
}

int loop_run(Run *r, VdError *err)
{
    const TrainConfig *cfg = &r->plan.cfg;
    const char *nan_step = getenv("VAE_DIST_TEST_NAN_STEP");
    const char *kill_step = getenv("VAE_DIST_TEST_KILL_STEP");
    Loop l = {.noise = rng_for(cfg->seed, VD_RNG_NOISE, (uint32_t)r->plan.rank),
              .bin = rng_for(cfg->seed, VD_RNG_BINARIZE, 0),
              .adam = {(float)cfg->lr, (float)cfg->beta1, (float)cfg->beta2, (float)cfg->adam_eps,
                       (float)cfg->weight_decay},
              .sched = {cfg->lr_schedule, cfg->lr, cfg->lr_min, cfg->lr_gamma, cfg->lr_warmup,
                        cfg->lr_step, cfg->lr_patience},
              .poison_step = nan_step ? atoll(nan_step) : -1,
              .kill_step = kill_step ? atoll(kill_step) : -1,
              .first_step = r->st.step,
              .run_start = vd_now()};
    l.ivl_start = l.run_start;
    for (int64_t epoch = r->st.step / r->plan.steps_per_epoch; epoch < cfg->epochs && !l.stop;
         epoch++)
        if (run_epoch(r, &l, epoch, err))
            return err->code;
    if (r->plan.rank == 0 && l.code == VD_EX_TEMPFAIL)
        printf("%s: %lld step%s in %.1f s, checkpoint saved in %s; run the same command "
               "again to continue (exit 75)\n",
               signals_stop_asked() == SIGINT ? "interrupted" : "preempted",
               (long long)(r->st.step - l.first_step),
               r->st.step - l.first_step == 1 ? "" : "s", vd_now() - l.run_start, cfg->out);
    else if (r->plan.rank == 0)
        printf("done%s: %lld step%s in %.1f s; outputs in %s\n", l.early ? " (early stop)" : "",
               (long long)(r->st.step - l.first_step), r->st.step - l.first_step == 1 ? "" : "s",
               vd_now() - l.run_start, cfg->out);
    return l.code;
}

void loop_print_profile(const Run *r)
{
    const Profile *p = &r->live.prof;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double mine[8] = {p->data, p->forward, p->backward, p->reduce, p->update, p->eval, p->io,
                      (double)ru.ru_maxrss / 1024.0}; /* Linux: KiB */
    double mx[8];
    MPI_Reduce(mine, mx, 8, MPI_DOUBLE, MPI_MAX, 0, r->plan.comm);
    if (r->plan.rank != 0)
        return;
    const char *names[7] = {"data", "forward", "backward", "reduce", "optimizer", "eval", "io"};
    double steps = p->steps ? (double)p->steps : 1, total = 0;
    for (int i = 0; i < 5; i++)
        total += mine[i];
    printf("profile (rank 0; max over ranks), per step over %lld steps:\n", (long long)p->steps);
    for (int i = 0; i < 7; i++)
        printf("  %-10s %8.3f ms  max %8.3f ms  %5.1f%%%s\n", names[i], 1e3 * mine[i] / steps,
               1e3 * mx[i] / steps, i < 5 ? 100.0 * mine[i] / total : 0.0,
               i < 5 ? "" : " (outside steps)");
    /* per sample: a VampPrior's pseudo-inputs pass once per part, each
     * rank taking its share of them (rank 0: the first K / size) */
    const Vae *m = r->live.m;
    int K = m->prior.K, own = r->plan.size > 1 ? vae_group_first(K, 1, r->plan.size) : K;
    double plain = vae_forward_macs(m, 0),
           pseudo = K > 0 ? (vae_forward_macs(m, r->plan.B) - plain) * own / K : 0;
    double flops = 6.0 * (plain + r->plan.parts * pseudo) - 2.0 * vae_first_layer_macs(m);
    const char *what = reduce_fused(r->live.red)
                           ? "the wait for the node's other ranks; the slice sums run in "
                             "the optimizer's pass"
                       : reduce_mode(r->live.red) == VD_REDUCE_SHM
                           ? "the node's barriers and slice sums, and the slices' allreduce "
                             "between nodes"
                           : "the allreduce's wait left after backward";
    printf("  (reduce: %s)\n", what);
    printf("  step %.3f ms, %.0f samples/s, %.2f GFLOP/s per rank\n", 1e3 * total / steps,
           (double)r->plan.batch * steps / total, flops * r->plan.B * steps / total * 1e-9);
    printf("  peak resident memory %.1f MiB (rank 0), %.1f MiB (max over ranks)\n", mine[7], mx[7]);
    if (r->live.shared_mib > 0)
        printf("  of which shared by the node's ranks (counted in each): up to %.1f MiB\n",
               r->live.shared_mib);
}
