/* test_model.c — the model's loss kernels and its whole gradient against
 * finite differences of a double-precision reference (the layers alone are
 * test_layers.c), the KL closed form against Monte Carlo, and the
 * reparameterization gradients. */
#include "testutil.h"

#include <math.h>

#include "model.h"
#include "rng.h"
#include "util.h"

static void fill_uniform(float *x, size_t n, uint32_t a, float lo, float hi)
{
    Rng r = rng_stream(777, VD_STREAM_INIT, 5);
    rng_uniform_fill(&r, a, 0, n, lo, hi, x);
}

static double bernoulli_ref(double a, double x) { return fmax(a, 0) + log1p(exp(-fabs(a))) - x * a; }

static void test_bernoulli_loss_and_gradient(void **state)
{
    (void)state;
    enum { B = 3, D = 9 };
    float a[B * D], x[B * D], da[B * D];
    double recon[B];
    fill_uniform(a, B * D, 8, -30, 30); /* includes saturated logits */
    fill_uniform(x, B * D, 9, 0, 1);
    bernoulli_loss(recon, da, a, x, B, D);
    for (int i = 0; i < B; i++) {
        double want = 0;
        for (int j = 0; j < D; j++) {
            double aj = a[i * D + j], xj = x[i * D + j], h = 1e-6;
            want += bernoulli_ref(aj, xj);
            double fd = (bernoulli_ref(aj + h, xj) - bernoulli_ref(aj - h, xj)) / (2 * h);
            assert_true(fabs(fd - da[i * D + j]) < 1e-5);
        }
        assert_true(rel_err(recon[i], want, 1e-6) < 1e-6);
        assert_true(isfinite(recon[i]));
    }
    /* in place: dlogits may alias logits */
    float a2[B * D];
    memcpy(a2, a, sizeof a);
    bernoulli_loss(recon, a2, a2, x, B, D);
    assert_memory_equal(a2, da, sizeof da);
}

/* The loss kernel's own exp and log (vectorizable, not libm's) over the
 * whole float range of logits, against double precision: the per-element
 * loss to 1e-6 relative (plus 1e-12 absolute) and the gradient to 1e-6. */
static void test_bernoulli_accuracy_sweep(void **state)
{
    (void)state;
    enum { N = 20001 };
    float *a = malloc(sizeof(float) * N), *x = malloc(sizeof(float) * N), *da = malloc(sizeof(float) * N);
    double worst_loss = 0, worst_grad = 0;
    for (int i = 0; i < N; i++) {
        a[i] = -100.0f + 200.0f * (float)i / (N - 1);
        x[i] = (float)(i % 3) * 0.5f;
    }
    for (int i = 0; i < N; i++) {
        double recon;
        bernoulli_loss(&recon, &da[i], &a[i], &x[i], 1, 1);
        double want = bernoulli_ref(a[i], x[i]);
        double err = fabs(recon - want) / (fabs(want) + 1e-12 / 1e-6);
        worst_loss = err > worst_loss ? err : worst_loss;
        double sig = 1.0 / (1.0 + exp(-(double)a[i]));
        double gerr = fabs(da[i] - (sig - x[i]));
        worst_grad = gerr > worst_grad ? gerr : worst_grad;
    }
    if (worst_loss >= 1e-6 || worst_grad >= 1e-6)
        print_error("worst loss error %g, gradient error %g\n", worst_loss, worst_grad);
    assert_true(worst_loss < 1e-6);
    assert_true(worst_grad < 1e-6);
    free(a);
    free(x);
    free(da);
}

/* KL closed form against a Monte Carlo estimate of E_q[log q(z) - log p(z)]:
 * this pins the log-variance convention (lv = log sigma^2). */
static void test_kl_matches_monte_carlo(void **state)
{
    (void)state;
    enum { d = 3, N = 400000 };
    float head[2 * d] = {0.5f, -1.0f, 0.0f, /* mu */ -1.5f, 0.7f, 0.0f /* logvar */};
    float eps[d], z[d];
    double kl;
    reparam_kl_forward(z, &kl, head, (float[d]){0}, NULL, NULL, 1, d);
    Rng r = rng_stream(11, VD_STREAM_NOISE, 0);
    double sum = 0, sum2 = 0;
    for (int k = 0; k < N; k++) {
        rng_normal_fill(&r, 0, (uint64_t)k * d, d, eps);
        double kl_k;
        reparam_kl_forward(z, &kl_k, head, eps, NULL, NULL, 1, d);
        double lq = 0, lp = 0;
        for (int j = 0; j < d; j++) {
            double lv = head[d + j];
            lq += -0.5 * (log(2 * M_PI) + lv + (double)eps[j] * eps[j]);
            lp += -0.5 * (log(2 * M_PI) + (double)z[j] * z[j]);
        }
        sum += lq - lp;
        sum2 += (lq - lp) * (lq - lp);
    }
    double mean = sum / N, se = sqrt((sum2 / N - mean * mean) / N);
    assert_true(fabs(mean - kl) < 4 * se);
    /* the log(sigma) reading of lv would give a KL off by far more than that */
    double wrong = 0;
    for (int j = 0; j < d; j++) {
        double s = exp(head[d + j]);
        wrong += -log(s) + 0.5 * (s * s + head[j] * head[j]) - 0.5;
    }
    assert_true(fabs(wrong - kl) > 10 * se);
}

/* The conditional model's KL to N(m_y, I) against a Monte Carlo estimate
 * of E_q[log q(z) - log N(z; m_y, I)]; the KL to N(0, I) is far off. */
static void test_kl_class_mean_monte_carlo(void **state)
{
    (void)state;
    enum { d = 3, N = 400000 };
    float head[2 * d] = {0.5f, -1.0f, 0.0f, -1.5f, 0.7f, 0.0f};
    float means[2 * d] = {9, 9, 9, /* class 1: */ 1.0f, -0.5f, 0.8f}, eps[d], z[d];
    int32_t y = 1;
    double kl, kl0;
    reparam_kl_forward(z, &kl, head, (float[d]){0}, means, &y, 1, d);
    reparam_kl_forward(z, &kl0, head, (float[d]){0}, NULL, NULL, 1, d);
    Rng r = rng_stream(12, VD_STREAM_NOISE, 0);
    double sum = 0, sum2 = 0;
    for (int k = 0; k < N; k++) {
        rng_normal_fill(&r, 0, (uint64_t)k * d, d, eps);
        double kl_k, lq = 0, lp = 0;
        reparam_kl_forward(z, &kl_k, head, eps, means, &y, 1, d);
        for (int j = 0; j < d; j++) {
            double c = z[j] - means[d + j];
            lq += -0.5 * (log(2 * M_PI) + head[d + j] + (double)eps[j] * eps[j]);
            lp += -0.5 * (log(2 * M_PI) + c * c);
        }
        sum += lq - lp;
        sum2 += (lq - lp) * (lq - lp);
    }
    double mean = sum / N, se = sqrt((sum2 / N - mean * mean) / N);
    assert_true(fabs(mean - kl) < 4 * se);
    assert_true(fabs(mean - kl0) > 10 * se);
}

/* dL/dmu and dL/dlv through z = mu + exp(lv/2) eps, with L = sum(r z) + beta KL. */
static void test_reparam_gradients(void **state)
{
    (void)state;
    enum { B = 2, d = 4 };
    float head[B * 2 * d], eps[B * d], r[B * d], dhead[B * 2 * d];
    fill_uniform(head, B * 2 * d, 12, -1, 1);
    fill_uniform(eps, B * d, 13, -2, 2);
    fill_uniform(r, B * d, 14, -1, 1);
    const double beta = 0.7, h = 1e-6;
    reparam_kl_backward(dhead, NULL, r, head, eps, NULL, NULL, (float)beta, B, d);
    for (int i = 0; i < B; i++)
        for (int j = 0; j < d; j++) {
            double mu = head[i * 2 * d + j], lv = head[i * 2 * d + d + j], e = eps[i * d + j],
                   rj = r[i * d + j];
#define L(m, v) (rj * ((m) + exp(0.5 * (v)) * e) + beta * 0.5 * ((m) * (m) + exp(v) - (v) - 1))
            double gmu = (L(mu + h, lv) - L(mu - h, lv)) / (2 * h);
            double glv = (L(mu, lv + h) - L(mu, lv - h)) / (2 * h);
#undef L
            assert_true(rel_err(gmu, dhead[i * 2 * d + j], 1e-4) < 1e-4);
            assert_true(rel_err(glv, dhead[i * 2 * d + d + j], 1e-4) < 1e-4);
        }
}

/* The whole model: analytic float gradients of every parameter against
 * central differences of the double-precision reference loss, per tensor,
 * plus a directional check along a random vector. */
static void check_model(const VaeShape *shape, int n, float beta)
{
    const char *why = NULL;
    Vae *m = vae_create(shape, &why);
    assert_non_null(m);
    vae_init_params(m, 2024);
    int D = shape->n_input, d = shape->n_latent, C = shape->n_classes;
    VaeWork *w = vae_work_create(m, n);
    fill_uniform(w->x, (size_t)n * D, 20, 0, 1);
    Rng r = rng_stream(99, VD_STREAM_NOISE, 0);
    rng_normal_fill(&r, 0, 0, (size_t)n * d, w->eps);
    int32_t *y = C > 0 ? w->y : NULL;
    for (int i = 0; y && i < n; i++)
        y[i] = (i * 7 + 3) % C; /* several rows share a class: gradients accumulate */
    if (C > 0) /* away from their zero init, so (mu - m_y) is not just mu */
        fill_uniform(m->p.prior_mean, (size_t)C * d, 22, -1, 1);

    for (size_t i = 0; i < m->n_params; i++) /* backward must write every gradient */
        m->grads[i] = NAN;
    double loss = vae_forward(m, w, n, beta, 1);
    vae_backward(m, w, n, beta);

    double *p = malloc(sizeof(double) * m->n_params), *x = malloc(sizeof(double) * n * D),
           *e = malloc(sizeof(double) * n * d);
    for (size_t i = 0; i < m->n_params; i++) p[i] = m->params[i];
    for (int i = 0; i < n * D; i++) x[i] = w->x[i];
    for (int i = 0; i < n * d; i++) e[i] = w->eps[i];
    double ref = vae_loss_ref(m, p, x, e, y, n, beta, NULL, NULL);
    assert_true(rel_err(loss, ref, 1e-6) < 1e-5); /* float forward = double forward */

    const double h = 1e-5;
    for (int t = 0; t < m->n_tensors; t++) {
        const VaeTensor *ten = &m->tensors[t];
        size_t len = (size_t)ten->rows * (ten->cols ? ten->cols : 1);
        double worst = 0;
        for (size_t k = 0; k < len; k++) {
            size_t i = ten->offset + k;
            double keep = p[i];
            p[i] = keep + h;
            double lp = vae_loss_ref(m, p, x, e, y, n, beta, NULL, NULL);
            p[i] = keep - h;
            double lm = vae_loss_ref(m, p, x, e, y, n, beta, NULL, NULL);
            p[i] = keep;
            double err = rel_err((lp - lm) / (2 * h), m->grads[i], 1e-2);
            worst = err > worst ? err : worst;
        }
        if (worst >= 2e-3)
            print_error("%s: worst relative error %g\n", ten->name, worst);
        assert_true(worst < 2e-3);
    }
    /* directional derivative along a random unit-scale direction */
    float *v = malloc(sizeof(float) * m->n_params);
    fill_uniform(v, m->n_params, 21, -1, 1);
    double analytic = 0;
    double *pp = malloc(sizeof(double) * m->n_params), *pm = malloc(sizeof(double) * m->n_params);
    for (size_t i = 0; i < m->n_params; i++) {
        analytic += (double)v[i] * m->grads[i];
        pp[i] = p[i] + h * v[i];
        pm[i] = p[i] - h * v[i];
    }
    double numeric = (vae_loss_ref(m, pp, x, e, y, n, beta, NULL, NULL) -
                      vae_loss_ref(m, pm, x, e, y, n, beta, NULL, NULL)) / (2 * h);
    assert_true(rel_err(numeric, analytic, 1e-3) < 1e-3);

    free(v); free(pp); free(pm); free(p); free(x); free(e);
    vae_work_free(w);
    vae_free(m);
}

static void test_gradcheck_one_hidden_layer(void **state)
{
    (void)state;
    VaeShape s = {.n_input = 16, .n_latent = 3, .n_hidden = 1, .hidden = {10}};
    check_model(&s, 5, 1.0f);
}

static void test_gradcheck_two_hidden_layers(void **state)
{
    (void)state;
    VaeShape s = {.n_input = 12, .n_latent = 5, .n_hidden = 2, .hidden = {9, 6}};
    check_model(&s, 4, 1.0f);
}

static void test_gradcheck_tanh_and_beta(void **state)
{
    (void)state;
    VaeShape s = {.n_input = 12, .n_latent = 3, .n_hidden = 2, .hidden = {9, 6},
                  .activation = VD_ACT_TANH};
    check_model(&s, 4, 0.3f);
}

static void test_gradcheck_gaussian_fixed_variance(void **state)
{
    (void)state;
    VaeShape s = {.n_input = 10, .n_latent = 3, .n_hidden = 1, .hidden = {8},
                  .likelihood = VD_LIK_GAUSSIAN, .obs_logvar = -1.5f};
    check_model(&s, 4, 1.0f);
}

/* The learned log s^2 is a parameter like any other: its gradient is
 * checked with the rest, here away from its init at 0. */
static void test_gradcheck_gaussian_learned_variance(void **state)
{
    (void)state;
    VaeShape s = {.n_input = 10, .n_latent = 3, .n_hidden = 1, .hidden = {8},
                  .likelihood = VD_LIK_GAUSSIAN, .learn_var = 1, .obs_logvar = -0.7f};
    check_model(&s, 4, 1.0f);
}

/* Conditional VAE: the class means' gradients -beta (mu - m_y), summed over
 * the rows of each class, against finite differences. */
static void test_gradcheck_conditional(void **state)
{
    (void)state;
    VaeShape s = {.n_input = 12, .n_latent = 4, .n_hidden = 1, .hidden = {7}, .n_classes = 3};
    check_model(&s, 6, 0.8f);
}

/* The convolutional model, tensor by tensor: two convolutions (8x8 -> 4x4
 * -> 2x2), a dense layer, the heads, and the mirrored decoder's dense
 * layers and transposed convolutions. */
static void test_gradcheck_conv(void **state)
{
    (void)state;
    VaeShape s = {.n_input = 64, .n_latent = 3, .n_hidden = 1, .hidden = {6}, .n_conv = 2,
                  .conv = {3, 4}, .in_c = 1, .in_h = 8, .in_w = 8};
    check_model(&s, 3, 1.0f);
}

/* Three channels, tanh, a conditional Gaussian with learned variance. */
static void test_gradcheck_conv_conditional_gaussian(void **state)
{
    (void)state;
    VaeShape s = {.n_input = 48, .n_latent = 2, .n_hidden = 2, .hidden = {5, 4}, .n_conv = 1,
                  .conv = {2}, .in_c = 3, .in_h = 4, .in_w = 4, .activation = VD_ACT_TANH,
                  .likelihood = VD_LIK_GAUSSIAN, .learn_var = 1, .obs_logvar = -0.4f,
                  .n_classes = 3};
    check_model(&s, 4, 0.7f);
}

/* The convolutional VAE of the benchmark: its layers and parameter count,
 * as PyTorch counts them (1,691,369). */
static void test_conv_layout(void **state)
{
    (void)state;
    VaeShape s = {.n_input = 784, .n_latent = 20, .n_hidden = 1, .hidden = {256}, .n_conv = 2,
                  .conv = {32, 64}, .in_c = 1, .in_h = 28, .in_w = 28};
    const char *why = NULL;
    Vae *m = vae_create(&s, &why);
    assert_non_null(m);
    assert_int_equal(m->n_params, 1691369);
    assert_true(vae_shape_params(&s) == 1691369.0);
    assert_int_equal(m->n_layers, 8);
    const char *kinds[8] = {"conv", "conv", "dense", "heads", "dense", "dense", "tconv", "tconv"};
    for (int i = 0; i < 8; i++)
        assert_string_equal(m->layers[i].kind->name, kinds[i]);
    assert_true(m->layers[5].out_c == 64 && m->layers[5].out_h == 7 && m->layers[5].out_w == 7);
    assert_true(m->layers[7].out_c == 1 && m->layers[7].out_h == 28 && m->layers[7].act == VD_ACT_NONE);
    const VaeTensor *t = vae_tensor(m, "encoder.1.weight");
    assert_non_null(t);
    assert_true(t->n_dims == 4 && t->dims[0] == 64 && t->dims[1] == 4 && t->dims[3] == 32);
    assert_non_null(vae_tensor(m, "decoder.3.weight")); /* the last transposed convolution */
    char text[160];
    vae_shape_text(&s, text, sizeof text);
    assert_string_equal(text, "28x28x1-conv32-conv64-256-20");
    /* a third halving of 28 (7 -> 3.5) is refused */
    VaeShape odd = s;
    odd.n_conv = 3;
    odd.conv[2] = 128;
    assert_null(vae_create(&odd, &why));
    assert_non_null(strstr(why, "even"));
    vae_free(m);
}

/* The Gaussian term and its gradient against the formula, in double. */
static void test_gaussian_loss_formula(void **state)
{
    (void)state;
    enum { D = 1000 };
    float *a = malloc(sizeof(float) * D), *x = malloc(sizeof(float) * D);
    float *da = malloc(sizeof(float) * D);
    fill_uniform(a, D, 40, -0.5f, 1.5f);
    fill_uniform(x, D, 41, 0, 1);
    const float lv = -2.0f;
    double recon, want = 0;
    gaussian_loss(&recon, da, a, x, lv, 1, D);
    for (int j = 0; j < D; j++) {
        double r = (double)a[j] - x[j];
        want += r * r / (2 * exp((double)lv)) + 0.5 * (log(2 * M_PI) + lv);
        assert_true(rel_err(da[j], r / exp((double)lv), 1e-6) < 1e-5);
    }
    assert_true(rel_err(recon, want, 1e-6) < 1e-6);
    /* at a == x only the normalizer is left */
    gaussian_loss(&recon, NULL, x, x, lv, 1, D);
    assert_true(rel_err(recon, 0.5 * D * (log(2 * M_PI) + lv), 1e-9) < 1e-9);
    free(a);
    free(x);
    free(da);
}

/* Tensors the options add, and what the shape text says. */
static void test_options_layout(void **state)
{
    (void)state;
    VaeShape s = {.n_input = 20, .n_latent = 2, .n_hidden = 1, .hidden = {5},
                  .likelihood = VD_LIK_GAUSSIAN, .learn_var = 1, .obs_logvar = 0.5f,
                  .n_classes = 10, .activation = VD_ACT_TANH};
    const char *why = NULL;
    Vae *m = vae_create(&s, &why);
    assert_non_null(m);
    const VaeTensor *pm = vae_tensor(m, "prior.mean"), *lv = vae_tensor(m, "likelihood.logvar");
    assert_non_null(pm);
    assert_non_null(lv);
    assert_int_equal(pm->rows, 10);
    assert_int_equal(pm->cols, 2);
    assert_int_equal(lv->offset, m->n_params - 1); /* last: its gradient is ready first */
    assert_ptr_equal(m->p.prior_mean, m->params + pm->offset);
    vae_init_params(m, 3);
    for (int i = 0; i < 20; i++)
        assert_true(m->p.prior_mean[i] == 0.0f);
    assert_true(vae_obs_logvar(m) == 0.5f);
    char text[160];
    vae_shape_text(&s, text, sizeof text);
    assert_string_equal(text, "20-5-2, tanh, gaussian learned s^2, 10 classes");
    VaeShape t = s;
    assert_true(vae_shape_equal(&s, &t));
    t.n_classes = 9;
    assert_false(vae_shape_equal(&s, &t));
    t = s;
    t.learn_var = 0;
    assert_false(vae_shape_equal(&s, &t));
    vae_free(m);
    VaeShape plain = {.n_input = 20, .n_latent = 2, .n_hidden = 1, .hidden = {5}};
    m = vae_create(&plain, &why);
    assert_null(vae_tensor(m, "prior.mean"));
    assert_null(m->p.obs_logvar);
    vae_free(m);
}

/* A wrong gradient must be caught: the check is not vacuous. */
static void test_gradcheck_detects_a_wrong_gradient(void **state)
{
    (void)state;
    VaeShape s = {.n_input = 8, .n_latent = 2, .n_hidden = 1, .hidden = {6}};
    const char *why;
    Vae *m = vae_create(&s, &why);
    vae_init_params(m, 5);
    VaeWork *w = vae_work_create(m, 2);
    fill_uniform(w->x, 16, 30, 0, 1);
    memset(m->grads, 0, sizeof(float) * m->n_params);
    vae_forward(m, w, 2, 1.0f, 1);
    vae_backward(m, w, 2, 1.0f);
    double p[512], x[16], e[4] = {0};
    assert_true(m->n_params < 512);
    for (size_t i = 0; i < m->n_params; i++) p[i] = m->params[i];
    for (int i = 0; i < 16; i++) x[i] = w->x[i];
    /* grads computed with eps = 0 rows (work buffers start zeroed) */
    size_t i = vae_tensor(m, "decoder.1.bias")->offset;
    double h = 1e-5, keep = p[i];
    p[i] = keep + h;
    double lp = vae_loss_ref(m, p, x, e, NULL, 2, 1.0, NULL, NULL);
    p[i] = keep - h;
    double lm = vae_loss_ref(m, p, x, e, NULL, 2, 1.0, NULL, NULL);
    double fd = (lp - lm) / (2 * h);
    assert_true(rel_err(fd, m->grads[i], 1e-2) < 2e-3);
    assert_true(rel_err(fd, m->grads[i] * 1.01, 1e-2) > 2e-3);
    vae_work_free(w);
    vae_free(m);
}

static void test_layout_and_init(void **state)
{
    (void)state;
    VaeShape s = {.n_input = 784, .n_latent = 20, .n_hidden = 1, .hidden = {400}};
    const char *why = NULL;
    Vae *m = vae_create(&s, &why);
    /* 784*400+400 + 2*(400*20+20) + 20*400+400 + 400*784+784 */
    assert_int_equal(m->n_params, 652824);
    const VaeTensor *t = vae_tensor(m, "logvar.weight");
    assert_non_null(t);
    assert_int_equal(t->rows, 20);
    assert_int_equal(t->cols, 400);
    assert_ptr_equal(vae_layer_params(m, m->params, &m->layers[m->head]).w + 20 * 400,
                     m->params + t->offset);
    vae_init_params(m, 1);
    float bound = 1.0f / sqrtf(784.0f);
    const VaeTensor *e0 = vae_tensor(m, "encoder.0.bias");
    for (int i = 0; i < 400; i++)
        assert_true(fabsf(m->params[e0->offset + i]) <= bound);
    Vae *m2 = vae_create(&s, &why);
    vae_init_params(m2, 1);
    assert_memory_equal(m->params, m2->params, sizeof(float) * m->n_params);
    vae_init_params(m2, 2);
    assert_memory_not_equal(m->params, m2->params, sizeof(float) * m->n_params);
    vae_free(m);
    vae_free(m2);
    VaeShape bad = {.n_input = 10, .n_latent = 2, .n_hidden = 0};
    assert_null(vae_create(&bad, &why));
    assert_non_null(why);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout_and_init),
        cmocka_unit_test(test_bernoulli_loss_and_gradient),
        cmocka_unit_test(test_bernoulli_accuracy_sweep),
        cmocka_unit_test(test_kl_matches_monte_carlo),
        cmocka_unit_test(test_kl_class_mean_monte_carlo),
        cmocka_unit_test(test_reparam_gradients),
        cmocka_unit_test(test_gradcheck_one_hidden_layer),
        cmocka_unit_test(test_gradcheck_two_hidden_layers),
        cmocka_unit_test(test_gradcheck_detects_a_wrong_gradient),
        cmocka_unit_test(test_gradcheck_tanh_and_beta),
        cmocka_unit_test(test_gradcheck_gaussian_fixed_variance),
        cmocka_unit_test(test_gradcheck_gaussian_learned_variance),
        cmocka_unit_test(test_gradcheck_conditional),
        cmocka_unit_test(test_gradcheck_conv),
        cmocka_unit_test(test_gradcheck_conv_conditional_gaussian),
        cmocka_unit_test(test_conv_layout),
        cmocka_unit_test(test_gaussian_loss_formula),
        cmocka_unit_test(test_options_layout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
