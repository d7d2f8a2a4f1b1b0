/* sgemm.c — the ceiling for a training step: OpenBLAS sgemm alone on the
 * exact matrix products of one vae-dist step (same shapes, same transposes,
 * same row-major layout, the same blocks), with nothing else in between.
 *
 *   bench/sgemm --input 784 --hidden 400 --latent 20 --batch 128 [--reps 200]
 *   bench/sgemm --image 28x28x1 --conv 32,64 --hidden 256 --latent 20 --batch 128
 *   bench/sgemm --products TRACE [--reps 50]
 *   bench/sgemm --config      OpenBLAS's build and the core it chose
 *
 * With --products, the products are those bench/sgemm_trace.so recorded of
 * one step of any model (several stochastic layers, gated layers, a
 * VampPrior's pseudo-inputs), replayed in their order on buffers of their
 * sizes; the FLOPs are 2 M N K summed over them.
 *
 * prints "sgemm_gflops=X step_ms=Y": the products' FLOPs (counted as
 * vae-dist's --profile counts them) over their best-of-5 time per step. A
 * step's products, for each dense layer (n_in -> n_out) of the encoder, the
 * heads and the decoder, at B rows:
 *   forward   out (B, n_out) = bias + in (B, n_in) W^T   2 B n_in n_out
 *   backward  dW (n_out, n_in) = dout^T in               2 B n_in n_out
 *             din (B, n_in) = dout W (not for layer 1)   2 B n_in n_out
 * and for each 4x4 stride-2 convolution (c_in -> c_out, K = 16 c_in) over
 * blocks of P output pixels (as layer_conv.c makes them: P = 2^17 / K):
 *   forward   out (P, c_out) += cols (P, K) W^T
 *   backward  dW (c_out, K) += dout^T cols;  dcols (P, K) = dout W (not layer 1)
 * and each transposed one (c_in -> c_out, N = 16 c_out, P input pixels,
 * P = 2^17 / N):
 *   forward   cols (P, N) = in (P, c_in) W
 *   backward  dW (c_in, N) += in^T dcols;  din (P, c_in) = dcols W^T */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_LAYERS 20

typedef struct {
    int kind;         /* 0 dense, 1 convolution, 2 transposed convolution */
    int n_in, n_out;  /* dense: sizes; convolutions: channels */
    long pixels;      /* convolutions: the product's pixels per sample */
} Shape;

/* Pixels per block of windows, as layer_conv.c picks them. */
static long block_pixels(int c)
{
    long n = (1L << 17) / (16L * c);
    return n < 16 ? 16 : n;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static float *filled(size_t n)
{
    float *p = malloc(n * sizeof(float));
    if (!p) {
        fprintf(stderr, "sgemm: out of memory\n");
        exit(70);
    }
    for (size_t i = 0; i < n; i++)
        p[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
    return p;
}

/* One layer's products, forward (dir 0) or backward (dir 1; din unless first). */
static void products(const Shape *l, int batch, int dir, int first, float *in, float *out,
                     float *din, float *w, float *dw)
{
    if (l->kind == 0) {
        int ni = l->n_in, no = l->n_out;
        if (dir == 0)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, batch, no, ni, 1.0f, in, ni, w,
                        ni, 1.0f, out, no);
        else {
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, no, ni, batch, 1.0f, out, no,
                        in, ni, 0.0f, dw, ni);
            if (!first)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, batch, ni, no, 1.0f, out,
                            no, w, ni, 0.0f, din, ni);
        }
        return;
    }
    int conv = l->kind == 1, wide = 16 * (conv ? l->n_in : l->n_out);
    int narrow = conv ? l->n_out : l->n_in;
    long M = (long)batch * l->pixels, step = block_pixels(conv ? l->n_in : l->n_out);
    for (long p0 = 0; p0 < M; p0 += step) {
        int P = (int)(p0 + step < M ? step : M - p0);
        if (conv && dir == 0) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, P, narrow, wide, 1.0f, in, wide,
                        w, wide, 1.0f, out, narrow);
        } else if (conv) {
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, narrow, wide, P, 1.0f, out,
                        narrow, in, wide, p0 ? 1.0f : 0.0f, dw, wide);
            if (!first)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, P, wide, narrow, 1.0f, out,
                            narrow, w, wide, 0.0f, din, wide);
        } else if (dir == 0) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, P, wide, narrow, 1.0f, in,
                        narrow, w, wide, 0.0f, out, wide);
        } else {
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, narrow, wide, P, 1.0f, in, narrow,
                        out, wide, p0 ? 1.0f : 0.0f, dw, wide);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, P, narrow, wide, 1.0f, out, wide,
                        w, wide, 0.0f, din, narrow);
        }
    }
}

static double layer_flops(const Shape *l, int batch, int first)
{
    double macs = l->kind == 0 ? (double)l->n_in * l->n_out
                               : (double)l->pixels * 16.0 * l->n_in * l->n_out;
    return 2.0 * batch * macs * (first ? 2 : 3);
}

/* --products: the recorded calls, replayed alone. */
static int replay(const char *path, int reps)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        return 66;
    }
    int (*call)[9] = NULL, n = 0, cap = 0;
    float *betas = NULL, beta;
    int v[9];
    size_t most = 1;
    while (fscanf(f, "%d %d %d %d %d %d %d %d %d %g", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                  &v[6], &v[7], &v[8], &beta) == 10) {
        if (n == cap) {
            cap = cap ? 2 * cap : 256;
            call = realloc(call, sizeof *call * (size_t)cap);
            betas = realloc(betas, sizeof *betas * (size_t)cap);
        }
        memcpy(call[n], v, sizeof v);
        betas[n++] = beta;
        /* each operand's extent: rows times its leading dimension */
        size_t a = (size_t)(v[1] == CblasNoTrans ? v[3] : v[5]) * (size_t)v[6];
        size_t b = (size_t)(v[2] == CblasNoTrans ? v[5] : v[4]) * (size_t)v[7];
        size_t c = (size_t)v[3] * (size_t)v[8];
        most = a > most ? a : most;
        most = b > most ? b : most;
        most = c > most ? c : most;
    }
    fclose(f);
    if (n == 0) {
        fprintf(stderr, "sgemm: %s holds no products\n", path);
        return 65;
    }
    float *A = filled(most), *B = filled(most), *C = filled(most);
    double flops = 0, best = 1e30;
    for (int i = 0; i < n; i++)
        flops += 2.0 * call[i][3] * call[i][4] * call[i][5];
    for (int trial = 0; trial < 5; trial++) {
        double t0 = now();
        for (int r = 0; r < reps; r++)
            for (int i = 0; i < n; i++)
                cblas_sgemm(CblasRowMajor, (enum CBLAS_TRANSPOSE)call[i][1],
                            (enum CBLAS_TRANSPOSE)call[i][2], call[i][3], call[i][4], call[i][5],
                            1.0f, A, call[i][6], B, call[i][7], betas[i], C, call[i][8]);
        double t = (now() - t0) / reps;
        best = t < best ? t : best;
    }
    printf("sgemm_gflops=%.2f step_ms=%.4f products=%d\n", flops / best * 1e-9, best * 1e3, n);
    free(A);
    free(B);
    free(C);
    free(call);
    free(betas);
    return 0;
}

int main(int argc, char **argv)
{
    /* The core decides the ceiling: OPENBLAS_CORETYPE in the environment
     * overrides what OpenBLAS would detect (Haswell kernels on an AVX-512
     * machine run at about half its sgemm rate). */
    if (argc == 2 && !strcmp(argv[1], "--config")) {
        printf("%s\n", openblas_get_config());
        return 0;
    }
    for (int i = 1; i + 1 < argc; i += 2)
        if (!strcmp(argv[i], "--products")) {
            int reps = 20;
            for (int j = 1; j + 1 < argc; j += 2)
                if (!strcmp(argv[j], "--reps"))
                    reps = atoi(argv[j + 1]);
            return replay(argv[i + 1], reps > 0 ? reps : 1);
        }
    int input = 784, latent = 20, batch = 128, reps = 200, hidden[8] = {400}, n_hidden = 1;
    int conv[8], n_conv = 0, ih = 0, iw = 0, ic = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--input"))
            input = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--image"))
            sscanf(argv[i + 1], "%dx%dx%d", &ih, &iw, &ic);
        else if (!strcmp(argv[i], "--conv")) {
            for (char *p = argv[i + 1]; *p && n_conv < 8; p += *p == ',')
                conv[n_conv++] = (int)strtol(p, &p, 10);
        }
        else if (!strcmp(argv[i], "--latent"))
            latent = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--batch"))
            batch = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--reps"))
            reps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--hidden")) {
            n_hidden = 0;
            for (char *p = argv[i + 1]; *p && n_hidden < 8; p += *p == ',')
                hidden[n_hidden++] = (int)strtol(p, &p, 10);
        } else {
            fprintf(stderr, "sgemm: unknown option %s\n", argv[i]);
            return 64;
        }
    }
    if (n_conv)
        input = ih * iw * ic;
    if (input < 1 || latent < 1 || batch < 1 || reps < 1 || n_hidden < 1) {
        fprintf(stderr, "sgemm: sizes must be positive\n");
        return 64;
    }
    /* the model's layers: convolutions, dense encoder, heads (one 2d-row
     * matrix), decoder, transposed convolutions */
    Shape layer[MAX_LAYERS];
    int L = 0, prev = input, c = ic, h = ih, wd = iw;
    for (int l = 0; l < n_conv; l++) {
        h /= 2;
        wd /= 2;
        layer[L++] = (Shape){1, c, conv[l], (long)h * wd};
        c = conv[l];
    }
    if (n_conv)
        prev = c * h * wd;
    int flat = prev;
    for (int l = 0; l < n_hidden; prev = hidden[l++])
        layer[L++] = (Shape){0, prev, hidden[l], 0};
    layer[L++] = (Shape){0, prev, 2 * latent, 0};
    prev = latent;
    for (int l = n_hidden - 1; l >= 0; prev = hidden[l--])
        layer[L++] = (Shape){0, prev, hidden[l], 0};
    layer[L++] = (Shape){0, prev, flat, 0};
    for (int l = n_conv - 1; l >= 0; l--) {
        int out = l ? conv[l - 1] : ic;
        layer[L++] = (Shape){2, c, out, (long)h * wd};
        c = out;
        h *= 2;
        wd *= 2;
    }

    size_t widest = (size_t)input, wmax = 0;
    double flops = 0;
    for (int l = 0; l < L; l++) {
        size_t a = layer[l].kind == 0 ? (size_t)batch * (layer[l].n_out > layer[l].n_in ? layer[l].n_out : layer[l].n_in)
                                      : (size_t)(block_pixels(layer[l].kind == 1 ? layer[l].n_in : layer[l].n_out) + 1) * 16 *
                                            (layer[l].n_in > layer[l].n_out ? layer[l].n_in : layer[l].n_out);
        size_t nw = (size_t)layer[l].n_in * layer[l].n_out * (layer[l].kind ? 16 : 1);
        widest = a > widest ? a : widest;
        wmax = nw > wmax ? nw : wmax;
        flops += layer_flops(&layer[l], batch, l == 0);
    }
    float *in = filled(widest), *out = filled(widest), *din = filled(widest);
    float *w[MAX_LAYERS], *dw[MAX_LAYERS];
    for (int l = 0; l < L; l++) {
        size_t n = (size_t)layer[l].n_in * layer[l].n_out * (layer[l].kind ? 16 : 1);
        w[l] = filled(n);
        dw[l] = filled(n);
    }
    (void)wmax;

    double best = 1e30;
    for (int trial = 0; trial < 5; trial++) {
        double t0 = now();
        for (int r = 0; r < reps; r++) {
            for (int l = 0; l < L; l++)
                products(&layer[l], batch, 0, l == 0, in, out, din, w[l], dw[l]);
            for (int l = L - 1; l >= 0; l--)
                products(&layer[l], batch, 1, l == 0, in, out, din, w[l], dw[l]);
        }
        double t = (now() - t0) / reps;
        best = t < best ? t : best;
    }
    printf("sgemm_gflops=%.2f step_ms=%.4f\n", flops / best * 1e-9, best * 1e3);
    for (int l = 0; l < L; l++) {
        free(w[l]);
        free(dw[l]);
    }
    free(in);
    free(out);
    free(din);
    return 0;
}
