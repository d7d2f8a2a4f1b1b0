/* layer_dense.c — the dense layer and the mu/logvar heads, on OpenBLAS
 * sgemm, and the activations. See layer.h. */
#include "layer.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#include "util.h"

Layer layer_dense_make(int n_in, int n_out, int act)
{
    return (Layer){&layer_dense, n_in, 1, 1, n_out, 1, 1, act, -1, -1};
}

Layer layer_heads_make(int n_in, int d)
{
    return (Layer){&layer_heads, n_in, 1, 1, 2 * d, 1, 1, VD_ACT_NONE, -1, -1};
}

/* A dense layer sees its input and output as flat vectors, whatever their
 * image shape (the decoder's first layers reshape to the last convolution's). */
static int n_in(const Layer *l) { return (int)layer_in_size(l); }
static int n_out(const Layer *l) { return (int)layer_out_size(l); }

static int dense_tensors(const Layer *l, TensorSpec *spec)
{
    spec[0] = (TensorSpec){"weight", 2, {n_out(l), n_in(l)}, n_in(l)};
    spec[1] = (TensorSpec){"bias", 1, {n_out(l)}, n_in(l)};
    return 2;
}

/* mu.weight, logvar.weight, mu.bias, logvar.bias: one (2d, n_in) matrix and
 * one (2d) vector, named by half. */
static int heads_tensors(const Layer *l, TensorSpec *spec)
{
    int d = n_out(l) / 2;
    spec[0] = (TensorSpec){"mu.weight", 2, {d, n_in(l)}, n_in(l)};
    spec[1] = (TensorSpec){"logvar.weight", 2, {d, n_in(l)}, n_in(l)};
    spec[2] = (TensorSpec){"mu.bias", 1, {d}, n_in(l)};
    spec[3] = (TensorSpec){"logvar.bias", 1, {d}, n_in(l)};
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

static Linear as_linear(const Layer *l, const LayerParams *p)
{
    return (Linear){p->w, p->b, n_in(l), n_out(l)};
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
                           const float *dout, const float *in, int B, float *scratch,
                           const float *saved)
{
    (void)scratch;
    (void)saved;
    Linear lin = as_linear(l, p), dlin = as_linear(l, g);
    linear_backward(din, &dlin, dout, in, &lin, B);
}

static double dense_macs(const Layer *l) { return (double)n_in(l) * n_out(l); }

static size_t no_floats(const Layer *l, int B)
{
    (void)l;
    (void)B;
    return 0;
}

static void dense_ref(const Layer *l, const double *w, const double *b, double *out,
                      const double *in)
{
    linear_forward_ref(out, in, w, b, 1, n_in(l), n_out(l));
}

const LayerKind layer_dense = {"dense", dense_tensors, dense_forward, dense_backward, dense_macs,
                               no_floats, no_floats, dense_ref};
const LayerKind layer_heads = {"heads", heads_tensors, dense_forward, dense_backward, dense_macs,
                               no_floats, no_floats, dense_ref};

/* ---- activations --------------------------------------------------------- */

VD_VECTOR_CLONES void act_forward(int act, float *x, size_t n)
{
    if (act == VD_ACT_TANH)
        for (size_t i = 0; i < n; i++)
            x[i] = tanhf(x[i]);
    else if (act == VD_ACT_RELU)
        for (size_t i = 0; i < n; i++)
            x[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

VD_VECTOR_CLONES void act_backward(int act, float *dx, const float *out, size_t n)
{
    if (act == VD_ACT_TANH)
        for (size_t i = 0; i < n; i++)
            dx[i] *= 1.0f - out[i] * out[i];
    else if (act == VD_ACT_RELU)
        for (size_t i = 0; i < n; i++)
            dx[i] = out[i] > 0.0f ? dx[i] : 0.0f;
}

void act_ref(int act, double *x, size_t n)
{
    for (size_t i = 0; act != VD_ACT_NONE && i < n; i++)
        x[i] = act == VD_ACT_TANH ? tanh(x[i]) : x[i] > 0.0 ? x[i] : 0.0;
}
