/* prior.c — the top layer's prior p(z_L): a standard normal, the learned
 * class means of a conditional VAE (N(m_y, I)), or a VampPrior (Tomczak and
 * Welling, 2018), the mixture (1/K) sum_k q(z_L | u_k) of the encoder's own
 * posteriors at K learned pseudo-inputs u_k = hardtanh_[0,1](a_k) (a_k as
 * they are for a Gaussian likelihood, whose data are not in [0, 1]). Its
 * density, its gradient, its pseudo-inputs' pass, and draws from it. See
 * model_impl.h. Local. */
#include "model_impl.h"

#include <math.h>
#include <string.h>

#include "util.h"

void prior_work_alloc(const Vae *m, VaeWork *w, int grads)
{
    int K = m->prior.K, d = vae_top_latent(m), D = m->shape.n_input;
    if (K == 0)
        return;
    pass_alloc(&w->pseudo, m, m->top_end, K, 1, grads);
    w->u = vd_calloc((size_t)K * D, sizeof(float));
    w->mix_comp = vd_calloc((size_t)K * 2 * d, sizeof(float));
    w->mix_ivar = vd_calloc((size_t)K * d, sizeof(float));
    w->mix_norm = vd_calloc((size_t)K, sizeof(double));
    w->mix = vd_calloc((size_t)K, sizeof(double));
    w->mix_grad = vd_calloc((size_t)K * 2 * d, sizeof(float));
}

void prior_work_free(VaeWork *w)
{
    pass_free(&w->pseudo);
    vd_free(w->u);
    vd_free(w->mix_comp);
    vd_free(w->mix_ivar);
    vd_free(w->mix_norm);
    vd_free(w->mix);
    vd_free(w->mix_grad);
}

/* The pseudo-inputs clamp to the data's range [0, 1] under a Bernoulli or a
 * logistic likelihood. */
static int clamped(const Vae *m) { return vae_unit_data(&m->shape); }

/* Component k's [mu | logvar] row. */
static const float *component(const Vae *m, const VaeWork *w, int k)
{
    return w->mix_comp + (size_t)k * 2 * vae_top_latent(m);
}

void prior_prepare(const Vae *m, VaeWork *w, int split)
{
    int K = m->prior.K, d = vae_top_latent(m), D = m->shape.n_input;
    if (K == 0)
        return;
    const VaeGroup *g = split && w->group && w->group->size > 1 ? w->group : NULL;
    w->k0 = g ? vae_group_first(K, g->rank, g->size) : 0;
    w->k1 = g ? vae_group_first(K, g->rank + 1, g->size) : K;
    w->split = g != NULL;
    const float *a = vae_view(m, m->params, m->prior.t_pseudo);
    for (size_t i = (size_t)w->k0 * D; i < (size_t)w->k1 * D; i++)
        w->u[i] = !clamped(m) ? a[i] : a[i] < 0.0f ? 0.0f : a[i] > 1.0f ? 1.0f : a[i];
    int n = w->k1 - w->k0;
    pass_forward(m, &w->pseudo, w->u + (size_t)w->k0 * D, m->top_end, n, 1, NULL);
    memcpy(w->mix_comp + (size_t)w->k0 * 2 * d, w->pseudo.out[m->levels[m->n_levels - 1].q],
           sizeof(float) * (size_t)n * 2 * d);
    if (g)
        g->gather(g->ctx, w->mix_comp, K, 2 * d);
    for (int k = 0; k < K; k++) {
        const float *lv = component(m, w, k) + d;
        double sum = d * LOG_2PI;
        for (int j = 0; j < d; j++) {
            w->mix_ivar[(size_t)k * d + j] = expf(-lv[j]);
            sum += lv[j];
        }
        w->mix_norm[k] = -0.5 * sum;
    }
}

/* w->mix = log N(z; mu_k, exp(lv_k)) for every component; returns the
 * log of their mean. */
static double mixture(const Vae *m, const VaeWork *w, const float *z)
{
    int K = m->prior.K, d = vae_top_latent(m);
    double top = -INFINITY, sum = 0.0;
    for (int k = 0; k < K; k++) {
        const float *mu = component(m, w, k), *iv = w->mix_ivar + (size_t)k * d;
        double q = 0.0;
        for (int j = 0; j < d; j++) {
            double c = (double)z[j] - mu[j];
            q += c * c * iv[j];
        }
        double v = w->mix_norm[k] - 0.5 * q;
        w->mix[k] = v;
        top = v > top ? v : top;
    }
    if (top == -INFINITY) /* z is beyond every component's reach */
        return -INFINITY;
    for (int k = 0; k < K; k++)
        sum += exp(w->mix[k] - top);
    return top + log(sum) - log((double)K);
}

double prior_log_density(const Vae *m, const VaeWork *w, const float *z, int32_t y)
{
    int d = vae_top_latent(m);
    if (m->prior.K > 0)
        return mixture(m, w, z);
    const float *mean = m->prior.t_mean >= 0
                            ? vae_view(m, m->params, m->prior.t_mean) + (size_t)y * d
                            : NULL;
    double sum = 0.0;
    for (int j = 0; j < d; j++) {
        double c = mean ? (double)z[j] - mean[j] : z[j];
        sum += LOG_2PI + c * c;
    }
    return -0.5 * sum;
}

void prior_log_density_backward(Vae *m, VaeWork *w, const float *z, int32_t y, float cf,
                                float *dz)
{
    int d = vae_top_latent(m), K = m->prior.K;
    if (K == 0) { /* log p = -|z - m|^2 / 2 + const */
        const float *mean = m->prior.t_mean >= 0
                                ? vae_view(m, m->params, m->prior.t_mean) + (size_t)y * d
                                : NULL;
        float *dmean = mean ? vae_view(m, m->grads, m->prior.t_mean) + (size_t)y * d : NULL;
        for (int j = 0; j < d; j++) {
            float c = mean ? z[j] - mean[j] : z[j];
            dz[j] += cf * c;
            if (dmean)
                dmean[j] -= cf * c;
        }
        return;
    }
    /* responsibilities r_k; d log p / dz = -sum_k r_k (z - mu_k) / var_k,
     * d log p / dmu_k = r_k (z - mu_k) / var_k,
     * d log p / dlv_k = r_k ((z - mu_k)^2 / var_k - 1) / 2 */
    double lse = mixture(m, w, z) + log((double)K);
    for (int k = 0; k < K; k++) {
        float r = (float)exp(w->mix[k] - lse);
        if (r == 0.0f)
            continue;
        const float *mu = component(m, w, k), *iv = w->mix_ivar + (size_t)k * d;
        float *g = w->mix_grad + (size_t)k * 2 * d;
        for (int j = 0; j < d; j++) {
            float c = z[j] - mu[j], s = c * iv[j];
            dz[j] += cf * r * s;
            g[j] -= cf * r * s;
            g[d + j] -= cf * r * 0.5f * (c * s - 1.0f);
        }
    }
}

void prior_backward(Vae *m, VaeWork *w, void (*ready)(void *, size_t), void *ctx)
{
    int K = m->prior.K, d = vae_top_latent(m), D = m->shape.n_input, q = m->levels[m->n_levels - 1].q;
    if (K == 0)
        return;
    VaePass *p = &w->pseudo;
    int n = w->k1 - w->k0;
    if (w->split) /* this rank's rows of the gradient summed over the ranks (all take part,
                   * the ranks that hold none of a small K too) */
        w->group->sum_slice(w->group->ctx, w->mix_grad, K, 2 * d);
    memcpy(p->dout[q], w->mix_grad + (size_t)w->k0 * 2 * d, sizeof(float) * (size_t)n * 2 * d);
    memset(w->mix_grad, 0, sizeof(float) * (size_t)K * 2 * d);
    p->written[q] = 1;
    pass_backward(m, w, p, 1, m->top_end, 1, ready, ctx);
    if (!p->written[0])
        return;
    /* through the clamp: hardtanh passes the gradient inside (0, 1) only */
    size_t first = (size_t)w->k0 * D, count = (size_t)n * D;
    const float *a = vae_view(m, m->params, m->prior.t_pseudo) + first;
    float *da = vae_view(m, m->grads, m->prior.t_pseudo) + first;
    for (size_t i = 0; i < count; i++)
        if (!clamped(m) || (a[i] > 0.0f && a[i] < 1.0f))
            da[i] += p->dout[0][i];
}

void vae_prior_draws(const Vae *m, VaeWork *w, uint64_t seed, int n, int cols, int cls,
                     float *z, int32_t *y)
{
    int d = vae_top_latent(m), C = m->prior.classes, K = m->prior.K;
    Rng prior = rng_for(seed, VD_RNG_EVAL, 0);
    rng_normal_fill(&prior, UINT32_MAX, 0, (size_t)n * d, z);
    if (K > 0)
        prior_prepare(m, w, 0);
    for (int k = 0; k < n; k++) {
        float *zk = z + (size_t)k * d;
        y[k] = C == 0 ? 0 : cls >= 0 ? cls : k / cols % C;
        if (C > 0) {
            const float *mean = vae_view(m, m->params, m->prior.t_mean) + (size_t)y[k] * d;
            for (int j = 0; j < d; j++)
                zk[j] += mean[j];
        } else if (K > 0) { /* a component, then a draw from it */
            const float *c = component(m, w, (int)rng_below(&prior, UINT32_MAX - 1, (uint64_t)k,
                                                            (uint64_t)K));
            float eps[VD_MAX_LATENT];
            memcpy(eps, zk, sizeof(float) * (size_t)d);
            reparam_row(zk, c, c + d, eps, d);
        }
    }
}
