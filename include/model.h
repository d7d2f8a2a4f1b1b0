/* model.h — the VAE: MLP encoder with mu/logvar heads, reparameterized
 * sample, MLP decoder to Bernoulli logits; closed-form KL. The math is
 * ../shared/design/vae-math.md; shapes are (rows, cols), row-major.
 *
 * Parameters, gradients and Adam moments are four flat buffers of n_params
 * floats. Layer structs and the tensor table are views into them, so zeroing
 * gradients is one memset, the allreduce one call and Adam one loop. The
 * gradient buffer has VD_GRAD_EXTRA more slots after the parameters' that
 * carry the step's loss sums through the same allreduce.
 *
 * Parameter order is encoder, heads, decoder: the backward pass finishes the
 * decoder's gradients (the buffer's tail) first. */
#ifndef VD_MODEL_H
#define VD_MODEL_H

#include <stddef.h>
#include <stdint.h>

#define VD_MAX_HIDDEN 8
#define VD_MAX_TENSORS (4 * VD_MAX_HIDDEN + 8)
#define VD_GRAD_EXTRA 4 /* recon sum, KL sum, sample count, stop flag */

enum { VD_EXTRA_RECON = 0, VD_EXTRA_KL = 1, VD_EXTRA_COUNT = 2, VD_EXTRA_STOP = 3 };

typedef struct {
    int n_input;               /* D: values per sample */
    int n_latent;              /* d */
    int n_hidden;              /* hidden layers in the encoder; the decoder mirrors them */
    int hidden[VD_MAX_HIDDEN]; /* encoder widths, input side first */
} VaeShape;

typedef struct {
    float *w; /* (n_out, n_in) */
    float *b; /* (n_out) */
    int n_in, n_out;
} Linear;

/* Views of one flat buffer in model terms. */
typedef struct {
    Linear enc[VD_MAX_HIDDEN];     /* enc[l]: hidden[l-1] (or D) -> hidden[l] */
    Linear head;                   /* hidden[L-1] -> 2d: rows [0,d) mu, [d,2d) logvar */
    Linear dec[VD_MAX_HIDDEN + 1]; /* dec[0]: d -> hidden[L-1], ..., dec[L]: hidden[0] -> D */
} VaeLayers;

typedef struct {
    char name[32];  /* e.g. "encoder.0.weight", "logvar.bias" */
    size_t offset;  /* into the flat buffers */
    int rows, cols; /* cols == 0 for a vector */
} VaeTensor;

/* Owns its four buffers. */
typedef struct {
    VaeShape shape;
    size_t n_params;
    int n_tensors;
    VaeTensor tensors[VD_MAX_TENSORS];
    float *params;  /* (n_params) */
    float *grads;   /* (n_params + VD_GRAD_EXTRA) */
    float *adam_m;  /* (n_params) */
    float *adam_v;  /* (n_params) */
    VaeLayers p;    /* views into params */
    VaeLayers g;    /* views into grads */
} Vae;

/* Activations for up to max_batch rows, allocated once. Owned by the caller
 * of vae_work_create. */
typedef struct {
    int max_batch;
    float *x;                     /* (B, D) input, filled by the caller */
    float *eps;                   /* (B, d) noise, filled by the caller */
    float *enc[VD_MAX_HIDDEN];    /* (B, hidden[l]) after relu */
    float *head;                  /* (B, 2d): mu | logvar per row */
    float *z;                     /* (B, d) */
    float *dec[VD_MAX_HIDDEN];    /* (B, width) after relu */
    float *logits;                /* (B, D); holds dR/dlogits after a training forward */
    float *dact[2];               /* (B, widest layer) ping-pong activation gradients */
    float *dhead;                 /* (B, 2d) */
    double *recon;                /* (B) per-sample reconstruction term, nats */
    double *kl;                   /* (B) per-sample KL, nats */
} VaeWork;

/* A model with zeroed buffers, or NULL (with *why set) if the shape is invalid. */
Vae *vae_create(const VaeShape *shape, const char **why);
void vae_free(Vae *m);

/* Parameters from the VD_STREAM_INIT stream: weights and biases
 * U(-1/sqrt(fan_in), 1/sqrt(fan_in)). Same on every rank for the same seed. */
void vae_init_params(Vae *m, uint64_t seed);

/* The tensor named name, or NULL. */
const VaeTensor *vae_tensor(const Vae *m, const char *name);

VaeWork *vae_work_create(const VaeShape *shape, int max_batch);
void vae_work_free(VaeWork *w);

/* Forward pass on rows [0, n) of w->x with noise w->eps: fills activations
 * and w->recon, w->kl. With want_grad, also turns w->logits into dR/dlogits
 * (fused with the loss) for vae_backward. Returns sum(recon) + beta*sum(kl). */
double vae_forward(const Vae *m, VaeWork *w, int n, float beta, int want_grad);

/* Accumulates (+=) into m->grads the gradient of the SUM over the n samples
 * of recon + beta*KL. Needs the preceding vae_forward(..., want_grad=1). */
void vae_backward(Vae *m, VaeWork *w, int n, float beta);

/* The two halves of vae_forward. Encoder and heads: w->head = [mu | logvar]
 * for rows [0, n) of w->x. Decoder: w->logits (n, D) for latent rows z (n, d),
 * which may be w->z. */
void vae_encode(const Vae *m, VaeWork *w, int n);
void vae_decode_logits(const Vae *m, VaeWork *w, const float *z, int n);

/* Decodes n latent rows z (n, d) to probabilities out (n, D). */
void vae_decode(const Vae *m, VaeWork *w, const float *z, int n, float *out);

/* Kernels, exposed for the per-layer tests. Shapes in comments. */
/* out (B, n_out) = in (B, n_in) W^T + b */
void linear_forward(float *out, const float *in, const Linear *l, int B);
/* dW += dout^T in; db += colsum(dout); din (B, n_in) = dout W unless NULL */
void linear_backward(float *din, Linear *dl, const float *dout, const float *in, const Linear *l,
                     int B);
/* Naive triple loop of linear_forward, in double: the BLAS path's test oracle. */
void linear_forward_ref(double *out, const double *in, const double *w, const double *b, int B,
                        int n_in, int n_out);
/* recon[i] = sum_j softplus(a) - x a over row i; dlogits = sigmoid(a) - x
 * unless NULL (may alias logits). (B, D) */
void bernoulli_loss(double *recon, float *dlogits, const float *logits, const float *x, int B,
                    int D);
/* z = mu + exp(lv/2) eps; kl[i] = 0.5 sum (mu^2 + exp(lv) - lv - 1). head (B, 2d) */
void reparam_kl_forward(float *z, double *kl, const float *head, const float *eps, int B, int d);
/* dhead = [dz + beta mu | dz 0.5 sigma eps + beta 0.5 (exp(lv) - 1)] */
void reparam_kl_backward(float *dhead, const float *dz, const float *head, const float *eps,
                         float beta, int B, int d);

/* The whole model's loss, sum over n samples of recon + beta*KL, computed
 * naively in double from params laid out as m's flat buffer. A test oracle
 * for finite differences; recon_sum and kl_sum may be NULL. */
double vae_loss_ref(const Vae *m, const double *params, const double *x, const double *eps, int n,
                    double beta, double *recon_sum, double *kl_sum);

/* Multiply-adds of one sample's forward pass (for FLOP accounting). */
double vae_forward_macs(const VaeShape *s);

#endif
