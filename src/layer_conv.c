/* layer_conv.c — 4x4 convolutions of stride 2 and padding 1, and their
 * transposes, as im2col and OpenBLAS sgemm on channels-last samples. See
 * layer.h.
 *
 * A convolution (h, w, c_in) -> (h/2, w/2, c_out) gathers, for each output
 * pixel, its 4x4 window of inputs into one row of K = 16 c_in values
 * (im2col), ordered (ky, kx, c) like the weight's (c_out, 4, 4, c_in), so
 * that the layer is one product, out (B h/2 w/2, c_out) = cols W^T. Output
 * pixel (oy, ox) sees input (2 oy + ky - 1, 2 ox + kx - 1); the padding
 * reads as zeros. The transposed convolution (h, w, c_in) -> (2h, 2w, c_out)
 * is the adjoint: cols (B h w, 16 c_out) = in W, W (c_in, 4, 4, c_out),
 * scattered and summed onto the output (col2im). Every sum runs in a fixed
 * order, so replicas stay bitwise identical. */
#include "layer.h"

#include <cblas.h>
#include <string.h>

#include "util.h"

enum { KS = 4, TAPS = KS * KS };

/* cols (B oh ow, 16 c) = the 4x4 windows of x (B, h, w, c) at stride 2 and
 * padding 1, for the output grid oh x ow. */
static void im2col(float *cols, const float *x, int B, int h, int w, int c, int oh, int ow)
{
    size_t row = (size_t)TAPS * c;
    for (int b = 0; b < B; b++)
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++) {
                float *dst = cols + ((size_t)(b * oh + oy) * ow + ox) * row;
                for (int ky = 0; ky < KS; ky++) {
                    int iy = 2 * oy + ky - 1;
                    for (int kx = 0; kx < KS; kx++, dst += c) {
                        int ix = 2 * ox + kx - 1;
                        if (iy < 0 || iy >= h || ix < 0 || ix >= w) {
                            memset(dst, 0, sizeof(float) * (size_t)c);
                            continue;
                        }
                        const float *src = x + ((size_t)(b * h + iy) * w + ix) * c;
                        for (int k = 0; k < c; k++)
                            dst[k] = src[k];
                    }
                }
            }
}

/* The adjoint of im2col: x (B, h, w, c) += the windows in cols. */
static void col2im_add(float *x, const float *cols, int B, int h, int w, int c, int oh, int ow)
{
    size_t row = (size_t)TAPS * c;
    for (int b = 0; b < B; b++)
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++) {
                const float *src = cols + ((size_t)(b * oh + oy) * ow + ox) * row;
                for (int ky = 0; ky < KS; ky++) {
                    int iy = 2 * oy + ky - 1;
                    for (int kx = 0; kx < KS; kx++, src += c) {
                        int ix = 2 * ox + kx - 1;
                        if (iy < 0 || iy >= h || ix < 0 || ix >= w)
                            continue;
                        float *dst = x + ((size_t)(b * h + iy) * w + ix) * c;
                        for (int k = 0; k < c; k++)
                            dst[k] += src[k];
                    }
                }
            }
}

/* out (rows, n) = b in every row. */
static void fill_bias(float *out, const float *b, size_t rows, int n)
{
    for (size_t i = 0; i < rows; i++)
        memcpy(out + i * (size_t)n, b, sizeof(float) * (size_t)n);
}

/* db (n) = the sum of the rows of dout (rows, n), in row order. */
static void bias_grad(float *db, const float *dout, size_t rows, int n)
{
    memcpy(db, dout, sizeof(float) * (size_t)n);
    for (size_t i = 1; i < rows; i++) {
        const float *r = dout + i * (size_t)n;
        for (int j = 0; j < n; j++)
            db[j] += r[j];
    }
}

/* ---- the convolution ------------------------------------------------------- */

const char *layer_conv_make(Layer *l, int c_in, int h, int w, int c_out, int act)
{
    if (c_in < 1 || c_out < 1 || h < 2 || w < 2)
        return "a convolution needs channels and an image of at least 2 x 2";
    if (h % 2 || w % 2)
        return "a stride-2 convolution needs an even height and width";
    *l = (Layer){&layer_conv, c_in, h, w, c_out, h / 2, w / 2, act, -1, -1};
    return NULL;
}

static int conv_tensors(const Layer *l, TensorSpec *spec)
{
    int fan_in = TAPS * l->in_c;
    spec[0] = (TensorSpec){"weight", 4, {l->out_c, KS, KS, l->in_c}, fan_in};
    spec[1] = (TensorSpec){"bias", 1, {l->out_c}, fan_in};
    return 2;
}

static void conv_forward(const Layer *l, const LayerParams *p, float *out, const float *in, int B,
                         float *scratch, float *cols)
{
    (void)scratch;
    int K = TAPS * l->in_c;
    size_t M = (size_t)B * l->out_h * l->out_w;
    im2col(cols, in, B, l->in_h, l->in_w, l->in_c, l->out_h, l->out_w);
    fill_bias(out, p->b, M, l->out_c);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, l->out_c, K, 1.0f, cols, K, p->w,
                K, 1.0f, out, l->out_c);
}

static void conv_backward(const Layer *l, const LayerParams *p, const LayerParams *g, float *din,
                          const float *dout, const float *in, int B, float *dcols,
                          const float *cols)
{
    (void)in;
    int K = TAPS * l->in_c;
    size_t M = (size_t)B * l->out_h * l->out_w;
    /* dW (c_out, K) = dout^T (c_out, M) cols (M, K) */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, l->out_c, K, (int)M, 1.0f, dout,
                l->out_c, cols, K, 0.0f, g->w, K);
    bias_grad(g->b, dout, M, l->out_c);
    if (!din)
        return;
    /* dcols (M, K) = dout (M, c_out) W (c_out, K), then back onto the input */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)M, K, l->out_c, 1.0f, dout,
                l->out_c, p->w, K, 0.0f, dcols, K);
    memset(din, 0, sizeof(float) * (size_t)B * layer_in_size(l));
    col2im_add(din, dcols, B, l->in_h, l->in_w, l->in_c, l->out_h, l->out_w);
}

static double conv_macs(const Layer *l)
{
    return (double)l->out_h * l->out_w * l->out_c * TAPS * l->in_c;
}

/* the windows: for the backward's dcols, the same size as forward's cols */
static size_t conv_cols(const Layer *l, int B)
{
    return (size_t)B * l->out_h * l->out_w * TAPS * (size_t)l->in_c;
}

static void conv_ref(const Layer *l, const double *w, const double *b, double *out,
                     const double *in)
{
    for (int oy = 0; oy < l->out_h; oy++)
        for (int ox = 0; ox < l->out_w; ox++)
            for (int co = 0; co < l->out_c; co++) {
                double acc = b[co];
                for (int ky = 0; ky < KS; ky++)
                    for (int kx = 0; kx < KS; kx++) {
                        int iy = 2 * oy + ky - 1, ix = 2 * ox + kx - 1;
                        if (iy < 0 || iy >= l->in_h || ix < 0 || ix >= l->in_w)
                            continue;
                        for (int ci = 0; ci < l->in_c; ci++)
                            acc += w[((co * KS + ky) * KS + kx) * l->in_c + ci] *
                                   in[(iy * l->in_w + ix) * l->in_c + ci];
                    }
                out[(oy * l->out_w + ox) * l->out_c + co] = acc;
            }
}

const LayerKind layer_conv = {"conv", conv_tensors, conv_forward, conv_backward, conv_macs,
                              conv_cols, conv_cols, conv_ref};

/* ---- the transposed convolution ------------------------------------------ */

const char *layer_tconv_make(Layer *l, int c_in, int h, int w, int c_out, int act)
{
    if (c_in < 1 || c_out < 1 || h < 1 || w < 1)
        return "a transposed convolution needs channels and an image";
    *l = (Layer){&layer_tconv, c_in, h, w, c_out, 2 * h, 2 * w, act, -1, -1};
    return NULL;
}

static int tconv_tensors(const Layer *l, TensorSpec *spec)
{
    /* PyTorch's rule for a transposed convolution: the fan-in is the
     * output channels times the window */
    int fan_in = TAPS * l->out_c;
    spec[0] = (TensorSpec){"weight", 4, {l->in_c, KS, KS, l->out_c}, fan_in};
    spec[1] = (TensorSpec){"bias", 1, {l->out_c}, fan_in};
    return 2;
}

static void tconv_forward(const Layer *l, const LayerParams *p, float *out, const float *in,
                          int B, float *cols, float *saved)
{
    (void)saved;
    int N = TAPS * l->out_c;
    size_t M = (size_t)B * l->in_h * l->in_w;
    /* cols (M, 16 c_out) = in (M, c_in) W (c_in, 16 c_out), onto the output */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)M, N, l->in_c, 1.0f, in, l->in_c,
                p->w, N, 0.0f, cols, N);
    fill_bias(out, p->b, (size_t)B * l->out_h * l->out_w, l->out_c);
    col2im_add(out, cols, B, l->out_h, l->out_w, l->out_c, l->in_h, l->in_w);
}

static void tconv_backward(const Layer *l, const LayerParams *p, const LayerParams *g, float *din,
                           const float *dout, const float *in, int B, float *dcols,
                           const float *saved)
{
    (void)saved;
    int N = TAPS * l->out_c;
    size_t M = (size_t)B * l->in_h * l->in_w;
    im2col(dcols, dout, B, l->out_h, l->out_w, l->out_c, l->in_h, l->in_w);
    /* dW (c_in, 16 c_out) = in^T (c_in, M) dcols (M, 16 c_out) */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, l->in_c, N, (int)M, 1.0f, in, l->in_c,
                dcols, N, 0.0f, g->w, N);
    bias_grad(g->b, dout, (size_t)B * l->out_h * l->out_w, l->out_c);
    /* din (M, c_in) = dcols (M, 16 c_out) W^T (16 c_out, c_in) */
    if (din)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, l->in_c, N, 1.0f, dcols, N,
                    p->w, N, 0.0f, din, l->in_c);
}

static double tconv_macs(const Layer *l)
{
    return (double)l->in_h * l->in_w * l->in_c * TAPS * l->out_c;
}

static size_t tconv_cols(const Layer *l, int B)
{
    return (size_t)B * l->in_h * l->in_w * TAPS * (size_t)l->out_c;
}

static size_t no_floats(const Layer *l, int B)
{
    (void)l;
    (void)B;
    return 0;
}

static void tconv_ref(const Layer *l, const double *w, const double *b, double *out,
                      const double *in)
{
    for (int i = 0; i < l->out_h * l->out_w; i++)
        for (int co = 0; co < l->out_c; co++)
            out[(size_t)i * l->out_c + co] = b[co];
    for (int iy = 0; iy < l->in_h; iy++)
        for (int ix = 0; ix < l->in_w; ix++)
            for (int ky = 0; ky < KS; ky++)
                for (int kx = 0; kx < KS; kx++) {
                    int oy = 2 * iy + ky - 1, ox = 2 * ix + kx - 1;
                    if (oy < 0 || oy >= l->out_h || ox < 0 || ox >= l->out_w)
                        continue;
                    for (int co = 0; co < l->out_c; co++) {
                        double acc = 0;
                        for (int ci = 0; ci < l->in_c; ci++)
                            acc += w[((ci * KS + ky) * KS + kx) * l->out_c + co] *
                                   in[(iy * l->in_w + ix) * l->in_c + ci];
                        out[(oy * l->out_w + ox) * l->out_c + co] += acc;
                    }
                }
}

const LayerKind layer_tconv = {"tconv", tconv_tensors, tconv_forward, tconv_backward, tconv_macs,
                               tconv_cols, no_floats, tconv_ref};
