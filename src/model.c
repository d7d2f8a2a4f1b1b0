/* model.c — VAE layout, init, forward and backward. See model.h. */
#include "model.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "rng.h"
#include "util.h"

/* ---- layout ----------------------------------------------------------- */

static void add_tensor(Vae *m, const char *name, int rows, int cols)
{
    VaeTensor *t = &m->tensors[m->n_tensors++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->offset = m->n_params;
    t->rows = rows;
    t->cols = cols;
    m->n_params += (size_t)rows * (size_t)(cols ? cols : 1);
}

static void add_linear(Vae *m, const char *prefix, int n_in, int n_out)
{
    char name[32];
    snprintf(name, sizeof name, "%.20s.weight", prefix);
    add_tensor(m, name, n_out, n_in);
    snprintf(name, sizeof name, "%.20s.bias", prefix);
    add_tensor(m, name, n_out, 0);
}

/* Points every Linear of v at base, following m's tensor table order. */
static void bind_views(const Vae *m, float *base, VaeLayers *v)
{
    const VaeShape *s = &m->shape;
    int L = s->n_hidden, d = s->n_latent, t = 0;
    for (int l = 0; l < L; l++, t += 2) {
        v->enc[l] = (Linear){base + m->tensors[t].offset, base + m->tensors[t + 1].offset,
                             m->tensors[t].cols, m->tensors[t].rows};
    }
    /* mu.weight, logvar.weight, mu.bias, logvar.bias: one (2d, H) matrix and one (2d) vector. */
    v->head = (Linear){base + m->tensors[t].offset, base + m->tensors[t + 2].offset,
                       s->hidden[L - 1], 2 * d};
    t += 4;
    v->prior_mean = s->n_classes > 0 ? base + m->tensors[t++].offset : NULL;
    for (int l = 0; l <= L; l++, t += 2) {
        v->dec[l] = (Linear){base + m->tensors[t].offset, base + m->tensors[t + 1].offset,
                             m->tensors[t].cols, m->tensors[t].rows};
    }
    v->obs_logvar = s->likelihood == VD_LIK_GAUSSIAN && s->learn_var ? base + m->tensors[t].offset
                                                                     : NULL;
}

void vae_shape_text(const VaeShape *s, char *buf, size_t n)
{
    size_t used = (size_t)snprintf(buf, n, "%d", s->n_input);
#define ADD(...) (used += used < n ? (size_t)snprintf(buf + used, n - used, __VA_ARGS__) : 0)
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
               a->likelihood == b->likelihood && a->n_classes == b->n_classes;
    for (int l = 0; same && l < a->n_hidden; l++)
        same = a->hidden[l] == b->hidden[l];
    if (same && a->likelihood == VD_LIK_GAUSSIAN) /* the fixed variance is part of the model */
        same = a->learn_var == b->learn_var && (a->learn_var || a->obs_logvar == b->obs_logvar);
    return same;
}

Vae *vae_create(const VaeShape *shape, const char **why)
{
    const VaeShape *s = shape;
    if (s->n_input < 1 || s->n_latent < 1) {
        *why = "input and latent sizes must be positive";
        return NULL;
    }
    if (s->n_hidden < 1 || s->n_hidden > VD_MAX_HIDDEN) {
        *why = "the model needs 1 to 8 hidden layers";
        return NULL;
    }
    for (int l = 0; l < s->n_hidden; l++) {
        if (s->hidden[l] < 1) {
            *why = "hidden layer sizes must be positive";
            return NULL;
        }
    }
    if ((s->activation != VD_ACT_RELU && s->activation != VD_ACT_TANH) ||
        (s->likelihood != VD_LIK_BERNOULLI && s->likelihood != VD_LIK_GAUSSIAN)) {
        *why = "unknown activation or likelihood";
        return NULL;
    }
    if (s->n_classes < 0 || s->n_classes > 1 << 20 || !isfinite(s->obs_logvar) ||
        fabsf(s->obs_logvar) > 50.0f) {
        *why = "class count or variance out of range";
        return NULL;
    }
    /* a bound on the parameter count, so a hostile checkpoint header is an
     * error and not an allocation of terabytes: 2^31 floats (8 GiB) */
    double count = (double)s->n_classes * s->n_latent + 4.0 * s->n_input * s->hidden[0];
    for (int l = 1; l < s->n_hidden; l++)
        count += 2.0 * s->hidden[l] * s->hidden[l - 1];
    count += 4.0 * s->hidden[s->n_hidden - 1] * s->n_latent;
    if (count > 2147483648.0) {
        *why = "more than 2^31 parameters";
        return NULL;
    }
    Vae *m = vd_calloc(1, sizeof *m);
    m->shape = *s;
    int L = s->n_hidden, d = s->n_latent;
    char name[32];
    for (int l = 0; l < L; l++) {
        snprintf(name, sizeof name, "encoder.%d", l);
        add_linear(m, name, l ? s->hidden[l - 1] : s->n_input, s->hidden[l]);
    }
    add_tensor(m, "mu.weight", d, s->hidden[L - 1]);
    add_tensor(m, "logvar.weight", d, s->hidden[L - 1]);
    add_tensor(m, "mu.bias", d, 0);
    add_tensor(m, "logvar.bias", d, 0);
    if (s->n_classes > 0)
        add_tensor(m, "prior.mean", s->n_classes, d);
    for (int l = 0; l <= L; l++) {
        int n_in = l ? s->hidden[L - l] : d;
        int n_out = l < L ? s->hidden[L - 1 - l] : s->n_input;
        snprintf(name, sizeof name, "decoder.%d", l);
        add_linear(m, name, n_in, n_out);
    }
    if (s->likelihood == VD_LIK_GAUSSIAN && s->learn_var)
        add_tensor(m, "likelihood.logvar", 1, 0);
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
        if (strcmp(ten->name, "prior.mean") == 0) {
            memset(m->params + ten->offset, 0, sizeof(float) * (size_t)ten->rows * ten->cols);
            continue;
        }
        if (strcmp(ten->name, "likelihood.logvar") == 0) {
            m->params[ten->offset] = m->shape.obs_logvar;
            continue;
        }
        /* fan_in of a weight is its cols; a bias shares its weight's. */
        int fan_in = ten->cols;
        if (!fan_in) {
            char wname[40];
            snprintf(wname, sizeof wname, "%.*s.weight", (int)(strlen(ten->name) - 5), ten->name);
            fan_in = vae_tensor(m, wname)->cols;
        }
        float bound = 1.0f / sqrtf((float)fan_in);
        size_t n = (size_t)ten->rows * (size_t)(ten->cols ? ten->cols : 1);
        rng_uniform_fill(&r, (uint32_t)t, 0, n, -bound, bound, m->params + ten->offset);
    }
}

double vae_forward_macs(const VaeShape *s)
{
    int L = s->n_hidden, d = s->n_latent;
    double macs = 0, in = s->n_input;
    for (int l = 0; l < L; l++) {
        macs += in * s->hidden[l];
        in = s->hidden[l];
    }
    macs += in * 2.0 * d;
    in = d;
    for (int l = L - 1; l >= 0; l--) {
        macs += in * s->hidden[l];
        in = s->hidden[l];
    }
    return macs + in * s->n_input;
}

/* ---- work buffers ----------------------------------------------------- */

VaeWork *vae_work_create(const VaeShape *s, int max_batch)
{
    VaeWork *w = vd_calloc(1, sizeof *w);
    size_t B = (size_t)max_batch;
    int L = s->n_hidden, d = s->n_latent, widest = s->n_input > 2 * d ? s->n_input : 2 * d;
    w->max_batch = max_batch;
    w->x = vd_calloc(B * s->n_input, sizeof(float));
    w->eps = vd_calloc(B * d, sizeof(float));
    w->y = vd_calloc(B, sizeof(int32_t));
    for (int l = 0; l < L; l++) {
        w->enc[l] = vd_calloc(B * s->hidden[l], sizeof(float));
        w->dec[l] = vd_calloc(B * s->hidden[L - 1 - l], sizeof(float));
        if (s->hidden[l] > widest)
            widest = s->hidden[l];
    }
    w->head = vd_calloc(B * 2 * d, sizeof(float));
    w->z = vd_calloc(B * d, sizeof(float));
    w->logits = vd_calloc(B * s->n_input, sizeof(float));
    w->dact[0] = vd_calloc(B * widest, sizeof(float));
    w->dact[1] = vd_calloc(B * widest, sizeof(float));
    w->dhead = vd_calloc(B * 2 * d, sizeof(float));
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
    for (int l = 0; l < VD_MAX_HIDDEN; l++) {
        vd_free(w->enc[l]);
        vd_free(w->dec[l]);
    }
    vd_free(w->head);
    vd_free(w->z);
    vd_free(w->logits);
    vd_free(w->dact[0]);
    vd_free(w->dact[1]);
    vd_free(w->dhead);
    vd_free(w->recon);
    vd_free(w->kl);
    vd_free(w);
}

/* ---- kernels ---------------------------------------------------------- */

void linear_forward(float *out, const float *in, const Linear *l, int B)
{
    /* out (B, n_out) = bias, then += in (B, n_in) W^T, W (n_out, n_in) */
    for (int i = 0; i < B; i++)
        memcpy(out + (size_t)i * l->n_out, l->b, sizeof(float) * (size_t)l->n_out);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, l->n_out, l->n_in, 1.0f, in,
                l->n_in, l->w, l->n_in, 1.0f, out, l->n_out);
}

void linear_backward(float *din, Linear *dl, const float *dout, const float *in, const Linear *l,
                     int B)
{
    /* dW (n_out, n_in) = dout^T (n_out, B) in (B, n_in): beta 0 writes over
     * whatever the buffer held, so no pass zeroes it first */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, l->n_out, l->n_in, B, 1.0f, dout,
                l->n_out, in, l->n_in, 0.0f, dl->w, l->n_in);
    memcpy(dl->b, dout, sizeof(float) * (size_t)l->n_out);
    for (int i = 1; i < B; i++) {
        const float *row = dout + (size_t)i * l->n_out;
        for (int j = 0; j < l->n_out; j++)
            dl->b[j] += row[j];
    }
    /* din (B, n_in) = dout (B, n_out) W (n_out, n_in) */
    if (din)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, l->n_in, l->n_out, 1.0f, dout,
                    l->n_out, l->w, l->n_in, 0.0f, din, l->n_in);
}

void linear_forward_ref(double *out, const double *in, const double *w, const double *b, int B,
                        int n_in, int n_out)
{
    for (int i = 0; i < B; i++)
        for (int o = 0; o < n_out; o++) {
            double acc = b[o];
            for (int k = 0; k < n_in; k++)
                acc += in[(size_t)i * n_in + k] * w[(size_t)o * n_in + k];
            out[(size_t)i * n_out + o] = acc;
        }
}

/* x (n) = act(x) */
VD_VECTOR_CLONES static void act_forward(int act, float *x, size_t n)
{
    if (act == VD_ACT_TANH)
        for (size_t i = 0; i < n; i++)
            x[i] = tanhf(x[i]);
    else
        for (size_t i = 0; i < n; i++)
            x[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

/* dx (n) *= act'(.), from the activation's output out */
VD_VECTOR_CLONES static void act_backward(int act, float *dx, const float *out, size_t n)
{
    if (act == VD_ACT_TANH)
        for (size_t i = 0; i < n; i++)
            dx[i] *= 1.0f - out[i] * out[i];
    else
        for (size_t i = 0; i < n; i++)
            dx[i] = out[i] > 0.0f ? dx[i] : 0.0f;
}

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

void vae_encode(const Vae *m, VaeWork *w, int n)
{
    const VaeShape *s = &m->shape;
    const float *in = w->x;
    for (int l = 0; l < s->n_hidden; l++) {
        linear_forward(w->enc[l], in, &m->p.enc[l], n);
        act_forward(s->activation, w->enc[l], (size_t)n * s->hidden[l]);
        in = w->enc[l];
    }
    linear_forward(w->head, in, &m->p.head, n);
}

void vae_decode_logits(const Vae *m, VaeWork *w, const float *z, int n)
{
    const VaeShape *s = &m->shape;
    int L = s->n_hidden;
    const float *in = z;
    for (int l = 0; l < L; l++) {
        linear_forward(w->dec[l], in, &m->p.dec[l], n);
        act_forward(s->activation, w->dec[l], (size_t)n * s->hidden[L - 1 - l]);
        in = w->dec[l];
    }
    linear_forward(w->logits, in, &m->p.dec[L], n);
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

/* The flat offset where l's gradient starts (its weight or bias, the lower). */
static size_t grad_start(const Vae *m, const Linear *l)
{
    const float *p = l->w < l->b ? l->w : l->b;
    return (size_t)(p - m->grads);
}

void vae_backward(Vae *m, VaeWork *w, int n, float beta)
{
    vae_backward_hook(m, w, n, beta, NULL, NULL);
}

void vae_backward_hook(Vae *m, VaeWork *w, int n, float beta, void (*ready)(void *, size_t),
                       void *ctx)
{
    const VaeShape *s = &m->shape;
    int L = s->n_hidden, d = s->n_latent;
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
    /* decoder: w->logits already holds dR/doutputs */
    const float *dout = w->logits;
    int cur = 0;
    for (int l = L; l >= 0; l--) {
        const float *in = l ? w->dec[l - 1] : w->z;
        float *din = w->dact[cur];
        linear_backward(din, &m->g.dec[l], dout, in, &m->p.dec[l], n);
        if (ready)
            ready(ctx, grad_start(m, &m->g.dec[l]));
        if (l)
            act_backward(s->activation, din, w->dec[l - 1], (size_t)n * s->hidden[L - l]);
        dout = din;
        cur ^= 1;
    }
    /* dout is now dR/dz (n, d); the prior means' gradient sums over rows */
    if (m->g.prior_mean)
        memset(m->g.prior_mean, 0, sizeof(float) * (size_t)s->n_classes * d);
    reparam_kl_backward(w->dhead, m->g.prior_mean, dout, w->head, w->eps, m->p.prior_mean, w->y,
                        beta, n, d);
    if (ready && m->g.prior_mean)
        ready(ctx, (size_t)(m->g.prior_mean - m->grads));
    dout = w->dhead;
    for (int l = L; l >= 0; l--) {
        const float *in = l ? w->enc[l - 1] : w->x;
        Linear *gl = l == L ? &m->g.head : &m->g.enc[l];
        const Linear *pl = l == L ? &m->p.head : &m->p.enc[l];
        float *din = l ? w->dact[cur] : NULL;
        linear_backward(din, gl, dout, in, pl, n);
        if (ready)
            ready(ctx, grad_start(m, gl));
        if (l)
            act_backward(s->activation, din, w->enc[l - 1], (size_t)n * s->hidden[l - 1]);
        dout = din;
        cur ^= 1;
    }
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

static void act_ref(int act, double *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = act == VD_ACT_TANH ? tanh(x[i]) : x[i] > 0.0 ? x[i] : 0.0;
}

double vae_loss_ref(const Vae *m, const double *params, const double *x, const double *eps,
                    const int32_t *y, int n, double beta, double *recon_sum, double *kl_sum)
{
    const VaeTensor *pm = vae_tensor(m, "prior.mean"), *plv = vae_tensor(m, "likelihood.logvar");
    double logvar = plv ? params[plv->offset] : (double)m->shape.obs_logvar;
    const VaeShape *s = &m->shape;
    int L = s->n_hidden, d = s->n_latent, D = s->n_input, widest = D > 2 * d ? D : 2 * d;
    for (int l = 0; l < L; l++)
        if (s->hidden[l] > widest)
            widest = s->hidden[l];
    double *a = vd_calloc((size_t)widest, sizeof(double));
    double *b = vd_calloc((size_t)widest, sizeof(double));
    double rsum = 0.0, ksum = 0.0;
    for (int i = 0; i < n; i++) {
        /* encoder */
        memcpy(a, x + (size_t)i * D, sizeof(double) * (size_t)D);
        int t = 0, width = D;
        for (int l = 0; l < L; l++, t += 2) {
            linear_forward_ref(b, a, params + m->tensors[t].offset,
                               params + m->tensors[t + 1].offset, 1, width, s->hidden[l]);
            width = s->hidden[l];
            act_ref(s->activation, b, (size_t)width);
            memcpy(a, b, sizeof(double) * (size_t)width);
        }
        double mu[256], lv[256], z[256];
        if (d > 256)
            VD_ABORT("vae_loss_ref supports latent sizes up to 256");
        linear_forward_ref(mu, a, params + m->tensors[t].offset,
                           params + m->tensors[t + 2].offset, 1, width, d);
        linear_forward_ref(lv, a, params + m->tensors[t + 1].offset,
                           params + m->tensors[t + 3].offset, 1, width, d);
        t += pm ? 5 : 4;
        for (int j = 0; j < d; j++) {
            double c = pm ? mu[j] - params[pm->offset + (size_t)y[i] * d + j] : mu[j];
            z[j] = mu[j] + exp(0.5 * lv[j]) * eps[(size_t)i * d + j];
            ksum += 0.5 * (c * c + exp(lv[j]) - lv[j] - 1.0);
        }
        /* decoder */
        memcpy(a, z, sizeof(double) * (size_t)d);
        width = d;
        for (int l = 0; l <= L; l++, t += 2) {
            int n_out = l < L ? s->hidden[L - 1 - l] : D;
            linear_forward_ref(b, a, params + m->tensors[t].offset,
                               params + m->tensors[t + 1].offset, 1, width, n_out);
            width = n_out;
            if (l < L)
                act_ref(s->activation, b, (size_t)width);
            memcpy(a, b, sizeof(double) * (size_t)width);
        }
        for (int j = 0; j < D; j++) {
            double lg = a[j], xj = x[(size_t)i * D + j];
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
