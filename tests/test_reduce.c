/* test_reduce.c — the data-parallel step and the reductions (step.h,
 * reduce.h), and error agreement (comm.h), run under mpirun with 2 and 4
 * ranks (tests/mpi-np2.sh, tests/mpi-np4.sh). Assertions are collective, and
 * with more than one rank cmocka aborts on failure (CMOCKA_TEST_ABORT=1),
 * which makes mpirun end the job: a failure on one rank fails the test,
 * never hangs it. */
#include "testutil.h"

#include <math.h>
#include <string.h>
#include <unistd.h>

#include "comm.h"
#include "model.h"
#include "modelutil.h"
#include "optim.h"
#include "reduce.h"
#include "rng.h"
#include "step.h"
#include "util.h"

static int rank, size;
static VaeShape shape; /* 20 inputs, hidden 12,7, latent 3 (main) */
static const Objective elbo = {VD_OBJ_ELBO, 1, 1.0f, 0};
enum { LOCAL_B = 5 };

/* Sample i of the global batch: a deterministic function of i alone. */
static void make_sample(int64_t i, float *x)
{
    Rng r = rng_for(77, VD_RNG_INIT, 1);
    rng_uniform_fill(&r, (uint32_t)i, 0, (size_t)shape.n_input, 0.0f, 1.0f, x);
}

/* Rows and noise rank r would train on at step t. */
static void fill_rank_batch(VaeWork *w, int r, int64_t t, int row0)
{
    Rng noise = rng_for(5, VD_RNG_NOISE, (uint32_t)r);
    for (int i = 0; i < LOCAL_B; i++)
        make_sample((int64_t)r * LOCAL_B + i + t * 1000, w->x + (size_t)(row0 + i) * shape.n_input);
    rng_normal_fill(&noise, (uint32_t)t, 0, (size_t)LOCAL_B * shape.latent.v[0],
                    w->eps + (size_t)row0 * shape.latent.v[0]);
}

static Vae *new_model(void)
{
    const char *why;
    Vae *m = vae_create(&shape, VD_GRAD_EXTRA, &why);
    vae_init_params(m, 3);
    return m;
}

/* Work buffers for B rows of the models of shape (they depend on it alone). */
static VaeWork *work_for(const VaeShape *s, int B)
{
    const char *why;
    Vae *m = vae_create(s, VD_GRAD_EXTRA, &why);
    VaeWork *w = vae_work_create(m, B);
    vae_free(m);
    return w;
}

/* The allreduce reduction over comm, in buckets of bucket floats (0: one
 * allreduce after backward). */
static Reducer *allreduce(Vae *m, MPI_Comm comm, size_t bucket)
{
    ReduceConfig c = {VD_REDUCE_MPI, bucket, MPI_COMM_NULL, VD_COMPRESS_NONE, 1.0f, 0};
    const char *why;
    return reduce_create(m, comm, &c, &why);
}

/* Whether shared() sums inside Adam's pass (ReduceConfig.fuse): the tests
 * of the shared reduction run both ways (fused_on, fused_off). */
static int fuse;
static int fused_on(void **state) { (void)state; fuse = 1; return 0; }
static int fused_off(void **state) { (void)state; fuse = 0; return 0; }

/* The shared-memory reduction, over node (MPI_COMM_NULL: the real nodes);
 * NULL with *why if it fell back. */
static Reducer *shared(Vae *m, MPI_Comm node, const char **why)
{
    ReduceConfig c = {VD_REDUCE_SHM, 0, node, VD_COMPRESS_NONE, 1.0f, fuse};
    Reducer *red = reduce_create(m, MPI_COMM_WORLD, &c, why);
    if (reduce_mode(red) == VD_REDUCE_SHM)
        return red;
    reduce_free(red, 1);
    return NULL;
}

/* The allreduced gradient equals the gradient of one process holding all
 * ranks' samples (and their noise): np x B on np ranks == np*B on one. */
static void test_allreduce_equals_serial_sum(void **state)
{
    (void)state;
    AdamConfig adam = {1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f};
    Vae *dist = new_model(), *serial = new_model();
    VaeWork *wd = work_for(&shape, LOCAL_B), *ws = work_for(&shape, LOCAL_B * size);
    fill_rank_batch(wd, rank, 0, 0);
    for (int r = 0; r < size; r++)
        fill_rank_batch(ws, r, 0, r * LOCAL_B);
    Reducer *rd = allreduce(dist, MPI_COMM_WORLD, 0), *rs = allreduce(serial, MPI_COMM_SELF, 0);
    assert_all(step_run(dist, wd, LOCAL_B, &elbo, &adam, 1, rd, NULL));
    assert_all(step_run(serial, ws, LOCAL_B * size, &elbo, &adam, 1, rs, NULL));
    float gmax = 0;
    for (size_t i = 0; i < serial->n_params; i++)
        gmax = fmaxf(gmax, fabsf(serial->grads[i]));
    int close = gmax > 0;
    for (size_t i = 0; i < serial->n_params + VD_EXTRA_COUNT + 1; i++)
        close &= fabsf(dist->grads[i] - serial->grads[i]) <= 1e-5f * gmax + 1e-6f * fabsf(serial->grads[i]);
    assert_all(close);
    /* the sample count in the tail is the global batch */
    assert_all(dist->grads[dist->n_params + VD_EXTRA_COUNT] == (float)(LOCAL_B * size));
    reduce_free(rd, 1);
    reduce_free(rs, 1);
    vae_work_free(wd);
    vae_work_free(ws);
    vae_free(dist);
    vae_free(serial);
}

/* After k steps on different local data, every replica is bitwise the same. */
static void test_replicas_identical_after_steps(void **state)
{
    (void)state;
    AdamConfig adam = {1e-2f, 0.9f, 0.999f, 1e-8f, 0.0f};
    Vae *m = new_model();
    VaeWork *w = work_for(&shape, LOCAL_B);
    uint64_t init = vd_checksum_f32(m->params, m->n_params);
    double first = 0, last = 0;
    Reducer *red = allreduce(m, MPI_COMM_WORLD, 0);
    for (int t = 1; t <= 30; t++) {
        fill_rank_batch(w, rank, t % 3, 0); /* three batches, seen in turn */
        assert_all(step_run(m, w, LOCAL_B, &elbo, &adam, t, red, NULL));
        double loss = m->grads[m->n_params + VD_EXTRA_RECON] + m->grads[m->n_params + VD_EXTRA_KL];
        if (t <= 3)
            first += loss;
        if (t > 27)
            last += loss;
    }
    uint64_t mine = vd_checksum_f32(m->params, m->n_params);
    uint64_t *all = malloc(sizeof(uint64_t) * (size_t)size);
    MPI_Allgather(&mine, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, MPI_COMM_WORLD);
    int same = 1;
    for (int r = 0; r < size; r++)
        same &= all[r] == mine;
    assert_all(same);
    assert_all(mine != init); /* training moved the parameters */
    assert_all(last < first);  /* and lowered the loss */
    assert_all(comm_same_bits(m->params, m->n_params, MPI_COMM_WORLD));
    m->params[rank] += (float)rank; /* replicas that differ are told apart */
    assert_all(!comm_same_bits(m->params, m->n_params, MPI_COMM_WORLD));
    reduce_free(red, 1);
    free(all);
    vae_work_free(w);
    vae_free(m);
}

/* A NaN on one rank (in its data, and in rank 0's gradient through the
 * test hook) stops the step on every rank, parameters untouched. */
static void test_nonfinite_agreed_by_all(void **state)
{
    (void)state;
    AdamConfig adam = {1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f};
    Vae *m = new_model();
    VaeWork *w = work_for(&shape, LOCAL_B);
    fill_rank_batch(w, rank, 0, 0);
    if (rank == size - 1)
        w->x[7] = NAN;
    uint64_t before = vd_checksum_f32(m->params, m->n_params);
    StepIO io = {.poison = rank == 0};
    Reducer *red = allreduce(m, MPI_COMM_WORLD, 0);
    int ok = step_run(m, w, LOCAL_B, &elbo, &adam, 1, red, &io);
    assert_all(ok == 0);
    assert_all(vd_checksum_f32(m->params, m->n_params) == before);
    reduce_free(red, 1);
    vae_work_free(w);
    vae_free(m);
}

/* One rank's error becomes everyone's, with that rank's code. */
static void test_error_agreement(void **state)
{
    (void)state;
    VdError err = {0};
    if (rank == size - 1)
        vd_fail(&err, VD_EX_NOINPUT, "test: rank %d could not open its input (expected)", rank);
    int code = vd_error_agree(&err, MPI_COMM_WORLD);
    assert_all(code == VD_EX_NOINPUT && err.code == VD_EX_NOINPUT);
    VdError none = {0};
    assert_all(vd_error_agree(&none, MPI_COMM_WORLD) == VD_OK);
}

/* Not collective on purpose: with VD_TEST_INJECT_FAILURE=r, rank r fails
 * alone. tests/mpi-np2.sh checks that the job then ends with an error instead
 * of hanging in the next collective. */
static void test_injected_failure(void **state)
{
    (void)state;
    const char *who = getenv("VD_TEST_INJECT_FAILURE");
    if (!who)
        skip(); /* only tests/mpi-np2.sh asks for it */
    if (atoi(who) == rank)
        fail_msg("injected failure on rank %d", rank);
    MPI_Barrier(MPI_COMM_WORLD);
}

/* A stop request on one rank reaches every rank through the step. */
static void test_stop_flag_reaches_all(void **state)
{
    (void)state;
    AdamConfig adam = {1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f};
    Vae *m = new_model();
    VaeWork *w = work_for(&shape, LOCAL_B);
    fill_rank_batch(w, rank, 0, 0);
    StepIO io = {.stop = rank == size - 1};
    Reducer *red = allreduce(m, MPI_COMM_WORLD, 0);
    assert_all(step_run(m, w, LOCAL_B, &elbo, &adam, 1, red, &io));
    assert_all(io.stop == 1);
    io.stop = 0;
    assert_all(step_run(m, w, LOCAL_B, &elbo, &adam, 2, red, &io));
    assert_all(io.stop == 0);
    reduce_free(red, 1);
    vae_work_free(w);
    vae_free(m);
}

/* The bucketed allreduce, posted during backward, takes the same step as
 * one allreduce after it, and the replicas stay identical. */
static void test_bucketed_matches_blocking(void **state)
{
    (void)state;
    AdamConfig adam = {1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f};
    Vae *a = new_model(), *b = new_model();
    VaeWork *w = work_for(&shape, LOCAL_B);
    Reducer *one = allreduce(a, MPI_COMM_WORLD, 0);
    Reducer *many = allreduce(b, MPI_COMM_WORLD, 16); /* several buckets per layer boundary */
    for (int t = 1; t <= 3; t++) {
        fill_rank_batch(w, rank, t, 0);
        assert_all(step_run(a, w, LOCAL_B, &elbo, &adam, t, one, NULL));
        assert_all(step_run(b, w, LOCAL_B, &elbo, &adam, t, many, NULL));
    }
    reduce_free(one, 1);
    reduce_free(many, 1);
    double worst = 0;
    for (size_t i = 0; i < a->n_params; i++) {
        double e = rel_err(a->params[i], b->params[i], 1e-3);
        worst = e > worst ? e : worst;
    }
    assert_all(worst < 1e-5);
    uint64_t sum = vd_checksum_f32(b->params, b->n_params), first = sum;
    MPI_Bcast(&first, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
    assert_all(sum == first);
    vae_work_free(w);
    vae_free(a);
    vae_free(b);
}

/* ---- the shared-memory reduction --------------------------------------- */

/* Steps on each rank's batches, through the allreduce for a and through
 * the shared-memory reducer shm (of b) for b. */
static void train_both(Vae *a, Vae *b, Reducer *shm, int steps)
{
    AdamConfig adam = {1e-2f, 0.9f, 0.999f, 1e-8f, 0.0f};
    VaeWork *w = work_for(&shape, LOCAL_B);
    Reducer *one = allreduce(a, MPI_COMM_WORLD, 0);
    for (int t = 1; t <= steps; t++) {
        fill_rank_batch(w, rank, t % 3, 0);
        assert_all(step_run(a, w, LOCAL_B, &elbo, &adam, t, one, NULL));
        assert_all(step_run(b, w, LOCAL_B, &elbo, &adam, t, shm, NULL));
        /* the summed tail reaches every rank */
        assert_all(b->grads[b->n_params + VD_EXTRA_COUNT] == (float)(LOCAL_B * size));
        assert_all(rel_err(b->grads[b->n_params + VD_EXTRA_RECON],
                           a->grads[a->n_params + VD_EXTRA_RECON], 1.0) <= (size == 2 ? 0 : 1e-4));
    }
    reduce_free(one, 1);
    vae_work_free(w);
}

/* A checksum of the parameters and both Adam moments. */
static uint64_t state_sum(const Vae *m)
{
    uint64_t h = vd_checksum_f32(m->params, m->n_params);
    h = vd_checksum_more(h, m->adam_m, m->n_params);
    return vd_checksum_more(h, m->adam_v, m->n_params);
}

/* Parameters and moments of a and b agree (bitwise when exact), and b is
 * the same on every rank. */
static void assert_same_training(const Vae *a, const Vae *b, int exact)
{
    double worst = 0;
    for (size_t i = 0; i < a->n_params; i++) {
        double e = rel_err(a->params[i], b->params[i], 1e-3);
        e = fmax(e, rel_err(a->adam_v[i], b->adam_v[i], 1e-9));
        worst = e > worst ? e : worst;
    }
    assert_all(exact ? worst == 0 : worst < 1e-5);
    uint64_t sum = vd_checksum_more(vd_checksum_f32(b->params, b->n_params), b->adam_m,
                                    b->n_params), first = sum;
    MPI_Bcast(&first, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
    assert_all(sum == first);
}

/* One node: the slices' sums and Adam give the allreduce's training, to the
 * bit on two ranks (a sum of two is the same either way round); the buffers
 * are private again after reduce_free. */
static void test_shared_matches_allreduce(void **state)
{
    (void)state;
    Vae *a = new_model(), *b = new_model();
    const char *why = NULL;
    Reducer *share = shared(b, MPI_COMM_NULL, &why);
    assert_all(share != NULL);
    assert_all(reduce_node_size(share) == size && reduce_nodes(share) == 1);
    assert_all(b->borrowed && reduce_fused(share) == fuse);
    train_both(a, b, share, 12);
    reduce_free(share, 1);
    assert_all(!b->borrowed);
    assert_same_training(a, b, size == 2);
    vae_free(a);
    vae_free(b);
}

/* Two "nodes" of size/2 ranks each (one node's shared window each): each
 * slice is also allreduced over the nodes, and both nodes' copies agree. */
static void test_shared_over_two_nodes(void **state)
{
    (void)state;
    if (size < 2 || size % 2)
        skip();
    MPI_Comm node;
    MPI_Comm_split(MPI_COMM_WORLD, rank / (size / 2), rank, &node);
    Vae *a = new_model(), *b = new_model();
    const char *why = NULL;
    Reducer *share = shared(b, node, &why);
    assert_all(share != NULL);
    assert_all(reduce_node_size(share) == size / 2 && reduce_nodes(share) == 2);
    assert_all(!reduce_fused(share)); /* the sum crosses nodes before Adam */
    train_both(a, b, share, 12);
    reduce_free(share, 1);
    assert_same_training(a, b, size == 2);
    MPI_Comm_free(&node);
    vae_free(a);
    vae_free(b);
}

/* Nodes of different sizes cannot line up their slices: declined on every
 * rank, the model untouched. */
static void test_shared_declines_uneven_nodes(void **state)
{
    (void)state;
    if (size < 3)
        skip();
    MPI_Comm node;
    MPI_Comm_split(MPI_COMM_WORLD, rank == 0, rank, &node);
    Vae *m = new_model();
    float *before = m->params;
    const char *why = NULL;
    Reducer *share = shared(m, node, &why);
    assert_all(share == NULL && why != NULL && strstr(why, "different numbers") != NULL);
    assert_all(m->params == before && !m->borrowed);
    MPI_Comm_free(&node);
    vae_free(m);
}

/* A NaN on one rank, or one rank's missing batch, stops the step on every
 * rank; a stop request reaches all; nothing is updated by a stopped step. */
static void test_shared_verdicts_agreed(void **state)
{
    (void)state;
    AdamConfig adam = {1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f};
    Vae *m = new_model();
    VaeWork *w = work_for(&shape, LOCAL_B);
    const char *why = NULL;
    Reducer *share = shared(m, MPI_COMM_NULL, &why);
    assert_all(share != NULL);
    uint64_t before = state_sum(m);
    fill_rank_batch(w, rank, 0, 0);
    StepIO poison = {.poison = rank == size - 1};
    assert_all(step_run(m, w, LOCAL_B, &elbo, &adam, 1, share, &poison) == 0);
    StepIO failed = {.failed = rank == 0};
    assert_all(step_run(m, w, LOCAL_B, &elbo, &adam, 1, share, &failed) == 1);
    assert_all(failed.failed == 1);
    assert_all(state_sum(m) == before);
    StepIO stop = {.stop = rank == size - 1};
    assert_all(step_run(m, w, LOCAL_B, &elbo, &adam, 1, share, &stop) == 1);
    assert_all(stop.stop == 1 && !stop.failed);
    assert_all(state_sum(m) != before);
    reduce_free(share, 1);
    vae_work_free(w);
    vae_free(m);
}

/* The barriers that end reduce_create and reduce_update: a rank returning from
 * either sees every value the others wrote, however late they come. The
 * model is large enough (about 1.3M parameters) that copying it takes time,
 * and the ranks but 0 arrive late at the update. */
static void test_shared_barriers_hold(void **state)
{
    (void)state;
    VaeShape big = test_shape(1000, "hidden", "640", "latent", "8", NULL);
    const char *why;
    Vae *a = vae_create(&big, VD_GRAD_EXTRA, &why), *b = vae_create(&big, VD_GRAD_EXTRA, &why);
    vae_init_params(a, 9);
    vae_init_params(b, 9);
    for (size_t i = 0; i < a->n_params; i++) /* the segment starts zeroed */
        a->adam_v[i] = b->adam_v[i] = 1e-6f;
    Reducer *share = shared(b, MPI_COMM_NULL, &why);
    /* every rank sees node rank 0's copy in full on return: the last value
     * it copies first */
    float last = b->adam_v[b->n_params - 1];
    assert_all(share != NULL && last == 1e-6f);
    assert_all(memcmp(a->params, b->params, sizeof(float) * a->n_params) == 0);
    assert_all(memcmp(a->adam_v, b->adam_v, sizeof(float) * a->n_params) == 0);
    for (size_t i = 0; i < b->n_params + VD_GRAD_EXTRA; i++) /* gradient r + i/n on rank r */
        b->grads[i] = (float)rank + (float)i / (float)b->n_params;
    b->grads[b->n_params + VD_EXTRA_COUNT] = 1.0f;
    b->grads[b->n_params + VD_EXTRA_FAIL] = 0.0f;
    reduce_begin(share);
    assert_all(reduce_finish(share, NULL));
    /* the reference, before the update: the same sum, and the whole Adam
     * step on one rank */
    AdamConfig adam = {1e-2f, 0.9f, 0.999f, 1e-8f, 0.0f};
    float scale = 1.0f / b->grads[b->n_params + VD_EXTRA_COUNT];
    float *g = malloc(sizeof(float) * a->n_params);
    for (size_t i = 0; i < a->n_params; i++) {
        float sum = 0;
        for (int r = 0; r < size; r++)
            sum += (float)r + (float)i / (float)a->n_params;
        g[i] = sum;
    }
    adam_step(&adam, 1, a->n_params, a->params, g, a->adam_m, a->adam_v, scale);
    if (rank != 0) /* late to the update: rank 0 must still see theirs on return */
        usleep(50000);
    reduce_update(share, &adam, 1, scale, 1);
    double worst = 0;
    for (size_t i = 0; i < a->n_params; i++)
        worst = fmax(worst, rel_err(b->params[i], a->params[i], 1e-3));
    assert_all(worst < 1e-6);
    assert_all(b->grads[b->n_params + VD_EXTRA_COUNT] == (float)size);
    free(g);
    reduce_free(share, 0);
    assert_all(b->params == NULL);
    vae_free(a);
    vae_free(b);
}

/* Gradients near FLT_MAX on every rank, so that the maxima's sum passes
 * the fused verdict's bound: +x on even ranks and -x on odd ones sum to
 * finite values (0, or x with an odd count), and the step is taken with the
 * sum of the unfused path; with one sign everywhere the sum overflows, and
 * the step is refused with the parameters untouched. */
static void test_shared_huge_gradients(void **state)
{
    (void)state;
    if (size < 2)
        skip();
    AdamConfig adam = {1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f};
    for (int same_sign = 0; same_sign < 2; same_sign++) {
        Vae *a = new_model(), *b = new_model();
        const char *why = NULL;
        Reducer *share = shared(b, MPI_COMM_NULL, &why);
        assert_all(share != NULL);
        float x = 2e38f * (same_sign || rank % 2 == 0 ? 1.0f : -1.0f);
        for (size_t i = 0; i < b->n_params; i++) /* a few ordinary values among them */
            b->grads[i] = i % 5 ? x : 1e-3f * (float)(rank + 1);
        b->grads[b->n_params + VD_EXTRA_COUNT] = 1.0f;
        b->grads[b->n_params + VD_EXTRA_FAIL] = 0.0f;
        b->grads[b->n_params + VD_EXTRA_RECON] = 1.0f;
        float *g = malloc(sizeof(float) * a->n_params);
        for (size_t i = 0; i < a->n_params; i++) { /* the sum in rank order, in float */
            g[i] = 0;
            for (int r = 0; r < size; r++)
                g[i] += i % 5 ? 2e38f * (same_sign || r % 2 == 0 ? 1.0f : -1.0f)
                              : 1e-3f * (float)(r + 1);
        }
        int want = vd_all_finite(g, a->n_params);
        assert_all(want == !same_sign);
        reduce_begin(share);
        assert_all(reduce_finish(share, NULL) == want);
        assert_all(reduce_extras(share)[VD_EXTRA_COUNT] == (float)size);
        float scale = 1.0f / (float)size;
        if (want)
            adam_step(&adam, 1, a->n_params, a->params, g, a->adam_m, a->adam_v, scale);
        reduce_update(share, &adam, 1, scale, want);
        assert_all(memcmp(a->params, b->params, sizeof(float) * a->n_params) == 0);
        assert_all(memcmp(a->adam_v, b->adam_v, sizeof(float) * a->n_params) == 0);
        free(g);
        reduce_free(share, 1);
        vae_free(a);
        vae_free(b);
    }
}

/* The norm of the mean gradient of step 1 over every rank's samples, from
 * one process that holds them all (checked against its own report): what
 * every reduction must find. */
static double serial_norm(void)
{
    AdamConfig adam = {1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f};
    Vae *serial = new_model();
    VaeWork *ws = work_for(&shape, LOCAL_B * size);
    for (int r = 0; r < size; r++)
        fill_rank_batch(ws, r, 0, r * LOCAL_B);
    Reducer *rs = allreduce(serial, MPI_COMM_SELF, 0);
    StepIO io = {.clip_norm = 1e30};
    assert_all(step_run(serial, ws, LOCAL_B * size, &elbo, &adam, 1, rs, &io));
    double want = 0;
    for (size_t i = 0; i < serial->n_params; i++)
        want += (double)serial->grads[i] * serial->grads[i];
    want = sqrt(want) / (LOCAL_B * size);
    assert_all(want > 0 && fabs(io.grad_norm - want) <= 1e-12 * want && !io.clipped);
    reduce_free(rs, 1);
    vae_work_free(ws);
    vae_free(serial);
    return want;
}

/* The reduction of m for mode 0 (allreduce), 1 (shared memory on one node)
 * or 2 (shared memory over the two "nodes" of node); NULL for 2 without
 * them (an odd rank count). */
static Reducer *mode_reducer(Vae *m, int mode, MPI_Comm node)
{
    const char *why = NULL;
    if (mode == 2 && node == MPI_COMM_NULL)
        return NULL;
    Reducer *red = mode == 0 ? allreduce(m, MPI_COMM_WORLD, 0)
                             : shared(m, mode == 1 ? MPI_COMM_NULL : node, &why);
    assert_all(red != NULL);
    return red;
}

/* The norm's double, the same bits on every rank? */
static int same_norm_everywhere(double norm)
{
    float bits[2]; /* the double's bits, compared as two floats */
    memcpy(bits, &norm, sizeof bits);
    return comm_same_bits(bits, 2, MPI_COMM_WORLD);
}

/* check(m, w, red, mode, want) for a fresh model under each reduction
 * (mode_reducer), with this rank's batch in w; want is serial_norm's. */
typedef void ReductionCheck(Vae *m, VaeWork *w, Reducer *red, int mode, double want);
static void each_reduction(ReductionCheck *check)
{
    double want = serial_norm();
    VaeWork *w = work_for(&shape, LOCAL_B);
    MPI_Comm node = MPI_COMM_NULL;
    if (size % 2 == 0)
        MPI_Comm_split(MPI_COMM_WORLD, rank / (size / 2), rank, &node);
    for (int mode = 0; mode < 3; mode++) {
        Vae *m = new_model();
        Reducer *red = mode_reducer(m, mode, node);
        if (red) {
            fill_rank_batch(w, rank, 0, 0);
            check(m, w, red, mode, want);
            reduce_free(red, 1);
        }
        vae_free(m);
    }
    if (node != MPI_COMM_NULL)
        MPI_Comm_free(&node);
    vae_work_free(w);
}

static const AdamConfig norm_adam = {1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f};

static void clip_check(Vae *m, VaeWork *w, Reducer *red, int mode, double want)
{
    (void)mode;
    StepIO io = {.clip_norm = want / 2}; /* half the norm: clipped */
    assert_all(step_run(m, w, LOCAL_B, &elbo, &norm_adam, 1, red, &io));
    assert_all(io.clipped);
    assert_all(fabs(io.grad_norm - want) <= 1e-5 * want);
    assert_all(same_norm_everywhere(io.grad_norm));
    assert_all(comm_same_bits(m->params, m->n_params, MPI_COMM_WORLD));
    io = (StepIO){.clip_norm = want * 100};
    assert_all(step_run(m, w, LOCAL_B, &elbo, &norm_adam, 2, red, &io));
    assert_all(!io.clipped && io.grad_norm > 0);
    io = (StepIO){.clip_norm = want / 2, .failed = rank == size - 1}; /* not applied */
    step_run(m, w, LOCAL_B, &elbo, &norm_adam, 3, red, &io);
    assert_all(io.failed && !io.clipped && isnan(io.grad_norm));
    io = (StepIO){.clip_norm = want / 2, .poison = rank == 0}; /* a non-finite sum */
    assert_all(step_run(m, w, LOCAL_B, &elbo, &norm_adam, 3, red, &io) == 0);
    assert_all(!io.clipped && isnan(io.grad_norm));
}

/* --clip-norm: the norm is the global one, of the mean gradient over all
 * ranks, whichever reduction holds which slice (allreduce; shared memory on
 * one node; shared memory over two "nodes"); it is the same double on every
 * rank; a norm above the limit is reported clipped, one below is not; a
 * step not applied is neither, and has no norm. */
static void test_clip_norm_is_global(void **state)
{
    (void)state;
    each_reduction(clip_check);
}

static void norm_check(Vae *m, VaeWork *w, Reducer *red, int mode, double want)
{
    (void)mode;
    StepIO io = {0};
    assert_all(step_run(m, w, LOCAL_B, &elbo, &norm_adam, 1, red, &io));
    assert_all(fabs(io.grad_norm - want) <= 1e-5 * want);
    assert_all(same_norm_everywhere(io.grad_norm));
    io = (StepIO){.poison = rank == 0}; /* a non-finite sum: not applied */
    assert_all(step_run(m, w, LOCAL_B, &elbo, &norm_adam, 2, red, &io) == 0);
    assert_all(isnan(io.grad_norm));
    io = (StepIO){.failed = rank == size - 1}; /* not applied */
    step_run(m, w, LOCAL_B, &elbo, &norm_adam, 2, red, &io);
    assert_all(io.failed && isnan(io.grad_norm));
}

/* The norm metrics.csv reports (grad_norm), without clipping: the global
 * norm of the mean gradient before any scaling, the same double on every
 * rank, with every reduction; with fuse (one node), summed inside Adam's
 * pass, after the update. A step not applied (a rank's batch missing, or a
 * non-finite sum) reports none (NaN), whichever reduction, after a step
 * that did. */
static void test_grad_norm_reported(void **state)
{
    (void)state;
    each_reduction(norm_check);
}

/* --compress over two "nodes": what crosses them goes as fp16 or bf16, so
 * the first Adam moment (0.1 of the summed gradient after one step) is
 * close to the exact one but not equal; every rank still holds the same
 * bits, and the extras (the sample count) stay exact. */
static void test_shared_compressed(void **state)
{
    (void)state;
    if (size < 2 || size % 2)
        skip();
    MPI_Comm node;
    MPI_Comm_split(MPI_COMM_WORLD, rank / (size / 2), rank, &node);
    AdamConfig adam = {1e-2f, 0.9f, 0.999f, 1e-8f, 0.0f};
    VaeWork *w = work_for(&shape, LOCAL_B);
    fill_rank_batch(w, rank, 1, 0);
    Vae *exact = new_model();
    const char *why = NULL;
    Reducer *re = shared(exact, node, &why);
    assert_all(re != NULL);
    assert_all(step_run(exact, w, LOCAL_B, &elbo, &adam, 1, re, NULL));
    double bound[] = {0, 2e-3, 1e-2}; /* fp16: 11 bits of mantissa, bf16: 8 */
    for (int mode = VD_COMPRESS_FP16; mode <= VD_COMPRESS_BF16; mode++) {
        Vae *m = new_model();
        ReduceConfig c = {VD_REDUCE_SHM, 0, node, mode, 1.0f / 16, 0};
        Reducer *red = reduce_create(m, MPI_COMM_WORLD, &c, &why);
        assert_all(reduce_mode(red) == VD_REDUCE_SHM);
        assert_all(step_run(m, w, LOCAL_B, &elbo, &adam, 1, red, NULL));
        double d2 = 0, e2 = 0;
        for (size_t i = 0; i < m->n_params; i++) {
            double d = (double)m->adam_m[i] - exact->adam_m[i];
            d2 += d * d;
            e2 += (double)exact->adam_m[i] * exact->adam_m[i];
        }
        assert_all(e2 > 0 && d2 > 0 && sqrt(d2 / e2) < bound[mode]);
        assert_all(comm_same_bits(m->params, m->n_params, MPI_COMM_WORLD));
        assert_all(comm_same_bits(m->adam_m, m->n_params, MPI_COMM_WORLD));
        assert_all(m->grads[m->n_params + VD_EXTRA_COUNT] == (float)(LOCAL_B * size));
        reduce_free(red, 1);
        vae_free(m);
    }
    reduce_free(re, 1);
    vae_free(exact);
    vae_work_free(w);
    MPI_Comm_free(&node);
}

/* The shared-memory sum during backward, in chunks of 7 floats, with one
 * rank lagging (it starts its step late, and sleeps before reporting each
 * finished part): the owners must wait for it chunk by chunk, and must not
 * take the lagging rank's previous step, whose progress says "all final",
 * for this one. Over 4 steps, on one node and on two
 * "nodes", the training equals the allreduce's (to the bit on 2 ranks). */
static int lag_rank;
static void lagging_ready(void *red, size_t offset)
{
    if (rank == lag_rank)
        usleep(300);
    reduce_ready(red, offset);
}

static void test_shared_chunks_with_a_lagging_rank(void **state)
{
    (void)state;
    AdamConfig adam = {1e-2f, 0.9f, 0.999f, 1e-8f, 0.0f};
    for (int split = 0; split <= (size % 2 == 0); split++) {
        MPI_Comm node = MPI_COMM_NULL;
        if (split)
            MPI_Comm_split(MPI_COMM_WORLD, rank / (size / 2), rank, &node);
        Vae *a = new_model(), *b = new_model();
        VaeWork *w = work_for(&shape, LOCAL_B);
        Reducer *one = allreduce(a, MPI_COMM_WORLD, 0);
        ReduceConfig c = {VD_REDUCE_SHM, 7, split ? node : MPI_COMM_NULL, VD_COMPRESS_NONE, 1.0f,
                          fuse};
        const char *why;
        Reducer *red = reduce_create(b, MPI_COMM_WORLD, &c, &why);
        assert_all(reduce_mode(red) == VD_REDUCE_SHM);
        for (int t = 1; t <= 4; t++) {
            lag_rank = t % size; /* a different rank lags each step */
            fill_rank_batch(w, rank, t % 3, 0);
            assert_all(step_run(a, w, LOCAL_B, &elbo, &adam, t, one, NULL));
            /* step_run's work, with the lagging hook in backward */
            vae_forward(b, w, LOCAL_B, &elbo, 1);
            float *extra = b->grads + b->n_params;
            double rs = 0, ks = 0;
            for (int i = 0; i < LOCAL_B; i++) {
                rs += w->row_recon[i];
                ks += w->row_kl[i];
            }
            extra[VD_EXTRA_RECON] = (float)rs;
            extra[VD_EXTRA_KL] = (float)ks;
            extra[VD_EXTRA_COUNT] = LOCAL_B;
            extra[VD_EXTRA_STOP] = extra[VD_EXTRA_FAIL] = 0.0f;
            if (rank == lag_rank) /* the others' owners meet its last step's progress */
                usleep(20000);
            reduce_begin(red);
            vae_zero_grads(b);
            vae_backward(b, w, &elbo, lagging_ready, red);
            assert_all(reduce_finish(red, NULL));
            reduce_update(red, &adam, t, 1.0f / reduce_extras(red)[VD_EXTRA_COUNT], 1);
            assert_all(extra[VD_EXTRA_COUNT] == (float)(LOCAL_B * size));
        }
        reduce_free(red, 1);
        reduce_free(one, 1);
        assert_same_training(a, b, size == 2);
        vae_work_free(w);
        vae_free(a);
        vae_free(b);
        if (node != MPI_COMM_NULL)
            MPI_Comm_free(&node);
    }
}

/* A VampPrior's pseudo-inputs split over the ranks (each runs their pass on
 * its rows, gathers the components, and sums their gradient into its rows)
 * train the model the unsplit pass does, up to the summation order; the
 * replicas stay identical. K = 5 does not divide by 2 or 4 ranks, and K = 3
 * leaves one of 4 ranks none. */
static void test_vamp_pseudo_inputs_split(void **state)
{
    (void)state;
    AdamConfig adam = {1e-2f, 0.9f, 0.999f, 1e-8f, 0.0f};
    const char *Ks[] = {"5", "3"};
    for (int c = 0; c < 2; c++) {
        VaeShape vs = test_shape(20, "hidden", "12,7", "latent", "3,2", "activation", "gated",
                                 "prior", "vamp", "pseudo-inputs", Ks[c], NULL);
        const char *why;
        Vae *a = vae_create(&vs, VD_GRAD_EXTRA, &why), *b = vae_create(&vs, VD_GRAD_EXTRA, &why);
        vae_init_params(a, 3);
        vae_init_params(b, 3);
        VaeWork *wa = vae_work_create(a, LOCAL_B), *wb = vae_work_create(b, LOCAL_B);
        VaeGroup *g = step_group_create(MPI_COMM_WORLD);
        wb->group = g;
        Reducer *ra = allreduce(a, MPI_COMM_WORLD, 0), *rb = allreduce(b, MPI_COMM_WORLD, 0);
        Rng noise = rng_for(5, VD_RNG_NOISE, (uint32_t)rank);
        for (int t = 1; t <= 3; t++) {
            for (int i = 0; i < LOCAL_B; i++)
                make_sample((int64_t)rank * LOCAL_B + i + t * 1000, wa->x + (size_t)i * 20);
            rng_normal_fill(&noise, (uint32_t)t, 0, (size_t)LOCAL_B * a->d_total, wa->eps);
            memcpy(wb->x, wa->x, sizeof(float) * LOCAL_B * 20);
            memcpy(wb->eps, wa->eps, sizeof(float) * (size_t)LOCAL_B * a->d_total);
            assert_all(step_run(a, wa, LOCAL_B, &elbo, &adam, t, ra, NULL));
            assert_all(step_run(b, wb, LOCAL_B, &elbo, &adam, t, rb, NULL));
        }
        int K = atoi(Ks[c]), mine = wb->k1 - wb->k0, total = 0;
        MPI_Allreduce(&mine, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
        assert_all(total == K && (size == 1 || mine < K)); /* the split happened */
        assert_all(wa->k0 == 0 && wa->k1 == K);
        assert_same_training(a, b, 0);
        reduce_free(ra, 1);
        reduce_free(rb, 1);
        step_group_free(g);
        vae_work_free(wa);
        vae_work_free(wb);
        vae_free(a);
        vae_free(b);
    }
}

/* --compress fp16's loops come twice, for F16C and plain: nodes with and
 * without F16C must sum to the same bits. */
static void test_fp16_loops_agree(void **state)
{
    (void)state;
    long bad = half_fp16_mismatches(); /* the same on every rank */
    if (bad < 0)
        skip(); /* no F16C here: only the plain loops exist */
    assert_all(bad == 0);
}

int main(int argc, char **argv)
{
    shape = test_shape(20, "hidden", "12,7", "latent", "3", NULL); /* before MPI: local */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_allreduce_equals_serial_sum),
        cmocka_unit_test(test_vamp_pseudo_inputs_split),
        cmocka_unit_test(test_replicas_identical_after_steps),
        cmocka_unit_test(test_nonfinite_agreed_by_all),
        cmocka_unit_test(test_error_agreement),
        cmocka_unit_test(test_stop_flag_reaches_all),
        cmocka_unit_test(test_bucketed_matches_blocking),
        cmocka_unit_test(test_shared_matches_allreduce),
        cmocka_unit_test_setup_teardown(test_shared_matches_allreduce, fused_on, fused_off),
        cmocka_unit_test(test_shared_over_two_nodes),
        cmocka_unit_test(test_shared_declines_uneven_nodes),
        cmocka_unit_test(test_shared_verdicts_agreed),
        cmocka_unit_test_setup_teardown(test_shared_verdicts_agreed, fused_on, fused_off),
        cmocka_unit_test(test_shared_barriers_hold),
        cmocka_unit_test_setup_teardown(test_shared_barriers_hold, fused_on, fused_off),
        cmocka_unit_test(test_shared_huge_gradients),
        cmocka_unit_test_setup_teardown(test_shared_huge_gradients, fused_on, fused_off),
        cmocka_unit_test(test_injected_failure),
        cmocka_unit_test(test_clip_norm_is_global),
        cmocka_unit_test_setup_teardown(test_clip_norm_is_global, fused_on, fused_off),
        cmocka_unit_test(test_grad_norm_reported),
        cmocka_unit_test_setup_teardown(test_grad_norm_reported, fused_on, fused_off),
        cmocka_unit_test(test_shared_compressed),
        cmocka_unit_test(test_shared_chunks_with_a_lagging_rank),
        cmocka_unit_test_setup_teardown(test_shared_chunks_with_a_lagging_rank, fused_on, fused_off),
        cmocka_unit_test(test_fp16_loops_agree),
    };
    return mpi_test_main(argc, argv, tests);
}
