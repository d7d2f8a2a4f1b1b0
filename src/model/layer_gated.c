/* layer_gated.c — the gated dense layer, out = (W_h x + b_h) * sigmoid(W_g x
 * + b_g), as one sgemm to (B, 2 n_out) rows [h | g] and an elementwise gate
 * (which the gated convolution shares, a row per pixel). See layer.h. */
#include "layer.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#include "util.h"

Layer layer_gated_make(int n_in, int n_out)
{
    return (Layer){&layer_gated, n_in, 1, 1, n_out, 1, 1, VD_ACT_NONE, 0, VD_INIT_HE, -1, 0, 0, 0};
}

static int n_in(const Layer *l) { return (int)layer_in_size(l); }
static int n_out(const Layer *l) { return (int)layer_out_size(l); }

/* h.weight, gate.weight (n_out, n_in) as one (2 n_out, n_in) matrix; h.bias
 * and gate.bias as one (2 n_out) vector. */
static int gated_tensors(const Layer *l, TensorSpec *spec)
{
    int n = n_out(l), k = n_in(l);
    spec[0] = (TensorSpec){"h.weight", 2, {n, k}, k, l->init};
    spec[1] = (TensorSpec){"gate.weight", 2, {n, k}, k, l->init};
    spec[2] = (TensorSpec){"h.bias", 1, {n}, k, VD_INIT_UNIFORM};
    spec[3] = (TensorSpec){"gate.bias", 1, {n}, k, VD_INIT_UNIFORM};
    return 4;
}

static Linear as_linear(const Layer *l, const LayerParams *p)
{
    return (Linear){p->t[0], p->t[2], n_in(l), 2 * n_out(l)};
}

/* saved (B, 2n): each row's h, then its sigmoid(g) */
VD_VECTOR_CLONES
void gate_forward(float *out, float *saved, size_t B, int n)
{
    for (size_t i = 0; i < B; i++) {
        float *hg = saved + (size_t)i * 2 * n, *o = out + (size_t)i * n;
        for (int j = 0; j < n; j++) {
            float s = act_sigmoid(hg[n + j]);
            hg[n + j] = s;
            o[j] = hg[j] * s;
        }
    }
}

static void gated_forward(const Layer *l, const LayerParams *p, float *out, const float *in, int B,
                          float *scratch, float *saved)
{
    (void)scratch;
    Linear lin = as_linear(l, p);
    linear_forward(saved, in, &lin, B);
    gate_forward(out, saved, (size_t)B, n_out(l));
}

/* dpre (B, 2n) = [dout s | dout h s (1 - s)] */
VD_VECTOR_CLONES
void gate_backward(float *dpre, const float *dout, const float *saved, size_t B, int n)
{
    for (size_t i = 0; i < B; i++) {
        const float *hs = saved + (size_t)i * 2 * n, *d = dout + (size_t)i * n;
        float *dp = dpre + (size_t)i * 2 * n;
        for (int j = 0; j < n; j++) {
            float s = hs[n + j];
            dp[j] = d[j] * s;
            dp[n + j] = d[j] * hs[j] * s * (1.0f - s);
        }
    }
}

static void gated_backward(const Layer *l, const LayerParams *p, const LayerParams *g, float *din,
                           int din_add, const float *dout, const float *in, int B, float *scratch,
                           const float *saved)
{
    gate_backward(scratch, dout, saved, (size_t)B, n_out(l));
    Linear lin = as_linear(l, p), dlin = as_linear(l, g);
    linear_backward(din, din_add, &dlin, scratch, in, &lin, B);
}

static double gated_macs(const Layer *l) { return 2.0 * n_in(l) * n_out(l); }

static size_t two_rows(const Layer *l, int B) { return (size_t)B * 2 * layer_out_size(l); }

static void gated_ref(const Layer *l, const double *const *p, double *out, const double *in)
{
    int n = n_out(l), k = n_in(l);
    for (int o = 0; o < n; o++) {
        double h = p[2][o], g = p[3][o];
        for (int j = 0; j < k; j++) {
            h += p[0][(size_t)o * k + j] * in[j];
            g += p[1][(size_t)o * k + j] * in[j];
        }
        out[o] = h / (1.0 + exp(-g));
    }
}

const LayerKind layer_gated = {"gated", gated_tensors, gated_forward, gated_backward, gated_macs,
                               two_rows, two_rows, gated_ref};
