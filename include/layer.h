/* layer.h — the kinds of layer a network is built from, and the seam they
 * share. A network (net.h) is a graph of nodes, most of them a Layer; the
 * graph code only walks it. Each kind keeps together, in one source file:
 *   - its shape rule (the constructor below),
 *   - its parameter tensors and their initialization (LayerKind.tensors),
 *   - forward and backward,
 *   - its multiply-add count,
 *   - a naive reference in double, the tests' oracle.
 * Activations are samples in rows: a sample of c channels of h x w is
 * stored h, w, c (channels last), and a dense layer's n values are (n, 1, 1).
 *
 * Backward ADDS its parameters' gradients to the buffers it is given (the
 * model zeroes the whole flat gradient once per step), so a layer may run
 * more than once in a step (a prior's pseudo-inputs go through the same
 * encoder as the data) and gradient accumulation over micro-batches is a
 * loop. Its input gradient is written over what the buffer held, or added
 * to it when the input feeds several consumers.
 *
 * Local: nothing here talks to other ranks. */
#ifndef VD_LAYER_H
#define VD_LAYER_H

#include <stddef.h>

#include "activation.h"

#define VD_LAYER_TENSORS 4 /* tensors a layer may own */

/* The heads' log-variance clamp (hardtanh), as the gated models use it. */
#define VD_LOGVAR_MIN (-6.0f)
#define VD_LOGVAR_MAX 2.0f

typedef struct LayerKind LayerKind;

typedef struct {
    const LayerKind *kind;
    int in_c, in_h, in_w;    /* one sample's input: channels, height, width */
    int out_c, out_h, out_w; /* and output */
    int act;                 /* VdActivation applied to the output by the graph */
    int clamp;               /* heads: log-variances clamped to [VD_LOGVAR_MIN, _MAX] */
    int init;                /* VdInit of its weights */
    int t_first;             /* its first tensor in the model's table */
    int kernel, stride, pad; /* a convolution's window, step and padding; an upsampling's
                              * factor is its stride (0 for the other kinds) */
} Layer;

/* Where a layer's tensors are in one of the flat buffers, in the order its
 * kind lays them out. */
typedef struct {
    float *t[VD_LAYER_TENSORS];
} LayerParams;

/* How a tensor starts (vae_init_params). */
typedef enum {
    VD_INIT_UNIFORM = 0, /* U(-1/sqrt(fan_in), 1/sqrt(fan_in)) */
    VD_INIT_HE = 1,      /* N(0, 2/fan_in) (He et al. 2015) */
    VD_INIT_ZERO = 2,
    VD_INIT_PSEUDO = 3   /* N(0.05, 0.01^2): a VampPrior's pseudo-inputs */
} VdInit;

/* A tensor a layer asks for: its dims (up to 4), and its initialization. */
typedef struct {
    const char *suffix; /* "weight", "bias"; a name is "<prefix>.<suffix>" */
    int n_dims, dims[4];
    int fan_in;
    int init;           /* VdInit */
} TensorSpec;

struct LayerKind {
    const char *name;
    /* The tensors of l, in the order they are laid out: fills spec (at most
     * VD_LAYER_TENSORS) and returns their count. */
    int (*tensors)(const Layer *l, TensorSpec *spec);
    /* out (B, out size) = the layer of in (B, in size), before the graph's
     * activation. scratch holds scratch_floats floats, saved saved_floats:
     * what forward leaves there for backward. */
    void (*forward)(const Layer *l, const LayerParams *p, float *out, const float *in, int B,
                    float *scratch, float *saved);
    /* For dout (B, out size), the gradient of the layer's output before the
     * activation: ADDS the tensors' gradients to g; din (B, in size) gets
     * the input's, written over (din_add 0) or added (1), unless NULL. in
     * is forward's input, saved what forward left. */
    void (*backward)(const Layer *l, const LayerParams *p, const LayerParams *g, float *din,
                     int din_add, const float *dout, const float *in, int B, float *scratch,
                     const float *saved);
    /* Multiply-adds of one sample's forward pass. */
    double (*macs)(const Layer *l);
    /* Floats of scratch and of saved state for B samples. */
    size_t (*scratch_floats)(const Layer *l, int B);
    size_t (*saved_floats)(const Layer *l, int B);
    /* The forward pass of one sample, naively, in double, from the tensors
     * p[0 .. count). */
    void (*forward_ref)(const Layer *l, const double *const *p, double *out, const double *in);
};

static inline size_t layer_in_size(const Layer *l)
{
    return (size_t)l->in_c * (size_t)l->in_h * (size_t)l->in_w;
}
static inline size_t layer_out_size(const Layer *l)
{
    return (size_t)l->out_c * (size_t)l->out_h * (size_t)l->out_w;
}

/* The number of tensors of l and their sizes (floats), into count[]. */
int layer_tensor_sizes(const Layer *l, size_t *count);

/* ---- the kinds, each with its shape rule ------------------------------- */

extern const LayerKind layer_dense, layer_heads, layer_gated, layer_conv, layer_tconv,
    layer_conv2d, layer_gconv, layer_upsample;

/* layer_dense.c. A dense layer n_in -> n_out: weight (n_out, n_in), bias
 * (n_out). The heads of a Gaussian, n_in -> 2 d: mu.weight and
 * logvar.weight (d, n_in) laid out as one (2d, n_in) matrix, then mu.bias
 * and logvar.bias as one (2d) vector; a row of output is [mu | logvar],
 * with clamp the log-variances are clamped to [-6, 2]. */
Layer layer_dense_make(int n_in, int n_out, int act);
Layer layer_heads_make(int n_in, int d, int clamp);

/* layer_gated.c. A gated dense layer n_in -> n_out (Dauphin et al. 2017;
 * the VampPrior paper's GatedDense): out = (W_h x + b_h) * sigmoid(W_g x +
 * b_g); h.weight and gate.weight (n_out, n_in) laid out as one (2 n_out,
 * n_in) matrix, then h.bias and gate.bias. He-initialized weights. */
Layer layer_gated_make(int n_in, int n_out);

/* layer_conv.c. A 4x4 convolution of stride 2 and padding 1, c_in -> c_out
 * channels, halving height and width (both must be even): weight (c_out, 4,
 * 4, c_in), bias (c_out). Its transpose doubles them: weight (c_in, 4, 4,
 * c_out), bias (c_out). NULL, or why the shape does not fit. */
const char *layer_conv_make(Layer *l, int c_in, int h, int w, int c_out, int act);
const char *layer_tconv_make(Layer *l, int c_in, int h, int w, int c_out, int act);

/* layer_conv2d.c. A convolution of an odd kernel k (1 to VD_MAX_KERNEL),
 * stride 1 or 2 and padding pad (0 to k - 1, or VD_PAD_SAME: k / 2), c_in ->
 * c_out channels, as PyTorch's Conv2d: out (h', w', c_out) with h' = (h + 2
 * pad - k) / stride + 1 (rounded down), w' alike; h and w must be at least k
 * and divide by the stride (with "same" padding h' = h / stride). weight
 * (c_out, k, k, c_in), bias (c_out). NULL, or why the shape does not fit. */
#define VD_MAX_KERNEL 15
#define VD_PAD_SAME (-1)
const char *layer_conv2d_make(Layer *l, int c_in, int h, int w, int c_out, int k, int stride,
                              int pad, int act);

/* layer_gconv.c. A gated convolution (the VampPrior paper's GatedConv2d):
 * out = conv_h(x) * sigmoid(conv_g(x)), the two convolutions of
 * layer_conv2d's shape rule; h.weight and gate.weight (c_out, k, k, c_in)
 * laid out as one (2 c_out, k, k, c_in) tensor pair, then h.bias and
 * gate.bias, so that the layer is one product to 2 c_out channels. */
const char *layer_gconv_make(Layer *l, int c_in, int h, int w, int c_out, int k, int stride,
                             int pad);

/* layer_upsample.c. Nearest upsampling by an integer factor f (2 to 8):
 * (h, w, c) -> (f h, f w, c), out[y][x] = in[y / f][x / f]; no tensors. A
 * convolution after it makes the learned upsampling. */
const char *layer_upsample_make(Layer *l, int c, int h, int w, int factor);

/* layer_dense.c. Gives a dense or gated dense layer's output the image
 * shape (h, w, c) (channels last: its n outputs are read as h w c values in
 * that order), so that convolutions can read it. NULL, or why not (another
 * kind, or h w c is not its n). */
const char *layer_reshape(Layer *l, int c, int h, int w);

/* ---- the convolution engine, shared by the convolutional kinds ----------- */

/* A convolution's geometry: its input (h, w, c), its output grid (oh, ow),
 * its window, and the channels n of its product (c_out; 2 c_out gated). */
typedef struct {
    int c, h, w;
    int oh, ow;
    int k, stride, pad;
    int n;
} ConvGeom;

ConvGeom conv_geom(const Layer *l);
/* Output pixels per block: a block's windows (pixels, k k c) and products
 * (pixels, n) stay in cache between im2col, the products, the gate and
 * col2im. Depends on the layer only, so every sum over blocks runs in the
 * same order whatever the batch. */
size_t conv_block_pixels(const ConvGeom *g);
/* Floats of one block of windows for B samples (0: a pointwise convolution,
 * whose windows are its input's rows). */
size_t conv_cols_floats(const ConvGeom *g, int B);
/* pre (p1 - p0, n) += the windows of output pixels [p0, p1) of x (B, h, w,
 * c) times W^T, W (n, k k c): the forward product of a block; cols holds a
 * block of windows. */
void conv_block_forward(float *pre, const float *W, const float *x, const ConvGeom *g, size_t p0,
                        size_t p1, float *cols);
/* For the gradient dpre (p1 - p0, n) of that block's output: dW (n, k k c)
 * += dpre^T windows; dx (B, h, w, c) += the windows' gradient dpre W, unless
 * dx is NULL. Blocks in pixel order give every sum a fixed order. */
void conv_block_backward(float *dW, float *dx, const float *dpre, const float *W, const float *x,
                         const ConvGeom *g, size_t p0, size_t p1, float *cols);
/* out (rows, n) = b in every row; db (n) += the sum of the rows of d (rows,
 * n), in row order. */
void rows_fill_bias(float *out, const float *b, size_t rows, int n);
void rows_bias_grad(float *db, const float *d, size_t rows, int n);
/* The double reference of a convolution of geometry g, n output channels:
 * out (oh, ow, n) = b + sum of W (n, k, k, c) over the windows of in (h, w,
 * c); the padding reads as zeros. */
void conv_forward_ref(double *out, const double *in, const double *W, const double *b, int n,
              const ConvGeom *g);

/* ---- the gate of the gated kinds (layer_gated.c) ------------------------ */

/* Rows of saved (B, 2n) hold [h | g]: g becomes sigmoid(g), out (B, n) = h
 * sigmoid(g). */
void gate_forward(float *out, float *saved, size_t B, int n);
/* dpre (B, 2n) = [dout s | dout h s (1 - s)] from saved's [h | s]. */
void gate_backward(float *dpre, const float *dout, const float *saved, size_t B, int n);

/* ---- the dense kernels, shared by the dense kinds and exposed for tests -- */

typedef struct {
    float *w; /* (n_out, n_in) */
    float *b; /* (n_out) */
    int n_in, n_out;
} Linear;

/* out (B, n_out) = in (B, n_in) W^T + b */
void linear_forward(float *out, const float *in, const Linear *l, int B);
/* dW += dout^T in; db += colsum(dout); din (B, n_in) = (din_add: +=) dout W
 * unless NULL */
void linear_backward(float *din, int din_add, Linear *dl, const float *dout, const float *in,
                     const Linear *l, int B);
/* Naive triple loop of linear_forward, in double: the BLAS path's test oracle. */
void linear_forward_ref(double *out, const double *in, const double *w, const double *b, int B,
                        int n_in, int n_out);

#endif
