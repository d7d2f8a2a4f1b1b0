/* test_schedule.c — the learning-rate schedules and the KL warm-up
 * (schedule.h) against values worked out by hand. */
#include "testutil.h"

#include <math.h>

#include "schedule.h"

static const Schedule base = {VD_SCHED_CONSTANT, 1e-2, 1e-4, 0.5, 0, 2, 1};

static void test_constant_and_warmup(void **state)
{
    (void)state;
    Schedule s = base;
    assert_float_equal(sched_lr(&s, 1.0, 1, 10, 100), 1e-2, 0);
    assert_float_equal(sched_lr(&s, 1.0, 100, 10, 100), 1e-2, 0);
    s.warmup = 4; /* t / 4 for t < 4, then all of it */
    assert_float_equal(sched_lr(&s, 1.0, 1, 10, 100), 2.5e-3, 1e-15);
    assert_float_equal(sched_lr(&s, 1.0, 3, 10, 100), 7.5e-3, 1e-15);
    assert_float_equal(sched_lr(&s, 1.0, 4, 10, 100), 1e-2, 0);
}

static void test_cosine(void **state)
{
    (void)state;
    Schedule s = base;
    s.kind = VD_SCHED_COSINE;
    /* p = t / total: lr at p = 0 is lr, at p = 1/2 the midpoint, at 1 lr_min */
    assert_float_equal(sched_lr(&s, 1.0, 0, 10, 100), 1e-2, 1e-15);
    assert_float_equal(sched_lr(&s, 1.0, 50, 10, 100), (1e-2 + 1e-4) / 2, 1e-15);
    assert_float_equal(sched_lr(&s, 1.0, 100, 10, 100), 1e-4, 1e-15);
    assert_float_equal(sched_lr(&s, 1.0, 25, 10, 100),
                       1e-4 + (1e-2 - 1e-4) * (1 + cos(M_PI / 4)) / 2, 1e-15);
    /* after a warm-up of 20 steps the cosine spans the other 80 */
    s.warmup = 20;
    assert_float_equal(sched_lr(&s, 1.0, 10, 10, 100), 1e-2 * 10 / 20, 1e-15);
    assert_float_equal(sched_lr(&s, 1.0, 60, 10, 100), (1e-2 + 1e-4) / 2, 1e-15);
    for (int64_t t = 21; t <= 100; t++) /* falls all the way */
        assert_true(sched_lr(&s, 1.0, t, 10, 100) < sched_lr(&s, 1.0, t - 1, 10, 100));
}

static void test_step(void **state)
{
    (void)state;
    Schedule s = base;
    s.kind = VD_SCHED_STEP; /* halved every 2 epochs of 10 steps */
    assert_float_equal(sched_lr(&s, 1.0, 1, 10, 100), 1e-2, 0);
    assert_float_equal(sched_lr(&s, 1.0, 20, 10, 100), 1e-2, 0);  /* epoch 1 (from 0) */
    assert_float_equal(sched_lr(&s, 1.0, 21, 10, 100), 5e-3, 1e-15); /* epoch 2 */
    assert_float_equal(sched_lr(&s, 1.0, 41, 10, 100), 2.5e-3, 1e-15);
}

static void test_plateau(void **state)
{
    (void)state;
    Schedule s = base;
    s.kind = VD_SCHED_PLATEAU; /* patience 1: the second epoch without a better loss cuts */
    double best = INFINITY, scale = 1.0;
    int64_t bad = 0;
    assert_int_equal(sched_plateau(&s, 10.0, &best, &bad, &scale), 0);
    assert_float_equal(best, 10.0, 0);
    assert_int_equal(sched_plateau(&s, 9.0, &best, &bad, &scale), 0);
    assert_int_equal(sched_plateau(&s, 9.0, &best, &bad, &scale), 0); /* 1 bad: patience */
    assert_int_equal(bad, 1);
    assert_int_equal(sched_plateau(&s, 8.9999, &best, &bad, &scale), 1); /* within 1e-4: bad */
    assert_float_equal(scale, 0.5, 0);
    assert_int_equal(bad, 0);
    assert_float_equal(sched_lr(&s, scale, 50, 10, 100), 5e-3, 0);
    assert_int_equal(sched_plateau(&s, NAN, &best, &bad, &scale), 0); /* ignored */
    assert_int_equal(bad, 0);
    assert_int_equal(sched_plateau(&s, 5.0, &best, &bad, &scale), 0);
    assert_float_equal(best, 5.0, 0);
    Schedule c = base; /* other schedules keep no plateau state */
    assert_int_equal(sched_plateau(&c, 99.0, &best, &bad, &scale), 0);
    assert_float_equal(best, 5.0, 0);
}

static void test_kl_weight(void **state)
{
    (void)state;
    assert_float_equal(sched_kl_weight(0.5, 0, 1), 0.5, 0);
    assert_float_equal(sched_kl_weight(1.0, 10, 1), 0.1, 1e-15);
    assert_float_equal(sched_kl_weight(1.0, 10, 5), 0.5, 1e-15);
    assert_float_equal(sched_kl_weight(1.0, 10, 10), 1.0, 0);
    assert_float_equal(sched_kl_weight(2.0, 10, 1000), 2.0, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_constant_and_warmup),
        cmocka_unit_test(test_cosine),
        cmocka_unit_test(test_step),
        cmocka_unit_test(test_plateau),
        cmocka_unit_test(test_kl_weight),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
