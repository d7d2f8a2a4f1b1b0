/* conv_layers.c — the convolution kinds of --preset conv-hvae against the
 * sgemm ceiling of their own products: for each of the model's
 * convolutions, forward and backward as the layer runs them (im2col, the
 * products, the gate, col2im, a block of output pixels at a time), and the
 * same products alone (sgemm on the same block shapes, nothing between).
 *
 *   bench/conv_layers [--batch B] [--reps R]
 *
 * prints per layer (times the model has it) the best-of-R time of each and
 * their ratio (sgemm time / layer time: 1 is the ceiling), and the model's
 * convolutions together. One thread: set OPENBLAS_NUM_THREADS=1. The FLOPs
 * count forward, the weight gradient and (but for the layers reading x) the
 * input gradient, 2 multiply-adds each. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "layer.h"

typedef struct {
    int c_in, side, c_out, k, stride, gated, din, times;
} ConvLayer;

/* q(z2|x), q(z1|x, z2)'s x branch, p(x|z1, z2) of conv-hvae on 28x28x1 */
static const ConvLayer model[] = {
    {1, 28, 32, 7, 1, 1, 0, 1},  {32, 28, 32, 3, 2, 1, 1, 2}, {32, 14, 64, 5, 1, 1, 1, 1},
    {64, 14, 64, 3, 2, 1, 1, 2}, {64, 7, 6, 3, 1, 1, 1, 2},   {1, 28, 32, 3, 1, 1, 0, 1},
    {32, 14, 64, 3, 1, 1, 1, 1}, {1, 28, 64, 3, 1, 1, 1, 1},  {64, 28, 64, 3, 1, 1, 1, 3},
    {64, 28, 1, 1, 1, 0, 1, 1}};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static float *filled(size_t n)
{
    float *p = malloc((n + 1) * sizeof(float));
    if (!p) {
        fprintf(stderr, "conv_layers: out of memory\n");
        exit(70);
    }
    for (size_t i = 0; i < n; i++)
        p[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
    return p;
}

/* The products of one forward and backward of geometry g at B samples,
 * block by block as conv_block_forward and conv_block_backward make them. */
static void products_alone(const ConvGeom *g, int B, int din, const float *A, float *C,
                           const float *W, float *dW, float *dA)
{
    int K = g->k * g->k * g->c, n = g->n;
    size_t M = (size_t)B * g->oh * g->ow, step = conv_block_pixels(g);
    for (size_t p0 = 0; p0 < M; p0 += step) {
        int rows = (int)((p0 + step < M ? p0 + step : M) - p0);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, n, K, 1, A, K, W, K, 1, C, n);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, K, rows, 1, C, n, A, K, 1, dW, K);
        if (din)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, K, n, 1, C, n, W, K, 0,
                        dA, K);
    }
}

/* Best-of-reps seconds of the layer's forward and backward (*layer) and of
 * its products alone (*alone). */
static void time_layer(const ConvLayer *c, int B, int reps, Layer *l, double *layer,
                       double *alone)
{
    const char *why = c->gated ? layer_gconv_make(l, c->c_in, c->side, c->side, c->c_out, c->k,
                                                  c->stride, VD_PAD_SAME)
                               : layer_conv2d_make(l, c->c_in, c->side, c->side, c->c_out, c->k,
                                                   c->stride, VD_PAD_SAME, VD_ACT_NONE);
    if (why) {
        fprintf(stderr, "conv_layers: %s\n", why);
        exit(70);
    }
    size_t sizes[VD_LAYER_TENSORS], np = 0;
    int nt = layer_tensor_sizes(l, sizes);
    for (int k = 0; k < nt; k++)
        np += sizes[k];
    float *p = filled(np), *g = calloc(np + 1, sizeof(float));
    LayerParams pv = {{NULL}}, gv = {{NULL}};
    for (int k = 0, at = 0; k < nt; at += (int)sizes[k++]) {
        pv.t[k] = p + at;
        gv.t[k] = g + at;
    }
    size_t ni = (size_t)B * layer_in_size(l), no = (size_t)B * layer_out_size(l);
    float *in = filled(ni), *din = calloc(ni + 1, sizeof(float)), *out = calloc(no + 1, sizeof(float));
    float *dout = filled(no), *scratch = calloc(l->kind->scratch_floats(l, B) + 1, sizeof(float));
    float *saved = calloc(l->kind->saved_floats(l, B) + 1, sizeof(float));
    ConvGeom geo = conv_geom(l);
    size_t K = (size_t)l->kernel * l->kernel * l->in_c, step = conv_block_pixels(&geo);
    float *A = filled(step * K), *C = calloc(step * geo.n + 1, sizeof(float));
    float *W = filled((size_t)geo.n * K), *dW = calloc((size_t)geo.n * K, sizeof(float));
    float *dA = calloc(step * K + 1, sizeof(float));
    *layer = *alone = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        l->kind->forward(l, &pv, out, in, B, scratch, saved);
        l->kind->backward(l, &pv, &gv, c->din ? din : NULL, 0, dout, in, B, scratch, saved);
        double t1 = now();
        products_alone(&geo, B, c->din, A, C, W, dW, dA);
        double t2 = now();
        *layer = t1 - t0 < *layer ? t1 - t0 : *layer;
        *alone = t2 - t1 < *alone ? t2 - t1 : *alone;
    }
    free(p); free(g); free(in); free(din); free(out); free(dout); free(scratch); free(saved);
    free(A); free(C); free(W); free(dW); free(dA);
}

int main(int argc, char **argv)
{
    int B = 1, reps = 30;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--batch") == 0)
            B = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--reps") == 0)
            reps = atoi(argv[i + 1]);
    }
    if (B < 1 || reps < 1 || argc % 2 == 0) {
        fprintf(stderr, "usage: conv_layers [--batch B] [--reps R]\n");
        return 64;
    }
    double total_layer = 0, total_alone = 0, total_flops = 0;
    for (size_t i = 0; i < sizeof model / sizeof *model; i++) {
        const ConvLayer *c = &model[i];
        Layer l;
        double layer, alone;
        time_layer(c, B, reps, &l, &layer, &alone);
        double flops = 2.0 * l.kind->macs(&l) * B * (c->din ? 3 : 2);
        printf("%dx %-12s %2d -> %2d  %dx%d /%d  %2dx%-2d  layer %7.2f ms %5.1f GFLOP/s  "
               "sgemm %7.2f ms %5.1f GFLOP/s  ratio %.2f\n",
               c->times, l.kind->name, l.in_c, l.out_c, l.kernel, l.kernel, l.stride, l.in_h,
               l.in_w, layer * 1e3, flops / layer * 1e-9, alone * 1e3, flops / alone * 1e-9,
               alone / layer);
        total_layer += layer * c->times;
        total_alone += alone * c->times;
        total_flops += flops * c->times;
    }
    printf("conv_layers_ratio=%.3f layers_ms=%.2f sgemm_ms=%.2f layers_gflops=%.1f batch=%d\n",
           total_alone / total_layer, total_layer * 1e3, total_alone * 1e3,
           total_flops / total_layer * 1e-9, B);
    return 0;
}
