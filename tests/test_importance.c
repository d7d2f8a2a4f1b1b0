/* test_importance.c — the importance-weighted estimate (vae_importance)
 * against log p(x) computed by quadrature over a 2-D latent, for the plain
 * and the conditional model, and over (z1, z2) for a two-layer model with
 * a standard and a VampPrior top; the bound tightening with K, on an
 * untrained model and on a trained two-layer one; draws that do not depend
 * on the batching. */
#include "testutil.h"

#include <math.h>

#include "model.h"
#include "modelutil.h"
#include "optim.h"
#include "rng.h"

enum { D = 12, LATENT = 2 };

/* A small model with weights large enough that the likelihood is peaked
 * and q(z|x) (an untrained encoder) is far from the true posterior; with
 * classes, a conditional one whose class means are (1.5, -1) and (-0.5, 2). */
static Vae *tiny_model_classes(int classes)
{
    char c[16];
    snprintf(c, sizeof c, "%d", classes);
    VaeShape s = test_shape(D, "hidden", "7", "latent", "2", "classes", c, NULL);
    const char *why;
    Vae *m = vae_create(&s, 0, &why);
    assert_non_null(m);
    vae_init_params(m, 5);
    for (size_t i = 0; i < m->n_params; i++)
        m->params[i] *= 1.5f;
    if (classes == 2)
        memcpy(vae_view(m, m->params, m->prior.t_mean), (float[4]){1.5f, -1.0f, -0.5f, 2.0f},
               sizeof(float[4]));
    return m;
}

static const float *class_means(const Vae *m) { return vae_view(m, m->params, m->prior.t_mean); }

static Vae *tiny_model(void) { return tiny_model_classes(0); }

/* n binary rows from a fixed generator. */
static void binary_rows(float *x, int n)
{
    Rng r = rng_for(77, VD_RNG_ORDER, 3);
    for (int i = 0; i < n * D; i++)
        x[i] = rng_below(&r, 9, (uint64_t)i, 2) ? 1.0f : 0.0f;
}

/* Adds v to the running log-sum-exp (top, sum): sum holds sum exp(v - top). */
static void lse_add(double *top, double *sum, double v)
{
    if (v > *top) {
        *sum = *sum * exp(*top - v) + 1.0;
        *top = v;
    } else {
        *sum += exp(v - *top);
    }
}

/* log p(x) = log of the integral of p(x|z) N(z; mean, I) over a grid on
 * [-8, 8]^2 (midpoint rule), in double, with the model's own decoder. */
static double log_px_quadrature(const Vae *m, VaeWork *w, const float *x, const float *mean)
{
    const int G = 800;
    const double h = 16.0 / G;
    double top = -INFINITY, sum = 0.0;
    for (int a = 0; a < G; a++) {
        for (int b = 0; b < G; b += w->max_rows) {
            int c = G - b < w->max_rows ? G - b : w->max_rows;
            float z[2 * 512];
            for (int k = 0; k < c; k++) {
                z[2 * k] = (float)(-8.0 + (a + 0.5) * h);
                z[2 * k + 1] = (float)(-8.0 + (b + k + 0.5) * h);
            }
            vae_generate(m, w, z, NULL, c, NULL, NULL);
            for (int k = 0; k < c; k++) {
                double z0 = z[2 * k], z1 = z[2 * k + 1], lp = 0.0;
                for (int j = 0; j < D; j++) {
                    double l = vae_outputs(m, w)[(size_t)k * D + j];
                    lp -= fmax(l, 0.0) + log1p(exp(-fabs(l))) - x[j] * l;
                }
                z0 -= mean[0];
                z1 -= mean[1];
                lp += -0.5 * (z0 * z0 + z1 * z1) - log(2.0 * M_PI) + 2.0 * log(h);
                lse_add(&top, &sum, lp);
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
    Rng rng = rng_for(3, VD_RNG_IWAE, 0);
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
    Rng rng = rng_for(3, VD_RNG_IWAE, 0);
    for (int32_t c = 0; c < 2; c++) {
        IwRow est[N];
        int32_t y[N] = {c, c};
        vae_importance(m, w, x, y, N, 100000, &rng, 0, est);
        for (int i = 0; i < N; i++) {
            double truth = log_px_quadrature(m, w, x + i * D, class_means(m) + 2 * c);
            double other = log_px_quadrature(m, w, x + i * D, class_means(m) + 2 * (1 - c));
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
    Rng rng = rng_for(4, VD_RNG_IWAE, 0);
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

/* A two-layer model with one dimension per layer, so that log p(x) is a
 * 2-D integral over (z1, z2); with vamp, a VampPrior of 3 pseudo-inputs. */
static Vae *two_level_model(int vamp)
{
    VaeShape s = test_shape(D, "hidden", "6", "latent", "1,1", "activation", "tanh", "prior",
                            vamp ? "vamp" : "standard", "pseudo-inputs", "3", NULL);
    const char *why;
    Vae *m = vae_create(&s, 0, &why);
    assert_non_null(m);
    vae_init_params(m, 6); /* as it starts: a proposal close enough for K = 200000 */
    if (vamp) { /* pseudo-inputs spread over [0, 1] */
        float *a = vae_view(m, m->params, m->prior.t_pseudo);
        for (int i = 0; i < 3 * D; i++)
            a[i] = (float)((i * 7) % 10) / 10.0f;
    }
    return m;
}

static double log_normal1(double z, double mu, double lv)
{
    return -0.5 * (log(2.0 * M_PI) + lv + (z - mu) * (z - mu) * exp(-lv));
}

/* log p(z2) of the top prior, in double: N(0, 1), or the VampPrior's
 * mixture of its pseudo-inputs' posteriors (from the model's own pass of
 * them, which vae_importance left in w->mix_comp). */
static double log_prior1(const Vae *m, VaeWork *w, double z)
{
    if (m->prior.K == 0)
        return log_normal1(z, 0.0, 0.0);
    const float *c = w->mix_comp;
    double sum = 0.0;
    for (int k = 0; k < m->prior.K; k++)
        sum += exp(log_normal1(z, c[2 * k], c[2 * k + 1]));
    return log(sum / m->prior.K);
}

/* log p(x) = log of the integral of p(x | z1, z2) p(z1 | z2) p(z2) over a
 * grid (midpoint rule), with the model's own generative path. */
static double log_px_two_levels(const Vae *m, VaeWork *w, const float *x)
{
    const int G = 600;
    const double lo = -10.0, h = 20.0 / G;
    double top = -INFINITY, sum = 0.0;
    static float z2[512], eps[2 * 512];
    float zero[2] = {0, 0};
    for (int a = 0; a < G; a++) {
        double za = lo + (a + 0.5) * h, lp2 = log_prior1(m, w, za);
        z2[0] = (float)za;
        vae_generate(m, w, z2, zero, 1, NULL, NULL); /* p(z1 | z2)'s heads */
        const float *ph = w->data.out[m->levels[0].p];
        double mu = ph[0], lv = ph[1];
        for (int b = 0; b < G; b += 512) {
            int c = G - b < 512 ? G - b : 512;
            for (int k = 0; k < c; k++) {
                double zb = lo + (b + k + 0.5) * h;
                z2[k] = (float)za;
                eps[2 * k] = (float)((zb - mu) / exp(0.5 * lv)); /* z1 = zb */
                eps[2 * k + 1] = 0.0f;
            }
            vae_generate(m, w, z2, eps, c, NULL, NULL);
            for (int k = 0; k < c; k++) {
                double z1 = w->data.out[m->levels[0].z][k], lp = lp2 + log_normal1(z1, mu, lv);
                for (int j = 0; j < D; j++) {
                    double l = vae_outputs(m, w)[(size_t)k * D + j];
                    lp -= fmax(l, 0.0) + log1p(exp(-fabs(l))) - x[j] * l;
                }
                lse_add(&top, &sum, lp + 2.0 * log(h));
            }
        }
    }
    return top + log(sum);
}

/* Two stochastic layers: the estimate sums every layer's log-densities
 * (the lower one's conditional prior, the top's standard or VampPrior),
 * and converges to log p(x) by quadrature over (z1, z2). */
static void test_iwae_two_levels_converges(void **state)
{
    (void)state;
    enum { N = 3 };
    for (int vamp = 0; vamp < 2; vamp++) {
        Vae *m = two_level_model(vamp);
        VaeWork *w = vae_work_create(m, 512);
        float x[N * D];
        binary_rows(x, N);
        Rng rng = rng_for(5, VD_RNG_IWAE, 0);
        IwRow est[N];
        vae_importance(m, w, x, NULL, N, 200000, &rng, 0, est);
        for (int i = 0; i < N; i++) {
            double truth = log_px_two_levels(m, w, x + i * D);
            print_message("%s row %d: log p(x) %.4f by quadrature, %.4f IWAE K=200000, ELBO %.4f\n",
                          vamp ? "vamp" : "standard", i, truth, est[i].log_px,
                          -(est[i].recon + est[i].kl));
            assert_true(fabs(est[i].log_px - truth) < 0.03);
            assert_true(-(est[i].recon + est[i].kl) < truth - 0.01);
        }
        vae_work_free(w);
        vae_free(m);
    }
}

/* On a two-layer model trained a little (Adam on the ELBO), the estimate's
 * mean rises with K. */
static void test_iwae_rises_with_k_trained(void **state)
{
    (void)state;
    enum { N = 64 };
    VaeShape s = test_shape(D, "hidden", "10", "latent", "2,2", "activation", "gated", NULL);
    const char *why;
    Vae *m = vae_create(&s, 0, &why);
    vae_init_params(m, 3);
    VaeWork *w = vae_work_create(m, 256);
    float *x = calloc(N * D, sizeof(float));
    binary_rows(x, N);
    AdamConfig adam = {3e-3f, 0.9f, 0.999f, 1e-8f, 0.0f};
    Objective elbo = vae_elbo(1.0f);
    Rng noise = rng_for(9, VD_RNG_NOISE, 0);
    double first = 0, last = 0;
    for (int t = 1; t <= 600; t++) {
        memcpy(w->x, x, sizeof(float) * N * D);
        rng_normal_fill(&noise, (uint32_t)t, 0, (size_t)N * m->d_total, w->eps);
        vae_zero_grads(m);
        double loss = vae_forward(m, w, N, &elbo, 1) / N;
        vae_backward(m, w, &elbo, NULL, NULL);
        adam_step(&adam, t, m->n_params, m->params, m->grads, m->adam_m, m->adam_v, 1.0f / N);
        first = t == 1 ? loss : first;
        last = loss;
    }
    print_message("training loss %.3f -> %.3f\n", first, last);
    assert_true(last < first - 1.0);
    Rng rng = rng_for(8, VD_RNG_IWAE, 0);
    IwRow *r = calloc(N, sizeof(IwRow));
    int ks[4] = {1, 10, 100, 1000};
    double mean[4];
    for (int t = 0; t < 4; t++) {
        vae_importance(m, w, x, NULL, N, ks[t], &rng, 0, r);
        mean[t] = 0;
        for (int i = 0; i < N; i++)
            mean[t] += r[i].log_px / N;
    }
    print_message("trained two-layer model: mean log p_K: K=1 %.4f, 10 %.4f, 100 %.4f, 1000 %.4f\n",
                  mean[0], mean[1], mean[2], mean[3]);
    assert_true(mean[1] > mean[0] + 0.01);
    assert_true(mean[2] > mean[1]);
    assert_true(mean[3] > mean[2] - 0.01); /* within the noise of 64 rows */
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
        cmocka_unit_test(test_iwae_two_levels_converges),
        cmocka_unit_test(test_iwae_rises_with_k_trained),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
