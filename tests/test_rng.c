/* test_rng.c — Philox known answers, determinism, distribution, and
 * independence of the per-rank generators. */
#include "testutil.h"

#include <math.h>

#include "rng.h"

/* Known-answer vectors for Philox4x32-10 published with Random123 (Salmon
 * et al., SC'11). */
static void test_philox_known_answers(void **state)
{
    (void)state;
    static const uint32_t ctr[3][4] = {{0, 0, 0, 0},
                                       {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
                                       {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}};
    static const uint32_t key[3][2] = {{0, 0}, {0xffffffff, 0xffffffff}, {0xa4093822, 0x299f31d0}};
    static const uint32_t want[3][4] = {{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
                                        {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
                                        {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}};
    for (int k = 0; k < 3; k++) {
        uint32_t out[4];
        philox4x32_10(ctr[k], key[k], out);
        for (int i = 0; i < 4; i++)
            assert_int_equal(out[i], want[k][i]);
    }
}

static void test_draws_are_pure_functions(void **state)
{
    (void)state;
    Rng r = rng_for(42, VD_RNG_NOISE, 3);
    float a[64], b[64], c[59];
    rng_normal_fill(&r, 7, 0, 64, a);
    rng_normal_fill(&r, 7, 0, 64, b);
    assert_memory_equal(a, b, sizeof a);
    /* an unaligned start gives the same values as the full fill */
    rng_normal_fill(&r, 7, 5, 59, c);
    assert_memory_equal(a + 5, c, sizeof c);
    /* another counter row, seed or use gives other numbers */
    rng_normal_fill(&r, 8, 0, 64, b);
    assert_memory_not_equal(a, b, sizeof a);
    Rng r2 = rng_for(43, VD_RNG_NOISE, 3);
    rng_normal_fill(&r2, 7, 0, 64, b);
    assert_memory_not_equal(a, b, sizeof a);
    Rng r3 = rng_for(42, VD_RNG_EVAL, 3);
    rng_normal_fill(&r3, 7, 0, 64, b);
    assert_memory_not_equal(a, b, sizeof a);
}

static void test_normal_moments(void **state)
{
    (void)state;
    enum { N = 1 << 20 };
    float *x = malloc(sizeof(float) * N);
    Rng r = rng_for(1, VD_RNG_NOISE, 0);
    rng_normal_fill(&r, 0, 0, N, x);
    double m1 = 0, m2 = 0, m4 = 0;
    for (int i = 0; i < N; i++) {
        m1 += x[i];
        m2 += (double)x[i] * x[i];
        m4 += (double)x[i] * x[i] * x[i] * x[i];
    }
    m1 /= N;
    m2 /= N;
    m4 /= N;
    /* standard errors: 1/sqrt(N), sqrt(2/N), sqrt(96/N); allow 5 of them */
    assert_true(fabs(m1) < 5.0 / sqrt(N));
    assert_true(fabs(m2 - 1.0) < 5.0 * sqrt(2.0 / N));
    assert_true(fabs(m4 - 3.0) < 5.0 * sqrt(96.0 / N));
    free(x);
}

static void test_uniform_range(void **state)
{
    (void)state;
    float u[4096];
    Rng r = rng_for(9, VD_RNG_INIT, 0);
    rng_uniform_fill(&r, 0, 0, 4096, -0.5f, 0.5f, u);
    double mean = 0;
    for (int i = 0; i < 4096; i++) {
        assert_true(u[i] >= -0.5f && u[i] < 0.5f);
        mean += u[i];
    }
    assert_true(fabs(mean / 4096) < 5.0 * sqrt(1.0 / 12 / 4096));
}

/* Generators of different ranks must not be correlated or share values. */
static void test_rank_generators_independent(void **state)
{
    (void)state;
    enum { N = 1 << 16 };
    float *a = malloc(sizeof(float) * N), *b = malloc(sizeof(float) * N);
    for (uint32_t ra = 0; ra < 4; ra++)
        for (uint32_t rb = ra + 1; rb < 4; rb++) {
            Rng x = rng_for(5, VD_RNG_NOISE, ra), y = rng_for(5, VD_RNG_NOISE, rb);
            rng_normal_fill(&x, 11, 0, N, a);
            rng_normal_fill(&y, 11, 0, N, b);
            double dot = 0;
            int same = 0;
            for (int i = 0; i < N; i++) {
                dot += (double)a[i] * b[i];
                same += a[i] == b[i];
            }
            assert_true(fabs(dot / N) < 5.0 / sqrt(N));
            assert_true(same < 3);
        }
    free(a);
    free(b);
}

static void test_permutation(void **state)
{
    (void)state;
    enum { N = 10007 };
    int64_t *p = malloc(sizeof(int64_t) * N), *q = malloc(sizeof(int64_t) * N);
    char *seen = calloc(N, 1);
    Rng r = rng_for(3, VD_RNG_ORDER, 0);
    rng_permutation(&r, 0, p, N);
    int64_t fixed = 0;
    for (int i = 0; i < N; i++) {
        assert_true(p[i] >= 0 && p[i] < N);
        assert_false(seen[p[i]]);
        seen[p[i]] = 1;
        fixed += p[i] == i;
    }
    assert_true(fixed < 10); /* a shuffle has ~1 fixed point, not thousands */
    rng_permutation(&r, 0, q, N);
    assert_memory_equal(p, q, sizeof(int64_t) * N);
    rng_permutation(&r, 1, q, N);
    assert_memory_not_equal(p, q, sizeof(int64_t) * N);
    free(p);
    free(q);
    free(seen);
}

static void test_below_is_uniform(void **state)
{
    (void)state;
    Rng r = rng_for(8, VD_RNG_ORDER, 0);
    int counts[7] = {0};
    enum { N = 70000 };
    for (uint64_t i = 0; i < N; i++)
        counts[rng_below(&r, 0, i, 7)]++;
    for (int k = 0; k < 7; k++) /* expected 10000, sd ~93 */
        assert_true(abs(counts[k] - N / 7) < 500);
}

/* Dynamic binarization: the frequencies, a pure function of (row, value),
 * another epoch other draws. */
static void test_binarize(void **state)
{
    (void)state;
    enum { N = 100, W = 1000 };
    float *x = calloc(N * W, sizeof(float)), *y = calloc(N * W, sizeof(float));
    for (int i = 0; i < N * W; i++)
        x[i] = i % W < 400 ? 0.3f : i % W < 500 ? 0.0f : i % W < 600 ? 1.0f : 0.9f;
    memcpy(y, x, sizeof(float) * N * W);
    Rng r = rng_for(1, VD_RNG_BINARIZE, 0);
    rng_binarize(&r, 0, 10, N, W, x);
    double ones[4] = {0};
    for (int i = 0; i < N * W; i++) {
        int c = i % W;
        assert_true(x[i] == 0.0f || x[i] == 1.0f);
        ones[c < 400 ? 0 : c < 500 ? 1 : c < 600 ? 2 : 3] += x[i];
    }
    /* 40,000 draws at 0.3: standard deviation 0.0023 */
    assert_true(fabs(ones[0] / (N * 400) - 0.3) < 0.012);
    assert_true(ones[1] == 0.0 && ones[2] == N * 100.0);
    assert_true(fabs(ones[3] / (N * 400) - 0.9) < 0.008);
    /* a pure function of (row, value): rows 11.. alone give the same bits */
    float *z = calloc(N * W, sizeof(float));
    memcpy(z, y + W, sizeof(float) * (N - 1) * W);
    rng_binarize(&r, 0, 11, N - 1, W, z);
    assert_memory_equal(z, x + W, sizeof(float) * (N - 1) * W);
    /* another epoch, other draws */
    rng_binarize(&r, 1, 10, N, W, y);
    assert_true(memcmp(x, y, sizeof(float) * N * W) != 0);
    free(x);
    free(y);
    free(z);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_binarize),
        cmocka_unit_test(test_philox_known_answers),
        cmocka_unit_test(test_draws_are_pure_functions),
        cmocka_unit_test(test_normal_moments),
        cmocka_unit_test(test_uniform_range),
        cmocka_unit_test(test_rank_generators_independent),
        cmocka_unit_test(test_permutation),
        cmocka_unit_test(test_below_is_uniform),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
