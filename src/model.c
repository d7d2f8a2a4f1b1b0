/* model.c — the network as a list of layers: layout, init, forward and
 * backward, the losses, and what a trained model is used for. See model.h. */
#include "model.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "rng.h"
#include "util.h"

/* ---- the network ------------------------------------------------------- */

/* Builds the layers of s into m (layers, head, n_layers); NULL or why not. */
static const char *build_layers(Vae *m, const VaeShape *s)
{
    int n = 0, act = s->activation, L = s->n_hidden, c = s->in_c, h = s->in_h, w = s->in_w;
    const char *why;
    for (int i = 0; i < s->n_conv; i++, n++) {
        if ((why = layer_conv_make(&m->layers[n], c, h, w, s->conv[i], act)))
            return why;
        c = s->conv[i];
        h /= 2;
        w /= 2;
    }
    int width = s->n_conv ? c * h * w : s->n_input;
    for (int l = 0; l < L; l++, n++) {
        m->layers[n] = layer_dense_make(width, s->hidden[l], act);
        width = s->hidden[l];
    }
    m->head = n;
    m->layers[n++] = layer_heads_make(width, s->n_latent);
    width = s->n_latent;
    for (int l = L - 1; l >= 0; l--, n++) {
        m->layers[n] = layer_dense_make(width, s->hidden[l], act);
        width = s->hidden[l];
    }
    if (!s->n_conv) {
        m->layers[n++] = layer_dense_make(width, s->n_input, VD_ACT_NONE);
        m->n_layers = n;
        return NULL;
    }
    m->layers[n++] = layer_dense_make(width, c * h * w, act); /* to the last convolution's shape */
    m->layers[n - 1].out_c = c;
    m->layers[n - 1].out_h = h;
    m->layers[n - 1].out_w = w;
    for (int i = s->n_conv - 1; i >= 0; i--, n++) {
        int c_out = i ? s->conv[i - 1] : s->in_c;
        layer_tconv_make(&m->layers[n], c, h, w, c_out, i ? act : VD_ACT_NONE);
        c = c_out;
        h *= 2;
        w *= 2;
    }
    m->n_layers = n;
    return NULL;
}

static int add_tensor(Vae *m, const char *name, const TensorSpec *t)
{
    VaeTensor *ten = &m->tensors[m->n_tensors];
    snprintf(ten->name, sizeof ten->name, "%s", name);
    ten->offset = m->n_params;
    ten->n_dims = t->n_dims;
    ten->rows = t->dims[0];
    ten->cols = t->n_dims > 1 ? 1 : 0;
    size_t count = (size_t)t->dims[0];
    for (int i = 0; i < t->n_dims; i++) {
        ten->dims[i] = t->dims[i];
        if (i > 0) {
            ten->cols *= t->dims[i];
            count *= (size_t)t->dims[i];
        }
    }
    ten->fan_in = t->fan_in;
    m->n_params += count;
    return m->n_tensors++;
}

/* The tensors of layer i, named prefix.<suffix> ("encoder.0.weight"); the
 * heads name their own. */
static void add_layer_tensors(Vae *m, int i, const char *prefix)
{
    Layer *l = &m->layers[i];
    TensorSpec spec[4];
    int n = l->kind->tensors(l, spec);
    for (int k = 0; k < n; k++) {
        char name[32];
        if (prefix)
            snprintf(name, sizeof name, "%.20s.%s", prefix, spec[k].suffix);
        else
            snprintf(name, sizeof name, "%s", spec[k].suffix);
        int t = add_tensor(m, name, &spec[k]);
        if (k == 0)
            l->t_weight = t;
        if (k == (n == 4 ? 2 : 1))
            l->t_bias = t;
    }
}

/* The tensor table, in the flat buffers' order: encoder, heads, prior
 * means, decoder, learned variance. */
static void add_tensors(Vae *m)
{
    const VaeShape *s = &m->shape;
    char prefix[32];
    for (int i = 0; i < m->head; i++) {
        snprintf(prefix, sizeof prefix, "encoder.%d", i);
        add_layer_tensors(m, i, prefix);
    }
    add_layer_tensors(m, m->head, NULL);
    if (s->n_classes > 0)
        add_tensor(m, "prior.mean", &(TensorSpec){"", 2, {s->n_classes, s->n_latent}, 0});
    for (int i = m->head + 1; i < m->n_layers; i++) {
        snprintf(prefix, sizeof prefix, "decoder.%d", i - m->head - 1);
        add_layer_tensors(m, i, prefix);
    }
    if (s->likelihood == VD_LIK_GAUSSIAN && s->learn_var)
        add_tensor(m, "likelihood.logvar", &(TensorSpec){"", 1, {1}, 0});
}

LayerParams vae_layer_params(const Vae *m, float *buf, const Layer *l)
{
    return (LayerParams){buf + m->tensors[l->t_weight].offset, buf + m->tensors[l->t_bias].offset};
}

static void bind_views(const Vae *m, float *base, VaeLayers *v)
{
    const VaeTensor *pm = vae_tensor(m, "prior.mean"), *lv = vae_tensor(m, "likelihood.logvar");
    v->prior_mean = pm ? base + pm->offset : NULL;
    v->obs_logvar = lv ? base + lv->offset : NULL;
}

void vae_shape_text(const VaeShape *s, char *buf, size_t n)
{
    size_t used = 0;
#define ADD(...) (used += used < n ? (size_t)snprintf(buf + used, n - used, __VA_ARGS__) : 0)
    buf[0] = '\0';
    if (s->n_conv) {
        ADD("%dx%dx%d", s->in_h, s->in_w, s->in_c);
        for (int i = 0; i < s->n_conv; i++)
            ADD("-conv%d", s->conv[i]);
    } else {
        ADD("%d", s->n_input);
    }
    for (int l = 0; l < s->n_hidden; l++)
        ADD("-%d", s->hidden[l]);
    ADD("-%d", s->n_latent);
    if (s->activation == VD_ACT_TANH)
        ADD(", tanh");
    if (s->likelihood == VD_LIK_GAUSSIAN && s->learn_var)
        ADD(", gaussian learned s^2");
    else if (s->likelihood == VD_LIK_GAUSSIAN)
        ADD(", gaussian s^2 %g", exp((double)s->obs_logvar));
    if (s->n_classes > 0)
        ADD(", %d classes", s->n_classes);
#undef ADD
}

int vae_shape_equal(const VaeShape *a, const VaeShape *b)
{
    int same = a->n_input == b->n_input && a->n_latent == b->n_latent &&
               a->n_hidden == b->n_hidden && a->activation == b->activation &&
               a->likelihood == b->likelihood && a->n_classes == b->n_classes &&
               a->n_conv == b->n_conv;
    for (int l = 0; same && l < a->n_hidden; l++)
        same = a->hidden[l] == b->hidden[l];
    for (int l = 0; same && l < a->n_conv; l++)
        same = a->conv[l] == b->conv[l];
    if (same && a->n_conv) /* an MLP's input is D values, whatever their shape */
        same = a->in_c == b->in_c && a->in_h == b->in_h && a->in_w == b->in_w;
    if (same && a->likelihood == VD_LIK_GAUSSIAN) /* the fixed variance is part of the model */
        same = a->learn_var == b->learn_var && (a->learn_var || a->obs_logvar == b->obs_logvar);
    return same;
}

/* NULL, or why s is not a model. */
static const char *check_shape(const VaeShape *s)
{
    if (s->n_input < 1 || s->n_latent < 1)
        return "input and latent sizes must be positive";
    if (s->n_hidden < 1 || s->n_hidden > VD_MAX_HIDDEN)
        return "the model needs 1 to 8 hidden layers";
    for (int l = 0; l < s->n_hidden; l++)
        if (s->hidden[l] < 1)
            return "hidden layer sizes must be positive";
    if (s->n_conv < 0 || s->n_conv > VD_MAX_CONV)
        return "the model takes 0 to 6 convolutions";
    for (int l = 0; l < s->n_conv; l++)
        if (s->conv[l] < 1 || s->conv[l] > 1 << 16)
            return "convolution channels must be in [1, 65536]";
    if (s->n_conv && (s->in_c < 1 || s->in_h < 1 || s->in_w < 1 || s->in_c > 1 << 16 ||
                      (double)s->in_c * s->in_h * s->in_w != (double)s->n_input))
        return "a convolutional model needs an image input of h x w x c = D values";
    if ((s->activation != VD_ACT_RELU && s->activation != VD_ACT_TANH) ||
        (s->likelihood != VD_LIK_BERNOULLI && s->likelihood != VD_LIK_GAUSSIAN))
        return "unknown activation or likelihood";
    if (s->n_classes < 0 || s->n_classes > 1 << 20 || !isfinite(s->obs_logvar) ||
        fabsf(s->obs_logvar) > 50.0f)
        return "class count or variance out of range";
    return NULL;
}

/* A bound on the parameter count and on every layer's activations, so a
 * hostile checkpoint header is an error and not an allocation of terabytes:
 * 2^31 floats (8 GiB). NULL or why. */
static const char *check_size(const Vae *m)
{
    double count = (double)m->shape.n_classes * m->shape.n_latent;
    for (int i = 0; i < m->n_layers; i++) {
        const Layer *l = &m->layers[i];
        TensorSpec spec[4];
        int n = l->kind->tensors(l, spec);
        for (int k = 0; k < n; k++) {
            double c = 1;
            for (int j = 0; j < spec[k].n_dims; j++)
                c *= spec[k].dims[j];
            count += c;
        }
        if ((double)l->out_c * l->out_h * l->out_w > 1 << 24)
            return "a layer of more than 2^24 values per sample";
    }
    return count > 2147483648.0 ? "more than 2^31 parameters" : NULL;
}

double vae_shape_params(const VaeShape *shape)
{
    if (check_shape(shape))
        return -1;
    Vae *m = vd_calloc(1, sizeof *m);
    m->shape = *shape;
    double count = -1;
    if (!build_layers(m, shape) && !check_size(m)) {
        add_tensors(m);
        count = (double)m->n_params;
    }
    vd_free(m);
    return count;
}

Vae *vae_create(const VaeShape *shape, const char **why)
{
    if ((*why = check_shape(shape)))
        return NULL;
    Vae *m = vd_calloc(1, sizeof *m);
    m->shape = *shape;
    if ((*why = build_layers(m, shape)) || (*why = check_size(m))) {
        vd_free(m);
        return NULL;
    }
    add_tensors(m);
    m->params = vd_calloc(m->n_params, sizeof(float));
    m->grads = vd_calloc(m->n_params + VD_GRAD_EXTRA, sizeof(float));
    m->adam_m = vd_calloc(m->n_params, sizeof(float));
    m->adam_v = vd_calloc(m->n_params, sizeof(float));
    bind_views(m, m->params, &m->p);
    bind_views(m, m->grads, &m->g);
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
    if (params && grads) {
        bind_views(m, m->params, &m->p);
        bind_views(m, m->grads, &m->g);
    } else { /* no buffers: no views into them */
        memset(&m->p, 0, sizeof m->p);
        memset(&m->g, 0, sizeof m->g);
    }
}

void vae_free(Vae *m)
{
    if (!m)
        return;
    free_buffers(m);
    vd_free(m);
}

const VaeTensor *vae_tensor(const Vae *m, const char *name)
{
    for (int t = 0; t < m->n_tensors; t++)
        if (strcmp(m->tensors[t].name, name) == 0)
            return &m->tensors[t];
    return NULL;
}

void vae_init_params(Vae *m, uint64_t seed)
{
    Rng r = rng_stream(seed, VD_STREAM_INIT, 0);
    for (int t = 0; t < m->n_tensors; t++) {
        const VaeTensor *ten = &m->tensors[t];
        size_t n = (size_t)ten->rows * (size_t)(ten->cols ? ten->cols : 1);
        if (strcmp(ten->name, "likelihood.logvar") == 0)
            m->params[ten->offset] = m->shape.obs_logvar;
        else if (ten->fan_in == 0) /* the prior means */
            memset(m->params + ten->offset, 0, sizeof(float) * n);
        else {
            float bound = 1.0f / sqrtf((float)ten->fan_in);
            rng_uniform_fill(&r, (uint32_t)t, 0, n, -bound, bound, m->params + ten->offset);
        }
    }
}

double vae_forward_macs(const Vae *m)
{
    double macs = 0;
    for (int i = 0; i < m->n_layers; i++)
        macs += m->layers[i].kind->macs(&m->layers[i]);
    return macs;
}

double vae_first_layer_macs(const Vae *m) { return m->layers[0].kind->macs(&m->layers[0]); }

/* ---- work buffers ----------------------------------------------------- */

VaeWork *vae_work_create(const Vae *m, int max_batch)
{
    const VaeShape *s = &m->shape;
    VaeWork *w = vd_calloc(1, sizeof *w);
    size_t B = (size_t)max_batch, widest = (size_t)s->n_input, scratch = 0;
    w->max_batch = max_batch;
    w->x = vd_calloc(B * s->n_input, sizeof(float));
    w->eps = vd_calloc(B * s->n_latent, sizeof(float));
    w->y = vd_calloc(B, sizeof(int32_t));
    for (int i = 0; i < m->n_layers; i++) {
        const Layer *l = &m->layers[i];
        size_t out = layer_out_size(l), saved = l->kind->saved_floats(l, max_batch);
        size_t sc = l->kind->scratch_floats(l, max_batch);
        w->out[i] = vd_calloc(B * out, sizeof(float));
        w->saved[i] = saved ? vd_calloc(saved, sizeof(float)) : NULL;
        widest = out > widest ? out : widest;
        scratch = sc > scratch ? sc : scratch;
    }
    w->head = w->out[m->head];
    w->logits = w->out[m->n_layers - 1];
    w->z = vd_calloc(B * s->n_latent, sizeof(float));
    w->dact[0] = vd_calloc(B * widest, sizeof(float));
    w->dact[1] = vd_calloc(B * widest, sizeof(float));
    w->dhead = vd_calloc(B * 2 * s->n_latent, sizeof(float));
    w->scratch = scratch ? vd_calloc(scratch, sizeof(float)) : NULL;
    w->recon = vd_calloc(B, sizeof(double));
    w->kl = vd_calloc(B, sizeof(double));
    return w;
}

void vae_work_free(VaeWork *w)
{
    if (!w)
        return;
    vd_free(w->x);
    vd_free(w->eps);
    vd_free(w->y);
    for (int i = 0; i < VD_MAX_LAYERS; i++) {
        vd_free(w->out[i]);
        vd_free(w->saved[i]);
    }
    vd_free(w->z);
    vd_free(w->dact[0]);
    vd_free(w->dact[1]);
    vd_free(w->dhead);
    vd_free(w->scratch);
    vd_free(w->recon);
    vd_free(w->kl);
    vd_free(w);
}

/* ---- kernels ---------------------------------------------------------- */

/* exp(x) for x <= 0, relative error about 1e-7, flushing to 0 below -87.3;
 * branch-free so that loops over it vectorize (libm's expf is a call).
 * Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2, then a degree-6
 * polynomial for exp(r) (coefficients as in Cephes' expf, Moshier 1989). */
static inline float exp_nonpos(float x)
{
    x = x > -87.3f ? x : -87.3f;
    float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f; /* round to nearest */
    float r = x - n * 0.693359375f + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    union { int32_t i; float f; } scale = {.i = ((int32_t)n + 127) << 23}; /* 2^n, n >= -126 */
    return p * scale.f;
}

/* log(u) for u in [1, 2], about 1 ulp: u = 2^k (1 + f) with 1 + f in
 * [sqrt(1/2), sqrt(2)), then Cephes' logf polynomial in f. */
static inline float log_1to2(float u)
{
    int big = u > 1.41421356f;
    float f = big ? 0.5f * u - 1.0f : u - 1.0f, k = big ? 1.0f : 0.0f, z = f * f;
    float p = 7.0376836292e-2f;
    p = p * f - 1.1514610310e-1f;
    p = p * f + 1.1676998740e-1f;
    p = p * f - 1.2420140846e-1f;
    p = p * f + 1.4249322787e-1f;
    p = p * f - 1.6668057665e-1f;
    p = p * f + 2.0000714765e-1f;
    p = p * f - 2.4999993993e-1f;
    p = p * f + 3.3333331174e-1f;
    float y = f * z * p - 2.12194440e-4f * k - 0.5f * z;
    return f + y + 0.693359375f * k;
}

VD_VECTOR_CLONES
void bernoulli_loss(double *recon, float *dlogits, const float *logits, const float *x, int B,
                    int D)
{
    enum { CHUNK = 256 };
    float terms[CHUNK];
    for (int i = 0; i < B; i++) {
        const float *a = logits + (size_t)i * D, *xi = x + (size_t)i * D;
        float *da = dlogits ? dlogits + (size_t)i * D : NULL;
        double sum = 0.0;
        for (int j0 = 0; j0 < D; j0 += CHUNK) {
            int len = D - j0 < CHUNK ? D - j0 : CHUNK;
            /* vectorized: softplus(a) - x a from logits (never log(sigmoid)),
             * as (a > 0 ? (1 - x) a : -x a) + log1p(e), e = exp(-|a|), which
             * does not cancel when x = 1 and a is large. log1p(e) = log(u) +
             * (e - (u - 1)) / u, u = 1 + e rounded: the second term restores
             * what rounding u lost, so tiny e stays exact; 1/u also gives the
             * sigmoid, one division per value. */
            for (int j = 0; j < len; j++) {
                float aj = a[j0 + j], e = exp_nonpos(-fabsf(aj)), u = 1.0f + e, r = 1.0f / u;
                float log1p_e = log_1to2(u) + (e - (u - 1.0f)) * r;
                terms[j] = (aj > 0.0f ? (1.0f - xi[j0 + j]) * aj : -xi[j0 + j] * aj) + log1p_e;
                if (da) /* sigmoid(a) - x; may overwrite a[j] in place */
                    da[j0 + j] = (aj >= 0.0f ? 1.0f : e) * r - xi[j0 + j];
            }
            for (int j = 0; j < len; j++)
                sum += terms[j];
        }
        recon[i] = sum;
    }
}

VD_VECTOR_CLONES
void gaussian_loss(double *recon, float *da, const float *a, const float *x, float logvar, int B,
                   int D)
{
    double norm = 0.5 * D * (log(2.0 * M_PI) + (double)logvar);
    float inv = expf(-logvar);
    for (int i = 0; i < B; i++) {
        const float *ai = a + (size_t)i * D, *xi = x + (size_t)i * D;
        float *di = da ? da + (size_t)i * D : NULL;
        double sum = 0.0;
        for (int j0 = 0; j0 < D; j0 += 256) { /* float sums of 256, carried in double */
            int end = D - j0 < 256 ? D : j0 + 256;
            float sq = 0.0f;
            for (int j = j0; j < end; j++) {
                float r = ai[j] - xi[j];
                sq += r * r;
                if (di)
                    di[j] = r * inv; /* after reading ai[j]: di may alias a */
            }
            sum += sq;
        }
        recon[i] = 0.5 * sum * (double)inv + norm;
    }
}

void reparam_row(float *z, const float *mu, const float *lv, const float *eps, int d)
{
    for (int j = 0; j < d; j++)
        z[j] = mu[j] + sqrtf(expf(lv[j])) * eps[j];
}

void reparam_sample(float *z, const float *head, const float *eps, int B, int d)
{
    for (int i = 0; i < B; i++) {
        const float *mu = head + (size_t)i * 2 * d;
        reparam_row(z + (size_t)i * d, mu, mu + d, eps + (size_t)i * d, d);
    }
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

void reparam_kl_forward(float *z, double *kl, const float *head, const float *eps,
                        const float *means, const int32_t *y, int B, int d)
{
    reparam_sample(z, head, eps, B, d);
    for (int i = 0; i < B; i++) {
        const float *mu = head + (size_t)i * 2 * d;
        kl[i] = kl_diag(mu, mu + d, means ? means + (size_t)y[i] * d : NULL, d);
    }
}

void reparam_kl_backward(float *dhead, float *dmeans, const float *dz, const float *head,
                         const float *eps, const float *means, const int32_t *y, float beta, int B,
                         int d)
{
    for (int i = 0; i < B; i++) {
        const float *mu = head + (size_t)i * 2 * d, *lv = mu + d;
        const float *dzi = dz + (size_t)i * d, *e = eps + (size_t)i * d;
        const float *mi = means ? means + (size_t)y[i] * d : NULL;
        float *dmi = dmeans ? dmeans + (size_t)y[i] * d : NULL;
        float *dmu = dhead + (size_t)i * 2 * d, *dlv = dmu + d;
        for (int j = 0; j < d; j++) {
            float var = expf(lv[j]), c = mi ? mu[j] - mi[j] : mu[j];
            dmu[j] = dzi[j] + beta * c;
            dlv[j] = dzi[j] * 0.5f * sqrtf(var) * e[j] + beta * 0.5f * (var - 1.0f);
            if (dmi)
                dmi[j] -= beta * c;
        }
    }
}

/* ---- whole model ------------------------------------------------------ */

float vae_obs_logvar(const Vae *m)
{
    return m->p.obs_logvar ? *m->p.obs_logvar : m->shape.obs_logvar;
}

/* Layers [from, to) on n rows of in; returns the last one's output. */
static const float *run_layers(const Vae *m, VaeWork *w, int from, int to, const float *in, int n)
{
    for (int i = from; i < to; i++) {
        const Layer *l = &m->layers[i];
        LayerParams p = vae_layer_params(m, m->params, l);
        l->kind->forward(l, &p, w->out[i], in, n, w->scratch, w->saved[i]);
        act_forward(l->act, w->out[i], (size_t)n * layer_out_size(l));
        in = w->out[i];
    }
    return in;
}

void vae_encode(const Vae *m, VaeWork *w, int n) { run_layers(m, w, 0, m->head + 1, w->x, n); }

void vae_decode_logits(const Vae *m, VaeWork *w, const float *z, int n)
{
    run_layers(m, w, m->head + 1, m->n_layers, z, n);
}

/* w->recon for rows [0, n); with want_grad, w->logits becomes dR/doutputs. */
static void recon_loss(const Vae *m, VaeWork *w, int n, int want_grad)
{
    int D = m->shape.n_input;
    float *grad = want_grad ? w->logits : NULL;
    if (m->shape.likelihood == VD_LIK_GAUSSIAN)
        gaussian_loss(w->recon, grad, w->logits, w->x, vae_obs_logvar(m), n, D);
    else
        bernoulli_loss(w->recon, grad, w->logits, w->x, n, D);
}

void vae_recon(const Vae *m, VaeWork *w, int n) { recon_loss(m, w, n, 0); }

double vae_forward(const Vae *m, VaeWork *w, int n, float beta, int want_grad)
{
    const VaeShape *s = &m->shape;
    vae_encode(m, w, n);
    reparam_kl_forward(w->z, w->kl, w->head, w->eps, m->p.prior_mean, w->y, n, s->n_latent);
    vae_decode_logits(m, w, w->z, n);
    recon_loss(m, w, n, want_grad);
    double total = 0.0;
    for (int i = 0; i < n; i++)
        total += w->recon[i] + (double)beta * w->kl[i];
    return total;
}

void vae_backward(Vae *m, VaeWork *w, int n, float beta)
{
    vae_backward_hook(m, w, n, beta, NULL, NULL);
}

/* Layers [to, from] backward, from the gradient dout of layer from's output
 * (after its activation's derivative is applied) down to layer to, whose
 * input is in0; din of layer to goes to din0 unless NULL. Returns the last
 * din. ready hears of each layer's gradients as they are final. */
static const float *backward_layers(Vae *m, VaeWork *w, int from, int to, const float *dout,
                                    const float *in0, float *din0, int n,
                                    void (*ready)(void *, size_t), void *ctx)
{
    int cur = 0;
    for (int i = from; i >= to; i--) {
        const Layer *l = &m->layers[i];
        const float *in = i > to ? w->out[i - 1] : in0;
        float *din = i > to ? w->dact[cur] : din0;
        LayerParams p = vae_layer_params(m, m->params, l), g = vae_layer_params(m, m->grads, l);
        l->kind->backward(l, &p, &g, din, dout, in, n, w->scratch, w->saved[i]);
        if (ready) /* its weight comes first in the buffer */
            ready(ctx, m->tensors[l->t_weight].offset);
        if (i > to)
            act_backward(m->layers[i - 1].act, din, w->out[i - 1],
                         (size_t)n * layer_out_size(&m->layers[i - 1]));
        dout = din;
        cur ^= 1;
    }
    return dout;
}

void vae_backward_hook(Vae *m, VaeWork *w, int n, float beta, void (*ready)(void *, size_t),
                       void *ctx)
{
    const VaeShape *s = &m->shape;
    int d = s->n_latent;
    if (m->g.obs_logvar) {
        /* R = Q / s^2 + 0.5 D log(2 pi s^2), Q the half squared error, so
         * dR/dlog s^2 = 0.5 D - Q / s^2 = 0.5 D - (R - 0.5 D log(2 pi s^2)) */
        double half_d = 0.5 * s->n_input, norm = half_d * (log(2.0 * M_PI) + *m->p.obs_logvar);
        double g = 0.0;
        for (int i = 0; i < n; i++)
            g += half_d - (w->recon[i] - norm);
        *m->g.obs_logvar = (float)g;
        if (ready)
            ready(ctx, (size_t)(m->g.obs_logvar - m->grads));
    }
    /* decoder: w->logits already holds dR/doutputs; its first layer's input
     * gradient is dR/dz (n, d), in the ping-pong buffer not in use */
    int last = m->n_layers - 1, dec0 = m->head + 1;
    float *dz = w->dact[(last - dec0) & 1];
    backward_layers(m, w, last, dec0, w->logits, w->z, dz, n, ready, ctx);
    /* the prior means' gradient sums over rows */
    if (m->g.prior_mean)
        memset(m->g.prior_mean, 0, sizeof(float) * (size_t)s->n_classes * d);
    reparam_kl_backward(w->dhead, m->g.prior_mean, dz, w->head, w->eps, m->p.prior_mean, w->y,
                        beta, n, d);
    if (ready && m->g.prior_mean)
        ready(ctx, (size_t)(m->g.prior_mean - m->grads));
    backward_layers(m, w, m->head, 0, w->dhead, w->x, NULL, n, ready, ctx);
}

void vae_output_mean(const Vae *m, const float *outputs, int n, float *out)
{
    size_t total = (size_t)n * m->shape.n_input;
    if (m->shape.likelihood == VD_LIK_GAUSSIAN) {
        if (out != outputs)
            memcpy(out, outputs, sizeof(float) * total);
        return;
    }
    for (size_t i = 0; i < total; i++)
        out[i] = 1.0f / (1.0f + expf(-outputs[i]));
}

void vae_decode(const Vae *m, VaeWork *w, const float *z, int n, float *out)
{
    vae_decode_logits(m, w, z, n);
    vae_output_mean(m, w->logits, n, out);
}

/* ---- what a trained model is used for --------------------------------- */

void vae_importance(const Vae *m, VaeWork *w, const float *x, const int32_t *y, int n, int K,
                    const Rng *rng, int64_t row0, IwRow *out)
{
    int D = m->shape.n_input, d = m->shape.n_latent;
    int chunk = K < w->max_batch ? K : w->max_batch;
    double *lw = w->kl; /* (chunk) log weights; vae_encode leaves w->kl alone */
    memcpy(w->x, x, sizeof(float) * (size_t)n * D);
    vae_encode(m, w, n);
    for (int i = 0; i < n; i++) {
        const float *mu = w->head + (size_t)i * 2 * d, *lv = mu + d;
        const float *prior = m->p.prior_mean ? m->p.prior_mean + (size_t)y[i] * d : NULL;
        double half_lv = 0.0;
        for (int j = 0; j < d; j++)
            half_lv += 0.5 * lv[j];
        out[i].kl = kl_diag(mu, lv, prior, d);
        /* the decoder's target: chunk copies of row i (w->x is free after encoding) */
        for (int k = 0; k < chunk; k++)
            memcpy(w->x + (size_t)k * D, x + (size_t)i * D, sizeof(float) * (size_t)D);
        double top = -INFINITY, sum = 0.0, recon = 0.0;
        for (int k0 = 0; k0 < K; k0 += chunk) {
            int c = K - k0 < chunk ? K - k0 : chunk;
            rng_normal_fill(rng, 0, ((uint64_t)(row0 + i) * (uint64_t)K + (uint64_t)k0) * (uint64_t)d,
                            (size_t)c * d, w->eps);
            for (int k = 0; k < c; k++) { /* every draw k from row i's mu and lv */
                const float *e = w->eps + (size_t)k * d;
                float *z = w->z + (size_t)k * d;
                reparam_row(z, mu, lv, e, d);
                double t = 0.0;
                for (int j = 0; j < d; j++) {
                    double zc = prior ? (double)z[j] - prior[j] : z[j];
                    t += (double)e[j] * e[j] - zc * zc;
                }
                lw[k] = 0.5 * t + half_lv;
            }
            vae_decode_logits(m, w, w->z, c);
            vae_recon(m, w, c);
            for (int k = 0; k < c; k++) {
                double v = lw[k] - w->recon[k];
                recon += w->recon[k];
                if (v > top) { /* rescale the running sum to the new maximum */
                    sum = sum * exp(top - v) + 1.0;
                    top = v;
                } else {
                    sum += exp(v - top);
                }
            }
        }
        out[i].recon = recon / K;
        out[i].log_px = top + log(sum) - log((double)K);
    }
}

void vae_prior_draws(const Vae *m, uint64_t seed, int n, int cols, int cls, float *z, int32_t *y)
{
    int d = m->shape.n_latent, C = m->shape.n_classes;
    Rng prior = rng_stream(seed, VD_STREAM_EVAL, 0);
    rng_normal_fill(&prior, UINT32_MAX, 0, (size_t)n * d, z);
    for (int k = 0; k < n; k++) {
        y[k] = C == 0 ? 0 : cls >= 0 ? cls : k / cols % C;
        if (C > 0)
            for (int j = 0; j < d; j++)
                z[(size_t)k * d + j] += m->p.prior_mean[(size_t)y[k] * d + j];
    }
}

/* ---- double-precision oracle ------------------------------------------ */

double vae_loss_ref(const Vae *m, const double *params, const double *x, const double *eps,
                    const int32_t *y, int n, double beta, double *recon_sum, double *kl_sum)
{
    const VaeTensor *pm = vae_tensor(m, "prior.mean"), *plv = vae_tensor(m, "likelihood.logvar");
    double logvar = plv ? params[plv->offset] : (double)m->shape.obs_logvar;
    const VaeShape *s = &m->shape;
    int d = s->n_latent, D = s->n_input;
    size_t widest = (size_t)D;
    for (int i = 0; i < m->n_layers; i++)
        widest = layer_out_size(&m->layers[i]) > widest ? layer_out_size(&m->layers[i]) : widest;
    double *a = vd_calloc(widest, sizeof(double)), *b = vd_calloc(widest, sizeof(double));
    double rsum = 0.0, ksum = 0.0;
    for (int r = 0; r < n; r++) {
        memcpy(a, x + (size_t)r * D, sizeof(double) * (size_t)D);
        for (int i = 0; i < m->n_layers; i++) {
            const Layer *l = &m->layers[i];
            l->kind->forward_ref(l, params + m->tensors[l->t_weight].offset,
                                 params + m->tensors[l->t_bias].offset, b, a);
            act_ref(l->act, b, layer_out_size(l));
            memcpy(a, b, sizeof(double) * layer_out_size(l));
            if (i != m->head)
                continue;
            /* a = [mu | lv]: the sample and its KL, then the decoder from z */
            for (int j = 0; j < d; j++) {
                double mu = a[j], lv = a[d + j];
                double c = pm ? mu - params[pm->offset + (size_t)y[r] * d + j] : mu;
                ksum += 0.5 * (c * c + exp(lv) - lv - 1.0);
                b[j] = mu + exp(0.5 * lv) * eps[(size_t)r * d + j];
            }
            memcpy(a, b, sizeof(double) * (size_t)d);
        }
        for (int j = 0; j < D; j++) {
            double lg = a[j], xj = x[(size_t)r * D + j];
            if (s->likelihood == VD_LIK_GAUSSIAN)
                rsum += (xj - lg) * (xj - lg) / (2.0 * exp(logvar)) +
                        0.5 * (log(2.0 * M_PI) + logvar);
            else
                rsum += fmax(lg, 0.0) + log1p(exp(-fabs(lg))) - xj * lg;
        }
    }
    vd_free(a);
    vd_free(b);
    if (recon_sum)
        *recon_sum = rsum;
    if (kl_sum)
        *kl_sum = ksum;
    return rsum + beta * ksum;
}
