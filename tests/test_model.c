/* test_model.c — the model's loss kernels and its whole gradient against
 * finite differences of the double-precision reference (the layers alone
 * are test_layers.c), for every kind of block, one to three stochastic
 * layers, each prior and each objective; the KL terms against Monte Carlo;
 * the layout of the graphs the options build; and backward's contract
 * (gradients added, the hook's offsets final). */
#include "testutil.h"

#include <math.h>

#include "model.h"
#include "modelutil.h"
#include "rng.h"
#include "util.h"

static void fill_uniform(float *x, size_t n, uint32_t a, float lo, float hi)
{
    Rng r = rng_for(777, VD_RNG_INIT, 5);
    rng_uniform_fill(&r, a, 0, n, lo, hi, x);
}

static double bernoulli_ref(double a, double x) { return fmax(a, 0) + log1p(exp(-fabs(a))) - x * a; }

static void check_model_obj(const VaeShape *shape, int n, const Objective *obj,
                            void (*tweak)(Vae *));

static void test_bernoulli_loss_and_gradient(void **state)
{
    (void)state;
    enum { B = 3, D = 9 };
    float a[B * D], x[B * D], da[B * D];
    double recon[B];
    fill_uniform(a, B * D, 8, -30, 30); /* includes saturated logits */
    fill_uniform(x, B * D, 9, 0, 1);
    bernoulli_loss(recon, da, a, x, B, 1, D);
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
    bernoulli_loss(recon, a2, a2, x, B, 1, D);
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
        bernoulli_loss(&recon, &da[i], &a[i], &x[i], 1, 1, 1);
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

/* The discretized logistic: its 256 bins' masses sum to one; each bin's
 * -log P against the logistic's CDF difference in long double; its
 * derivatives wrt the mean and the log-scale against central differences,
 * in the middle and far in the tails (a mass far below any float). */
static void test_logistic_bins(void **state)
{
    (void)state;
    const double mus[] = {0.5, 0.0, 1.0, 0.37, -0.4, 1.6}, lss[] = {-2.0, -5.5, 0.3, -6.9};
    double worst_g = 0, worst_v = 0;
    for (int a = 0; a < 6; a++)
        for (int b = 0; b < 4; b++) {
            double total = 0;
            for (int k = 0; k < 256; k++) {
                double x = k / 255.0, gm, gs, hp, hm, h = 1e-6;
                double nll = logistic_bin(x, mus[a], lss[b], &gm, &gs);
                total += exp(-nll);
                long double s = expl((long double)lss[b]);
                long double up = k == 255 ? 1.0L : 1.0L / (1.0L + expl(-((k + 0.5L) / 255 - mus[a]) / s));
                long double lo = k == 0 ? 0.0L : 1.0L / (1.0L + expl(-((k - 0.5L) / 255 - mus[a]) / s));
                if (up - lo > 1e-12L)
                    worst_v = fmax(worst_v, fabs(nll + (double)logl(up - lo)) / (1 + fabs(nll)));
                double fd_m = (logistic_bin(x, mus[a] + h, lss[b], &hp, &hm) -
                               logistic_bin(x, mus[a] - h, lss[b], &hp, &hm)) / (2 * h);
                double fd_s = (logistic_bin(x, mus[a], lss[b] + h, &hp, &hm) -
                               logistic_bin(x, mus[a], lss[b] - h, &hp, &hm)) / (2 * h);
                worst_g = fmax(worst_g, rel_err(fd_m, gm, 1.0));
                worst_g = fmax(worst_g, rel_err(fd_s, gs, 1.0));
                assert_true(isfinite(nll) && isfinite(gm) && isfinite(gs));
            }
            if (fabs(total - 1.0) > 1e-9)
                print_error("mu %g ls %g: the bins sum to %.12f\n", mus[a], lss[b], total);
            assert_true(fabs(total - 1.0) < 1e-9);
        }
    print_message("logistic: worst value error %g, worst gradient error %g\n", worst_v, worst_g);
    assert_true(worst_v < 1e-8);
    assert_true(worst_g < 1e-5);
    /* a value between levels is read as the nearest level */
    double g1, g2, s1, s2;
    assert_true(logistic_bin(100.4 / 255.0, 0.3, -3, &g1, &s1) ==
                logistic_bin(100.0 / 255.0, 0.3, -3, &g2, &s2));
}

/* The logistic likelihood in the whole model: an MLP (one channel) and a
 * convolutional model of 3 channels, each channel's log-scale learned; one
 * held at the floor, whose gradient is then 0. */
static void set_logscales(Vae *m)
{
    float *ls = vae_view(m, m->params, m->t_logscale);
    for (int c = 0; c < m->lik_channels; c++)
        ls[c] = c == 1 ? -8.0f : -1.5f + 0.3f * (float)c;
}

static void test_gradcheck_logistic(void **state)
{
    (void)state;
    Objective elbo = vae_elbo(0.9f);
    VaeShape s = test_shape(12, "hidden", "8", "latent", "3", "likelihood", "logistic", NULL);
    check_model_obj(&s, 4, &elbo, set_logscales);
    VaeShape c = test_shape(48, "hidden", "6", "latent", "2", "conv", "3", "likelihood", "logistic",
                            NULL);
    c.in_c = 3;
    c.in_h = c.in_w = 4;
    check_model_obj(&c, 3, &elbo, set_logscales);
    Objective iw = {VD_OBJ_IWAE, 3, 1.0f, 0};
    check_model_obj(&c, 2, &iw, set_logscales);
    const char *why;
    Vae *m = vae_create(&c, 0, &why);
    const VaeTensor *t = vae_tensor(m, "likelihood.logscale");
    assert_non_null(t);
    assert_int_equal(t->rows, 3);
    assert_int_equal(t->offset, m->n_params - 3);
    char text[160];
    vae_shape_text(&c, text, sizeof text);
    assert_string_equal(text, "4x4x3-conv3-6-2, logistic");
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
    gaussian_loss(&recon, da, a, x, lv, 1, 1, D);
    for (int j = 0; j < D; j++) {
        double r = (double)a[j] - x[j];
        want += r * r / (2 * exp((double)lv)) + 0.5 * (log(2 * M_PI) + lv);
        assert_true(rel_err(da[j], r / exp((double)lv), 1e-6) < 1e-5);
    }
    assert_true(rel_err(recon, want, 1e-6) < 1e-6);
    /* at a == x only the normalizer is left */
    gaussian_loss(&recon, NULL, x, x, lv, 1, 1, D);
    assert_true(rel_err(recon, 0.5 * D * (log(2 * M_PI) + lv), 1e-9) < 1e-9);
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
    float mu[d] = {0.5f, -1.0f, 0.0f}, lv[d] = {-1.5f, 0.7f, 0.0f}, eps[d], z[d];
    double kl = kl_diag(mu, lv, NULL, d);
    Rng r = rng_for(11, VD_RNG_NOISE, 0);
    double sum = 0, sum2 = 0;
    for (int k = 0; k < N; k++) {
        rng_normal_fill(&r, 0, (uint64_t)k * d, d, eps);
        reparam_row(z, mu, lv, eps, d);
        double lq = 0, lp = 0;
        for (int j = 0; j < d; j++) {
            lq += -0.5 * (log(2 * M_PI) + lv[j] + (double)eps[j] * eps[j]);
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
        double s = exp(lv[j]);
        wrong += -log(s) + 0.5 * (s * s + mu[j] * mu[j]) - 0.5;
    }
    assert_true(fabs(wrong - kl) > 10 * se);
}

/* The conditional model's KL to N(m_y, I), and a lower layer's KL to a
 * conditional Gaussian N(mu_p, exp(lv_p)), against Monte Carlo estimates of
 * E_q[log q(z) - log p(z)] through log_normal; the KL to N(0, I) is far
 * off in both cases. */
static void test_kl_terms_monte_carlo(void **state)
{
    (void)state;
    enum { d = 3, N = 400000 };
    float mu[d] = {0.5f, -1.0f, 0.0f}, lv[d] = {-1.5f, 0.7f, 0.0f};
    float mean[d] = {1.0f, -0.5f, 0.8f}, plv[d] = {0.3f, -0.6f, 1.1f}, zero[d] = {0};
    double kl_class = kl_diag(mu, lv, mean, d), kl0 = kl_diag(mu, lv, NULL, d);
    double kl_cond = kl_gauss(mu, lv, mean, plv, d);
    assert_true(fabs(kl_gauss(mu, lv, mean, zero, d) - kl_class) < 1e-6); /* unit variance */
    Rng r = rng_for(12, VD_RNG_NOISE, 0);
    double s1 = 0, q1 = 0, s2 = 0, q2 = 0;
    float eps[d], z[d];
    for (int k = 0; k < N; k++) {
        rng_normal_fill(&r, 0, (uint64_t)k * d, d, eps);
        reparam_row(z, mu, lv, eps, d);
        double lq = log_normal(z, mu, lv, d);
        double a = lq - log_normal(z, mean, zero, d), b = lq - log_normal(z, mean, plv, d);
        s1 += a;
        q1 += a * a;
        s2 += b;
        q2 += b * b;
    }
    double m1 = s1 / N, se1 = sqrt((q1 / N - m1 * m1) / N);
    double m2 = s2 / N, se2 = sqrt((q2 / N - m2 * m2) / N);
    print_message("class-mean KL %.4f, MC %.4f +- %.4f; conditional KL %.4f, MC %.4f +- %.4f\n",
                  kl_class, m1, se1, kl_cond, m2, se2);
    assert_true(fabs(m1 - kl_class) < 4 * se1);
    assert_true(fabs(m2 - kl_cond) < 4 * se2);
    assert_true(fabs(m1 - kl0) > 10 * se1);
    assert_true(fabs(m2 - kl_class) > 10 * se2);
}

/* The objective and every parameter's gradient of a model of shape on n
 * rows (k draws each, obj) against the double reference: the values agree,
 * and each tensor's gradient (a spread of about per_tensor entries of a
 * large one) and a random directional derivative agree with central
 * differences. tweak, if not NULL, edits the parameters first. */
static void check_model_sampled(const VaeShape *shape, int n, const Objective *obj,
                                void (*tweak)(Vae *), size_t per_tensor)
{
    const char *why = NULL;
    Vae *m = vae_create(shape, 0, &why);
    if (!m)
        print_error("vae_create: %s\n", why);
    assert_non_null(m);
    vae_init_params(m, 2024);
    int D = shape->n_input, C = shape->classes, k = obj->k, dt = m->d_total;
    VaeWork *w = vae_work_create(m, n * k);
    fill_uniform(w->x, (size_t)n * D, 20, 0, 1);
    Rng r = rng_for(99, VD_RNG_NOISE, 0);
    rng_normal_fill(&r, 0, 0, (size_t)n * k * dt, w->eps);
    int32_t *y = C > 0 ? w->y : NULL;
    for (int i = 0; y && i < n; i++)
        y[i] = (i * 7 + 3) % C; /* several rows share a class: gradients accumulate */
    if (m->prior.t_mean >= 0) /* away from their zero init, so (mu - m_y) is not just mu */
        fill_uniform(vae_view(m, m->params, m->prior.t_mean), (size_t)C * vae_top_latent(m), 22,
                     -1, 1);
    if (tweak)
        tweak(m);

    for (size_t i = 0; i < m->n_params; i++) /* backward adds: it must start from zero */
        m->grads[i] = NAN;
    vae_zero_grads(m);
    double loss = vae_forward(m, w, n, obj, 1);
    vae_backward(m, w, obj, NULL, NULL);

    double *p = malloc(sizeof(double) * m->n_params), *x = malloc(sizeof(double) * n * D),
           *e = malloc(sizeof(double) * (size_t)n * k * dt);
    for (size_t i = 0; i < m->n_params; i++) p[i] = m->params[i];
    for (int i = 0; i < n * D; i++) x[i] = w->x[i];
    for (int i = 0; i < n * k * dt; i++) e[i] = w->eps[i];
    double ref = vae_loss_ref(m, p, x, e, y, n, obj, NULL, NULL);
    if (rel_err(loss, ref, 1e-6) >= 1e-5)
        print_error("loss %.9g, reference %.9g\n", loss, ref);
    assert_true(rel_err(loss, ref, 1e-6) < 1e-5); /* float forward = double forward */

    const double h = 1e-5;
    for (int t = 0; t < m->n_tensors; t++) {
        const VaeTensor *ten = &m->tensors[t];
        size_t len = (size_t)ten->rows * (ten->cols ? ten->cols : 1);
        double worst = 0;
        size_t step = len > 2 * per_tensor ? len / per_tensor : 1; /* a spread of entries */
        for (size_t kk = 0; kk < len; kk += step) {
            size_t i = ten->offset + kk;
            double keep = p[i];
            p[i] = keep + h;
            double lp = vae_loss_ref(m, p, x, e, y, n, obj, NULL, NULL);
            p[i] = keep - h;
            double lm = vae_loss_ref(m, p, x, e, y, n, obj, NULL, NULL);
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
    double numeric = (vae_loss_ref(m, pp, x, e, y, n, obj, NULL, NULL) -
                      vae_loss_ref(m, pm, x, e, y, n, obj, NULL, NULL)) / (2 * h);
    assert_true(rel_err(numeric, analytic, 1e-3) < 1e-3);

    free(v); free(pp); free(pm); free(p); free(x); free(e);
    vae_work_free(w);
    vae_free(m);
}

static void check_model_obj(const VaeShape *shape, int n, const Objective *obj,
                            void (*tweak)(Vae *))
{
    check_model_sampled(shape, n, obj, tweak, 200);
}

static void check_model(const VaeShape *shape, int n, float beta)
{
    Objective obj = vae_elbo(beta);
    check_model_obj(shape, n, &obj, NULL);
}

static void test_gradcheck_one_hidden_layer(void **state)
{
    (void)state;
    VaeShape s = test_shape(16, "hidden", "10", "latent", "3", NULL);
    check_model(&s, 5, 1.0f);
}

static void test_gradcheck_two_hidden_layers(void **state)
{
    (void)state;
    VaeShape s = test_shape(12, "hidden", "9,6", "latent", "5", NULL);
    check_model(&s, 4, 1.0f);
}

static void test_gradcheck_tanh_and_beta(void **state)
{
    (void)state;
    VaeShape s = test_shape(12, "hidden", "9,6", "latent", "3", "activation", "tanh", NULL);
    check_model(&s, 4, 0.3f);
}

static void test_gradcheck_gaussian_fixed_variance(void **state)
{
    (void)state;
    VaeShape s = test_shape(10, "hidden", "8", "latent", "3", "likelihood", "gaussian",
                            "variance", "0.22313016", NULL); /* log s^2 = -1.5 */
    check_model(&s, 4, 1.0f);
}

/* The learned log s^2 is a parameter like any other: its gradient is
 * checked with the rest, here away from its init at 0. */
static void set_obs_logvar(Vae *m) { m->params[m->tensors[m->t_obs_logvar].offset] = -0.7f; }

static void test_gradcheck_gaussian_learned_variance(void **state)
{
    (void)state;
    VaeShape s = test_shape(10, "hidden", "8", "latent", "3", "likelihood", "gaussian", NULL);
    Objective elbo = vae_elbo(1.0f);
    check_model_obj(&s, 4, &elbo, set_obs_logvar);
}

/* Conditional VAE: the class means' gradients -beta (mu - m_y), summed over
 * the rows of each class, against finite differences. */
static void test_gradcheck_conditional(void **state)
{
    (void)state;
    VaeShape s = test_shape(12, "hidden", "7", "latent", "4", "classes", "3", NULL);
    check_model(&s, 6, 0.8f);
}

/* The convolutional model, tensor by tensor: two convolutions (8x8 -> 4x4
 * -> 2x2), a dense layer, the heads, and the mirrored decoder's dense
 * layers and transposed convolutions. */
static void test_gradcheck_conv(void **state)
{
    (void)state;
    VaeShape s = test_shape(64, "hidden", "6", "latent", "3", "conv", "3,4", NULL);
    s.in_c = 1;
    s.in_h = s.in_w = 8;
    check_model(&s, 3, 1.0f);
}

/* Three channels, tanh, a conditional Gaussian with learned variance. */
static void test_gradcheck_conv_conditional_gaussian(void **state)
{
    (void)state;
    VaeShape s = test_shape(48, "hidden", "5,4", "latent", "2", "conv", "2", "activation", "tanh",
                            "likelihood", "gaussian", "classes", "3", NULL);
    s.in_c = 3;
    s.in_h = s.in_w = 4;
    Objective elbo = vae_elbo(0.7f);
    check_model_obj(&s, 4, &elbo, set_obs_logvar);
}

/* Pushes a few log-variance biases past the clamp's ends, so that the
 * hardtanh's zero gradient is checked too. */
static void push_logvars(Vae *m)
{
    for (int t = 0; t < m->n_tensors; t++) {
        const VaeTensor *ten = &m->tensors[t];
        const char *dot = strrchr(ten->name, '.');
        size_t len = strlen(ten->name);
        if (len >= 11 && strcmp(ten->name + len - 11, "logvar.bias") == 0 && dot)
            for (int j = 0; j < ten->rows; j += 3)
                m->params[ten->offset + j] = j % 2 ? -9.0f : 5.0f;
    }
}

/* Gated dense layers: h * sigmoid(g), He-initialized, the log-variances
 * clamped to [-6, 2] (some of them pushed past the clamp). */
static void test_gradcheck_gated(void **state)
{
    (void)state;
    VaeShape s = test_shape(11, "hidden", "7,5", "latent", "4", "activation", "gated", NULL);
    Objective elbo = vae_elbo(0.9f);
    check_model_obj(&s, 4, &elbo, NULL);
    check_model_obj(&s, 4, &elbo, push_logvars);
}

/* Two stochastic layers: q(z2|x) q(z1|x,z2), p(z1|z2) p(x|z1,z2), closed-form
 * KLs of z1 to its conditional prior; relu, tanh and gated blocks, one and
 * three hidden widths (whose graphs differ: heads on the branches, a
 * chain after them). */
static void test_gradcheck_two_levels(void **state)
{
    (void)state;
    const char *acts[] = {"relu", "tanh", "gated"};
    for (int a = 0; a < 3; a++) {
        VaeShape s = test_shape(10, "hidden", "6,5", "latent", "3,2", "activation", acts[a], NULL);
        check_model(&s, 3, 0.6f);
    }
    VaeShape one = test_shape(9, "hidden", "5", "latent", "2,3", NULL);
    check_model(&one, 3, 1.0f);
    VaeShape three = test_shape(9, "hidden", "6,5,4", "latent", "2,2", "activation", "gated", NULL);
    check_model(&three, 3, 1.0f);
}

/* Three stochastic layers, and two with a conditional top prior. */
static void test_gradcheck_three_levels_and_classes(void **state)
{
    (void)state;
    VaeShape s = test_shape(8, "hidden", "5,4", "latent", "3,2,2", "activation", "gated", NULL);
    check_model(&s, 3, 1.0f);
    VaeShape c = test_shape(8, "hidden", "5,4", "latent", "2,2", "classes", "3", NULL);
    check_model(&c, 5, 0.7f);
}

/* The VampPrior: the pseudo-inputs' pass through q(z_L|.), the mixture's
 * one-draw term, and the pseudo-inputs' own gradient through the clamp
 * (one of them pushed outside [0, 1]); one and two stochastic layers, and a
 * Gaussian likelihood (no clamp). */
static void push_pseudo(Vae *m)
{
    float *a = vae_view(m, m->params, m->prior.t_pseudo);
    a[0] = -0.3f;
    a[5] = 1.4f;
    for (int i = 1; i < m->prior.K * m->shape.n_input; i += 7)
        a[i] = 0.1f + 0.8f * (float)(i % 11) / 11.0f;
}

static void test_gradcheck_vamp(void **state)
{
    (void)state;
    Objective elbo = vae_elbo(0.8f);
    VaeShape s = test_shape(9, "hidden", "6", "latent", "3", "prior", "vamp", "pseudo-inputs", "4",
                            NULL);
    check_model_obj(&s, 4, &elbo, push_pseudo);
    VaeShape h = test_shape(8, "hidden", "5,4", "latent", "2,3", "activation", "gated", "prior",
                            "vamp", "pseudo-inputs", "3", NULL);
    check_model_obj(&h, 3, &elbo, push_pseudo);
    VaeShape g = test_shape(8, "hidden", "5", "latent", "2", "prior", "vamp", "pseudo-inputs", "3",
                            "likelihood", "gaussian", "variance", "0.5", NULL);
    check_model_obj(&g, 3, &elbo, push_pseudo);
}

/* The importance-weighted bound: k draws per row, each with its normalized
 * weight, for the plain, conditional, two-layer and VampPrior models; and
 * the ELBO with every KL as its one-draw estimate. */
static void test_gradcheck_iwae(void **state)
{
    (void)state;
    Objective iw = {VD_OBJ_IWAE, 3, 1.0f, 0}, iw_warm = {VD_OBJ_IWAE, 4, 0.4f, 0};
    VaeShape s = test_shape(10, "hidden", "6", "latent", "3", NULL);
    check_model_obj(&s, 3, &iw, NULL);
    check_model_obj(&s, 3, &iw_warm, NULL);
    VaeShape c = test_shape(10, "hidden", "6", "latent", "2", "classes", "2", NULL);
    check_model_obj(&c, 3, &iw, NULL);
    VaeShape h = test_shape(9, "hidden", "5,4", "latent", "2,3", "activation", "gated", "prior",
                            "vamp", "pseudo-inputs", "3", NULL);
    check_model_obj(&h, 2, &iw, push_pseudo);
    VaeShape g = test_shape(9, "hidden", "5", "latent", "2,2", "likelihood", "gaussian", NULL);
    check_model_obj(&g, 2, &iw, set_obs_logvar);
    Objective one = {VD_OBJ_ELBO, 1, 0.5f, 1};
    check_model_obj(&h, 3, &one, push_pseudo);
}

/* The bound of one draw is the ELBO of that draw: the same value and the
 * same gradient as the ELBO with one-draw KLs, for a two-layer model. */
static void test_iwae_one_draw_is_the_elbo(void **state)
{
    (void)state;
    VaeShape s = test_shape(9, "hidden", "5,4", "latent", "2,3", NULL);
    const char *why;
    Vae *m = vae_create(&s, 0, &why);
    vae_init_params(m, 8);
    VaeWork *w = vae_work_create(m, 4);
    fill_uniform(w->x, 4 * 9, 31, 0, 1);
    Rng r = rng_for(4, VD_RNG_NOISE, 0);
    rng_normal_fill(&r, 0, 0, (size_t)4 * m->d_total, w->eps);
    Objective iw = {VD_OBJ_IWAE, 1, 1.0f, 0}, one = {VD_OBJ_ELBO, 1, 1.0f, 1};
    vae_zero_grads(m);
    double a = vae_forward(m, w, 4, &iw, 1);
    vae_backward(m, w, &iw, NULL, NULL);
    float *g = malloc(sizeof(float) * m->n_params);
    memcpy(g, m->grads, sizeof(float) * m->n_params);
    vae_zero_grads(m);
    double b = vae_forward(m, w, 4, &one, 1);
    vae_backward(m, w, &one, NULL, NULL);
    assert_true(rel_err(a, b, 1e-9) < 1e-9);
    double worst = 0;
    for (size_t i = 0; i < m->n_params; i++)
        worst = fmax(worst, rel_err(g[i], m->grads[i], 1e-6));
    assert_true(worst < 1e-5);
    free(g);
    vae_work_free(w);
    vae_free(m);
}

/* The graph of the convolutional VAE of the benchmark: its nodes and
 * parameter count, as PyTorch counts them (1,691,369). */
static void test_conv_layout(void **state)
{
    (void)state;
    VaeShape s = test_shape(784, "hidden", "256", "latent", "20", "conv", "32,64", NULL);
    s.in_c = 1;
    s.in_h = s.in_w = 28;
    const char *why = NULL;
    Vae *m = vae_create(&s, 0, &why);
    assert_non_null(m);
    assert_int_equal(m->n_params, 1691369);
    assert_true(vae_shape_params(&s) == 1691369.0);
    assert_int_equal(m->n_nodes, 10); /* input, 8 layers, the sample */
    const char *kinds[10] = {"", "conv", "conv", "dense", "heads", "", "dense", "dense", "tconv",
                             "tconv"};
    for (int i = 1; i < 10; i++)
        if (m->nodes[i].type == VD_NODE_LAYER)
            assert_string_equal(m->nodes[i].layer.kind->name, kinds[i]);
    assert_int_equal(m->nodes[5].type, VD_NODE_SAMPLE);
    const Layer *to_image = &m->nodes[7].layer, *last = &m->nodes[9].layer;
    assert_true(to_image->out_c == 64 && to_image->out_h == 7 && to_image->out_w == 7);
    assert_true(last->out_c == 1 && last->out_h == 28 && last->act == VD_ACT_NONE);
    assert_int_equal(m->out, 9);
    const VaeTensor *t = vae_tensor(m, "encoder.1.weight");
    assert_non_null(t);
    assert_true(t->n_dims == 4 && t->dims[0] == 64 && t->dims[1] == 4 && t->dims[3] == 32);
    assert_non_null(vae_tensor(m, "decoder.3.weight")); /* the last transposed convolution */
    char text[160];
    vae_shape_text(&s, text, sizeof text);
    assert_string_equal(text, "28x28x1-conv32-conv64-256-20");
    /* a third halving of 28 (7 -> 3.5) is refused */
    VaeShape odd = s;
    vae_shape_set(&odd, "conv", "32,64,128");
    assert_null(vae_create(&odd, 0, &why));
    assert_non_null(strstr(why, "even"));
    vae_free(m);
}

/* Tensors the options add, and what the shape text says; equality. */
static void test_options_layout(void **state)
{
    (void)state;
    VaeShape s = test_shape(20, "hidden", "5", "latent", "2", "likelihood", "gaussian",
                            "classes", "10", "activation", "tanh", NULL);
    const char *why = NULL;
    Vae *m = vae_create(&s, 0, &why);
    assert_non_null(m);
    const VaeTensor *pm = vae_tensor(m, "prior.mean"), *lv = vae_tensor(m, "likelihood.logvar");
    assert_non_null(pm);
    assert_non_null(lv);
    assert_int_equal(pm->rows, 10);
    assert_int_equal(pm->cols, 2);
    assert_int_equal(lv->offset, m->n_params - 1); /* last: its gradient is ready first */
    vae_init_params(m, 3);
    for (int i = 0; i < 20; i++)
        assert_true(m->params[pm->offset + (size_t)i] == 0.0f);
    assert_true(vae_obs_logvar(m) == 0.0f); /* learned s^2 starts at 1 */
    char text[160];
    vae_shape_text(&s, text, sizeof text);
    assert_string_equal(text, "20-5-2, tanh, gaussian learned s^2, 10 classes");
    VaeShape t = s;
    assert_true(vae_shape_equal(&s, &t));
    vae_shape_set(&t, "classes", "9");
    assert_false(vae_shape_equal(&s, &t));
    t = s;
    vae_shape_set(&t, "variance", "1");
    assert_false(vae_shape_equal(&s, &t));
    /* the variance of a Bernoulli model is no part of it */
    VaeShape b1 = test_shape(20, "variance", "0.5", NULL), b2 = test_shape(20, NULL);
    assert_true(vae_shape_equal(&b1, &b2));
    /* nor are the pseudo-inputs of a standard prior */
    VaeShape v1 = test_shape(20, "pseudo-inputs", "7", NULL);
    assert_true(vae_shape_equal(&v1, &b2));
    vae_shape_set(&v1, "prior", "vamp");
    assert_false(vae_shape_equal(&v1, &b2));
    VaeShape v2 = v1;
    vae_shape_set(&v2, "pseudo-inputs", "8");
    assert_false(vae_shape_equal(&v1, &v2));
    vae_free(m);
    VaeShape plain = test_shape(20, "hidden", "5", "latent", "2", NULL);
    m = vae_create(&plain, 0, &why);
    assert_null(vae_tensor(m, "prior.mean"));
    assert_true(m->t_obs_logvar < 0);
    vae_free(m);
}

/* The models of Tomczak and Welling's VampPrior paper, as --hidden 300,300
 * --activation gated builds them: their parameter counts, the two-level
 * graph's wiring, and its tensors' names. */
static void test_hierarchical_layout(void **state)
{
    (void)state;
    struct { const char *latent, *prior; double params; } want[] = {
        {"40", "standard", 1116864}, {"40,40", "standard", 2431024},
        {"40", "vamp", 1508864}, {"40,40", "vamp", 2823024}};
    for (int i = 0; i < 4; i++) {
        VaeShape s = test_shape(784, "hidden", "300,300", "latent", want[i].latent, "activation",
                                "gated", "prior", want[i].prior, NULL);
        assert_true(vae_shape_params(&s) == want[i].params);
    }
    VaeShape s = test_shape(784, "hidden", "300,300", "latent", "40,40", "activation", "gated",
                            NULL);
    const char *why;
    Vae *m = vae_create(&s, 0, &why);
    assert_int_equal(m->n_levels, 2);
    assert_int_equal(m->d_total, 80);
    const VaeLevel *z1 = &m->levels[0], *z2 = &m->levels[1];
    assert_int_equal(z2->p, -1);
    /* q(z1 | x, z2): its heads read a layer of the concatenated branches */
    const VaeNode *joint = &m->nodes[m->nodes[z1->q].in[0]];
    assert_int_equal(joint->n_in, 2);
    assert_int_equal(m->nodes[joint->in[0]].in[0], 0);     /* x -> G300 */
    assert_int_equal(m->nodes[joint->in[1]].in[0], z2->z); /* z2 -> G300 */
    assert_true(m->nodes[z2->q].per_draw == 0 && m->nodes[z1->q].per_draw == 1);
    /* p(x | z1, z2): the last layer reads a layer of both latents' branches */
    const VaeNode *dj = &m->nodes[m->nodes[m->out].in[0]];
    assert_int_equal(dj->n_in, 2);
    assert_int_equal(m->nodes[dj->in[0]].in[0], z1->z);
    assert_int_equal(m->nodes[dj->in[1]].in[0], z2->z);
    const char *names[] = {"q2.0.h.weight", "q2.1.gate.bias", "q2.mu.weight", "q2.logvar.bias",
                           "q1.x.h.weight", "q1.z.gate.weight", "q1.0.h.bias", "q1.mu.bias",
                           "p1.0.h.weight", "p1.1.gate.bias", "p1.logvar.weight",
                           "decoder.z1.h.weight", "decoder.z2.gate.bias", "decoder.0.h.weight",
                           "decoder.1.weight", "decoder.1.bias"};
    for (int i = 0; i < (int)(sizeof names / sizeof *names); i++) {
        if (!vae_tensor(m, names[i]))
            print_error("no tensor %s\n", names[i]);
        assert_non_null(vae_tensor(m, names[i]));
    }
    assert_int_equal(vae_tensor(m, "decoder.1.weight")->rows, 784);
    /* He initialization of the weights: their variance is 2 / fan_in */
    vae_init_params(m, 1);
    const VaeTensor *t = vae_tensor(m, "q1.0.h.weight");
    double sum2 = 0;
    for (size_t i = 0; i < (size_t)t->rows * t->cols; i++)
        sum2 += (double)m->params[t->offset + i] * m->params[t->offset + i];
    double var = sum2 / ((double)t->rows * t->cols);
    assert_true(fabs(var - 2.0 / 600) < 0.05 * 2.0 / 600);
    char text[160];
    vae_shape_text(&s, text, sizeof text);
    assert_string_equal(text, "784-300-300-40,40, gated");
    vae_free(m);
    /* shapes that are not models */
    VaeShape bad = test_shape(784, "latent", "40,40", "conv", "32", NULL);
    bad.in_c = 1;
    bad.in_h = bad.in_w = 28;
    assert_true(vae_shape_params(&bad) < 0);
    bad = test_shape(784, "prior", "vamp", "classes", "10", NULL);
    assert_true(vae_shape_params(&bad) < 0);
    VaeShape t5 = test_shape(784, NULL);
    assert_true(vae_shape_set(&t5, "latent", "4,4,4,4,4") != 0 || vae_shape_params(&t5) < 0);
    assert_true(vae_shape_set(&t5, "latent", "4,0") != 0);
    assert_true(vae_shape_set(&t5, "latent", "4,x") != 0);
    assert_true(vae_shape_set(&t5, "activation", "swish") != 0);
}

/* --preset conv-hvae at small sizes (12x12 images, channels 2, 3, 2, width
 * 4): gated convolutions on x in both encoders, the z branch, the reshape
 * to the image and the decoder's convolutions, tensor by tensor; with
 * log-variances pushed past the clamp; a VampPrior, whose pseudo-inputs'
 * gradient comes back through the convolutions; the IWAE bound, whose
 * draws share the x branches' rows; and two channels, one stochastic
 * layer and a Gaussian likelihood. */
static VaeShape small_conv_hvae(int c, const char *latent)
{
    VaeShape s = test_shape(144 * c, "preset", "conv-hvae", "conv", "2,3,2", "hidden", "4",
                            "latent", latent, NULL);
    s.in_c = c;
    s.in_h = s.in_w = 12;
    return s;
}

static void test_gradcheck_conv_hvae(void **state)
{
    (void)state;
    VaeShape s = small_conv_hvae(1, "2,3");
    Objective elbo = vae_elbo(0.9f), iw = {VD_OBJ_IWAE, 2, 1.0f, 0};
    check_model_sampled(&s, 2, &elbo, push_logvars, 6); /* 98 tensors: 6 entries of each */
    check_model_sampled(&s, 2, &iw, NULL, 3);
    VaeShape v = s;
    vae_shape_set(&v, "prior", "vamp");
    vae_shape_set(&v, "pseudo-inputs", "2");
    check_model_sampled(&v, 2, &elbo, push_pseudo, 3);
    VaeShape g = small_conv_hvae(2, "3");
    vae_shape_set(&g, "likelihood", "gaussian");
    check_model_sampled(&g, 2, &elbo, set_obs_logvar, 3);
}

/* The gated convolutional VAE of Tomczak and Welling as --preset conv-hvae
 * --latent 40,40 builds it: its parameter counts (2,210,861; 2,602,861 with
 * the VampPrior of 500 pseudo-inputs), its layers' shapes and windows, its
 * clamps, its description; and the shapes it refuses. */
static void test_conv_hvae_layout(void **state)
{
    (void)state;
    VaeShape s = test_shape(784, "preset", "conv-hvae", "latent", "40,40", NULL);
    s.in_c = 1;
    s.in_h = s.in_w = 28;
    assert_true(vae_shape_params(&s) == 2210861.0);
    VaeShape v = s;
    assert_int_equal(vae_shape_set(&v, "prior", "vamp"), 0);
    assert_true(vae_shape_params(&v) == 2602861.0);
    const char *why = NULL;
    Vae *m = vae_create(&s, 0, &why);
    assert_non_null(m);
    assert_int_equal(m->n_params, 2210861);
    /* q(z2 | x): five gated convolutions, 28x28 -> 14x14 -> 7x7x6 = 294 */
    int want[5][5] = {{7, 1, 28, 32, 3}, {3, 2, 14, 32, 1}, {5, 1, 14, 64, 2},
                      {3, 2, 7, 64, 1}, {3, 1, 7, 6, 1}};
    for (int i = 0; i < 5; i++) {
        const Layer *l = &m->nodes[1 + i].layer;
        assert_ptr_equal(l->kind, &layer_gconv);
        assert_true(l->kernel == want[i][0] && l->stride == want[i][1] &&
                    l->out_h == want[i][2] && l->out_w == want[i][2] &&
                    l->out_c == want[i][3] && l->pad == want[i][4]);
    }
    const VaeLevel *z1 = &m->levels[0], *z2 = &m->levels[1];
    assert_int_equal(m->nodes[z2->q].layer.in_c, 294);
    assert_int_equal(m->top_end, z2->q + 1);
    /* q(z1 | x, z2): [x -> five convolutions ; z2 -> G294] -> G300 -> heads */
    const VaeNode *joint = &m->nodes[m->nodes[z1->q].in[0]];
    assert_true(joint->n_in == 2 && joint->size == 300);
    const VaeNode *xb = &m->nodes[joint->in[0]], *zb = &m->nodes[joint->in[1]];
    assert_true(xb->layer.kind == &layer_gconv && xb->size == 294 && xb->per_draw == 0);
    assert_true(zb->in[0] == z2->z && zb->size == 294 && zb->per_draw == 1);
    assert_int_equal(m->nodes[m->nodes[m->nodes[xb->in[0]].in[0]].in[0]].layer.kernel, 3);
    /* p(z1 | z2): G300 G300 heads */
    const VaeNode *p1 = &m->nodes[m->nodes[z1->p].in[0]];
    assert_true(p1->size == 300 && m->nodes[p1->in[0]].in[0] == z2->z);
    /* p(x | z1, z2): G784 read as 28x28x1, four gated 3x3 convolutions, a 1x1 to the logits */
    const Layer *out = &m->nodes[m->out].layer;
    assert_true(out->kind == &layer_conv2d && out->kernel == 1 && out->in_c == 64 &&
                out->out_c == 1 && out->act == VD_ACT_NONE);
    const VaeNode *to_image = &m->nodes[m->out - 5];
    assert_true(to_image->layer.kind == &layer_gated && to_image->layer.out_h == 28 &&
                to_image->layer.out_c == 1 && to_image->n_in == 2 && to_image->layer.in_c == 600);
    for (int i = 0; i < m->n_nodes; i++)
        if (m->nodes[i].type == VD_NODE_LAYER && m->nodes[i].layer.kind == &layer_heads)
            assert_true(m->nodes[i].layer.clamp);
    const VaeTensor *t = vae_tensor(m, "q2.0.gate.weight");
    assert_true(t && t->n_dims == 4 && t->dims[0] == 32 && t->dims[1] == 7 && t->dims[3] == 1);
    const char *names[] = {"q2.4.h.bias", "q2.mu.weight", "q1.x.0.h.weight", "q1.z.gate.bias",
                           "q1.0.h.weight", "q1.logvar.bias", "p1.1.h.weight", "p1.mu.bias",
                           "decoder.z1.h.weight", "decoder.z2.h.weight", "decoder.0.gate.weight",
                           "decoder.4.h.weight", "decoder.5.weight", "decoder.5.bias"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        if (!vae_tensor(m, names[i]))
            print_error("no tensor %s\n", names[i]);
        assert_non_null(vae_tensor(m, names[i]));
    }
    print_message("conv-hvae: %.3g multiply-adds per image forward\n", vae_forward_macs(m, 100));
    char *json = vae_graph_json(m);
    assert_non_null(strstr(json, "\"kind\": \"gated_conv2d\", \"name\": \"q2.0\""));
    assert_non_null(strstr(json, "\"out_shape\": [28, 28, 32], \"kernel\": 7, \"stride\": 1, "
                                 "\"padding\": 3"));
    assert_non_null(strstr(json, "\"kind\": \"conv2d\", \"name\": \"decoder.5\""));
    vd_free(json);
    char text[160];
    vae_shape_text(&s, text, sizeof text);
    assert_string_equal(text, "conv-hvae 28x28x1-40,40");
    vae_shape_text(&v, text, sizeof text);
    assert_string_equal(text, "conv-hvae 28x28x1-40,40, vamp 500");
    VaeShape small = small_conv_hvae(1, "2,3");
    vae_shape_text(&small, text, sizeof text);
    assert_string_equal(text, "conv-hvae (c2-c3-c2-4) 12x12x1-2,3");
    /* the same options without the preset are another model */
    VaeShape plain = s;
    plain.preset = VD_PRESET_NONE;
    assert_false(vae_shape_equal(&s, &plain));
    assert_false(vae_shape_equal(&s, &small));
    vae_free(m);
    /* images it cannot take: one line each */
    int sides[][2] = {{30, 28}, {8, 8}, {28, 26}};
    for (int i = 0; i < 3; i++) {
        VaeShape b = test_shape(sides[i][0] * sides[i][1], "preset", "conv-hvae", NULL);
        b.in_c = 1;
        b.in_h = sides[i][0];
        b.in_w = sides[i][1];
        assert_null(vae_create(&b, 0, &why));
        assert_non_null(strstr(why, "divide by 4"));
        assert_null(strchr(why, '\n'));
    }
    VaeShape flat = test_shape(784, "preset", "conv-hvae", NULL); /* no image */
    assert_true(vae_shape_params(&flat) < 0);
    /* its sizes are defaults: one stochastic layer, other widths; but not
     * another activation, nor other numbers of convolutions or widths */
    struct { const char *name, *value; int ok; } opt[] = {
        {"latent", "40", 1}, {"conv", "8,8,2", 1}, {"hidden", "100", 1},
        {"activation", "tanh", 0}, {"conv", "8,8", 0}, {"hidden", "300,300", 0}};
    for (size_t i = 0; i < sizeof opt / sizeof *opt; i++) {
        VaeShape o = test_shape(784, "preset", "conv-hvae", opt[i].name, opt[i].value, NULL);
        o.in_c = 1;
        o.in_h = o.in_w = 28;
        double count = vae_shape_params(&o);
        assert_true(opt[i].ok ? count > 0 && count != 2210861.0 : count < 0);
    }
}

/* A wrong gradient must be caught: the check is not vacuous. */
static void test_gradcheck_detects_a_wrong_gradient(void **state)
{
    (void)state;
    VaeShape s = test_shape(8, "hidden", "6", "latent", "2", NULL);
    const char *why;
    Vae *m = vae_create(&s, 0, &why);
    vae_init_params(m, 5);
    VaeWork *w = vae_work_create(m, 2);
    fill_uniform(w->x, 16, 30, 0, 1);
    Objective elbo = vae_elbo(1.0f);
    vae_zero_grads(m);
    vae_forward(m, w, 2, &elbo, 1);
    vae_backward(m, w, &elbo, NULL, NULL);
    double p[512], x[16], e[4] = {0};
    assert_true(m->n_params < 512);
    for (size_t i = 0; i < m->n_params; i++) p[i] = m->params[i];
    for (int i = 0; i < 16; i++) x[i] = w->x[i];
    /* grads computed with eps = 0 rows (work buffers start zeroed) */
    size_t i = vae_tensor(m, "decoder.1.bias")->offset;
    double h = 1e-5, keep = p[i];
    p[i] = keep + h;
    double lp = vae_loss_ref(m, p, x, e, NULL, 2, &elbo, NULL, NULL);
    p[i] = keep - h;
    double lm = vae_loss_ref(m, p, x, e, NULL, 2, &elbo, NULL, NULL);
    double fd = (lp - lm) / (2 * h);
    assert_true(rel_err(fd, m->grads[i], 1e-2) < 2e-3);
    assert_true(rel_err(fd, m->grads[i] * 1.01, 1e-2) > 2e-3);
    vae_work_free(w);
    vae_free(m);
}

/* What the hook saw: the smallest offset reported, and a copy of the
 * gradient as it stood at each report. */
typedef struct {
    const Vae *m;
    size_t last, calls;
    float *seen;
    int rising;
} Hook;

static void hook(void *ctx, size_t offset)
{
    Hook *h = ctx;
    if (offset >= h->last)
        h->rising = 1;
    h->last = offset;
    h->calls++;
    memcpy(h->seen + offset, h->m->grads + offset, sizeof(float) * (h->m->n_params - offset));
}

/* Backward adds to the gradients (twice is double), and the hook's offsets
 * fall, each reporting a part of the buffer that no later work changes:
 * for the VampPrior model too, whose encoder runs twice. */
static void test_backward_adds_and_hook_is_final(void **state)
{
    (void)state;
    VaeShape shapes[] = {
        test_shape(9, "hidden", "6", "latent", "3", "classes", "2", "likelihood", "gaussian",
                   NULL),
        test_shape(8, "hidden", "5,4", "latent", "2,3", "activation", "gated", "prior", "vamp",
                   "pseudo-inputs", "3", NULL)};
    for (int c = 0; c < 2; c++) {
        const char *why;
        Vae *m = vae_create(&shapes[c], 0, &why);
        vae_init_params(m, 9);
        VaeWork *w = vae_work_create(m, 8);
        fill_uniform(w->x, (size_t)4 * shapes[c].n_input, 33, 0, 1);
        Rng r = rng_for(6, VD_RNG_NOISE, 0);
        rng_normal_fill(&r, 0, 0, (size_t)8 * m->d_total, w->eps);
        w->y[1] = 1;
        Objective obj = c ? (Objective){VD_OBJ_IWAE, 2, 1.0f, 0} : vae_elbo(1.0f);
        Hook h = {m, m->n_params + 1, 0, calloc(m->n_params, sizeof(float)), 0};
        vae_zero_grads(m);
        vae_forward(m, w, 4, &obj, 1);
        vae_backward(m, w, &obj, hook, &h);
        assert_int_equal(h.last, 0);
        assert_false(h.rising);
        assert_true(h.calls > 3);
        assert_memory_equal(h.seen, m->grads, sizeof(float) * m->n_params);
        float *once = malloc(sizeof(float) * m->n_params);
        memcpy(once, m->grads, sizeof(float) * m->n_params);
        vae_forward(m, w, 4, &obj, 1);
        vae_backward(m, w, &obj, NULL, NULL);
        for (size_t i = 0; i < m->n_params; i++)
            assert_true(fabsf(m->grads[i] - 2 * once[i]) <= 1e-5f * (fabsf(once[i]) + 1e-3f));
        vae_zero_grads(m);
        for (size_t i = 0; i < m->n_params; i++)
            assert_true(m->grads[i] == 0.0f);
        free(once);
        free(h.seen);
        vae_work_free(w);
        vae_free(m);
    }
}

/* Work made for forward passes only (no gradient buffers) gives the same
 * objective, outputs and posteriors, to the bit, for a two-layer VampPrior
 * model with k draws. */
static void test_forward_only_work(void **state)
{
    (void)state;
    VaeShape s = test_shape(9, "hidden", "6,5", "latent", "2,3", "activation", "gated", "prior",
                            "vamp", "pseudo-inputs", "4", NULL);
    const char *why;
    Vae *m = vae_create(&s, 0, &why);
    vae_init_params(m, 12);
    VaeWork *a = vae_work_create(m, 12), *b = vae_work_create_forward(m, 12);
    fill_uniform(a->x, 4 * 9, 40, 0, 1);
    Rng r = rng_for(3, VD_RNG_NOISE, 0);
    rng_normal_fill(&r, 0, 0, (size_t)12 * m->d_total, a->eps);
    memcpy(b->x, a->x, sizeof(float) * 4 * 9);
    memcpy(b->eps, a->eps, sizeof(float) * (size_t)12 * m->d_total);
    Objective iw = {VD_OBJ_IWAE, 3, 1.0f, 0};
    assert_true(vae_forward(m, a, 4, &iw, 0) == vae_forward(m, b, 4, &iw, 0));
    assert_memory_equal(vae_outputs(m, a), vae_outputs(m, b), sizeof(float) * 12 * 9);
    assert_memory_equal(vae_mu(m, a, 0, 5), vae_mu(m, b, 0, 5), sizeof(float) * 2);
    assert_true(b->forward_only && !a->forward_only);
    vae_work_free(a);
    vae_work_free(b);
    vae_free(m);
}

static void test_layout_and_init(void **state)
{
    (void)state;
    VaeShape s = test_shape(784, "hidden", "400", "latent", "20", NULL);
    const char *why = NULL;
    Vae *m = vae_create(&s, 5, &why);
    /* 784*400+400 + 2*(400*20+20) + 20*400+400 + 400*784+784 */
    assert_int_equal(m->n_params, 652824);
    const VaeTensor *t = vae_tensor(m, "logvar.weight");
    assert_non_null(t);
    assert_int_equal(t->rows, 20);
    assert_int_equal(t->cols, 400);
    LayerParams heads = vae_layer_params(m, m->params, &m->nodes[m->levels[0].q].layer);
    assert_ptr_equal(heads.t[0] + 20 * 400, m->params + t->offset);
    vae_init_params(m, 1);
    float bound = 1.0f / sqrtf(784.0f);
    const VaeTensor *e0 = vae_tensor(m, "encoder.0.bias");
    for (int i = 0; i < 400; i++)
        assert_true(fabsf(m->params[e0->offset + i]) <= bound);
    Vae *m2 = vae_create(&s, 0, &why);
    vae_init_params(m2, 1);
    assert_memory_equal(m->params, m2->params, sizeof(float) * m->n_params);
    vae_init_params(m2, 2);
    assert_memory_not_equal(m->params, m2->params, sizeof(float) * m->n_params);
    /* the tail is the caller's: not zeroed with the gradients */
    m->grads[m->n_params + 4] = 7.0f;
    vae_zero_grads(m);
    assert_true(m->grads[m->n_params + 4] == 7.0f);
    vae_free(m);
    vae_free(m2);
    VaeShape bad = test_shape(10, "hidden", "4", NULL);
    bad.hidden.n = 0;
    assert_null(vae_create(&bad, 0, &why));
    assert_non_null(why);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout_and_init),
        cmocka_unit_test(test_forward_only_work),
        cmocka_unit_test(test_bernoulli_loss_and_gradient),
        cmocka_unit_test(test_bernoulli_accuracy_sweep),
        cmocka_unit_test(test_kl_matches_monte_carlo),
        cmocka_unit_test(test_kl_terms_monte_carlo),
        cmocka_unit_test(test_gradcheck_one_hidden_layer),
        cmocka_unit_test(test_gradcheck_two_hidden_layers),
        cmocka_unit_test(test_gradcheck_detects_a_wrong_gradient),
        cmocka_unit_test(test_gradcheck_tanh_and_beta),
        cmocka_unit_test(test_gradcheck_gaussian_fixed_variance),
        cmocka_unit_test(test_gradcheck_gaussian_learned_variance),
        cmocka_unit_test(test_gradcheck_conditional),
        cmocka_unit_test(test_gradcheck_conv),
        cmocka_unit_test(test_gradcheck_conv_conditional_gaussian),
        cmocka_unit_test(test_gradcheck_gated),
        cmocka_unit_test(test_gradcheck_two_levels),
        cmocka_unit_test(test_gradcheck_three_levels_and_classes),
        cmocka_unit_test(test_gradcheck_vamp),
        cmocka_unit_test(test_gradcheck_iwae),
        cmocka_unit_test(test_iwae_one_draw_is_the_elbo),
        cmocka_unit_test(test_backward_adds_and_hook_is_final),
        cmocka_unit_test(test_conv_layout),
        cmocka_unit_test(test_gaussian_loss_formula),
        cmocka_unit_test(test_logistic_bins),
        cmocka_unit_test(test_gradcheck_logistic),
        cmocka_unit_test(test_options_layout),
        cmocka_unit_test(test_hierarchical_layout),
        cmocka_unit_test(test_gradcheck_conv_hvae),
        cmocka_unit_test(test_conv_hvae_layout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
