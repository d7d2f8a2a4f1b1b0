/* layer.h — the kinds of layer a network is built from, and the seam they
 * share. A network (model.h) is a list of Layers; model.c only walks it.
 * Each kind keeps together, in one source file:
 *   - its shape rule (the constructor below),
 *   - its parameter tensors (LayerKind.tensors),
 *   - forward and backward (backward overwrites the gradients),
 *   - its multiply-add count,
 *   - a naive reference in double, the tests' oracle.
 * Activations are samples in rows: a sample of c channels of h x w is
 * stored h, w, c (channels last), and a dense layer's n values are (n, 1, 1).
 * Local: nothing here talks to other ranks. */
#ifndef VD_LAYER_H
#define VD_LAYER_H

#include <stddef.h>

typedef enum { VD_ACT_RELU = 0, VD_ACT_TANH = 1, VD_ACT_NONE = 2 } VdActivation;

typedef struct LayerKind LayerKind;

typedef struct {
    const LayerKind *kind;
    int in_c, in_h, in_w;    /* one sample's input: channels, height, width */
    int out_c, out_h, out_w; /* and output */
    int act;                 /* VdActivation applied to the output */
    int t_weight, t_bias;    /* its tensors in the model's table */
} Layer;

/* Where a layer's weight and bias are in one of the flat buffers. */
typedef struct {
    float *w, *b;
} LayerParams;

/* A tensor a layer asks for: its dims (up to 4), and the fan-in of its
 * initialization U(-1/sqrt(fan_in), 1/sqrt(fan_in)). */
typedef struct {
    const char *suffix; /* "weight", "bias"; a name is "<prefix>.<suffix>" */
    int n_dims, dims[4];
    int fan_in;
} TensorSpec;

struct LayerKind {
    const char *name;
    /* The tensors of l, in the order they are laid out: fills spec (at most
     * 4) and returns their count; the first two are the weight and the bias
     * the kernels get (a kind whose weight is split in several named tensors
     * lays them out contiguously). */
    int (*tensors)(const Layer *l, TensorSpec *spec);
    /* out (B, out size) = the layer of in (B, in size), before the
     * activation. scratch holds scratch_floats floats, saved saved_floats:
     * what forward leaves there for backward. */
    void (*forward)(const Layer *l, const LayerParams *p, float *out, const float *in, int B,
                    float *scratch, float *saved);
    /* g = the gradient of the weights and bias for dout (B, out size), the
     * gradient of the layer's output before the activation, written over
     * what g held; din (B, in size) likewise unless NULL. in is forward's
     * input, saved what forward left. */
    void (*backward)(const Layer *l, const LayerParams *p, const LayerParams *g, float *din,
                     const float *dout, const float *in, int B, float *scratch,
                     const float *saved);
    /* Multiply-adds of one sample's forward pass. */
    double (*macs)(const Layer *l);
    /* Floats of scratch and of saved state for B samples. */
    size_t (*scratch_floats)(const Layer *l, int B);
    size_t (*saved_floats)(const Layer *l, int B);
    /* The forward pass of one sample, naively, in double. */
    void (*forward_ref)(const Layer *l, const double *w, const double *b, double *out,
                        const double *in);
};

static inline size_t layer_in_size(const Layer *l)
{
    return (size_t)l->in_c * (size_t)l->in_h * (size_t)l->in_w;
}
static inline size_t layer_out_size(const Layer *l)
{
    return (size_t)l->out_c * (size_t)l->out_h * (size_t)l->out_w;
}

/* ---- the kinds, each with its shape rule ------------------------------- */

extern const LayerKind layer_dense, layer_heads, layer_conv, layer_tconv;

/* layer_dense.c. A dense layer n_in -> n_out: weight (n_out, n_in), bias
 * (n_out). The heads are one dense layer n_in -> 2 d whose weight and bias
 * are named mu.weight, logvar.weight, mu.bias, logvar.bias (rows [0, d) are
 * mu, [d, 2d) logvar). */
Layer layer_dense_make(int n_in, int n_out, int act);
Layer layer_heads_make(int n_in, int d);

/* layer_conv.c. A 4x4 convolution of stride 2 and padding 1, c_in -> c_out
 * channels, halving height and width (both must be even): weight (c_out, 4,
 * 4, c_in), bias (c_out). Its transpose doubles them: weight (c_in, 4, 4,
 * c_out), bias (c_out). NULL, or why the shape does not fit. */
const char *layer_conv_make(Layer *l, int c_in, int h, int w, int c_out, int act);
const char *layer_tconv_make(Layer *l, int c_in, int h, int w, int c_out, int act);

/* ---- the dense kernels, exposed for the tests ---------------------------- */

typedef struct {
    float *w; /* (n_out, n_in) */
    float *b; /* (n_out) */
    int n_in, n_out;
} Linear;

/* out (B, n_out) = in (B, n_in) W^T + b */
void linear_forward(float *out, const float *in, const Linear *l, int B);
/* dW = dout^T in; db = colsum(dout); din (B, n_in) = dout W unless NULL */
void linear_backward(float *din, Linear *dl, const float *dout, const float *in, const Linear *l,
                     int B);
/* Naive triple loop of linear_forward, in double: the BLAS path's test oracle. */
void linear_forward_ref(double *out, const double *in, const double *w, const double *b, int B,
                        int n_in, int n_out);

/* ---- activations ----------------------------------------------------------- */

/* x (n) = act(x); dx (n) *= act'(.) from the activation's output out; and
 * the double reference. VD_ACT_NONE does nothing. */
void act_forward(int act, float *x, size_t n);
void act_backward(int act, float *dx, const float *out, size_t n);
void act_ref(int act, double *x, size_t n);

#endif
