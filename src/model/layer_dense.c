/* layer_dense.c — the dense layer and a Gaussian's mu/logvar heads, on
 * OpenBLAS sgemm. See layer.h. */
#include "layer.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

Layer layer_dense_make(int n_in, int n_out, int act)
{
    return (Layer){&layer_dense, n_in, 1, 1, n_out, 1, 1, act, 0, VD_INIT_UNIFORM, -1, 0, 0, 0};
}

Layer layer_heads_make(int n_in, int d, int clamp)
{
    return (Layer){&layer_heads, n_in, 1, 1, 2 * d, 1, 1, VD_ACT_NONE, clamp, VD_INIT_UNIFORM,
                   -1, 0, 0, 0};
}

const char *layer_reshape(Layer *l, int c, int h, int w)
{
    static __thread char why[128];
    if (l->kind != &layer_dense && l->kind != &layer_gated)
        return "only a dense layer's output can be reshaped to an image";
    if (c < 1 || h < 1 || w < 1 || (double)c * h * w != (double)layer_out_size(l)) {
        snprintf(why, sizeof why, "a reshape to %dx%dx%d (%.0f values) of a layer of %zu values",
                 h, w, c, (double)c * h * w, layer_out_size(l));
        return why;
    }
    l->out_c = c;
    l->out_h = h;
    l->out_w = w;
    return NULL;
}

int layer_tensor_sizes(const Layer *l, size_t *count)
{
    TensorSpec spec[VD_LAYER_TENSORS];
    int n = l->kind->tensors(l, spec);
    for (int k = 0; k < n; k++) {
        count[k] = 1;
        for (int j = 0; j < spec[k].n_dims; j++)
            count[k] *= (size_t)spec[k].dims[j];
    }
    return n;
}

/* A dense layer sees its input and output as flat vectors, whatever their
 * image shape (the decoder's first layers reshape to the last convolution's). */
static int n_in(const Layer *l) { return (int)layer_in_size(l); }
static int n_out(const Layer *l) { return (int)layer_out_size(l); }

static int dense_tensors(const Layer *l, TensorSpec *spec)
{
    spec[0] = (TensorSpec){"weight", 2, {n_out(l), n_in(l)}, n_in(l), l->init};
    spec[1] = (TensorSpec){"bias", 1, {n_out(l)}, n_in(l), VD_INIT_UNIFORM};
    return 2;
}

/* mu.weight, logvar.weight, mu.bias, logvar.bias: one (2d, n_in) matrix and
 * one (2d) vector, named by half. */
static int heads_tensors(const Layer *l, TensorSpec *spec)
{
    int d = n_out(l) / 2;
    spec[0] = (TensorSpec){"mu.weight", 2, {d, n_in(l)}, n_in(l), l->init};
    spec[1] = (TensorSpec){"logvar.weight", 2, {d, n_in(l)}, n_in(l), l->init};
    spec[2] = (TensorSpec){"mu.bias", 1, {d}, n_in(l), VD_INIT_UNIFORM};
    spec[3] = (TensorSpec){"logvar.bias", 1, {d}, n_in(l), VD_INIT_UNIFORM};
    return 4;
}

void linear_forward(float *out, const float *in, const Linear *l, int B)
{
    /* out (B, n_out) = bias, then += in (B, n_in) W^T, W (n_out, n_in) */
    for (int i = 0; i < B; i++)
        memcpy(out + (size_t)i * l->n_out, l->b, sizeof(float) * (size_t)l->n_out);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, l->n_out, l->n_in, 1.0f, in,
                l->n_in, l->w, l->n_in, 1.0f, out, l->n_out);
}

void linear_backward(float *din, int din_add, Linear *dl, const float *dout, const float *in,
                     const Linear *l, int B)
{
    /* dW (n_out, n_in) += dout^T (n_out, B) in (B, n_in) */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, l->n_out, l->n_in, B, 1.0f, dout,
                l->n_out, in, l->n_in, 1.0f, dl->w, l->n_in);
    for (int i = 0; i < B; i++) {
        const float *row = dout + (size_t)i * l->n_out;
        for (int j = 0; j < l->n_out; j++)
            dl->b[j] += row[j];
    }
    /* din (B, n_in) (+)= dout (B, n_out) W (n_out, n_in) */
    if (din)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, l->n_in, l->n_out, 1.0f, dout,
                    l->n_out, l->w, l->n_in, din_add ? 1.0f : 0.0f, din, l->n_in);
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

/* weight and bias: tensors 0 and 1 of a dense layer; 0 and 2 of the heads,
 * whose two halves lie contiguous */
static Linear as_linear(const Layer *l, const LayerParams *p)
{
    int bias = l->kind == &layer_heads ? 2 : 1;
    return (Linear){p->t[0], p->t[bias], n_in(l), n_out(l)};
}

static void dense_forward(const Layer *l, const LayerParams *p, float *out, const float *in, int B,
                          float *scratch, float *saved)
{
    (void)scratch;
    (void)saved;
    Linear lin = as_linear(l, p);
    linear_forward(out, in, &lin, B);
}

static void dense_backward(const Layer *l, const LayerParams *p, const LayerParams *g, float *din,
                           int din_add, const float *dout, const float *in, int B, float *scratch,
                           const float *saved)
{
    (void)scratch;
    (void)saved;
    Linear lin = as_linear(l, p), dlin = as_linear(l, g);
    linear_backward(din, din_add, &dlin, dout, in, &lin, B);
}

static double dense_macs(const Layer *l) { return (double)n_in(l) * n_out(l); }

static size_t no_floats(const Layer *l, int B)
{
    (void)l;
    (void)B;
    return 0;
}

static void dense_ref(const Layer *l, const double *const *p, double *out, const double *in)
{
    int bias = l->kind == &layer_heads ? 2 : 1;
    linear_forward_ref(out, in, p[0], p[bias], 1, n_in(l), n_out(l));
    if (l->clamp) /* the log-variances */
        for (int j = n_out(l) / 2; j < n_out(l); j++)
            out[j] = fmin(fmax(out[j], VD_LOGVAR_MIN), VD_LOGVAR_MAX);
}

/* ---- the heads: a dense layer, then the optional clamp of the logvar half */

static void heads_forward(const Layer *l, const LayerParams *p, float *out, const float *in,
                          int B, float *scratch, float *saved)
{
    dense_forward(l, p, out, in, B, scratch, saved);
    if (!l->clamp)
        return;
    int d = n_out(l) / 2;
    for (int i = 0; i < B; i++) { /* saved: which log-variances were clamped (1) or not (0) */
        float *lv = out + (size_t)i * 2 * d + d, *mask = saved + (size_t)i * d;
        for (int j = 0; j < d; j++) {
            float v = lv[j];
            mask[j] = v <= VD_LOGVAR_MIN || v >= VD_LOGVAR_MAX ? 0.0f : 1.0f;
            lv[j] = v < VD_LOGVAR_MIN ? VD_LOGVAR_MIN : v > VD_LOGVAR_MAX ? VD_LOGVAR_MAX : v;
        }
    }
}

static void heads_backward(const Layer *l, const LayerParams *p, const LayerParams *g, float *din,
                           int din_add, const float *dout, const float *in, int B, float *scratch,
                           const float *saved)
{
    if (!l->clamp) {
        dense_backward(l, p, g, din, din_add, dout, in, B, scratch, saved);
        return;
    }
    int d = n_out(l) / 2; /* a clamped log-variance passes no gradient (hardtanh) */
    for (int i = 0; i < B; i++) {
        const float *dlv = dout + (size_t)i * 2 * d + d, *mask = saved + (size_t)i * d;
        float *row = scratch + (size_t)i * 2 * d;
        memcpy(row, dout + (size_t)i * 2 * d, sizeof(float) * (size_t)d);
        for (int j = 0; j < d; j++)
            row[d + j] = dlv[j] * mask[j];
    }
    dense_backward(l, p, g, din, din_add, scratch, in, B, NULL, NULL);
}

static size_t heads_scratch(const Layer *l, int B)
{
    return l->clamp ? (size_t)B * layer_out_size(l) : 0;
}

static size_t heads_saved(const Layer *l, int B)
{
    return l->clamp ? (size_t)B * layer_out_size(l) / 2 : 0;
}

const LayerKind layer_dense = {"dense", dense_tensors, dense_forward, dense_backward, dense_macs,
                               no_floats, no_floats, dense_ref};
const LayerKind layer_heads = {"heads", heads_tensors, heads_forward, heads_backward, dense_macs,
                               heads_scratch, heads_saved, dense_ref};
