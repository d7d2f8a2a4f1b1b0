/* test_optim.c — Adam against values computed by hand. */
#include "testutil.h"

#include <math.h>

#include "optim.h"

static void test_adam_first_step(void **state)
{
    (void)state;
    /* Step 1: m = 0.1 g, v = 0.001 g^2; bias-corrected mhat = g, vhat = g^2,
     * so p -= lr * g / (|g| + eps) = lr * sign(g) (up to eps). grads are
     * scaled by 1/4 first: the global mean. */
    AdamConfig c = {0.01f, 0.9f, 0.999f, 1e-8f, 0.0f};
    float p[3] = {1.0f, -2.0f, 0.5f}, g[3] = {4.0f, -2.0f, 0.0f}, m[3] = {0}, v[3] = {0};
    adam_step(&c, 1, 3, p, g, m, v, 0.25f);
    assert_float_equal(m[0], 0.1f, 1e-7);     /* 0.1 * 1.0 */
    assert_float_equal(m[1], -0.05f, 1e-7);   /* 0.1 * -0.5 */
    assert_float_equal(v[0], 0.001f, 1e-7);   /* 0.001 * 1.0; 1 - 0.999f is inexact */
    assert_float_equal(v[1], 0.00025f, 1e-8);
    assert_float_equal(p[0], 0.99f, 1e-6);
    assert_float_equal(p[1], -1.99f, 1e-6);
    assert_float_equal(p[2], 0.5f, 0.0);      /* zero gradient: no move */
}

static void test_adam_second_step(void **state)
{
    (void)state;
    /* Two steps with g = 1 then g = 3, lr 0.1, b1 0.9, b2 0.99, eps 0:
     * m1 = 0.1, v1 = 0.01, p1 = 0 - 0.1 * (0.1/0.1) / sqrt(0.01/0.01) = -0.1
     * m2 = 0.09 + 0.3 = 0.39, v2 = 0.0099 + 0.09 = 0.0999
     * mhat = 0.39 / 0.19, vhat = 0.0999 / 0.0199
     * p2 = -0.1 - 0.1 * 2.0526315789 / 2.2405673 = -0.19161... */
    AdamConfig c = {0.1f, 0.9f, 0.99f, 0.0f, 0.0f};
    float p = 0, m = 0, v = 0, g = 1;
    adam_step(&c, 1, 1, &p, &g, &m, &v, 1.0f);
    assert_float_equal(p, -0.1f, 1e-6);
    g = 3;
    adam_step(&c, 2, 1, &p, &g, &m, &v, 1.0f);
    double mhat = 0.39 / 0.19, vhat = 0.0999 / 0.0199;
    assert_float_equal(m, 0.39f, 1e-6);
    assert_float_equal(v, 0.0999f, 1e-6);
    assert_float_equal(p, -0.1 - 0.1 * mhat / sqrt(vhat), 1e-6);
}

/* Decoupled weight decay (AdamW): p <- p - lr wd p - lr mhat / (sqrt(vhat) +
 * eps). A zero gradient leaves only the decay; a nonzero one adds Adam's
 * step to it, unchanged by the decay. */
static void test_adamw_decay_is_decoupled(void **state)
{
    (void)state;
    AdamConfig c = {0.1f, 0.9f, 0.99f, 0.0f, 0.5f};
    float p[2] = {2.0f, 2.0f}, g[2] = {0.0f, 1.0f}, m[2] = {0}, v[2] = {0};
    adam_step(&c, 1, 2, p, g, m, v, 1.0f);
    assert_float_equal(p[0], 2.0 - 0.1 * 0.5 * 2.0, 1e-6);       /* 1.9 */
    assert_float_equal(p[1], 2.0 - 0.1 * 0.5 * 2.0 - 0.1, 1e-6); /* 1.8 */
    AdamConfig plain = c;
    plain.weight_decay = 0.0f;
    float q = 2.0f, gq = 1.0f, mq = 0, vq = 0;
    adam_step(&plain, 1, 1, &q, &gq, &mq, &vq, 1.0f);
    assert_float_equal(q, 1.9, 1e-6);
    assert_float_equal(m[1], mq, 0.0); /* the moments do not see the decay */
    assert_float_equal(v[1], vq, 0.0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adam_first_step),
        cmocka_unit_test(test_adam_second_step),
        cmocka_unit_test(test_adamw_decay_is_decoupled),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
