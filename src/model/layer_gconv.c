/* layer_gconv.c — the gated convolution, out = conv_h(x) * sigmoid(conv_g(x))
 * (Dauphin et al. 2017; the VampPrior paper's GatedConv2d): one product to
 * 2 c_out channels per output pixel, rows [h | g] as the gated dense layer's
 * (layer_gated.c), then its gate. Forward and backward run a block of
 * output pixels at a time (layer_conv2d.c's engine), so that the windows
 * and the pre-activations' gradient of a block stay in cache. See layer.h. */
#include "layer.h"

#include <math.h>
#include <string.h>

#include "util.h"

const char *layer_gconv_make(Layer *l, int c_in, int h, int w, int c_out, int k, int stride,
                             int pad)
{
    const char *why = layer_conv2d_make(l, c_in, h, w, c_out, k, stride, pad, VD_ACT_NONE);
    if (!why)
        l->kind = &layer_gconv;
    return why;
}

/* h.weight and gate.weight (c_out, k, k, c_in): one (2 c_out, k k c_in)
 * matrix; h.bias and gate.bias: one (2 c_out) vector. */
static int gconv_tensors(const Layer *l, TensorSpec *spec)
{
    int k = l->kernel, fan_in = k * k * l->in_c;
    spec[0] = (TensorSpec){"h.weight", 4, {l->out_c, k, k, l->in_c}, fan_in, l->init};
    spec[1] = (TensorSpec){"gate.weight", 4, {l->out_c, k, k, l->in_c}, fan_in, l->init};
    spec[2] = (TensorSpec){"h.bias", 1, {l->out_c}, fan_in, VD_INIT_UNIFORM};
    spec[3] = (TensorSpec){"gate.bias", 1, {l->out_c}, fan_in, VD_INIT_UNIFORM};
    return 4;
}

/* saved (B oh ow, 2 c_out): each pixel's h, then its sigmoid(g) */
static void gconv_forward(const Layer *l, const LayerParams *p, float *out, const float *in,
                          int B, float *cols, float *saved)
{
    ConvGeom g = conv_geom(l);
    int n = 2 * l->out_c;
    size_t M = (size_t)B * g.oh * g.ow, step = conv_block_pixels(&g);
    for (size_t p0 = 0; p0 < M; p0 += step) {
        size_t p1 = p0 + step < M ? p0 + step : M;
        float *pre = saved + p0 * (size_t)n;
        rows_fill_bias(pre, p->t[2], p1 - p0, n);
        conv_block_forward(pre, p->t[0], in, &g, p0, p1, cols);
        gate_forward(out + p0 * (size_t)l->out_c, pre, p1 - p0, l->out_c);
    }
}

/* scratch: a block's pre-activation gradient (pixels, 2 c_out), then its windows */
static void gconv_backward(const Layer *l, const LayerParams *p, const LayerParams *g, float *din,
                           int din_add, const float *dout, const float *in, int B, float *scratch,
                           const float *saved)
{
    ConvGeom geo = conv_geom(l);
    int n = 2 * l->out_c;
    size_t M = (size_t)B * geo.oh * geo.ow, step = conv_block_pixels(&geo);
    float *dpre = scratch, *cols = scratch + (M < step ? M : step) * (size_t)n;
    if (din && !din_add)
        memset(din, 0, sizeof(float) * (size_t)B * layer_in_size(l));
    for (size_t p0 = 0; p0 < M; p0 += step) {
        size_t p1 = p0 + step < M ? p0 + step : M;
        gate_backward(dpre, dout + p0 * (size_t)l->out_c, saved + p0 * (size_t)n, p1 - p0,
                      l->out_c);
        rows_bias_grad(g->t[2], dpre, p1 - p0, n);
        conv_block_backward(g->t[0], din, dpre, p->t[0], in, &geo, p0, p1, cols);
    }
}

static double gconv_macs(const Layer *l)
{
    return 2.0 * l->out_h * l->out_w * l->out_c * l->kernel * l->kernel * l->in_c;
}

static size_t gconv_scratch(const Layer *l, int B)
{
    ConvGeom g = conv_geom(l);
    size_t M = (size_t)B * g.oh * g.ow, step = conv_block_pixels(&g);
    return (M < step ? M : step) * 2 * (size_t)l->out_c + conv_cols_floats(&g, B);
}

static size_t gconv_saved(const Layer *l, int B)
{
    return (size_t)B * 2 * layer_out_size(l);
}

static void gconv_ref(const Layer *l, const double *const *p, double *out, const double *in)
{
    ConvGeom g = conv_geom(l);
    size_t n = layer_out_size(l);
    double *h = vd_calloc(2 * n, sizeof(double)), *gate = h + n;
    conv_forward_ref(h, in, p[0], p[2], l->out_c, &g);
    conv_forward_ref(gate, in, p[1], p[3], l->out_c, &g);
    for (size_t i = 0; i < n; i++)
        out[i] = h[i] / (1.0 + exp(-gate[i]));
    vd_free(h);
}

const LayerKind layer_gconv = {"gated_conv2d", gconv_tensors, gconv_forward, gconv_backward,
                               gconv_macs, gconv_scratch, gconv_saved, gconv_ref};
