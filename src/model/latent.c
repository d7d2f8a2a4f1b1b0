/* latent.c — the stochastic layers: the reparameterized sample, the KL and
 * log-density terms of each layer and their gradients. See model_impl.h and
 * docs/vae-math.md. Local. */
#include "model_impl.h"

#include <math.h>
#include <string.h>

#include "util.h"

void reparam_row(float *z, const float *mu, const float *lv, const float *eps, int d)
{
    for (int j = 0; j < d; j++)
        z[j] = mu[j] + sqrtf(expf(lv[j])) * eps[j];
}

double kl_diag(const float *mu, const float *lv, const float *mean, int d)
{
    double sum = 0.0;
    for (int j = 0; j < d; j++) {
        float c = mean ? mu[j] - mean[j] : mu[j];
        sum += 0.5 * ((double)c * c + expf(lv[j]) - lv[j] - 1.0);
    }
    return sum;
}

double kl_gauss(const float *mq, const float *lq, const float *mp, const float *lp, int d)
{
    double sum = 0.0;
    for (int j = 0; j < d; j++) {
        double c = (double)mq[j] - mp[j];
        sum += 0.5 * (lp[j] - lq[j] + (exp((double)lq[j]) + c * c) * exp(-(double)lp[j]) - 1.0);
    }
    return sum;
}

double log_normal(const float *z, const float *mu, const float *lv, int d)
{
    double sum = 0.0;
    for (int j = 0; j < d; j++) {
        double c = (double)z[j] - mu[j];
        sum += LOG_2PI + lv[j] + c * c * exp(-(double)lv[j]);
    }
    return -0.5 * sum;
}

/* log q(z | mu, lv) of the draw z = mu + sigma eps, through eps. */
static double log_q(const float *lv, const float *eps, int d)
{
    double sum = 0.0;
    for (int j = 0; j < d; j++)
        sum += LOG_2PI + lv[j] + (double)eps[j] * eps[j];
    return -0.5 * sum;
}

static const float *row_of(const VaePass *p, const Vae *m, int node, int r, int width)
{
    return p->out[node] + (size_t)pass_row(p, &m->nodes[node], r) * width;
}

void level_sample_forward(const Vae *m, VaePass *p, int l, const float *eps)
{
    const VaeLevel *lv = &m->levels[l];
    int d = lv->d, rows = p->n * p->k;
    for (int r = 0; r < rows; r++) {
        const float *mu = row_of(p, m, lv->q, r, 2 * d);
        reparam_row(p->out[lv->z] + (size_t)r * d, mu, mu + d,
                    eps + (size_t)r * m->d_total + lv->eps_off, d);
    }
}

/* The class mean of row r's label in buf (one of m's flat buffers), or NULL. */
static float *class_mean(const Vae *m, const VaeWork *w, float *buf, int r)
{
    if (m->prior.t_mean < 0)
        return NULL;
    return vae_view(m, buf, m->prior.t_mean) + (size_t)w->y[r / w->data.k] * vae_top_latent(m);
}

void level_terms(const Vae *m, VaeWork *w, int l, const TermMode *mode)
{
    const VaePass *p = &w->data;
    const VaeLevel *lv = &m->levels[l];
    int d = lv->d, rows = p->n * p->k, top = l == m->n_levels - 1;
    for (int r = 0; r < rows; r++) {
        const float *q = row_of(p, m, lv->q, r, 2 * d), *z = p->out[lv->z] + (size_t)r * d;
        const float *pr = top ? NULL : p->out[lv->p] + (size_t)r * 2 * d;
        const float *e = w->eps + (size_t)r * m->d_total + lv->eps_off;
        double lr = 0.0;
        if (mode->want_lr || (top && m->prior.K > 0)) {
            double lp = top ? prior_log_density(m, w, z, w->y[r / p->k])
                            : log_normal(z, pr, pr + d, d);
            lr = log_q(q + d, e, d) - lp;
            w->lr[l][r] = lr;
        }
        if (!mode->want_kl)
            continue;
        if (top && m->prior.K > 0) /* a VampPrior's KL has no closed form */
            w->kl[l][r] = lr;
        else if (top)
            w->kl[l][r] = kl_diag(q, q + d, class_mean(m, w, m->params, r), d);
        else
            w->kl[l][r] = kl_gauss(q, q + d, pr, pr + d, d);
    }
}

/* The closed-form KL's gradient of row r, weighted cf: wrt q's heads into
 * dq, wrt p's (a lower layer's conditional prior) into dp, wrt the class
 * means into m->grads. */
static void kl_backward(Vae *m, VaeWork *w, int l, int r, float cf, float *dq, float *dp)
{
    const VaePass *p = &w->data;
    const VaeLevel *lv = &m->levels[l];
    int d = lv->d;
    const float *q = row_of(p, m, lv->q, r, 2 * d), *mu = q, *lq = q + d;
    if (l == m->n_levels - 1) { /* N(m, I): m = 0 or the class mean */
        const float *mean = class_mean(m, w, m->params, r);
        float *dmean = class_mean(m, w, m->grads, r);
        for (int j = 0; j < d; j++) {
            float var = expf(lq[j]), c = mean ? mu[j] - mean[j] : mu[j];
            dq[j] = cf * c;
            dq[d + j] = cf * 0.5f * (var - 1.0f);
            if (dmean)
                dmean[j] -= cf * c;
        }
        return;
    }
    const float *pr = p->out[lv->p] + (size_t)r * 2 * d, *lp = pr + d;
    for (int j = 0; j < d; j++) {
        float c = mu[j] - pr[j], ip = expf(-lp[j]), vq = expf(lq[j]);
        dq[j] = cf * c * ip;
        dq[d + j] = cf * 0.5f * (vq * ip - 1.0f);
        dp[j] = -cf * c * ip;
        dp[d + j] = cf * 0.5f * (1.0f - (vq + c * c) * ip);
    }
}

/* The one-draw term log q(z) - log p(z)'s gradient of row r, weighted cf:
 * through eps, log q depends on lv alone (-1/2 per dimension); log p's
 * gradient wrt z goes into dz, wrt p's heads into dp, wrt the top prior's
 * parameters where prior.c keeps them. */
static void one_draw_backward(Vae *m, VaeWork *w, int l, int r, float cf, float *dq, float *dz,
                              float *dp)
{
    VaePass *p = &w->data;
    const VaeLevel *lv = &m->levels[l];
    int d = lv->d;
    const float *z = p->out[lv->z] + (size_t)r * d;
    for (int j = 0; j < d; j++) {
        dq[j] = 0.0f;
        dq[d + j] = -0.5f * cf;
        dz[j] = 0.0f;
    }
    if (l == m->n_levels - 1) {
        prior_log_density_backward(m, w, z, w->y[r / p->k], cf, dz);
        return;
    }
    const float *pr = p->out[lv->p] + (size_t)r * 2 * d, *lp = pr + d;
    for (int j = 0; j < d; j++) {
        float c = z[j] - pr[j], ip = expf(-lp[j]);
        dz[j] = cf * c * ip;
        dp[j] = -cf * c * ip;
        dp[d + j] = cf * 0.5f * (1.0f - c * c * ip);
    }
}

void level_terms_backward(Vae *m, VaeWork *w, int l, float beta, const TermMode *mode)
{
    VaePass *p = &w->data;
    const VaeLevel *lv = &m->levels[l];
    int d = lv->d, rows = p->n * p->k, top = l == m->n_levels - 1;
    int one_draw = mode->grad_lr || (top && m->prior.K > 0);
    float dz[VD_MAX_LATENT], dp[2 * VD_MAX_LATENT];
    for (int r = 0; r < rows; r++) {
        float cf = w->use_coef ? beta * w->coef[r] : beta;
        float *dq = w->dq[l] + (size_t)r * 2 * d;
        if (one_draw) {
            one_draw_backward(m, w, l, r, cf, dq, dz, dp);
            pass_grad_put(p, lv->z, (size_t)r * d, dz, (size_t)d);
        } else {
            kl_backward(m, w, l, r, cf, dq, dp);
        }
        if (!top)
            pass_grad_put(p, lv->p, (size_t)r * 2 * d, dp, (size_t)2 * d);
    }
    if (one_draw)
        p->written[lv->z] = 1;
    if (!top)
        p->written[lv->p] = 1;
}

void level_sample_backward(const Vae *m, VaeWork *w, VaePass *p, int l)
{
    const VaeLevel *lv = &m->levels[l];
    const VaeNode *qn = &m->nodes[lv->q];
    int d = lv->d, rows = p->n * p->k;
    const float *dz = p->written[lv->z] ? p->dout[lv->z] : NULL;
    for (int r = 0; r < rows; r++) {
        int qi = pass_row(p, qn, r);
        const float *q = p->out[lv->q] + (size_t)qi * 2 * d, *lq = q + d;
        const float *e = w->eps + (size_t)r * m->d_total + lv->eps_off;
        const float *t = w->dq[l] + (size_t)r * 2 * d, *dzr = dz ? dz + (size_t)r * d : NULL;
        float *g = p->dout[lv->q] + (size_t)qi * 2 * d;
        int first = !p->written[lv->q] && (qn->per_draw || r % p->k == 0);
        for (int j = 0; j < d; j++) {
            /* z = mu + sigma eps: dz/dmu = 1, dz/dlv = sigma eps / 2 */
            float dmu = dzr ? dzr[j] + t[j] : t[j];
            float dlv = dzr ? dzr[j] * 0.5f * sqrtf(expf(lq[j])) * e[j] + t[d + j] : t[d + j];
            g[j] = first ? dmu : g[j] + dmu;
            g[d + j] = first ? dlv : g[d + j] + dlv;
        }
    }
    p->written[lv->q] = 1;
}
