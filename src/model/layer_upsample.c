/* layer_upsample.c — nearest upsampling by an integer factor f: each input
 * pixel becomes an f x f block of copies, (h, w, c) -> (f h, f w, c). With a
 * convolution after it, the learned upsampling that makes no checkerboard
 * (Odena et al. 2016). No tensors, no multiply-adds. See layer.h. */
#include "layer.h"

#include <stdio.h>
#include <string.h>

#include "util.h"

const char *layer_upsample_make(Layer *l, int c, int h, int w, int factor)
{
    static __thread char why[96];
    if (c < 1 || h < 1 || w < 1)
        return "an upsampling needs channels and an image";
    if (factor < 2 || factor > 8) {
        snprintf(why, sizeof why, "an upsampling's factor is 2 to 8, not %d", factor);
        return why;
    }
    *l = (Layer){&layer_upsample, c, h, w, c, factor * h, factor * w, VD_ACT_NONE, 0,
                 VD_INIT_UNIFORM, -1, 0, factor, 0};
    return NULL;
}

static int upsample_tensors(const Layer *l, TensorSpec *spec)
{
    (void)l;
    (void)spec;
    return 0;
}

/* out (B, f h, f w, c): row oy of a sample is input row oy / f, each pixel
 * repeated f times */
static void upsample_forward(const Layer *l, const LayerParams *p, float *out, const float *in,
                             int B, float *scratch, float *saved)
{
    (void)p;
    (void)scratch;
    (void)saved;
    int f = l->stride, c = l->in_c;
    size_t in_row = (size_t)l->in_w * c, out_row = (size_t)l->out_w * c;
    for (size_t r = 0; r < (size_t)B * l->out_h; r++) {
        size_t b = r / l->out_h, oy = r % l->out_h;
        const float *src = in + (b * l->in_h + oy / f) * in_row;
        float *dst = out + r * out_row;
        for (int ox = 0; ox < l->out_w; ox++)
            memcpy(dst + (size_t)ox * c, src + (size_t)(ox / f) * c, sizeof(float) * c);
    }
}

/* din (B, h, w, c) (+)= the sum of each f x f block of dout, rows then
 * columns, in a fixed order */
static void upsample_backward(const Layer *l, const LayerParams *p, const LayerParams *g,
                              float *din, int din_add, const float *dout, const float *in, int B,
                              float *scratch, const float *saved)
{
    (void)p;
    (void)g;
    (void)in;
    (void)scratch;
    (void)saved;
    if (!din)
        return;
    int f = l->stride, c = l->in_c;
    size_t in_row = (size_t)l->in_w * c, out_row = (size_t)l->out_w * c;
    if (!din_add)
        memset(din, 0, sizeof(float) * (size_t)B * layer_in_size(l));
    for (size_t r = 0; r < (size_t)B * l->out_h; r++) {
        size_t b = r / l->out_h, oy = r % l->out_h;
        float *dst = din + (b * l->in_h + oy / f) * in_row;
        const float *src = dout + r * out_row;
        for (int ox = 0; ox < l->out_w; ox++) {
            float *d = dst + (size_t)(ox / f) * c;
            const float *s = src + (size_t)ox * c;
            for (int j = 0; j < c; j++)
                d[j] += s[j];
        }
    }
}

static double upsample_macs(const Layer *l)
{
    (void)l;
    return 0;
}

static size_t no_floats(const Layer *l, int B)
{
    (void)l;
    (void)B;
    return 0;
}

static void upsample_ref(const Layer *l, const double *const *p, double *out, const double *in)
{
    (void)p;
    int f = l->stride, c = l->in_c;
    for (int oy = 0; oy < l->out_h; oy++)
        for (int ox = 0; ox < l->out_w; ox++)
            for (int j = 0; j < c; j++)
                out[((size_t)oy * l->out_w + ox) * c + j] =
                    in[((size_t)(oy / f) * l->in_w + ox / f) * c + j];
}

const LayerKind layer_upsample = {"upsample", upsample_tensors, upsample_forward,
                                  upsample_backward, upsample_macs, no_floats, no_floats,
                                  upsample_ref};
