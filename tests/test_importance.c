/* test_importance.c — the importance-weighted estimate (vae_importance)
 * against log p(x) computed by quadrature over a 2-D latent, for the plain
 * and the conditional model; the bound tightening with K; draws that do not
 * depend on the batching. */
#include "testutil.h"

#include <math.h>

#include "model.h"
#include "rng.h"

enum { D = 12, LATENT = 2 };

/* A small model with weights large enough that the likelihood is peaked
 * and q(z|x) (an untrained encoder) is far from the true posterior; with
 * classes, a conditional one whose class means are (1.5, -1) and (-0.5, 2). */
static Vae *tiny_model_classes(int classes)
{
    VaeShape s = {.n_input = D, .n_latent = LATENT, .n_hidden = 1, .hidden = {7},
                  .n_classes = classes};
    const char *why;
    Vae *m = vae_create(&s, &why);
    assert_non_null(m);
    vae_init_params(m, 5);
    for (size_t i = 0; i < m->n_params; i++)
        m->params[i] *= 1.5f;
    if (classes == 2)
        memcpy(m->p.prior_mean, (float[4]){1.5f, -1.0f, -0.5f, 2.0f}, sizeof(float[4]));
    return m;
}

static Vae *tiny_model(void) { return tiny_model_classes(0); }

/* n binary rows from a fixed stream. */
static void binary_rows(float *x, int n)
{
    Rng r = rng_stream(77, VD_STREAM_ORDER, 3);
    for (int i = 0; i < n * D; i++)
        x[i] = rng_below(&r, 9, (uint64_t)i, 2) ? 1.0f : 0.0f;
}

/* log p(x) = log of the integral of p(x|z) N(z; mean, I) over a grid on
 * [-8, 8]^2 (midpoint rule), in double, with the model's own decoder. */
static double log_px_quadrature(const Vae *m, VaeWork *w, const float *x, const float *mean)
{
    const int G = 800;
    const double h = 16.0 / G;
    double top = -INFINITY, sum = 0.0;
    for (int a = 0; a < G; a++) {
        for (int b = 0; b < G; b += w->max_batch) {
            int c = G - b < w->max_batch ? G - b : w->max_batch;
            for (int k = 0; k < c; k++) {
                w->z[2 * k] = (float)(-8.0 + (a + 0.5) * h);
                w->z[2 * k + 1] = (float)(-8.0 + (b + k + 0.5) * h);
            }
            vae_decode_logits(m, w, w->z, c);
            for (int k = 0; k < c; k++) {
                double z0 = w->z[2 * k], z1 = w->z[2 * k + 1], lp = 0.0;
                for (int j = 0; j < D; j++) {
                    double l = w->logits[(size_t)k * D + j];
                    lp -= fmax(l, 0.0) + log1p(exp(-fabs(l))) - x[j] * l;
                }
                z0 -= mean[0];
                z1 -= mean[1];
                lp += -0.5 * (z0 * z0 + z1 * z1) - log(2.0 * M_PI) + 2.0 * log(h);
                if (lp > top) {
                    sum = sum * exp(top - lp) + 1.0;
                    top = lp;
                } else {
                    sum += exp(lp - top);
                }
            }
        }
    }
    return top + log(sum);
}

static void test_iwae_converges_to_log_px(void **state)
{
    (void)state;
    enum { N = 4 };
    Vae *m = tiny_model();
    VaeWork *w = vae_work_create(m, 512);
    float x[N * D];
    binary_rows(x, N);
    Rng rng = rng_stream(3, VD_STREAM_IWAE, 0);
    IwRow big[N], one[N];
    vae_importance(m, w, x, NULL, N, 100000, &rng, 0, big);
    vae_importance(m, w, x, NULL, N, 1, &rng, 100, one);
    for (int i = 0; i < N; i++) {
        double truth = log_px_quadrature(m, w, x + i * D, (float[2]){0, 0});
        double elbo = -(big[i].recon + big[i].kl);
        print_message("row %d: log p(x) %.4f by quadrature, %.4f IWAE K=100000, ELBO %.4f\n", i,
                      truth, big[i].log_px, elbo);
        assert_true(fabs(big[i].log_px - truth) < 0.02);
        /* the ELBO is a lower bound, here a loose one */
        assert_true(elbo < truth - 0.05);
        assert_true(isfinite(one[i].log_px));
    }
    vae_work_free(w);
    vae_free(m);
}

/* The conditional model: the estimate of log p(x | y), whose prior is
 * N(m_y, I), against quadrature with that prior, for both classes; and far
 * from the figure the other class's prior gives. */
static void test_iwae_conditional_prior(void **state)
{
    (void)state;
    enum { N = 2 };
    Vae *m = tiny_model_classes(2);
    VaeWork *w = vae_work_create(m, 512);
    float x[N * D];
    binary_rows(x, N);
    Rng rng = rng_stream(3, VD_STREAM_IWAE, 0);
    for (int32_t c = 0; c < 2; c++) {
        IwRow est[N];
        int32_t y[N] = {c, c};
        vae_importance(m, w, x, y, N, 100000, &rng, 0, est);
        for (int i = 0; i < N; i++) {
            double truth = log_px_quadrature(m, w, x + i * D, m->p.prior_mean + 2 * c);
            double other = log_px_quadrature(m, w, x + i * D, m->p.prior_mean + 2 * (1 - c));
            print_message("class %d row %d: log p(x|y) %.4f by quadrature, %.4f IWAE; other "
                          "class %.4f\n", c, i, truth, est[i].log_px, other);
            assert_true(fabs(est[i].log_px - truth) < 0.02);
            assert_true(fabs(other - truth) > 0.1);
            assert_true(-(est[i].recon + est[i].kl) < truth);
        }
    }
    vae_work_free(w);
    vae_free(m);
}

/* E[log p_K] rises with K toward log p(x) (Burda et al. 2016, Theorem 1);
 * K = 1 is an unbiased estimate of the ELBO. */
static void test_iwae_tightens_with_k(void **state)
{
    (void)state;
    enum { N = 200 };
    Vae *m = tiny_model();
    VaeWork *w = vae_work_create(m, 256);
    float *x = calloc(N * D, sizeof(float));
    binary_rows(x, N);
    Rng rng = rng_stream(4, VD_STREAM_IWAE, 0);
    IwRow *r = calloc(N, sizeof(IwRow));
    int ks[4] = {1, 10, 100, 1000};
    double mean[4], elbo = 0.0, *one = calloc(N, sizeof(double)), diff = 0.0, var = 0.0;
    for (int t = 0; t < 4; t++) {
        mean[t] = 0.0;
        for (int i = 0; i < N; i += 50)
            vae_importance(m, w, x + i * D, NULL, 50, ks[t], &rng, i, r + i);
        for (int i = 0; i < N; i++) {
            mean[t] += r[i].log_px / N;
            if (t == 0)
                one[i] = r[i].log_px;
        }
    }
    /* the ELBO per row from the K = 1000 run's mean reconstruction term */
    for (int i = 0; i < N; i++) {
        double e = -(r[i].recon + r[i].kl);
        elbo += e / N;
        diff += (one[i] - e) / N;
        var += (one[i] - e) * (one[i] - e) / N;
    }
    double se = sqrt((var - diff * diff) / (N - 1));
    print_message("mean log p_K: K=1 %.4f, 10 %.4f, 100 %.4f, 1000 %.4f; ELBO %.4f; "
                  "K=1 minus ELBO %.4f (standard error %.4f)\n",
                  mean[0], mean[1], mean[2], mean[3], elbo, diff, se);
    assert_true(fabs(diff) < 4.0 * se + 0.01);
    assert_true(mean[1] > mean[0] + 0.05);
    assert_true(mean[2] > mean[1]);
    assert_true(mean[3] > mean[2]);
    /* the same counters give the same draws: rows do not depend on batching */
    IwRow a[3], b;
    vae_importance(m, w, x, NULL, 3, 37, &rng, 0, a);
    vae_importance(m, w, x + 2 * D, NULL, 1, 37, &rng, 2, &b);
    assert_true(a[2].log_px == b.log_px && a[2].recon == b.recon);
    free(one);
    free(r);
    free(x);
    vae_work_free(w);
    vae_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_iwae_converges_to_log_px),
        cmocka_unit_test(test_iwae_conditional_prior),
        cmocka_unit_test(test_iwae_tightens_with_k),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
