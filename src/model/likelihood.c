/* likelihood.c — p(x | z): the Bernoulli likelihood of data in [0, 1] (the
 * decoder's outputs are logits), the Gaussian of continuous data (the
 * outputs are the mean; log s^2 fixed or the learned "likelihood.logvar"),
 * and the discretized logistic of 8-bit data (the outputs are the means;
 * a learned log-scale per channel, "likelihood.logscale"), their losses
 * fused with their gradients. See model_impl.h. Local. */
#include "model_impl.h"

#include <math.h>
#include <string.h>

#include "util.h"

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
                    int k, int D)
{
    enum { CHUNK = 256 };
    float terms[CHUNK];
    for (int i = 0; i < B; i++) {
        const float *a = logits + (size_t)i * D, *xi = x + (size_t)(i / k) * D;
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
                   int k, int D)
{
    double norm = 0.5 * D * (log(2.0 * M_PI) + (double)logvar);
    float inv = expf(-logvar);
    for (int i = 0; i < B; i++) {
        const float *ai = a + (size_t)i * D, *xi = x + (size_t)(i / k) * D;
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

/* log sigmoid(a) = -softplus(-a), without overflow */
static double log_sigmoid(double a) { return a < 0 ? a - log1p(exp(a)) : -log1p(exp(-a)); }

double logistic_bin(double x, double mu, double ls, double *dmu, double *dls)
{
    /* x read as level k of 256, the bin [k - 1/2, k + 1/2] / 255; the edge
     * bins reach to -inf and +inf. With s = e^ls, a = (upper - mu) / s and
     * b = (lower - mu) / s, P = sigmoid(a) - sigmoid(b):
     *   d log P / da = s(a)(1 - s(a)) / P,  d log P / db = -s(b)(1 - s(b)) / P,
     *   da/dmu = -1/s, da/dls = -a (likewise b). */
    double k = floor(x * 255.0 + 0.5), s = exp(ls);
    k = k < 0 ? 0 : k > 255 ? 255 : k;
    double a = (k + 0.5) / 255.0, b = (k - 0.5) / 255.0;
    a = (a - mu) / s;
    b = (b - mu) / s;
    double logp, ga, gb; /* log P, and its derivatives wrt a and b */
    if (k == 0) {        /* P = sigmoid(a) */
        logp = log_sigmoid(a);
        ga = 1.0 / (1.0 + exp(a)), gb = 0.0;
    } else if (k == 255) { /* P = 1 - sigmoid(b) = sigmoid(-b) */
        logp = log_sigmoid(-b);
        ga = 0.0, gb = -1.0 / (1.0 + exp(-b));
    } else {
        /* sigmoid(a) - sigmoid(b) = sigmoid(-b) - sigmoid(-a): take the side
         * away from saturation, and log P = log s(a) + log(1 - e^(log s(b) -
         * log s(a))) without cancellation */
        double la = a > -b ? log_sigmoid(-b) : log_sigmoid(a);
        double lb = a > -b ? log_sigmoid(-a) : log_sigmoid(b);
        logp = la + log(-expm1(lb - la));
        /* s(x)(1 - s(x)) / P in log space: P may be far below any float */
        ga = exp(log_sigmoid(a) + log_sigmoid(-a) - logp);
        gb = -exp(log_sigmoid(b) + log_sigmoid(-b) - logp);
    }
    /* d(-log P): the loss's gradient */
    *dmu = (ga + gb) / s;
    *dls = ga * a + gb * b;
    return -logp;
}

void logistic_loss(double *recon, float *dmu, double *dscale, const float *mu, const float *x,
                   const float *logscale, int B, int k, int D, int C)
{
    for (int i = 0; i < B; i++) {
        const float *m = mu + (size_t)i * D, *xi = x + (size_t)(i / k) * D;
        float *dm = dmu ? dmu + (size_t)i * D : NULL;
        double *ds = dscale ? dscale + (size_t)i * C : NULL, sum = 0.0;
        for (int c = 0; ds && c < C; c++)
            ds[c] = 0.0;
        for (int j = 0; j < D; j++) {
            int c = j % C; /* channels last */
            float ls = logscale[c] < VD_LOGSCALE_MIN ? VD_LOGSCALE_MIN : logscale[c];
            double gm, gs;
            sum += logistic_bin(xi[j], m[j], ls, &gm, &gs);
            if (dm)
                dm[j] = (float)gm;
            if (ds && logscale[c] >= VD_LOGSCALE_MIN)
                ds[c] += gs;
        }
        recon[i] = sum;
    }
}

void lik_forward(const Vae *m, VaeWork *w, const float *x, int want_grad)
{
    const VaePass *p = &w->data;
    int D = m->shape.n_input, rows = p->n * p->k;
    float *out = p->out[m->out], *grad = want_grad ? out : NULL;
    if (m->shape.likelihood == VD_LIK_GAUSSIAN)
        gaussian_loss(w->recon, grad, out, x, vae_obs_logvar(m), rows, p->k, D);
    else if (m->shape.likelihood == VD_LIK_LOGISTIC)
        logistic_loss(w->recon, grad, want_grad ? w->dscale : NULL, out, x,
                      vae_view(m, m->params, m->t_logscale), rows, p->k, D, m->lik_channels);
    else
        bernoulli_loss(w->recon, grad, out, x, rows, p->k, D);
}

void lik_scale(const Vae *m, VaeWork *w)
{
    const VaePass *p = &w->data;
    int D = m->shape.n_input, rows = p->n * p->k;
    for (int r = 0; r < rows; r++) {
        float c = w->coef[r], *g = p->out[m->out] + (size_t)r * D;
        for (int j = 0; j < D; j++)
            g[j] *= c;
    }
}

void lik_backward(Vae *m, VaeWork *w)
{
    const VaePass *p = &w->data;
    if (m->t_logscale >= 0) { /* the log-scales' gradient: each draw's, weighted */
        int C = m->lik_channels;
        float *g = vae_view(m, m->grads, m->t_logscale);
        for (int c = 0; c < C; c++) {
            double sum = 0.0;
            for (int r = 0; r < p->n * p->k; r++)
                sum += (w->use_coef ? w->coef[r] : 1.0) * w->dscale[(size_t)r * C + c];
            g[c] += (float)sum;
        }
    }
    if (m->t_obs_logvar < 0)
        return;
    /* R = Q / s^2 + 0.5 D log(2 pi s^2), Q the half squared error, so
     * dR/dlog s^2 = 0.5 D - Q / s^2 = 0.5 D - (R - 0.5 D log(2 pi s^2)) */
    int rows = p->n * p->k;
    double half_d = 0.5 * m->shape.n_input, norm = half_d * (log(2.0 * M_PI) + vae_obs_logvar(m));
    double g = 0.0;
    for (int r = 0; r < rows; r++)
        g += w->use_coef ? w->coef[r] * (half_d - (w->recon[r] - norm)) : half_d - (w->recon[r] - norm);
    m->grads[m->tensors[m->t_obs_logvar].offset] += (float)g;
}

void vae_output_sample(const Vae *m, const float *outputs, int n, const Rng *r, uint32_t a,
                       uint64_t first, float *out)
{
    int D = m->shape.n_input, C = m->lik_channels, lik = m->shape.likelihood;
    size_t total = (size_t)n * D;
    float *u = vd_calloc(total, sizeof(float));
    if (lik == VD_LIK_GAUSSIAN)
        rng_normal_fill(r, a, first * (uint64_t)D, total, u);
    else
        rng_uniform_fill(r, a, first * (uint64_t)D, total, 0.0f, 1.0f, u);
    float sd = expf(0.5f * vae_obs_logvar(m));
    const float *ls = lik == VD_LIK_LOGISTIC ? vae_view(m, m->params, m->t_logscale) : NULL;
    for (size_t i = 0; i < total; i++) {
        float o = outputs[i];
        if (lik == VD_LIK_GAUSSIAN) {
            out[i] = o + sd * u[i];
        } else if (lik == VD_LIK_BERNOULLI) {
            out[i] = u[i] < act_sigmoid(o) ? 1.0f : 0.0f;
        } else { /* the logistic's quantile, then its level */
            float s = expf(ls[i % (size_t)D % (size_t)C] < VD_LOGSCALE_MIN
                               ? VD_LOGSCALE_MIN
                               : ls[i % (size_t)D % (size_t)C]);
            float p = u[i] < 1e-7f ? 1e-7f : u[i] > 1.0f - 1e-7f ? 1.0f - 1e-7f : u[i];
            float v = floorf((o + s * logf(p / (1.0f - p))) * 255.0f + 0.5f);
            out[i] = (v < 0.0f ? 0.0f : v > 255.0f ? 255.0f : v) / 255.0f;
        }
    }
    vd_free(u);
}
