/* layer_conv2d.c — convolutions of any odd kernel, stride 1 or 2 and any
 * padding, as im2col and OpenBLAS sgemm on channels-last samples; and the
 * engine that the gated convolution (layer_gconv.c) shares. See layer.h.
 *
 * A convolution (h, w, c) -> (oh, ow, n) gathers, for each output pixel,
 * its k x k window of inputs into one row of K = k k c values (im2col),
 * ordered (ky, kx, c) like the weight's (n, k, k, c), so that the layer is
 * one product, out (pixels, n) = windows W^T. Output pixel (oy, ox) sees
 * input (s oy + ky - pad, s ox + kx - pad); the padding reads as zeros. The
 * windows are made and used a block of output pixels at a time, so that a
 * block stays in cache, and the weight and bias gradients sum the blocks in
 * order: every sum runs in a fixed order, so replicas stay bitwise
 * identical. A pointwise convolution (1x1, stride 1, no padding) needs no
 * windows: its input rows are them. */
#include "layer.h"

#include <cblas.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

ConvGeom conv_geom(const Layer *l)
{
    int n = l->kind == &layer_gconv ? 2 * l->out_c : l->out_c;
    return (ConvGeom){l->in_c, l->in_h, l->in_w, l->out_h, l->out_w, l->kernel, l->stride, l->pad,
                      n};
}

static int pointwise(const ConvGeom *g) { return g->k == 1 && g->stride == 1 && g->pad == 0; }

static size_t window_floats(const ConvGeom *g) { return (size_t)g->k * g->k * g->c; }

size_t conv_block_pixels(const ConvGeom *g)
{
    size_t K = window_floats(g), widest = K > (size_t)g->n ? K : (size_t)g->n;
    size_t n = ((size_t)1 << 17) / widest;
    return n < 16 ? 16 : n;
}

size_t conv_cols_floats(const ConvGeom *g, int B)
{
    size_t M = (size_t)B * g->oh * g->ow, step = conv_block_pixels(g);
    return pointwise(g) ? 0 : (M < step ? M : step) * window_floats(g);
}

/* The taps of a window's row that fall inside the image: [lo, hi) of 0..k,
 * for a window whose first column is ix0. */
static void window_span(const ConvGeom *g, int ix0, int *lo, int *hi)
{
    *lo = ix0 < 0 ? -ix0 : 0;
    *hi = g->w - ix0 < g->k ? g->w - ix0 : g->k;
    if (*hi < *lo)
        *hi = *lo;
}

/* cols (p1 - p0, K) = the windows of x (B, h, w, c) for output pixels [p0,
 * p1) of the grid B x oh x ow. */
static void im2col(float *cols, const float *x, const ConvGeom *g, size_t p0, size_t p1)
{
    size_t run = (size_t)g->k * g->c, row = window_floats(g);
    for (size_t p = p0; p < p1; p++) {
        int ox = (int)(p % g->ow), oy = (int)(p / g->ow % g->oh);
        size_t b = p / ((size_t)g->ow * g->oh);
        int ix0 = g->stride * ox - g->pad, lo, hi;
        window_span(g, ix0, &lo, &hi);
        size_t a = (size_t)lo * g->c, z = (size_t)hi * g->c;
        float *dst = cols + (p - p0) * row;
        for (int ky = 0; ky < g->k; ky++, dst += run) {
            int iy = g->stride * oy + ky - g->pad;
            if (iy < 0 || iy >= g->h) {
                memset(dst, 0, sizeof(float) * run);
                continue;
            }
            /* from the first tap inside the image, so the pointer stays inside x */
            const float *src = x + ((b * g->h + (size_t)iy) * g->w + (size_t)(ix0 + lo)) * g->c;
            memset(dst, 0, sizeof(float) * a);
            memcpy(dst + a, src, sizeof(float) * (z - a));
            memset(dst + z, 0, sizeof(float) * (run - z));
        }
    }
}

/* The adjoint of im2col: x (B, h, w, c) += the windows in cols of output
 * pixels [p0, p1), in pixel order. */
static void col2im_add(float *x, const float *cols, const ConvGeom *g, size_t p0, size_t p1)
{
    size_t run = (size_t)g->k * g->c, row = window_floats(g);
    for (size_t p = p0; p < p1; p++) {
        int ox = (int)(p % g->ow), oy = (int)(p / g->ow % g->oh);
        size_t b = p / ((size_t)g->ow * g->oh);
        int ix0 = g->stride * ox - g->pad, lo, hi;
        window_span(g, ix0, &lo, &hi);
        size_t a = (size_t)lo * g->c, z = (size_t)hi * g->c;
        const float *src = cols + (p - p0) * row;
        for (int ky = 0; ky < g->k; ky++, src += run) {
            int iy = g->stride * oy + ky - g->pad;
            if (iy < 0 || iy >= g->h)
                continue;
            float *dst = x + ((b * g->h + (size_t)iy) * g->w + (size_t)(ix0 + lo)) * g->c;
            for (size_t j = a; j < z; j++)
                dst[j - a] += src[j];
        }
    }
}

void conv_block_forward(float *pre, const float *W, const float *x, const ConvGeom *g, size_t p0,
                        size_t p1, float *cols)
{
    int K = (int)window_floats(g), n = g->n;
    const float *win = x + p0 * (size_t)g->c;
    if (!pointwise(g)) {
        im2col(cols, x, g, p0, p1);
        win = cols;
    }
    /* pre (pixels, n) += windows (pixels, K) W^T */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(p1 - p0), n, K, 1.0f, win, K, W, K,
                1.0f, pre, n);
}

void conv_block_backward(float *dW, float *dx, const float *dpre, const float *W, const float *x,
                         const ConvGeom *g, size_t p0, size_t p1, float *cols)
{
    int K = (int)window_floats(g), rows = (int)(p1 - p0), pw = pointwise(g), n = g->n;
    const float *win = x + p0 * (size_t)g->c;
    if (!pw) {
        im2col(cols, x, g, p0, p1);
        win = cols;
    }
    /* dW (n, K) += dpre^T (n, pixels) windows (pixels, K) */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, K, rows, 1.0f, dpre, n, win, K, 1.0f,
                dW, K);
    if (!dx)
        return;
    /* the windows' gradient dpre (pixels, n) W (n, K), back onto the input */
    if (pw) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, K, n, 1.0f, dpre, n, W, K,
                    1.0f, dx + p0 * (size_t)g->c, K);
        return;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, K, n, 1.0f, dpre, n, W, K, 0.0f,
                cols, K);
    col2im_add(dx, cols, g, p0, p1);
}

void rows_fill_bias(float *out, const float *b, size_t rows, int n)
{
    for (size_t i = 0; i < rows; i++)
        memcpy(out + i * (size_t)n, b, sizeof(float) * (size_t)n);
}

void rows_bias_grad(float *db, const float *d, size_t rows, int n)
{
    for (size_t i = 0; i < rows; i++) {
        const float *r = d + i * (size_t)n;
        for (int j = 0; j < n; j++)
            db[j] += r[j];
    }
}

void conv_forward_ref(double *out, const double *in, const double *W, const double *b, int n,
              const ConvGeom *g)
{
    int k = g->k;
    for (int oy = 0; oy < g->oh; oy++)
        for (int ox = 0; ox < g->ow; ox++)
            for (int co = 0; co < n; co++) {
                double acc = b[co];
                for (int ky = 0; ky < k; ky++)
                    for (int kx = 0; kx < k; kx++) {
                        int iy = g->stride * oy + ky - g->pad, ix = g->stride * ox + kx - g->pad;
                        if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w)
                            continue;
                        for (int ci = 0; ci < g->c; ci++)
                            acc += W[(((size_t)co * k + ky) * k + kx) * g->c + ci] *
                                   in[((size_t)iy * g->w + ix) * g->c + ci];
                    }
                out[((size_t)oy * g->ow + ox) * n + co] = acc;
            }
}

/* ---- the convolution ------------------------------------------------------- */

const char *layer_conv2d_make(Layer *l, int c_in, int h, int w, int c_out, int k, int stride,
                              int pad, int act)
{
    static __thread char why[128];
    if (pad == VD_PAD_SAME)
        pad = k / 2;
    if (c_in < 1 || c_out < 1 || h < 1 || w < 1)
        return "a convolution needs channels and an image";
    if (k < 1 || k % 2 == 0 || k > VD_MAX_KERNEL)
        snprintf(why, sizeof why, "a convolution's kernel is odd, 1 to %d, not %d", VD_MAX_KERNEL,
                 k);
    else if (stride != 1 && stride != 2)
        snprintf(why, sizeof why, "a convolution's stride is 1 or 2, not %d", stride);
    else if (pad < 0 || pad > k - 1)
        snprintf(why, sizeof why, "a %dx%d convolution's padding is 0 to %d, not %d", k, k, k - 1,
                 pad);
    else if (k > h || k > w)
        snprintf(why, sizeof why, "a %dx%d kernel is larger than the %dx%d image", k, k, h, w);
    else if (h % stride || w % stride)
        snprintf(why, sizeof why, "a stride-%d convolution needs a height and width that divide "
                 "by %d, not %dx%d", stride, stride, h, w);
    else
        why[0] = '\0';
    if (why[0])
        return why;
    int oh = (h + 2 * pad - k) / stride + 1, ow = (w + 2 * pad - k) / stride + 1;
    *l = (Layer){&layer_conv2d, c_in, h, w, c_out, oh, ow, act, 0, VD_INIT_UNIFORM, -1,
                 k, stride, pad};
    return NULL;
}

static int conv2d_tensors(const Layer *l, TensorSpec *spec)
{
    int k = l->kernel, fan_in = k * k * l->in_c;
    spec[0] = (TensorSpec){"weight", 4, {l->out_c, k, k, l->in_c}, fan_in, l->init};
    spec[1] = (TensorSpec){"bias", 1, {l->out_c}, fan_in, VD_INIT_UNIFORM};
    return 2;
}

static void conv2d_forward(const Layer *l, const LayerParams *p, float *out, const float *in,
                           int B, float *cols, float *saved)
{
    (void)saved;
    ConvGeom g = conv_geom(l);
    size_t M = (size_t)B * g.oh * g.ow, step = conv_block_pixels(&g), n = (size_t)l->out_c;
    for (size_t p0 = 0; p0 < M; p0 += step) {
        size_t p1 = p0 + step < M ? p0 + step : M;
        rows_fill_bias(out + p0 * n, p->t[1], p1 - p0, l->out_c);
        conv_block_forward(out + p0 * n, p->t[0], in, &g, p0, p1, cols);
    }
}

static void conv2d_backward(const Layer *l, const LayerParams *p, const LayerParams *g, float *din,
                            int din_add, const float *dout, const float *in, int B, float *cols,
                            const float *saved)
{
    (void)saved;
    ConvGeom geo = conv_geom(l);
    size_t M = (size_t)B * geo.oh * geo.ow, step = conv_block_pixels(&geo), n = (size_t)l->out_c;
    if (din && !din_add)
        memset(din, 0, sizeof(float) * (size_t)B * layer_in_size(l));
    for (size_t p0 = 0; p0 < M; p0 += step) {
        size_t p1 = p0 + step < M ? p0 + step : M;
        rows_bias_grad(g->t[1], dout + p0 * n, p1 - p0, l->out_c);
        conv_block_backward(g->t[0], din, dout + p0 * n, p->t[0], in, &geo, p0, p1, cols);
    }
}

static double conv2d_macs(const Layer *l)
{
    return (double)l->out_h * l->out_w * l->out_c * l->kernel * l->kernel * l->in_c;
}

static size_t conv2d_cols(const Layer *l, int B)
{
    ConvGeom g = conv_geom(l);
    return conv_cols_floats(&g, B);
}

static size_t no_floats(const Layer *l, int B)
{
    (void)l;
    (void)B;
    return 0;
}

static void conv2d_ref(const Layer *l, const double *const *p, double *out, const double *in)
{
    ConvGeom g = conv_geom(l);
    conv_forward_ref(out, in, p[0], p[1], l->out_c, &g);
}

const LayerKind layer_conv2d = {"conv2d", conv2d_tensors, conv2d_forward, conv2d_backward,
                                conv2d_macs, conv2d_cols, no_floats, conv2d_ref};
