/* sgemm.c — the ceiling for a training step: OpenBLAS sgemm alone on the
 * exact matrix products of one vae-dist step (same shapes, same transposes,
 * same row-major layout), with nothing else in between.
 *
 *   bench/sgemm --input 784 --hidden 400 --latent 20 --batch 128 [--reps 200]
 *
 * prints "sgemm_gflops=X step_ms=Y": the products' FLOPs (counted as
 * vae-dist's --profile counts them) over their best-of-5 time per step. A
 * step's products, for each linear layer (n_in -> n_out) of the encoder,
 * the heads and the decoder, at B rows:
 *   forward   out (B, n_out) = bias + in (B, n_in) W^T   2 B n_in n_out
 *   backward  dW (n_out, n_in) = dout^T in               2 B n_in n_out
 *             din (B, n_in) = dout W (not for layer 1)   2 B n_in n_out */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_LAYERS 20

typedef struct {
    int n_in, n_out;
} Shape;

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

int main(int argc, char **argv)
{
    int input = 784, latent = 20, batch = 128, reps = 200, hidden[8] = {400}, n_hidden = 1;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--input"))
            input = atoi(argv[i + 1]);
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
    if (input < 1 || latent < 1 || batch < 1 || reps < 1 || n_hidden < 1) {
        fprintf(stderr, "sgemm: sizes must be positive\n");
        return 64;
    }
    /* the model's layers: encoder, heads (one 2d-row matrix), decoder */
    Shape layer[MAX_LAYERS];
    int L = 0, prev = input;
    for (int l = 0; l < n_hidden; prev = hidden[l++])
        layer[L++] = (Shape){prev, hidden[l]};
    layer[L++] = (Shape){prev, 2 * latent};
    prev = latent;
    for (int l = n_hidden - 1; l >= 0; prev = hidden[l--])
        layer[L++] = (Shape){prev, hidden[l]};
    layer[L++] = (Shape){prev, input};

    int widest = input;
    for (int l = 0; l < L; l++)
        widest = layer[l].n_out > widest ? layer[l].n_out : widest;
    float *in = filled((size_t)batch * widest), *out = filled((size_t)batch * widest);
    float *din = filled((size_t)batch * widest);
    float *w[MAX_LAYERS], *dw[MAX_LAYERS];
    double flops = 0;
    for (int l = 0; l < L; l++) {
        size_t n = (size_t)layer[l].n_in * layer[l].n_out;
        w[l] = filled(n);
        dw[l] = filled(n);
        flops += 2.0 * batch * (double)n * (l == 0 ? 2 : 3);
    }

    double best = 1e30;
    for (int trial = 0; trial < 5; trial++) {
        double t0 = now();
        for (int r = 0; r < reps; r++) {
            for (int l = 0; l < L; l++) {
                int ni = layer[l].n_in, no = layer[l].n_out;
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, batch, no, ni, 1.0f, in, ni,
                            w[l], ni, 1.0f, out, no);
            }
            for (int l = L - 1; l >= 0; l--) {
                int ni = layer[l].n_in, no = layer[l].n_out;
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, no, ni, batch, 1.0f, out, no,
                            in, ni, 0.0f, dw[l], ni);
                if (l > 0)
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, batch, ni, no, 1.0f,
                                out, no, w[l], ni, 0.0f, din, ni);
            }
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
