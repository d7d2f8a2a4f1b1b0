/* test_mpi.c — multi-process tests, run under mpirun with 2 and 4 ranks
 * (tests/mpi-2.sh, tests/mpi-4.sh). Assertions are collective, and with more
 * than one rank cmocka aborts on failure (CMOCKA_TEST_ABORT=1), which makes
 * mpirun end the job: a failure on one rank fails the test, never hangs it. */
#include "testutil.h"

#include <math.h>

#include "model.h"
#include "optim.h"
#include "rng.h"
#include "train.h"
#include "util.h"

static int rank, size;
static const VaeShape shape = {.n_input = 20, .n_latent = 3, .n_hidden = 2, .hidden = {12, 7}};
enum { LOCAL_B = 5 };

/* Sample i of the global batch: a deterministic function of i alone. */
static void make_sample(int64_t i, float *x)
{
    Rng r = rng_stream(77, VD_STREAM_INIT, 1);
    rng_uniform_fill(&r, (uint32_t)i, 0, (size_t)shape.n_input, 0.0f, 1.0f, x);
}

/* Rows and noise rank r would train on at step t. */
static void fill_rank_batch(VaeWork *w, int r, int64_t t, int row0)
{
    Rng noise = rng_stream(5, VD_STREAM_NOISE, (uint32_t)r);
    for (int i = 0; i < LOCAL_B; i++)
        make_sample((int64_t)r * LOCAL_B + i + t * 1000, w->x + (size_t)(row0 + i) * shape.n_input);
    rng_normal_fill(&noise, (uint32_t)t, 0, (size_t)LOCAL_B * shape.n_latent,
                    w->eps + (size_t)row0 * shape.n_latent);
}

static Vae *new_model(void)
{
    const char *why;
    Vae *m = vae_create(&shape, &why);
    vae_init_params(m, 3);
    return m;
}

/* The allreduced gradient equals the gradient of one process holding all
 * ranks' samples (and their noise): np x B on np ranks == np*B on one. */
static void test_allreduce_equals_serial_sum(void **state)
{
    (void)state;
    AdamConfig adam = {1e-3f, 0.9f, 0.999f, 1e-8f};
    Vae *dist = new_model(), *serial = new_model();
    VaeWork *wd = vae_work_create(&shape, LOCAL_B), *ws = vae_work_create(&shape, LOCAL_B * size);
    fill_rank_batch(wd, rank, 0, 0);
    for (int r = 0; r < size; r++)
        fill_rank_batch(ws, r, 0, r * LOCAL_B);
    assert_all(train_step(dist, wd, LOCAL_B, 1.0f, &adam, 1, MPI_COMM_WORLD, NULL));
    assert_all(train_step(serial, ws, LOCAL_B * size, 1.0f, &adam, 1, MPI_COMM_SELF, NULL));
    float gmax = 0;
    for (size_t i = 0; i < serial->n_params; i++)
        gmax = fmaxf(gmax, fabsf(serial->grads[i]));
    int close = gmax > 0;
    for (size_t i = 0; i < serial->n_params + VD_EXTRA_COUNT + 1; i++)
        close &= fabsf(dist->grads[i] - serial->grads[i]) <= 1e-5f * gmax + 1e-6f * fabsf(serial->grads[i]);
    assert_all(close);
    /* the sample count in the tail is the global batch */
    assert_all(dist->grads[dist->n_params + VD_EXTRA_COUNT] == (float)(LOCAL_B * size));
    vae_work_free(wd);
    vae_work_free(ws);
    vae_free(dist);
    vae_free(serial);
}

/* After k steps on different local data, every replica is bitwise the same. */
static void test_replicas_identical_after_steps(void **state)
{
    (void)state;
    AdamConfig adam = {1e-2f, 0.9f, 0.999f, 1e-8f};
    Vae *m = new_model();
    VaeWork *w = vae_work_create(&shape, LOCAL_B);
    uint64_t init = vd_checksum_f32(m->params, m->n_params);
    double first = 0, last = 0;
    for (int t = 1; t <= 30; t++) {
        fill_rank_batch(w, rank, t % 3, 0); /* three batches, seen in turn */
        assert_all(train_step(m, w, LOCAL_B, 1.0f, &adam, t, MPI_COMM_WORLD, NULL));
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
    free(all);
    vae_work_free(w);
    vae_free(m);
}

/* A NaN on one rank (in its data, and in rank 0's gradient through the
 * test hook) stops the step on every rank, parameters untouched. */
static void test_nonfinite_agreed_by_all(void **state)
{
    (void)state;
    AdamConfig adam = {1e-3f, 0.9f, 0.999f, 1e-8f};
    Vae *m = new_model();
    VaeWork *w = vae_work_create(&shape, LOCAL_B);
    fill_rank_batch(w, rank, 0, 0);
    if (rank == size - 1)
        w->x[7] = NAN;
    uint64_t before = vd_checksum_f32(m->params, m->n_params);
    StepIO io = {.poison = rank == 0};
    int ok = train_step(m, w, LOCAL_B, 1.0f, &adam, 1, MPI_COMM_WORLD, &io);
    assert_all(ok == 0);
    assert_all(vd_checksum_f32(m->params, m->n_params) == before);
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
 * alone. tests/mpi-2.sh checks that the job then ends with an error instead
 * of hanging in the next collective. */
static void test_injected_failure(void **state)
{
    (void)state;
    const char *who = getenv("VD_TEST_INJECT_FAILURE");
    if (who && atoi(who) == rank)
        fail_msg("injected failure on rank %d", rank);
    MPI_Barrier(MPI_COMM_WORLD);
}

/* A stop request on one rank reaches every rank through the step. */
static void test_stop_flag_reaches_all(void **state)
{
    (void)state;
    AdamConfig adam = {1e-3f, 0.9f, 0.999f, 1e-8f};
    Vae *m = new_model();
    VaeWork *w = vae_work_create(&shape, LOCAL_B);
    fill_rank_batch(w, rank, 0, 0);
    StepIO io = {.stop = rank == size - 1};
    assert_all(train_step(m, w, LOCAL_B, 1.0f, &adam, 1, MPI_COMM_WORLD, &io));
    assert_all(io.stop == 1);
    io.stop = 0;
    assert_all(train_step(m, w, LOCAL_B, 1.0f, &adam, 2, MPI_COMM_WORLD, &io));
    assert_all(io.stop == 0);
    vae_work_free(w);
    vae_free(m);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (size > 1)
        setenv("CMOCKA_TEST_ABORT", "1", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_allreduce_equals_serial_sum),
        cmocka_unit_test(test_replicas_identical_after_steps),
        cmocka_unit_test(test_nonfinite_agreed_by_all),
        cmocka_unit_test(test_error_agreement),
        cmocka_unit_test(test_stop_flag_reaches_all),
        cmocka_unit_test(test_injected_failure),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    MPI_Finalize();
    return failed ? 1 : 0;
}
