/* train.c — the train command: the setup that ties the data, the model, the
 * run directory and the reduction together, then the loop (loop.c). See
 * train.h. */
#include "config.h"
#include "train.h"

#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "comm.h"
#include "image.h"
#include "import.h"
#include "metrics.h"
#include "run.h"
#include "runtime.h"
#include "step.h"
#include "train_opts.h"
#include "watch.h"

/* Local: why --conv does not fit the image (each convolution halves an
 * even height and width), or VD_OK. */
static int check_halvings(const TrainConfig *cfg, const ImageGeom *img, VdError *err)
{
    char chain[256];
    int h = img->h, w = img->w, n_conv = cfg->model.conv.n;
    size_t n = (size_t)snprintf(chain, sizeof chain, "%dx%d", h, w);
    for (int i = 0; i < n_conv; i++) {
        if (h % 2 || w % 2)
            return vd_fail(err, VD_EX_USAGE,
                           "--conv: convolution %d of %d cannot halve %dx%d (%s): use fewer, or "
                           "images whose sides divide by %d", i + 1, n_conv, h, w, chain,
                           1 << n_conv);
        h /= 2;
        w /= 2;
        if (n < sizeof chain)
            n += (size_t)snprintf(chain + n, sizeof chain - n, " -> %dx%d", h, w);
    }
    return VD_OK;
}

/* Local: whether this rank's activations for its batch times --iw-samples
 * draws fit half its share of the node's memory (the data take a quarter). */
static void check_activations(const Run *r, int node_ranks, VdError *err)
{
    const TrainConfig *cfg = &r->plan.cfg;
    int B = r->plan.part; /* the rows of one part of a step */
    double draws = (double)B * cfg->iw_samples;
    int rows = draws > 1 << 30 ? 1 << 30 : (int)draws; /* more than fits any memory anyway */
    double need = draws > rows ? INFINITY : vae_work_bytes(r->live.m, rows > 64 ? rows : 64);
    double have = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE) / 2 / node_ranks;
    if (have > 0 && need > have)
        vd_fail(err, VD_EX_USAGE, "--iw-samples %d: %d samples x %d draws need %.3g GiB of "
                "activations on each rank, more than half its share of the node's memory "
                "(%.1f GiB): lower --iw-samples or --batch, raise --accumulate, or use more nodes",
                cfg->iw_samples,
                B, cfg->iw_samples, need / (1 << 30), have / (1 << 30));
}

/* Collective: the model of the options, for the data's sample size, with
 * parameters from the init generator. */
static int create_model(Run *r, VdError *err)
{
    const TrainConfig *cfg = &r->plan.cfg;
    const ImageGeom *img = &r->data.train_x.img;
    VaeShape shape = cfg->model;
    shape.n_input = (int)r->data.train_x.row_len;
    shape.in_c = img->c;
    shape.in_h = img->h;
    shape.in_w = img->w;
    if (cfg->model.conv.n && !cfg->model.preset)
        check_halvings(cfg, img, err);
    const char *why = NULL;
    int node_ranks = comm_node_ranks(r->plan.comm); /* collective: before any rank may stop */
    if (err->code == VD_OK && !(r->live.m = vae_create(&shape, VD_GRAD_EXTRA, &why)))
        vd_fail(err, VD_EX_USAGE, "invalid model: %s", why);
    if (err->code == VD_OK)
        check_activations(r, node_ranks, err);
    if (vd_error_agree(err, r->plan.comm))
        return err->code;
    vae_init_params(r->live.m, cfg->seed);
    return VD_OK;
}

static const char *plural(long n) { return n == 1 ? "" : "s"; }

/* Rank 0: the few lines that open a run: version, ranks, model, data, run
 * directory and where it stands (config.txt has the whole configuration;
 * --show-config prints it too). */
static void print_start(const Run *r)
{
    const TrainConfig *cfg = &r->plan.cfg;
    const H5Rows *x = &r->data.train_x;
    char desc[160], shape[64] = "";
    vae_shape_text(&r->live.m->shape, desc, sizeof desc);
    for (int i = 1; i < x->n_dims; i++)
        snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%s%lld", i > 1 ? "x" : "",
                 (long long)x->dims[i]);
    printf("vae-dist %s: %d rank%s x %d thread%s; model %s (%zu parameters)\n", PACKAGE_VERSION,
           r->plan.size, plural(r->plan.size), r->plan.threads, plural(r->plan.threads), desc,
           r->live.m->n_params);
    long long n_test = r->data.has_test ? (long long)r->data.test_x.n_rows : 0LL;
    printf("data %s: %lld sample%s of %s%s%s, %lld test sample%s; %lld step%s per epoch of %lld "
           "(%lld unused)\n", x->where, (long long)r->plan.n_rows, plural((long)r->plan.n_rows), shape,
           x->img.c ? (x->img.chw ? " (channels first)" : "") : " (not images)",
           x->is_u8 ? ", uint8 / 255" : "", n_test, plural((long)n_test),
           (long long)r->plan.steps_per_epoch, plural((long)r->plan.steps_per_epoch),
           (long long)r->plan.batch, (long long)(r->plan.n_rows - r->plan.steps_per_epoch * r->plan.batch));
    int64_t step = r->st.step, spe = r->plan.steps_per_epoch;
    if (!r->live.resumed_from[0])
        printf("run directory %s: a new run of %lld step%s\n", cfg->out,
               (long long)r->plan.total_steps, plural((long)r->plan.total_steps));
    else if (step % spe == 0)
        printf("resuming from %s: step %lld, epoch %lld done\n", r->live.resumed_from,
               (long long)step, (long long)(step / spe));
    else
        printf("resuming from %s: step %lld, in epoch %lld (%lld of %lld steps done)\n",
               r->live.resumed_from, (long long)step, (long long)(step / spe + 1),
               (long long)(step % spe), (long long)spe);
    rundir_note_changes(r);
    /* warm-ups the run ends inside: the rate (or KL weight) never gets there */
    int64_t span = spe * cfg->epochs; /* the schedules' */
    if (cfg->lr_warmup > span)
        printf("note: --lr-warmup %lld is longer than the run's %lld steps: the learning rate "
               "reaches only %.2g%% of --lr %g\n", (long long)cfg->lr_warmup, (long long)span,
               100.0 * (double)span / (double)cfg->lr_warmup, cfg->lr);
    if (cfg->warmup > span)
        printf("note: --warmup %lld is longer than the run's %lld steps: the KL weight reaches "
               "only %.2g%% of --beta %g\n", (long long)cfg->warmup, (long long)span,
               100.0 * (double)span / (double)cfg->warmup, cfg->beta);
    figures_note_scale(r);
    if (cfg->show_config) {
        printf("configuration:\n");
        opts_print(stdout, train_options, cfg);
    }
    fflush(stdout);
}

/* Collective: the reduction of the gradients (--reduce), or a note why the
 * allreduce stands in for the shared memory. */
static void open_reducer(Run *r)
{
    const TrainConfig *cfg = &r->plan.cfg;
    const char *why = NULL;
    /* fp16's scale: the power of two nearest 1 / the global batch */
    float scale = (float)ldexp(1.0, -(int)lround(log2((double)r->plan.batch)));
    ReduceConfig rc = {cfg->reduce, (size_t)(cfg->bucket_mib * (1 << 20) / sizeof(float)),
                       MPI_COMM_NULL, cfg->compress, scale,
                       cfg->node_sum == NODE_SUM_ADAM && cfg->clip_norm == 0};
    r->live.red = reduce_create(r->live.m, r->plan.comm, &rc, &why);
    if (reduce_mode(r->live.red) == VD_REDUCE_SHM)
        malloc_trim(0); /* hand back the private buffers it replaced (M_TRIM_THRESHOLD, main.c) */
    if (r->plan.rank != 0 || r->plan.size == 1)
        return;
    if (why)
        fprintf(stderr, "vae-dist: note: %s; summing gradients with MPI_Allreduce instead "
                        "(--reduce mpi)\n", why);
    static const char *sent_as[] = {"", ", sent between nodes as fp16 (--compress)",
                                    ", sent between nodes as bf16 (--compress)"};
    const char *as = reduce_nodes(r->live.red) > 1 ? sent_as[cfg->compress] : "";
    int k = reduce_node_size(r->live.red), nodes = reduce_nodes(r->live.red);
    if (reduce_mode(r->live.red) == VD_REDUCE_SHM && k == 1)
        printf("gradients: 1 rank per node on %d nodes, allreduced between the nodes%s\n", nodes,
               as);
    else if (reduce_mode(r->live.red) == VD_REDUCE_SHM)
        printf("gradients: summed in shared memory, %d ranks per node on %d node%s; each rank "
               "updates 1/%d of the parameters%s\n", k, nodes, nodes > 1 ? "s" : "", k, as);
    else if (cfg->bucket_mib > 0)
        printf("gradients: MPI_Allreduce in buckets of %g MiB during backward\n",
               cfg->bucket_mib);
    else
        printf("gradients: one MPI_Allreduce after backward\n");
    if (reduce_mode(r->live.red) == VD_REDUCE_MPI && cfg->compress != VD_COMPRESS_NONE)
        fprintf(stderr, "vae-dist: note: --compress applies to --reduce shm only; the allreduce "
                        "sends floats\n");
    fflush(stdout);
}

/* Collective: everything before the loop. VD_OK to train; -1 when there is
 * nothing left to do; else the agreed error. */
static int setup(Run *r, VdError *err)
{
    TrainConfig *cfg = &r->plan.cfg;
    if (err->code == VD_OK)
        train_check_options(cfg, err);
    /* a step: --accumulate parts of --batch rows, each rank's share in parts */
    r->plan.batch = cfg->batch * cfg->accumulate;
    char step_rows[96];
    train_step_rows(cfg, step_rows, sizeof step_rows);
    if (err->code == VD_OK && r->plan.batch < r->plan.size)
        vd_fail(err, VD_EX_USAGE, "%s is smaller than the %d ranks: every rank needs a sample per "
                "step", step_rows, r->plan.size);
    r->plan.B = shard_local_batch(r->plan.batch, r->plan.rank, r->plan.size);
    r->plan.parts = cfg->accumulate;
    r->plan.part = (r->plan.B + r->plan.parts - 1) / r->plan.parts;
    if (err->code == VD_OK && r->plan.rank == 0)
        import_default_data(cfg->data, err);
    if (err->code == VD_OK && r->plan.rank == 0) /* stored absolute: eval runs from anywhere */
        vd_absolute(cfg->data);
    MPI_Bcast(cfg->data, sizeof cfg->data, MPI_CHAR, 0, r->plan.comm);
    if (vd_error_agree(err, r->plan.comm))
        return err->code;
    train_data_open(r, err);
    if (vd_error_agree(err, r->plan.comm) || create_model(r, err))
        return err->code;
    r->plan.threads = runtime_set_threads(cfg->threads, r->plan.comm);
    r->plan.n_rows = r->data.train_x.n_rows;
    r->plan.steps_per_epoch = shard_steps_per_epoch(r->plan.n_rows, r->plan.batch);
    if (r->data.has_test)
        shard_range(r->data.test_x.n_rows, r->plan.rank, r->plan.size, &r->plan.test_begin,
                    &r->plan.test_end);
    /* a run directory that is there is claimed before the data are read (a
     * second run in it stops at once); one that is not is made only once
     * they are read and checked: bad data leave no directory behind
     * (streamed rows are checked as read) */
    if (rundir_claim(r, err) || train_data_load(r, err) || rundir_prepare(r, err))
        return err->code;
    int resumed = rundir_resume(r, err);
    if (err->code != VD_OK)
        return err->code;
    if (!comm_same_bits(r->live.m->params, r->live.m->n_params, r->plan.comm))
        vd_fail(err, VD_EX_SOFTWARE, "initial parameters differ across ranks");
    if (r->plan.rank == 0 && err->code == VD_OK)
        rundir_start_logs(r, err);
    if (vd_error_agree(err, r->plan.comm))
        return err->code;
    r->plan.total_steps = r->plan.steps_per_epoch * cfg->epochs;
    int capped = cfg->max_steps > 0 && cfg->max_steps < r->plan.total_steps;
    if (capped)
        r->plan.total_steps = cfg->max_steps;
    if (r->plan.rank == 0) {
        print_start(r);
        train_data_print(r);
    }
    r->live.started = 1;
    if (r->st.step >= r->plan.total_steps) {
        const char *hint = !resumed ? ""
                           : capped ? " (raise or drop --max-steps to continue)"
                                    : " (raise --epochs to continue)";
        if (r->plan.rank == 0)
            printf("nothing to do: the run is at step %lld of %lld%s\n", (long long)r->st.step,
                   (long long)r->plan.total_steps, hint);
        return -1;
    }
    if (cfg->early_stop > 0 && r->st.bad_epochs >= cfg->early_stop) {
        if (r->plan.rank == 0)
            printf("nothing to do: the run stopped early, %lld epochs after its best (step %lld); "
                   "raise --early-stop to go on\n", (long long)r->st.bad_epochs,
                   (long long)r->st.best_step);
        return -1;
    }
    /* everything the loop needs, allocated once */
    /* the rows of a part, and at least the figures' 64 (the test pass goes
     * in chunks of it: a convolutional model's row can take megabytes) */
    int rows = r->plan.part * cfg->iw_samples;
    r->live.w = vae_work_create(r->live.m, rows > 64 ? rows : 64);
    if (r->plan.parts > 1) { /* the step's rows and noise, handed out a part at a time */
        size_t B = (size_t)r->plan.B;
        r->live.stage_x = vd_calloc(B * (size_t)r->live.m->shape.n_input, sizeof(float));
        r->live.stage_y = vd_calloc(B, sizeof(int32_t));
        r->live.stage_eps = vd_calloc(B * (size_t)cfg->iw_samples * (size_t)r->live.m->d_total,
                                      sizeof(float));
    }
    if (r->live.m->prior.K > 0) /* the pseudo-inputs' pass split over the ranks */
        r->live.w->group = step_group_create(r->plan.comm);
    r->live.batch_rows = vd_calloc((size_t)r->plan.B, sizeof(int64_t));
    return VD_OK;
}

static void run_free(Run *r)
{
    reduce_free(r->live.red, 0); /* the model is not used again */
    feed_close(r->data.feed);
    metrics_close(r->live.metrics);
    shard_free(&r->data.test);
    vd_free(r->live.batch_rows);
    vd_free(r->live.stage_x);
    vd_free(r->live.stage_y);
    vd_free(r->live.stage_eps);
    vd_free(r->live.test_mu);
    vd_free(r->live.test_lab);
    vd_free(r->live.all_mu);
    vd_free(r->live.all_lab);
    if (r->live.w)
        step_group_free((VaeGroup *)r->live.w->group);
    vae_work_free(r->live.w);
    vae_free(r->live.m);
    h5rows_close(&r->data.train_x);
    h5rows_close(&r->data.train_y);
    h5rows_close(&r->data.test_x);
    h5rows_close(&r->data.test_y);
    if (r->live.lock_fd >= 0)
        close(r->live.lock_fd); /* last: the run directory is ours until here */
    vd_free(r);
}

/* Rank 0's record of a stall in the run directory (from the watchdog's
 * thread, the main thread stuck in MPI): batch scripts read it. */
static const Run *stalled_run;
static void record_stall(int64_t step)
{
    (void)step;
    if (stalled_run && stalled_run->live.started)
        rundir_status(stalled_run, VD_EX_STALL);
}

int train_main(int argc, char **argv, MPI_Comm comm)
{
    Run *r = vd_calloc(1, sizeof *r);
    VdError err = {0};
    r->plan.comm = comm;
    r->live.lock_fd = -1;
    MPI_Comm_rank(comm, &r->plan.rank);
    MPI_Comm_size(comm, &r->plan.size);
    r->data.train_x = (H5Rows){.file = -1, .dset = -1};
    r->data.train_y = r->data.test_x = r->data.test_y = r->data.train_x;
    ckpt_state_init(&r->st);
    if (train_parse(&r->plan.cfg, argc, argv, r->plan.rank, &err)) {
        vd_free(r);
        return VD_OK;
    }
    if (r->plan.rank == 0) { /* before the watchdog's thread, which reads them */
        stalled_run = r;
        watch_on_stall(record_stall);
    }
    watch_start(r->plan.cfg.stall_timeout, r->plan.rank);
    watch_rank0_io(1); /* start-up: rank 0 alone imports, resumes, rebuilds the metrics */
    int code = setup(r, &err);
    watch_rank0_io(0);
    if (code == VD_OK) {
        open_reducer(r);
        code = loop_run(r, &err);
        r->live.shared_mib = (double)reduce_shared_bytes(r->live.red) / (1 << 20);
        if (r->plan.cfg.profile && err.code == VD_OK)
            loop_print_profile(r);
    }
    if (code < 0)
        code = VD_OK; /* nothing to do */
    if (err.code != VD_OK)
        code = err.code;
    if (r->live.started && code != VD_OK && code != VD_EX_TEMPFAIL && r->plan.rank == 0)
        printf("failed: %s (exit %d); the vae-dist: line on stderr says why\n",
               vd_exit_meaning(code), code); /* after the start lines, easy to miss */
    if (r->live.started && r->plan.rank == 0)
        rundir_status(r, code);
    watch_stop();
    stalled_run = NULL;
    run_free(r);
    return code;
}
