/* model.c — the model's life (create, init, buffers) and its passes over
 * the graph: forward, backward, encoding, generation, and the
 * importance-weighted estimate. See model.h. */
#include "model_impl.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "rng.h"
#include "util.h"

/* ---- the model ----------------------------------------------------------- */

Vae *vae_create(const VaeShape *shape, size_t n_tail, const char **why)
{
    Vae *m = vd_calloc(1, sizeof *m);
    m->shape = *shape;
    if ((*why = vae_build(m))) {
        vd_free(m->tensors);
        vd_free(m);
        return NULL;
    }
    m->n_tail = n_tail;
    m->params = vd_calloc(m->n_params, sizeof(float));
    m->grads = vd_calloc(m->n_params + n_tail, sizeof(float));
    m->adam_m = vd_calloc(m->n_params, sizeof(float));
    m->adam_v = vd_calloc(m->n_params, sizeof(float));
    return m;
}

static void free_buffers(Vae *m)
{
    if (m->borrowed)
        return;
    vd_free(m->params);
    vd_free(m->grads);
    vd_free(m->adam_m);
    vd_free(m->adam_v);
}

void vae_set_buffers(Vae *m, float *params, float *grads, float *adam_m, float *adam_v,
                     int owned)
{
    free_buffers(m);
    m->params = params;
    m->grads = grads;
    m->adam_m = adam_m;
    m->adam_v = adam_v;
    m->borrowed = !owned;
}

void vae_free(Vae *m)
{
    if (!m)
        return;
    free_buffers(m);
    vd_free(m->tensors);
    vd_free(m);
}

const VaeTensor *vae_tensor(const Vae *m, const char *name)
{
    for (int t = 0; t < m->n_tensors; t++)
        if (strcmp(m->tensors[t].name, name) == 0)
            return &m->tensors[t];
    return NULL;
}

LayerParams vae_layer_params(const Vae *m, float *buf, const Layer *l)
{
    LayerParams p = {{NULL}};
    size_t sizes[VD_LAYER_TENSORS];
    int n = layer_tensor_sizes(l, sizes);
    for (int k = 0; k < n; k++)
        p.t[k] = buf + m->tensors[l->t_first + k].offset;
    return p;
}

void vae_init_params(Vae *m, uint64_t seed)
{
    Rng r = rng_for(seed, VD_RNG_INIT, 0);
    for (int t = 0; t < m->n_tensors; t++) {
        const VaeTensor *ten = &m->tensors[t];
        size_t n = (size_t)ten->rows * (size_t)(ten->cols ? ten->cols : 1);
        float *p = m->params + ten->offset;
        if (t == m->t_obs_logvar) {
            *p = m->shape.obs_logvar;
        } else if (t == m->t_logscale) {
            for (size_t i = 0; i < n; i++)
                p[i] = VD_LOGSCALE_INIT;
        } else if (ten->init == VD_INIT_ZERO) {
            memset(p, 0, sizeof(float) * n);
        } else if (ten->init == VD_INIT_HE || ten->init == VD_INIT_PSEUDO) {
            float scale = ten->init == VD_INIT_HE ? sqrtf(2.0f / (float)ten->fan_in) : 0.01f;
            float shift = ten->init == VD_INIT_HE ? 0.0f : 0.05f;
            rng_normal_fill(&r, (uint32_t)t, 0, n, p);
            for (size_t i = 0; i < n; i++)
                p[i] = p[i] * scale + shift;
        } else {
            float bound = 1.0f / sqrtf((float)ten->fan_in);
            rng_uniform_fill(&r, (uint32_t)t, 0, n, -bound, bound, p);
        }
    }
}

void vae_zero_grads(Vae *m) { memset(m->grads, 0, sizeof(float) * m->n_params); }

float vae_obs_logvar(const Vae *m)
{
    return m->t_obs_logvar >= 0 ? m->params[m->tensors[m->t_obs_logvar].offset]
                                : m->shape.obs_logvar;
}

/* The nodes whose input is x itself: their backward computes no input gradient. */
static int reads_input(const VaeNode *node)
{
    for (int i = 0; i < node->n_in; i++)
        if (node->in[i] == 0)
            return 1;
    return 0;
}

double vae_forward_macs(const Vae *m, int B)
{
    double macs = 0, top = 0;
    for (int i = 0; i < m->n_nodes; i++)
        if (m->nodes[i].type == VD_NODE_LAYER) {
            double c = m->nodes[i].layer.kind->macs(&m->nodes[i].layer);
            macs += c;
            top += i < m->top_end ? c : 0;
        }
    return macs + (m->prior.K > 0 && B > 0 ? top * m->prior.K / B : 0);
}

double vae_first_layer_macs(const Vae *m)
{
    double macs = 0;
    for (int i = 0; i < m->n_nodes; i++)
        if (m->nodes[i].type == VD_NODE_LAYER && reads_input(&m->nodes[i]))
            macs += m->nodes[i].layer.kind->macs(&m->nodes[i].layer);
    return macs;
}

/* ---- a pass over the graph --------------------------------------------- */

/* Does layer node i read its input through p->cat: several inputs, or one
 * whose rows are not its own (data rows broadcast to draws)? */
static int gathers(const Vae *m, int i)
{
    const VaeNode *node = &m->nodes[i];
    return node->n_in > 1 || m->nodes[node->in[0]].per_draw != node->per_draw;
}

static int in_width(const Vae *m, const VaeNode *node)
{
    int w = 0;
    for (int j = 0; j < node->n_in; j++)
        w += m->nodes[node->in[j]].size;
    return w;
}

void pass_alloc(VaePass *p, const Vae *m, int to, int rows, int input_grad, int grads)
{
    memset(p, 0, sizeof *p);
    p->max_rows = rows;
    size_t R = (size_t)rows, scratch = 0;
    for (int i = 1; i < to; i++) {
        const VaeNode *node = &m->nodes[i];
        p->out[i] = vd_calloc(R * (size_t)node->size, sizeof(float));
        p->dout[i] = i == m->out ? p->out[i] /* the likelihood writes dR/doutputs over them */
                     : grads     ? vd_calloc(R * (size_t)node->size, sizeof(float))
                                 : NULL;
        if (node->type != VD_NODE_LAYER)
            continue;
        const Layer *l = &node->layer;
        size_t saved = l->kind->saved_floats(l, rows), sc = l->kind->scratch_floats(l, rows);
        p->saved[i] = saved ? vd_calloc(saved, sizeof(float)) : NULL;
        scratch = sc > scratch ? sc : scratch;
        if (gathers(m, i))
            p->cat[i] = vd_calloc(R * (size_t)in_width(m, node), sizeof(float));
        if (gathers(m, i) && grads)
            p->dcat[i] = vd_calloc(R * (size_t)in_width(m, node), sizeof(float));
    }
    if (input_grad && grads)
        p->dout[0] = vd_calloc(R * (size_t)m->nodes[0].size, sizeof(float));
    p->scratch = scratch ? vd_calloc(scratch, sizeof(float)) : NULL;
}

/* The floats pass_alloc takes. */
static double pass_floats(const Vae *m, int to, int rows, int input_grad)
{
    double R = rows, sum = input_grad ? R * m->nodes[0].size : 0, scratch = 0;
    for (int i = 1; i < to; i++) {
        const VaeNode *node = &m->nodes[i];
        sum += R * node->size * (i == m->out ? 1 : 2);
        if (node->type != VD_NODE_LAYER)
            continue;
        const Layer *l = &node->layer;
        double sc = (double)l->kind->scratch_floats(l, rows);
        sum += (double)l->kind->saved_floats(l, rows) + (gathers(m, i) ? 2 * R * in_width(m, node) : 0);
        scratch = sc > scratch ? sc : scratch;
    }
    return sum + scratch;
}

double vae_work_bytes(const Vae *m, int max_rows)
{
    double R = max_rows, floats = pass_floats(m, m->n_nodes, max_rows, 0);
    floats += R * (m->shape.n_input + m->d_total + 1 + 1); /* x, eps, y, coef */
    for (int l = 0; l < m->n_levels; l++)
        floats += R * (4 + 2 * m->levels[l].d); /* kl and lr (double), dq */
    floats += R * 8;                    /* recon, loss, row_recon, row_kl (double) */
    floats += R * 2 * m->lik_channels; /* dscale (double) */
    if (m->prior.K > 0)
        floats += pass_floats(m, m->top_end, m->prior.K, 1) +
                  (double)m->prior.K * (m->shape.n_input + 6 * vae_top_latent(m) + 4);
    return 4.0 * floats;
}

void pass_free(VaePass *p)
{
    for (int i = 0; i < VD_MAX_NODES; i++) {
        if (p->dout[i] != p->out[i])
            vd_free(p->dout[i]);
        if (i > 0)
            vd_free(p->out[i]);
        vd_free(p->saved[i]);
        vd_free(p->cat[i]);
        vd_free(p->dcat[i]);
    }
    vd_free(p->scratch);
    memset(p, 0, sizeof *p);
}

static int node_rows(const VaePass *p, const VaeNode *node)
{
    return node->per_draw ? p->n * p->k : p->n;
}

/* Layer node i's input for the rows of the pass: an input's own buffer, or
 * the concatenation of its inputs' rows (a data row repeated for its draws). */
static const float *gather(const Vae *m, VaePass *p, int i)
{
    const VaeNode *node = &m->nodes[i];
    if (!gathers(m, i))
        return p->out[node->in[0]];
    int rows = node_rows(p, node), width = in_width(m, node);
    for (int r = 0; r < rows; r++) {
        float *dst = p->cat[i] + (size_t)r * width;
        for (int j = 0; j < node->n_in; j++) {
            const VaeNode *src = &m->nodes[node->in[j]];
            int row = node->per_draw && !src->per_draw ? r / p->k : r;
            memcpy(dst, p->out[node->in[j]] + (size_t)row * src->size,
                   sizeof(float) * (size_t)src->size);
            dst += src->size;
        }
    }
    return p->cat[i];
}

void pass_grad_put(VaePass *p, int i, size_t at, const float *v, size_t n)
{
    float *d = p->dout[i] + at;
    if (!p->written[i])
        memcpy(d, v, sizeof(float) * n);
    else
        for (size_t j = 0; j < n; j++)
            d[j] += v[j];
}

/* The gathered input's gradient back to the inputs: each input's slice of
 * every row, summed over a data row's draws when it was broadcast. */
static void scatter(const Vae *m, VaePass *p, int i, int input_grad)
{
    const VaeNode *node = &m->nodes[i];
    int rows = node_rows(p, node), width = in_width(m, node), at = 0;
    for (int j = 0; j < node->n_in; j++) {
        int src = node->in[j], size = m->nodes[src].size;
        int bcast = node->per_draw && !m->nodes[src].per_draw;
        for (int r = 0; (src > 0 || input_grad) && r < rows; r++) {
            float *d = p->dout[src] + (size_t)(bcast ? r / p->k : r) * size;
            const float *v = p->dcat[i] + (size_t)r * width + at;
            if (!p->written[src] && (!bcast || r % p->k == 0))
                memcpy(d, v, sizeof(float) * (size_t)size);
            else
                for (int e = 0; e < size; e++)
                    d[e] += v[e];
        }
        if (src > 0 || input_grad)
            p->written[src] = 1;
        at += size;
    }
}

void pass_forward(const Vae *m, VaePass *p, const float *x, int to, int n, int k,
                  const float *eps)
{
    p->n = n;
    p->k = k;
    p->out[0] = (float *)x; /* read only */
    for (int i = 1; i < to; i++) {
        const VaeNode *node = &m->nodes[i];
        if (node->type == VD_NODE_SAMPLE) {
            level_sample_forward(m, p, node->level, eps);
            continue;
        }
        const Layer *l = &node->layer;
        int rows = node_rows(p, node);
        LayerParams params = vae_layer_params(m, m->params, l);
        l->kind->forward(l, &params, p->out[i], gather(m, p, i), rows, p->scratch, p->saved[i]);
        act_forward(l->act, p->out[i], (size_t)rows * (size_t)node->size);
    }
}

void pass_clear(VaePass *p, int to)
{
    memset(p->written, 0, sizeof(unsigned char) * (size_t)to);
}

void pass_backward(Vae *m, VaeWork *w, VaePass *p, int from, int to, int input_grad,
                   void (*ready)(void *, size_t), void *ctx)
{
    size_t final = m->n_params + 1;
    for (int i = to - 1; i >= from; i--) {
        const VaeNode *node = &m->nodes[i];
        if (node->type == VD_NODE_SAMPLE) {
            level_sample_backward(m, w, p, node->level);
        } else if (p->written[i]) { /* else nothing below it depends on this pass's loss */
            const Layer *l = &node->layer;
            int rows = node_rows(p, node), g = gathers(m, i), src = node->in[0];
            act_backward(l->act, p->dout[i], p->out[i], (size_t)rows * (size_t)node->size);
            float *din = NULL;
            int din_add = 0;
            if (g) {
                din = p->dcat[i];
            } else if (src > 0 || input_grad) {
                din = p->dout[src];
                din_add = p->written[src];
            }
            LayerParams pp = vae_layer_params(m, m->params, l), gp = vae_layer_params(m, m->grads, l);
            l->kind->backward(l, &pp, &gp, din, din_add, p->dout[i], g ? p->cat[i] : p->out[src],
                              rows, p->scratch, p->saved[i]);
            if (g)
                scatter(m, p, i, input_grad);
            else if (din)
                p->written[src] = 1;
        }
        if (ready && m->node_offset[i] < final) {
            final = m->node_offset[i];
            ready(ctx, final);
        }
    }
}

/* ---- work buffers ------------------------------------------------------- */

static VaeWork *work_create(const Vae *m, int max_rows, int grads)
{
    VaeWork *w = vd_calloc(1, sizeof *w);
    size_t R = (size_t)max_rows;
    w->max_rows = max_rows;
    w->forward_only = !grads;
    w->x = vd_calloc(R * (size_t)m->shape.n_input, sizeof(float));
    w->eps = vd_calloc(R * (size_t)m->d_total, sizeof(float));
    w->y = vd_calloc(R, sizeof(int32_t));
    pass_alloc(&w->data, m, m->n_nodes, max_rows, 0, grads);
    for (int l = 0; l < m->n_levels; l++) {
        w->kl[l] = vd_calloc(R, sizeof(double));
        w->lr[l] = vd_calloc(R, sizeof(double));
        w->dq[l] = vd_calloc(R * 2 * (size_t)m->levels[l].d, sizeof(float));
    }
    w->recon = vd_calloc(R, sizeof(double));
    w->dscale = vd_calloc(R * (size_t)m->lik_channels, sizeof(double));
    w->coef = vd_calloc(R, sizeof(float));
    w->loss = vd_calloc(R, sizeof(double));
    w->row_recon = vd_calloc(R, sizeof(double));
    w->row_kl = vd_calloc(R, sizeof(double));
    prior_work_alloc(m, w, grads);
    return w;
}

VaeWork *vae_work_create(const Vae *m, int max_rows) { return work_create(m, max_rows, 1); }

VaeWork *vae_work_create_forward(const Vae *m, int max_rows)
{
    return work_create(m, max_rows, 0);
}

void vae_work_free(VaeWork *w)
{
    if (!w)
        return;
    pass_free(&w->data);
    prior_work_free(w);
    for (int l = 0; l < VD_MAX_LEVELS; l++) {
        vd_free(w->kl[l]);
        vd_free(w->lr[l]);
        vd_free(w->dq[l]);
    }
    vd_free(w->x);
    vd_free(w->eps);
    vd_free(w->y);
    vd_free(w->recon);
    vd_free(w->dscale);
    vd_free(w->coef);
    vd_free(w->loss);
    vd_free(w->row_recon);
    vd_free(w->row_kl);
    vd_free(w);
}

/* ---- training ------------------------------------------------------------ */

double vae_forward(const Vae *m, VaeWork *w, int n, const Objective *obj, int want_grad)
{
    TermMode mode = objective_terms(obj);
    if (m->prior.K > 0 && !w->prior_fixed)
        prior_prepare(m, w, want_grad);
    pass_forward(m, &w->data, w->x, m->n_nodes, n, obj->k, w->eps);
    for (int l = 0; l < m->n_levels; l++)
        level_terms(m, w, l, &mode);
    lik_forward(m, w, w->x, want_grad);
    double total = objective_forward(obj, m, w, n);
    if (want_grad && w->use_coef)
        lik_scale(m, w);
    return total;
}

void vae_backward(Vae *m, VaeWork *w, const Objective *obj, void (*ready)(void *, size_t),
                  void *ctx)
{
    if (w->forward_only)
        VD_ABORT("vae_backward on work made by vae_work_create_forward");
    TermMode mode = objective_terms(obj);
    pass_clear(&w->data, m->n_nodes);
    if (m->prior.K > 0)
        pass_clear(&w->pseudo, m->top_end);
    w->data.written[m->out] = 1; /* dR/doutputs, from the forward */
    lik_backward(m, w);
    if (ready && m->t_obs_logvar >= 0)
        ready(ctx, m->tensors[m->t_obs_logvar].offset);
    for (int l = 0; l < m->n_levels; l++)
        level_terms_backward(m, w, l, obj->beta, &mode);
    prior_backward(m, w, NULL, NULL);
    pass_backward(m, w, &w->data, 1, m->n_nodes, 0, ready, ctx);
}

/* ---- what a trained model is used for ---------------------------------- */

/* The inference path ends at z_1's sample: the generative nodes follow it. */
static int encoder_end(const Vae *m) { return m->levels[0].z + 1; }

void vae_encode(const Vae *m, VaeWork *w, int n)
{
    pass_forward(m, &w->data, w->x, encoder_end(m), n, 1, w->eps);
}

/* The heads' rows are [mu | logvar]. */
const float *vae_mu(const Vae *m, const VaeWork *w, int l, int i)
{
    return w->data.out[m->levels[l].q] + (size_t)i * 2 * m->levels[l].d;
}

const float *vae_logvar(const Vae *m, const VaeWork *w, int l, int i)
{
    return vae_mu(m, w, l, i) + m->levels[l].d;
}

const float *vae_latent(const Vae *m, const VaeWork *w, int l, int i)
{
    return w->data.out[m->levels[l].z] + (size_t)i * m->levels[l].d;
}

const float *vae_outputs(const Vae *m, const VaeWork *w) { return w->data.out[m->out]; }

void vae_output_mean(const Vae *m, const float *outputs, int n, float *out)
{
    size_t total = (size_t)n * m->shape.n_input;
    if (m->shape.likelihood == VD_LIK_GAUSSIAN) {
        if (out != outputs)
            memcpy(out, outputs, sizeof(float) * total);
        return;
    }
    if (m->shape.likelihood == VD_LIK_LOGISTIC) { /* the logistic's mean, in [0, 1] */
        for (size_t i = 0; i < total; i++)
            out[i] = outputs[i] < 0.0f ? 0.0f : outputs[i] > 1.0f ? 1.0f : outputs[i];
        return;
    }
    for (size_t i = 0; i < total; i++)
        out[i] = act_sigmoid(outputs[i]);
}

void vae_generate(const Vae *m, VaeWork *w, const float *z_top, const float *eps_low, int n,
                  float *z_all, float *out)
{
    VaePass *p = &w->data;
    int L = m->n_levels, top = m->levels[L - 1].z;
    p->n = n;
    p->k = 1;
    memcpy(p->out[top], z_top, sizeof(float) * (size_t)n * m->levels[L - 1].d);
    for (int i = encoder_end(m); i < m->n_nodes; i++) {
        const VaeNode *node = &m->nodes[i];
        const Layer *l = &node->layer;
        LayerParams params = vae_layer_params(m, m->params, l);
        l->kind->forward(l, &params, p->out[i], gather(m, p, i), n, p->scratch, p->saved[i]);
        act_forward(l->act, p->out[i], (size_t)n * (size_t)node->size);
        for (int lv = 0; lv < L - 1; lv++) { /* a conditional prior's heads: draw z_lv */
            if (m->levels[lv].p != i)
                continue;
            int d = m->levels[lv].d;
            float *z = p->out[m->levels[lv].z];
            for (int r = 0; r < n; r++) {
                const float *mu = p->out[i] + (size_t)r * 2 * d;
                if (eps_low)
                    reparam_row(z + (size_t)r * d, mu, mu + d,
                                eps_low + (size_t)r * m->d_total + m->levels[lv].eps_off, d);
                else
                    memcpy(z + (size_t)r * d, mu, sizeof(float) * (size_t)d);
            }
        }
    }
    for (int lv = 0; z_all && lv < L; lv++) {
        int d = m->levels[lv].d;
        for (int r = 0; r < n; r++)
            memcpy(z_all + (size_t)r * m->d_total + m->levels[lv].eps_off,
                   p->out[m->levels[lv].z] + (size_t)r * d, sizeof(float) * (size_t)d);
    }
    if (out)
        vae_output_mean(m, p->out[m->out], n, out);
}

void vae_importance(const Vae *m, VaeWork *w, const float *x, const int32_t *y, int n, int K,
                    const Rng *rng, int64_t row0, IwRow *out)
{
    int D = m->shape.n_input, chunk = K < w->max_rows ? K : w->max_rows;
    TermMode mode = {1, 1, 0};
    if (m->prior.K > 0) { /* the prior's components, once for every row */
        prior_prepare(m, w, 0);
        w->prior_fixed = 1;
    }
    for (int i = 0; i < n; i++) {
        memcpy(w->x, x + (size_t)i * D, sizeof(float) * (size_t)D);
        w->y[0] = y ? y[i] : 0;
        double top = -INFINITY, sum = 0.0, recon = 0.0, kl = 0.0;
        for (int k0 = 0; k0 < K; k0 += chunk) {
            int c = K - k0 < chunk ? K - k0 : chunk;
            rng_normal_fill(rng, 0,
                            ((uint64_t)(row0 + i) * (uint64_t)K + (uint64_t)k0) *
                                (uint64_t)m->d_total,
                            (size_t)c * m->d_total, w->eps);
            pass_forward(m, &w->data, w->x, m->n_nodes, 1, c, w->eps);
            for (int l = 0; l < m->n_levels; l++)
                level_terms(m, w, l, &mode);
            lik_forward(m, w, w->x, 0);
            for (int k = 0; k < c; k++) {
                double v = -w->recon[k];
                for (int l = 0; l < m->n_levels; l++) {
                    v -= w->lr[l][k];
                    kl += w->kl[l][k];
                }
                recon += w->recon[k];
                lse_add(&top, &sum, v);
            }
        }
        out[i].recon = recon / K;
        out[i].kl = kl / K;
        out[i].log_px = top + log(sum) - log((double)K);
    }
    w->prior_fixed = 0;
}

void vae_sample(const Vae *m, VaeWork *w, uint64_t seed, int n, int cols, int cls, int noise,
                float *z, int32_t *y, float *out)
{
    int dt = m->d_total, dl = vae_top_latent(m), D = m->shape.n_input;
    float *top = vd_calloc((size_t)n * dl, sizeof(float)), *eps = NULL;
    vae_prior_draws(m, w, seed, n, cols, cls, top, y);
    if (m->n_levels > 1) {
        Rng r = rng_for(seed, VD_RNG_EVAL, 0);
        eps = vd_calloc((size_t)n * dt, sizeof(float));
        rng_normal_fill(&r, UINT32_MAX - 2, 0, (size_t)n * dt, eps);
    }
    for (int k = 0; k < n; k += w->max_rows) {
        int c = n - k < w->max_rows ? n - k : w->max_rows;
        vae_generate(m, w, top + (size_t)k * dl, eps ? eps + (size_t)k * dt : NULL, c,
                     z + (size_t)k * dt, noise ? NULL : out + (size_t)k * D);
        if (noise) {
            Rng r = rng_for(seed, VD_RNG_EVAL, 0);
            vae_output_sample(m, vae_outputs(m, w), c, &r, UINT32_MAX - 3, (uint64_t)k,
                              out + (size_t)k * D);
        }
    }
    vd_free(top);
    vd_free(eps);
}
