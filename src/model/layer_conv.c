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
 * scattered and summed onto the output (col2im). The windows are made and
 * used a block of output pixels at a time, so that a block stays in cache,
 * and the weight gradient sums the blocks in order: every sum runs in a fixed
 * order, so replicas stay bitwise identical. */
#include "layer.h"

#include <cblas.h>
#include <string.h>

#include "util.h"

enum { KS = 4, TAPS = KS * KS };

/* The four taps (kx = 0..3) of a window's row read input columns 2 ox - 1
 * .. 2 ox + 2: 4 c contiguous floats, of which the first c lie left of the
 * image when ox = 0, and the last c right of it when 2 ox + 2 = w. */
static void window_row(int ox, int w, int c, int *lo, int *hi)
{
    *lo = ox == 0 ? c : 0;
    *hi = 2 * ox + 2 >= w ? 4 * c - (2 * ox + 3 - w) * c : 4 * c;
}

/* cols (p1 - p0, 16 c) = the 4x4 windows of x (B, h, w, c) at stride 2 and
 * padding 1 for output pixels [p0, p1) of the grid B x oh x ow. */
static void im2col(float *cols, const float *x, int h, int w, int c, int oh, int ow, size_t p0,
                   size_t p1)
{
    size_t row = (size_t)TAPS * c, run = (size_t)KS * c;
    for (size_t p = p0; p < p1; p++) {
        int ox = (int)(p % ow), oy = (int)(p / ow % oh);
        size_t b = p / ((size_t)ow * oh);
        float *dst = cols + (p - p0) * row;
        int lo, hi;
        window_row(ox, w, c, &lo, &hi);
        for (int ky = 0; ky < KS; ky++, dst += run) {
            int iy = 2 * oy + ky - 1;
            if (iy < 0 || iy >= h) {
                memset(dst, 0, sizeof(float) * run);
                continue;
            }
            /* the window's first column is 2 ox - 1, which is -1 at ox = 0:
             * offset by lo first, so the pointer stays inside x */
            const float *src = x + ((b * h + (size_t)iy) * w) * c + ((ptrdiff_t)(2 * ox - 1) * c + lo);
            for (int k = 0; k < lo; k++)
                dst[k] = 0.0f;
            for (int k = lo; k < hi; k++)
                dst[k] = src[k - lo];
            for (int k = hi; k < (int)run; k++)
                dst[k] = 0.0f;
        }
    }
}

/* The adjoint of im2col: x (B, h, w, c) += the windows in cols of output
 * pixels [p0, p1), in pixel order. */
static void col2im_add(float *x, const float *cols, int h, int w, int c, int oh, int ow, size_t p0,
                       size_t p1)
{
    size_t row = (size_t)TAPS * c, run = (size_t)KS * c;
    for (size_t p = p0; p < p1; p++) {
        int ox = (int)(p % ow), oy = (int)(p / ow % oh);
        size_t b = p / ((size_t)ow * oh);
        const float *src = cols + (p - p0) * row;
        int lo, hi;
        window_row(ox, w, c, &lo, &hi);
        for (int ky = 0; ky < KS; ky++, src += run) {
            int iy = 2 * oy + ky - 1;
            if (iy < 0 || iy >= h)
                continue;
            float *dst = x + ((b * h + (size_t)iy) * w) * c + ((ptrdiff_t)(2 * ox - 1) * c + lo);
            for (int k = lo; k < hi; k++)
                dst[k - lo] += src[k]; /* as in im2col: dst starts at column lo */
        }
    }
}

/* Windows are made and used a block of pixels at a time, so that a block
 * stays in cache between im2col, its product and col2im: blocks of about
 * 128 Ki floats of windows, at least 16 pixels. */
static size_t block_pixels(int c)
{
    size_t n = ((size_t)1 << 17) / ((size_t)TAPS * c);
    return n < 16 ? 16 : n;
}

/* ---- the convolution ------------------------------------------------------- */

const char *layer_conv_make(Layer *l, int c_in, int h, int w, int c_out, int act)
{
    if (c_in < 1 || c_out < 1 || h < 2 || w < 2)
        return "a convolution needs channels and an image of at least 2 x 2";
    if (h % 2 || w % 2)
        return "a stride-2 convolution needs an even height and width";
    *l = (Layer){&layer_conv, c_in, h, w, c_out, h / 2, w / 2, act, 0, VD_INIT_UNIFORM, -1,
                 KS, 2, 1};
    return NULL;
}

static int conv_tensors(const Layer *l, TensorSpec *spec)
{
    int fan_in = TAPS * l->in_c;
    spec[0] = (TensorSpec){"weight", 4, {l->out_c, KS, KS, l->in_c}, fan_in, l->init};
    spec[1] = (TensorSpec){"bias", 1, {l->out_c}, fan_in, VD_INIT_UNIFORM};
    return 2;
}

static void conv_forward(const Layer *l, const LayerParams *p, float *out, const float *in, int B,
                         float *cols, float *saved)
{
    (void)saved;
    int K = TAPS * l->in_c;
    size_t M = (size_t)B * l->out_h * l->out_w, step = block_pixels(l->in_c);
    rows_fill_bias(out, p->t[1], M, l->out_c);
    for (size_t p0 = 0; p0 < M; p0 += step) {
        size_t p1 = p0 + step < M ? p0 + step : M;
        im2col(cols, in, l->in_h, l->in_w, l->in_c, l->out_h, l->out_w, p0, p1);
        /* out (pixels, c_out) += cols (pixels, K) W^T */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(p1 - p0), l->out_c, K, 1.0f,
                    cols, K, p->t[0], K, 1.0f, out + p0 * (size_t)l->out_c, l->out_c);
    }
}

static void conv_backward(const Layer *l, const LayerParams *p, const LayerParams *g, float *din,
                          int din_add, const float *dout, const float *in, int B, float *cols,
                          const float *saved)
{
    (void)saved;
    int K = TAPS * l->in_c;
    size_t M = (size_t)B * l->out_h * l->out_w, step = block_pixels(l->in_c);
    rows_bias_grad(g->t[1], dout, M, l->out_c);
    if (din && !din_add)
        memset(din, 0, sizeof(float) * (size_t)B * layer_in_size(l));
    for (size_t p0 = 0; p0 < M; p0 += step) {
        size_t p1 = p0 + step < M ? p0 + step : M;
        const float *d = dout + p0 * (size_t)l->out_c;
        im2col(cols, in, l->in_h, l->in_w, l->in_c, l->out_h, l->out_w, p0, p1);
        /* dW (c_out, K) += dout^T (c_out, pixels) cols (pixels, K), blocks in order */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, l->out_c, K, (int)(p1 - p0), 1.0f, d,
                    l->out_c, cols, K, 1.0f, g->t[0], K);
        if (!din)
            continue;
        /* dcols (pixels, K) = dout (pixels, c_out) W (c_out, K), back onto the input */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(p1 - p0), K, l->out_c, 1.0f, d,
                    l->out_c, p->t[0], K, 0.0f, cols, K);
        col2im_add(din, cols, l->in_h, l->in_w, l->in_c, l->out_h, l->out_w, p0, p1);
    }
}

static double conv_macs(const Layer *l)
{
    return (double)l->out_h * l->out_w * l->out_c * TAPS * l->in_c;
}

/* a block of windows */
static size_t conv_cols(const Layer *l, int B)
{
    size_t M = (size_t)B * l->out_h * l->out_w, step = block_pixels(l->in_c);
    return (M < step ? M : step) * TAPS * (size_t)l->in_c;
}

static size_t no_floats(const Layer *l, int B)
{
    (void)l;
    (void)B;
    return 0;
}

static void conv_ref(const Layer *l, const double *const *p, double *out, const double *in)
{
    const double *w = p[0], *b = p[1];
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
                              conv_cols, no_floats, conv_ref};

/* ---- the transposed convolution ------------------------------------------ */

const char *layer_tconv_make(Layer *l, int c_in, int h, int w, int c_out, int act)
{
    if (c_in < 1 || c_out < 1 || h < 1 || w < 1)
        return "a transposed convolution needs channels and an image";
    *l = (Layer){&layer_tconv, c_in, h, w, c_out, 2 * h, 2 * w, act, 0, VD_INIT_UNIFORM, -1,
                 KS, 2, 1};
    return NULL;
}

static int tconv_tensors(const Layer *l, TensorSpec *spec)
{
    /* PyTorch's rule for a transposed convolution: the fan-in is the
     * output channels times the window */
    int fan_in = TAPS * l->out_c;
    spec[0] = (TensorSpec){"weight", 4, {l->in_c, KS, KS, l->out_c}, fan_in, l->init};
    spec[1] = (TensorSpec){"bias", 1, {l->out_c}, fan_in, VD_INIT_UNIFORM};
    return 2;
}

static void tconv_forward(const Layer *l, const LayerParams *p, float *out, const float *in,
                          int B, float *cols, float *saved)
{
    (void)saved;
    int N = TAPS * l->out_c;
    size_t M = (size_t)B * l->in_h * l->in_w, step = block_pixels(l->out_c);
    rows_fill_bias(out, p->t[1], (size_t)B * l->out_h * l->out_w, l->out_c);
    for (size_t p0 = 0; p0 < M; p0 += step) {
        size_t p1 = p0 + step < M ? p0 + step : M;
        /* cols (pixels, 16 c_out) = in (pixels, c_in) W (c_in, 16 c_out), onto the output */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(p1 - p0), N, l->in_c, 1.0f,
                    in + p0 * (size_t)l->in_c, l->in_c, p->t[0], N, 0.0f, cols, N);
        col2im_add(out, cols, l->out_h, l->out_w, l->out_c, l->in_h, l->in_w, p0, p1);
    }
}

static void tconv_backward(const Layer *l, const LayerParams *p, const LayerParams *g, float *din,
                           int din_add, const float *dout, const float *in, int B, float *dcols,
                           const float *saved)
{
    (void)saved;
    int N = TAPS * l->out_c;
    size_t M = (size_t)B * l->in_h * l->in_w, step = block_pixels(l->out_c);
    rows_bias_grad(g->t[1], dout, (size_t)B * l->out_h * l->out_w, l->out_c);
    for (size_t p0 = 0; p0 < M; p0 += step) {
        size_t p1 = p0 + step < M ? p0 + step : M;
        const float *x = in + p0 * (size_t)l->in_c;
        im2col(dcols, dout, l->out_h, l->out_w, l->out_c, l->in_h, l->in_w, p0, p1);
        /* dW (c_in, 16 c_out) += in^T (c_in, pixels) dcols (pixels, 16 c_out) */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, l->in_c, N, (int)(p1 - p0), 1.0f, x,
                    l->in_c, dcols, N, 1.0f, g->t[0], N);
        /* din (pixels, c_in) (+)= dcols (pixels, 16 c_out) W^T (16 c_out, c_in) */
        if (din)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(p1 - p0), l->in_c, N, 1.0f,
                        dcols, N, p->t[0], N, din_add ? 1.0f : 0.0f, din + p0 * (size_t)l->in_c,
                        l->in_c);
    }
}

static double tconv_macs(const Layer *l)
{
    return (double)l->in_h * l->in_w * l->in_c * TAPS * l->out_c;
}

static size_t tconv_cols(const Layer *l, int B)
{
    size_t M = (size_t)B * l->in_h * l->in_w, step = block_pixels(l->out_c);
    return (M < step ? M : step) * TAPS * (size_t)l->out_c;
}

static void tconv_ref(const Layer *l, const double *const *p, double *out, const double *in)
{
    const double *w = p[0], *b = p[1];
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
