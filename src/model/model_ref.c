/* model_ref.c — the whole model's objective computed naively in double,
 * row by row and draw by draw, from each layer kind's reference: the test
 * oracle for finite differences. See model.h. Local. */
#include "model_impl.h"

#include <math.h>
#include <string.h>

#include "util.h"

#define LOG_2PI 1.8378770664093453

typedef struct {
    const Vae *m;
    const double *params;
    double *val[VD_MAX_NODES]; /* each node's output for the row and draw at hand */
    double *cat;               /* a layer's concatenated input */
    double *comp;              /* (K, 2 d_L) a VampPrior's components */
} Ref;

/* Layer node i on the concatenation of its inputs' values. */
static void ref_layer(Ref *f, int i)
{
    const VaeNode *node = &f->m->nodes[i];
    const Layer *l = &node->layer;
    size_t at = 0;
    for (int j = 0; j < node->n_in; j++) {
        int src = node->in[j], size = f->m->nodes[src].size;
        memcpy(f->cat + at, f->val[src], sizeof(double) * (size_t)size);
        at += (size_t)size;
    }
    const double *p[VD_LAYER_TENSORS] = {NULL};
    size_t sizes[VD_LAYER_TENSORS];
    int n = layer_tensor_sizes(l, sizes);
    for (int k = 0; k < n; k++)
        p[k] = f->params + f->m->tensors[l->t_first + k].offset;
    l->kind->forward_ref(l, p, f->val[i], f->cat);
    act_ref(l->act, f->val[i], (size_t)node->size);
}

/* Nodes [1, to) for input x and one draw's noise e (d_total), or none. */
static void ref_pass(Ref *f, const double *x, int to, const double *e)
{
    const Vae *m = f->m;
    memcpy(f->val[0], x, sizeof(double) * (size_t)m->shape.n_input);
    for (int i = 1; i < to; i++) {
        const VaeNode *node = &m->nodes[i];
        if (node->type == VD_NODE_LAYER) {
            ref_layer(f, i);
            continue;
        }
        const VaeLevel *lv = &m->levels[node->level];
        const double *q = f->val[lv->q];
        for (int j = 0; j < lv->d; j++)
            f->val[i][j] = q[j] + exp(0.5 * q[lv->d + j]) * e[lv->eps_off + j];
    }
}

static double log_normal_ref(const double *z, const double *mu, const double *lv, int d)
{
    double s = 0.0;
    for (int j = 0; j < d; j++)
        s += LOG_2PI + lv[j] + (z[j] - mu[j]) * (z[j] - mu[j]) * exp(-lv[j]);
    return -0.5 * s;
}

/* log p(z) of the top prior, in double. */
static double ref_prior(const Ref *f, const double *z, int32_t y)
{
    const Vae *m = f->m;
    int d = vae_top_latent(m), K = m->prior.K;
    if (K > 0) {
        double top = -INFINITY, sum = 0.0, *v = vd_calloc((size_t)K, sizeof(double));
        for (int k = 0; k < K; k++) {
            const double *c = f->comp + (size_t)k * 2 * d;
            v[k] = log_normal_ref(z, c, c + d, d);
            top = v[k] > top ? v[k] : top;
        }
        for (int k = 0; k < K; k++)
            sum += exp(v[k] - top);
        vd_free(v);
        return top + log(sum) - log((double)K);
    }
    const double *mean = m->prior.t_mean >= 0
                             ? f->params + m->tensors[m->prior.t_mean].offset + (size_t)y * d
                             : NULL;
    double s = 0.0;
    for (int j = 0; j < d; j++) {
        double c = mean ? z[j] - mean[j] : z[j];
        s += LOG_2PI + c * c;
    }
    return -0.5 * s;
}

/* Level l's terms of the draw at hand: its closed-form KL (the one-draw
 * estimate where none exists) and its one-draw log q - log p. */
static void ref_terms(const Ref *f, int l, const double *e, int32_t y, double *kl, double *lr)
{
    const Vae *m = f->m;
    const VaeLevel *lv = &m->levels[l];
    int d = lv->d, top = l == m->n_levels - 1;
    const double *q = f->val[lv->q], *z = f->val[lv->z];
    double lq = 0.0;
    for (int j = 0; j < d; j++)
        lq += LOG_2PI + q[d + j] + e[lv->eps_off + j] * e[lv->eps_off + j];
    lq *= -0.5;
    const double *pr = top ? NULL : f->val[lv->p];
    *lr = lq - (top ? ref_prior(f, z, y) : log_normal_ref(z, pr, pr + d, d));
    if (top && m->prior.K > 0) {
        *kl = *lr;
        return;
    }
    const double *mean = top && m->prior.t_mean >= 0
                             ? f->params + m->tensors[m->prior.t_mean].offset + (size_t)y * d
                             : NULL;
    double s = 0.0;
    for (int j = 0; j < d; j++) {
        double mp = top ? (mean ? mean[j] : 0.0) : pr[j], lp = top ? 0.0 : pr[d + j];
        double c = q[j] - mp;
        s += lp - q[d + j] + (exp(q[d + j]) + c * c) * exp(-lp) - 1.0;
    }
    *kl = 0.5 * s;
}

static double ref_recon(const Ref *f, const double *x)
{
    const Vae *m = f->m;
    const double *a = f->val[m->out];
    double s = 0.0, logvar = m->t_obs_logvar >= 0 ? f->params[m->tensors[m->t_obs_logvar].offset]
                                                  : (double)m->shape.obs_logvar;
    for (int j = 0; j < m->shape.n_input; j++) {
        if (m->shape.likelihood == VD_LIK_LOGISTIC) {
            /* the mass of x's bin as the difference of the logistic's CDF
             * at its ends, in long double, on the side away from 1 */
            double ls = f->params[m->tensors[m->t_logscale].offset + (size_t)(j % m->lik_channels)];
            double k = fmin(fmax(floor(x[j] * 255.0 + 0.5), 0), 255);
            long double sc = expl(fmax(ls, VD_LOGSCALE_MIN));
            long double hi = ((k + 0.5L) / 255 - a[j]) / sc, lo = ((k - 0.5L) / 255 - a[j]) / sc;
            long double up = 1 / (1 + expl(-hi)), down = 1 / (1 + expl(-lo));
            long double mass = k == 0     ? up
                               : k == 255 ? 1 / (1 + expl(lo))
                               : hi + lo > 0 ? 1 / (1 + expl(lo)) - 1 / (1 + expl(hi))
                                             : up - down;
            s -= (double)logl(mass);
        } else if (m->shape.likelihood == VD_LIK_GAUSSIAN)
            s += (x[j] - a[j]) * (x[j] - a[j]) / (2.0 * exp(logvar)) + 0.5 * (LOG_2PI + logvar);
        else
            s += fmax(a[j], 0.0) + log1p(exp(-fabs(a[j]))) - x[j] * a[j];
    }
    return s;
}

/* The pseudo-inputs' pass: f->comp. */
static void ref_components(Ref *f)
{
    const Vae *m = f->m;
    int K = m->prior.K, D = m->shape.n_input, d = vae_top_latent(m);
    double *u = vd_calloc((size_t)D, sizeof(double));
    const double *a = f->params + m->tensors[m->prior.t_pseudo].offset;
    for (int k = 0; k < K; k++) {
        for (int j = 0; j < D; j++) {
            double v = a[(size_t)k * D + j];
            u[j] = vae_unit_data(&m->shape) ? fmin(fmax(v, 0.0), 1.0) : v;
        }
        ref_pass(f, u, m->top_end, NULL);
        memcpy(f->comp + (size_t)k * 2 * d, f->val[m->levels[m->n_levels - 1].q],
               sizeof(double) * (size_t)2 * d);
    }
    vd_free(u);
}

double vae_loss_ref(const Vae *m, const double *params, const double *x, const double *eps,
                    const int32_t *y, int n, const Objective *obj, double *recon_sum,
                    double *kl_sum)
{
    Ref f = {.m = m, .params = params};
    size_t widest = (size_t)m->shape.n_input;
    for (int i = 0; i < m->n_nodes; i++) {
        f.val[i] = vd_calloc((size_t)m->nodes[i].size, sizeof(double));
        const VaeNode *node = &m->nodes[i];
        size_t in = 0;
        for (int j = 0; j < node->n_in; j++)
            in += (size_t)m->nodes[node->in[j]].size;
        widest = in > widest ? in : widest;
    }
    f.cat = vd_calloc(widest, sizeof(double));
    if (m->prior.K > 0) {
        f.comp = vd_calloc((size_t)m->prior.K * 2 * vae_top_latent(m), sizeof(double));
        ref_components(&f);
    }
    int k = obj->k, D = m->shape.n_input, iw = obj->kind != VD_OBJ_ELBO;
    double total = 0.0, rsum = 0.0, ksum = 0.0, beta = obj->beta;
    double *lw = vd_calloc((size_t)k, sizeof(double));
    for (int i = 0; i < n; i++) {
        int32_t yi = y ? y[i] : 0;
        for (int j = 0; j < k; j++) {
            const double *e = eps + (size_t)(i * k + j) * m->d_total;
            ref_pass(&f, x + (size_t)i * D, m->n_nodes, e);
            double recon = ref_recon(&f, x + (size_t)i * D), kl = 0.0, lr = 0.0;
            for (int l = 0; l < m->n_levels; l++) {
                double a, b;
                ref_terms(&f, l, e, yi, &a, &b);
                kl += a;
                lr += b;
            }
            rsum += recon / k;
            ksum += (obj->one_draw || iw ? lr : kl) / k;
            lw[j] = -(recon + beta * (obj->one_draw || iw ? lr : kl));
        }
        if (!iw) {
            total -= lw[0];
            continue;
        }
        double top = -INFINITY, sum = 0.0;
        for (int j = 0; j < k; j++)
            top = lw[j] > top ? lw[j] : top;
        for (int j = 0; j < k; j++)
            sum += exp(lw[j] - top);
        total -= top + log(sum) - log((double)k);
    }
    for (int i = 0; i < m->n_nodes; i++)
        vd_free(f.val[i]);
    vd_free(f.cat);
    vd_free(f.comp);
    vd_free(lw);
    if (recon_sum)
        *recon_sum = rsum;
    if (kl_sum)
        *kl_sum = ksum;
    return total;
}
