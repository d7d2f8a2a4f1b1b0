/* model.h — the VAE: an encoder of layers ending in the mu/logvar heads, the
 * reparameterized sample, a decoder of layers to the parameters of p(x|z);
 * closed-form KL; the importance-weighted likelihood estimate and draws from
 * the prior. The math is docs/vae-math.md. Local: nothing here talks to
 * other ranks.
 *
 * The network is a list of layers (layer.h) built from VaeShape:
 *   encoder: conv[0..n_conv) (4x4, stride 2, each halving the image), then
 *            dense hidden[0..n_hidden), then the heads (2d outputs);
 *   decoder: dense d -> hidden[L-1] -> ... -> hidden[0]; for a convolutional
 *            model a dense layer to the last convolution's (h, w, c) and
 *            transposed convolutions back to the input's shape, else a dense
 *            layer to D. The activation follows every layer but the heads
 *            and the last one, whose outputs are the likelihood's parameters.
 * Images are channels-last (h, w, c) rows, as data.h hands them out.
 *
 * Options, all part of VaeShape (and so of a checkpoint):
 *  - hidden activation relu or tanh;
 *  - likelihood Bernoulli (the decoder's outputs are logits, the mean is
 *    their sigmoid) or Gaussian with variance s^2 (the outputs are the mean;
 *    log s^2 fixed, or the learned scalar "likelihood.logvar");
 *  - n_classes > 0: the conditional VAE of docs/vae-math.md, whose prior for
 *    a sample of class y is N(m_y, I) with the learned table "prior.mean"
 *    (C, d); the encoder and decoder do not see y.
 *
 * Parameters, gradients and Adam moments are four flat buffers of n_params
 * floats. Layers and the tensor table are views into them, so zeroing
 * gradients is one memset, the allreduce one call and Adam one loop. The
 * gradient buffer has VD_GRAD_EXTRA more slots after the parameters' that
 * carry the step's loss sums through the same allreduce.
 *
 * Parameter order is encoder, heads, prior means, decoder, learned
 * variance: the backward pass finishes the decoder's gradients (the
 * buffer's tail) first. */
#ifndef VD_MODEL_H
#define VD_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "layer.h"
#include "rng.h"

#define VD_MAX_HIDDEN 8 /* dense hidden layers */
#define VD_MAX_CONV 6   /* convolutions */
#define VD_MAX_LAYERS (2 * (VD_MAX_HIDDEN + VD_MAX_CONV) + 3)
#define VD_MAX_TENSORS (2 * VD_MAX_LAYERS + 4)
#define VD_GRAD_EXTRA 5 /* recon sum, KL sum, sample count, stop flag, data failed */

enum { VD_EXTRA_RECON = 0, VD_EXTRA_KL = 1, VD_EXTRA_COUNT = 2, VD_EXTRA_STOP = 3,
       VD_EXTRA_FAIL = 4 };

typedef enum { VD_LIK_BERNOULLI = 0, VD_LIK_GAUSSIAN = 1 } VdLikelihood;

typedef struct {
    int n_input;               /* D: values per sample */
    int n_latent;              /* d */
    int n_hidden;              /* dense hidden layers in the encoder; the decoder mirrors them */
    int hidden[VD_MAX_HIDDEN]; /* encoder widths, input side first */
    int n_conv;                /* convolutions before the dense layers (0: an MLP) */
    int conv[VD_MAX_CONV];     /* their output channels, input side first */
    int in_c, in_h, in_w;      /* a convolutional model's input image (h, w, c), c h w = D */
    int activation;            /* VdActivation of every hidden layer */
    int likelihood;            /* VdLikelihood */
    int learn_var;             /* Gaussian: log s^2 is a parameter, initialized to obs_logvar */
    float obs_logvar;          /* Gaussian: log s^2 */
    int n_classes;             /* 0, or C: conditional, with a learned prior mean per class */
} VaeShape;

/* The parameters the whole model has besides its layers' weights. */
typedef struct {
    float *prior_mean; /* (C, d) "prior.mean", or NULL */
    float *obs_logvar; /* (1) "likelihood.logvar", or NULL */
} VaeLayers;

typedef struct {
    char name[32];   /* e.g. "encoder.0.weight", "logvar.bias" */
    size_t offset;   /* into the flat buffers */
    int rows, cols;  /* dims[0], and the product of the others (0 for a vector) */
    int n_dims, dims[4];
    int fan_in;      /* its initialization's, 0 when it is not U(-1/sqrt(fan_in), .) */
} VaeTensor;

/* Owns its four buffers, unless they were lent to it (vae_set_buffers). */
typedef struct {
    VaeShape shape;
    size_t n_params;
    int n_tensors;
    VaeTensor tensors[VD_MAX_TENSORS];
    float *params;  /* (n_params) */
    float *grads;   /* (n_params + VD_GRAD_EXTRA) */
    float *adam_m;  /* (n_params) */
    float *adam_v;  /* (n_params) */
    int borrowed;   /* the buffers belong to someone else (vae_set_buffers) */
    VaeLayers p;    /* views into params */
    VaeLayers g;    /* views into grads */
    int n_layers;   /* layers[0, head) the encoder, [head] the heads, (head, n_layers) the decoder */
    int head;
    Layer layers[VD_MAX_LAYERS];
} Vae;

/* Activations for up to max_batch rows, allocated once. Owned by the caller
 * of vae_work_create. */
typedef struct {
    int max_batch;
    float *x;                     /* (B, D) input, filled by the caller */
    float *eps;                   /* (B, d) noise, filled by the caller */
    int32_t *y;                   /* (B) labels in [0, C), filled by the caller if conditional */
    float *out[VD_MAX_LAYERS];    /* (B, layer's output) after its activation */
    float *saved[VD_MAX_LAYERS];  /* what a layer's forward keeps for its backward, or NULL */
    float *head;                  /* (B, 2d): mu | logvar per row, = out[head] */
    float *z;                     /* (B, d) */
    float *logits;                /* (B, D) decoder outputs, = out[last]; dR/doutputs after a
                                   * training forward */
    float *dact[2];               /* (B, widest layer) ping-pong activation gradients */
    float *dhead;                 /* (B, 2d) */
    float *scratch;               /* the layers' scratch, the widest's */
    double *recon;                /* (B) per-sample reconstruction term, nats */
    double *kl;                   /* (B) per-sample KL, nats */
} VaeWork;

/* "784-400-20" (or "28x28x1-conv32-conv64-256-20"), then ", tanh",
 * ", gaussian s^2 0.1" or ", gaussian learned s^2", ", 10 classes" for
 * options away from the defaults. */
void vae_shape_text(const VaeShape *s, char *buf, size_t n);

/* Do a and b describe the same model? */
int vae_shape_equal(const VaeShape *a, const VaeShape *b);

/* The parameter count of a model of shape, without allocating it; -1 if
 * the shape is invalid. */
double vae_shape_params(const VaeShape *shape);

/* A model with zeroed buffers, or NULL (with *why set) if the shape is invalid. */
Vae *vae_create(const VaeShape *shape, const char **why);
void vae_free(Vae *m);

/* Parameters from the VD_STREAM_INIT stream: weights and biases
 * U(-1/sqrt(fan_in), 1/sqrt(fan_in)); prior means 0; the learned log s^2
 * shape.obs_logvar. Same on every rank for the same seed. */
void vae_init_params(Vae *m, uint64_t seed);

/* Points m at buffers the caller owns and keeps alive (node shared memory),
 * or, with owned, hands them to m. Frees the old ones if m owned them;
 * copies nothing. The views follow; NULL buffers leave m fit only for
 * vae_free. */
void vae_set_buffers(Vae *m, float *params, float *grads, float *adam_m, float *adam_v,
                     int owned);

/* The tensor named name, or NULL. */
const VaeTensor *vae_tensor(const Vae *m, const char *name);

/* Work buffers for m's layers and up to max_batch rows. */
VaeWork *vae_work_create(const Vae *m, int max_batch);
void vae_work_free(VaeWork *w);

/* Forward pass on rows [0, n) of w->x with noise w->eps (and labels w->y
 * if conditional): fills activations and w->recon, w->kl. With want_grad,
 * also turns w->logits into dR/dlogits (fused with the loss) for
 * vae_backward. Returns sum(recon) + beta*sum(kl). */
double vae_forward(const Vae *m, VaeWork *w, int n, float beta, int want_grad);

/* Writes into m->grads (over what it held) the gradient of the SUM over
 * the n samples of recon + beta*KL. Needs the preceding
 * vae_forward(..., want_grad=1). */
void vae_backward(Vae *m, VaeWork *w, int n, float beta);
/* The same, calling ready(ctx, offset) as soon as m->grads[offset ..
 * n_params) are final: backward completes the flat buffer from its end
 * (likelihood, decoder, prior means, heads, encoder), so offsets fall. */
void vae_backward_hook(Vae *m, VaeWork *w, int n, float beta, void (*ready)(void *, size_t),
                       void *ctx);

/* The two halves of vae_forward. Encoder and heads: w->head = [mu | logvar]
 * for rows [0, n) of w->x. Decoder: w->logits (n, D) for latent rows z (n, d),
 * which may be w->z. */
void vae_encode(const Vae *m, VaeWork *w, int n);
void vae_decode_logits(const Vae *m, VaeWork *w, const float *z, int n);

/* Decodes n latent rows z (n, d) to the means of p(x|z), out (n, D). */
void vae_decode(const Vae *m, VaeWork *w, const float *z, int n, float *out);

/* out (n, D) = the means of p(x|z) for decoder outputs (n, D): sigmoid of
 * Bernoulli logits, Gaussian means as they are. out may alias outputs. */
void vae_output_mean(const Vae *m, const float *outputs, int n, float *out);

/* w->recon[i] = R(x_i, outputs_i) for rows [0, n) of targets w->x and
 * decoder outputs w->logits, under m's likelihood. */
void vae_recon(const Vae *m, VaeWork *w, int n);

/* log s^2 of the Gaussian likelihood: the learned parameter or the fixed value. */
float vae_obs_logvar(const Vae *m);

/* Kernels, exposed for the per-layer tests. Shapes in comments. */
/* recon[i] = sum_j softplus(a) - x a over row i; dlogits = sigmoid(a) - x
 * unless NULL (may alias logits). (B, D) */
void bernoulli_loss(double *recon, float *dlogits, const float *logits, const float *x, int B,
                    int D);
/* recon[i] = sum_j (x - a)^2 / (2 s^2) + 0.5 log(2 pi s^2) over row i, with
 * log s^2 = logvar; da = (a - x) / s^2 unless NULL (may alias a). (B, D) */
void gaussian_loss(double *recon, float *da, const float *a, const float *x, float logvar, int B,
                   int D);
/* The reparameterized sample, z (d) = mu + exp(lv/2) eps, for one row, and
 * for B rows of head (B, 2d) = [mu | lv] with eps (B, d). */
void reparam_row(float *z, const float *mu, const float *lv, const float *eps, int d);
void reparam_sample(float *z, const float *head, const float *eps, int B, int d);
/* The closed-form KL of N(mu, exp(lv)) to N(m, I), m = mean (d), or 0 when
 * mean is NULL: 0.5 sum ((mu - m)^2 + exp(lv) - lv - 1). */
double kl_diag(const float *mu, const float *lv, const float *mean, int d);
/* z = reparam_sample; kl[i] = kl_diag with m = means row y[i] (C, d), or 0
 * when means is NULL. head (B, 2d) */
void reparam_kl_forward(float *z, double *kl, const float *head, const float *eps,
                        const float *means, const int32_t *y, int B, int d);
/* dhead = [dz + beta (mu - m) | dz 0.5 sigma eps + beta 0.5 (exp(lv) - 1)];
 * dmeans row y[i] += -beta (mu - m) when means is not NULL. */
void reparam_kl_backward(float *dhead, float *dmeans, const float *dz, const float *head,
                         const float *eps, const float *means, const int32_t *y, float beta, int B,
                         int d);

/* The whole model's loss, sum over n samples of recon + beta*KL, computed
 * naively in double from params laid out as m's flat buffer (labels y when
 * conditional, else NULL). A test oracle for finite differences; recon_sum
 * and kl_sum may be NULL. */
double vae_loss_ref(const Vae *m, const double *params, const double *x, const double *eps,
                    const int32_t *y, int n, double beta, double *recon_sum, double *kl_sum);

/* Multiply-adds of one sample's forward pass, and of its first layer (whose
 * backward computes no input gradient), for FLOP accounting. */
double vae_forward_macs(const Vae *m);
double vae_first_layer_macs(const Vae *m);

/* Where layer l's weight and bias are in buf, one of m's flat buffers. */
LayerParams vae_layer_params(const Vae *m, float *buf, const Layer *l);

/* ---- what a trained model is used for ---------------------------------- */

/* One row's figures, in nats. */
typedef struct {
    double recon;  /* mean over the K draws of the reconstruction term R */
    double kl;     /* closed-form KL of q(z|x) to the prior */
    double log_px; /* the importance-weighted estimate of log p(x) */
} IwRow;

/* The importance-weighted estimate (docs/vae-math.md), per row x with K
 * draws z_k = mu + sigma eps_k from q(z|x):
 *
 *   log w_k = -R(x, z_k) + log N(z_k; m, I) - log q(z_k | x)
 *           = -R(x, z_k) - 0.5 |z_k - m|^2 + 0.5 |eps_k|^2 + 0.5 sum_j lv_j
 *   log p(x) ~= logsumexp_k log w_k - log K
 *
 * (m = 0, or the class mean m_y of a conditional model: the estimate is then
 * of log p(x | y); the (2 pi)^(d/2) factors cancel), accumulated with a
 * running maximum so no exp overflows. For rows [0, n) of x (n, D), n <=
 * w->max_batch, with labels y (n) for a conditional model (else NULL): eps
 * for row i and draw k at element ((row0 + i) * K + k) * d of counter row 0
 * of rng. Uses all of w. */
void vae_importance(const Vae *m, VaeWork *w, const float *x, const int32_t *y, int n, int K,
                    const Rng *rng, int64_t row0, IwRow *out);

/* n draws z (n, d) from the prior, N(0, I) or, for a conditional model,
 * N(m_c, I) with c = cls, or (cls < 0) c = (k / cols) mod C for draw k, one
 * class per grid row; the classes go to y (n), 0 when unconditional. eps
 * comes from the VD_STREAM_EVAL stream at counter row 2^32 - 1, where
 * training draws its samples.png. */
void vae_prior_draws(const Vae *m, uint64_t seed, int n, int cols, int cls, float *z, int32_t *y);

#endif
