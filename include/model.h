/* model.h — the VAE as a small graph of blocks with stochastic layers, a
 * prior, a likelihood and an objective. The math is docs/vae-math.md; what
 * each file owns is docs/how-it-works.md#the-model. Local: nothing here
 * talks to other ranks.
 *
 * The graph (model_build.c builds it from VaeShape) is a list of nodes in
 * the order forward runs them:
 *   - the input x;
 *   - layers (layer.h), each reading the concatenation of one or more
 *     earlier nodes' outputs; an output may feed several layers, and its
 *     gradient is then the sum of theirs;
 *   - samples: z_l = mu + exp(logvar / 2) eps of stochastic layer l, from
 *     the [mu | logvar] rows of its posterior's heads.
 * Stochastic layers (VaeLevel) are z_1 (next to the data) .. z_L (top). The
 * inference path is q(z_L | x) q(z_L-1 | x, z_L) ...; the generative path
 * p(z_L) p(z_l | z_l+1) ... p(x | z_1 .. z_L). The top prior (prior.c) is a
 * standard normal, the class means of a conditional VAE, or a VampPrior
 * over learned pseudo-inputs; the others are Gaussians whose [mu | logvar]
 * come from heads in the generative path. With one stochastic layer and no
 * gated layers the graph is the textbook VAE:
 *   encoder: conv[0..n) (4x4, stride 2), then dense hidden[0..n), heads;
 *   decoder: dense d -> hidden reversed -> (a dense layer to the last
 *   convolution's image and transposed convolutions | a dense layer to D).
 *
 * A draw is one row of every per-draw node: with k draws per data point
 * (the importance-weighted bound, evaluation) the nodes that depend on no
 * sample run once per data row, and their outputs are broadcast to the
 * draws that read them (and their gradients summed back).
 *
 * Parameters, gradients and Adam moments are four flat buffers of n_params
 * floats; layers, priors and likelihoods hold views into them (the tensor
 * table), so zeroing gradients is one memset, the allreduce one call and
 * Adam one loop. The tensors are laid out in node order (the top prior's
 * after its posterior's heads, a learned likelihood's last), and backward
 * runs the nodes in reverse, so the gradient buffer is completed from its
 * end. The gradient buffer has n_tail floats past the parameters' that the
 * caller (the reduction) owns. */
#ifndef VD_MODEL_H
#define VD_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "layer.h"
#include "opts.h"
#include "rng.h"

#define VD_MAX_HIDDEN 8 /* dense hidden layers */
#define VD_MAX_CONV 6   /* convolutions */
#define VD_MAX_LEVELS 4 /* stochastic layers */
#define VD_MAX_LATENT 4096 /* units of one stochastic layer */
#define VD_MAX_NODES 128
#define VD_NODE_INPUTS VD_MAX_LEVELS /* inputs concatenated into one layer */

typedef enum { VD_LIK_BERNOULLI = 0, VD_LIK_GAUSSIAN = 1, VD_LIK_LOGISTIC = 2 } VdLikelihood;

/* The discretized logistic's log-scale starts here, and is held above the
 * floor (its gradient is then 0). */
#define VD_LOGSCALE_INIT (-2.0f)
#define VD_LOGSCALE_MIN (-7.0f)
typedef enum { VD_MODEL_RELU = 0, VD_MODEL_TANH = 1, VD_MODEL_GATED = 2 } VdModelActivation;
typedef enum { VD_PRIOR_STANDARD = 0, VD_PRIOR_VAMP = 1 } VdPriorKind;
/* A published architecture (--preset): its graph is model_build.c's, its
 * sizes the shape's hidden and conv (vae_shape_preset fills them). */
typedef enum { VD_PRESET_NONE = 0, VD_PRESET_CONV_HVAE = 1 } VdPreset;

/* What a model is: its options (model_desc.c's table drives their command
 * line options, the checkpoint's /model, equality and the printed summary)
 * and the shape of the data it takes. */
typedef struct {
    OptList hidden;        /* dense widths, input side first */
    OptList conv;          /* convolutions' output channels, input side first (none: an MLP) */
    OptList latent;        /* stochastic layers' sizes, z_1 (the data's side) first */
    int activation;        /* VdModelActivation of the hidden layers; gated also clamps every
                            * log-variance to [-6, 2] and He-initializes the weights */
    int likelihood;        /* VdLikelihood */
    char variance[32];     /* Gaussian s^2: a number, or "learned" (from --variance) */
    float obs_logvar;      /* Gaussian: log s^2, fixed or initial (from variance) */
    int learn_var;         /* Gaussian: log s^2 is the parameter "likelihood.logvar" */
    int classes;           /* > 0: conditional, with a learned prior mean per class */
    int prior;             /* VdPriorKind of the top layer */
    int pseudo_inputs;     /* VampPrior: K */
    int n_input;           /* D: values per sample */
    int in_c, in_h, in_w;  /* a convolutional model's input image (h, w, c), c h w = D */
    int preset;            /* VdPreset: none (the graph of the options above), or an
                            * architecture whose widths are conv (channels) and hidden */
} VaeShape;

typedef struct {
    char name[40];   /* e.g. "encoder.0.weight", "logvar.bias", "q1.0.gate.bias" */
    size_t offset;   /* into the flat buffers */
    int rows, cols;  /* dims[0], and the product of the others (0 for a vector) */
    int n_dims, dims[4];
    int fan_in;
    int init;        /* VdInit */
} VaeTensor;

enum { VD_NODE_INPUT = 0, VD_NODE_LAYER = 1, VD_NODE_SAMPLE = 2 };

typedef struct {
    int type;
    int n_in, in[VD_NODE_INPUTS]; /* a layer's input: these nodes' outputs, concatenated */
    Layer layer;                  /* VD_NODE_LAYER */
    int level;                    /* VD_NODE_SAMPLE: the stochastic layer it draws */
    int size;                     /* values per row of its output */
    int per_draw;                 /* its rows are draws (n k), else data rows (n) */
    char name[24];                /* a layer's tensor prefix ("": the heads of the
                                   * one-level model, named mu.* and logvar.*) */
} VaeNode;

/* Stochastic layer l: z_l of size d, drawn from the heads q, with prior
 * heads p (the generative path's p(z_l | z_l+1)) or, at the top, the prior. */
typedef struct {
    int d;
    int q, p, z;  /* nodes: posterior heads, prior heads (-1 at the top), sample */
    int eps_off;  /* where its noise starts in a row of eps (levels in order) */
} VaeLevel;

typedef struct {
    int kind;        /* VdPriorKind */
    int classes;     /* > 0: N(m_y, I), the class means "prior.mean" (C, d) */
    int K;           /* VampPrior: pseudo-inputs */
    int t_mean, t_pseudo; /* their tensors, or -1 */
} VaePrior;

/* Owns its four buffers, unless they were lent to it (vae_set_buffers). */
typedef struct {
    VaeShape shape;
    size_t n_params;
    size_t n_tail;           /* floats of the gradient buffer past the parameters' */
    int n_tensors;
    VaeTensor *tensors;      /* (n_tensors) */
    float *params;           /* (n_params) */
    float *grads;            /* (n_params + n_tail) */
    float *adam_m;           /* (n_params) */
    float *adam_v;           /* (n_params) */
    int borrowed;            /* the buffers belong to someone else (vae_set_buffers) */
    int n_nodes;
    int too_many;            /* the build asked for more than VD_MAX_NODES nodes */
    VaeNode nodes[VD_MAX_NODES];
    size_t node_offset[VD_MAX_NODES]; /* the first parameter of this node or a later one */
    int n_levels;
    VaeLevel levels[VD_MAX_LEVELS];
    int d_total;             /* sum of the levels' sizes: the floats of noise per draw */
    int out;                 /* the node whose rows are the likelihood's parameters */
    int top_end;             /* nodes [0, top_end) compute q(z_L | x) from x alone */
    VaePrior prior;
    int t_obs_logvar;        /* "likelihood.logvar", or -1 */
    int t_logscale;          /* "likelihood.logscale" (one per channel), or -1 */
    int lik_channels;        /* the logistic's channels: the image's, else 1 */
} Vae;

/* Buffers of one pass over the graph for up to max_rows rows. */
typedef struct {
    int max_rows;
    float *out[VD_MAX_NODES];   /* (rows, size) after the activation; the input's is lent */
    float *dout[VD_MAX_NODES];  /* (rows, size) its gradient, or NULL where none is needed */
    float *saved[VD_MAX_NODES]; /* what a layer's forward keeps for its backward */
    float *cat[VD_MAX_NODES];   /* a layer's gathered input (several inputs, or broadcast) */
    float *dcat[VD_MAX_NODES];
    unsigned char written[VD_MAX_NODES]; /* dout holds this backward's first writer */
    float *scratch;             /* the layers' scratch, the largest's */
    int n, k;                   /* the rows of its last forward: n data rows, k draws each */
} VaePass;

/* The ranks a VampPrior's pseudo-inputs are split over in training (the
 * model itself never talks to other ranks: the caller lends these). Rank r
 * runs the pseudo-inputs' pass on rows [K r / size, K (r + 1) / size);
 * gather then gives every rank all K components, and sum_slice sums their
 * gradient over the ranks into each rank's own rows. */
typedef struct {
    int rank, size;
    /* buf (K rows of n floats): each rank's rows to every rank */
    void (*gather)(void *ctx, float *buf, int K, int n);
    /* buf (K rows of n floats): the sum over the ranks of their bufs, into
     * this rank's rows of buf (the others' are left undefined) */
    void (*sum_slice)(void *ctx, float *buf, int K, int n);
    void *ctx;
} VaeGroup;

/* The first of the K pseudo-inputs that rank owns; its rows are [first(r),
 * first(r + 1)). */
static inline int vae_group_first(int K, int rank, int size)
{
    return (int)((long long)K * rank / size);
}

/* Per-row figures and buffers for up to max_rows draws, allocated once.
 * Owned by the caller of vae_work_create. */
typedef struct {
    int max_rows;
    float *x;          /* (n, D) input, filled by the caller */
    float *eps;        /* (n k, d_total) noise, filled by the caller */
    int32_t *y;        /* (n) labels in [0, C), filled by the caller if conditional */
    VaePass data;      /* the data's pass */
    VaePass pseudo;    /* a VampPrior's pass of its pseudo-inputs through q(z_L | .) */
    float *u;          /* (K, D) the pseudo-inputs, hardtanh'd */
    int prior_fixed;   /* the pseudo pass holds the current parameters' (eval) */
    const VaeGroup *group; /* training: the ranks the pseudo pass is split over, or NULL */
    int k0, k1;        /* the pseudo-inputs of the last pseudo pass: this rank's, or all */
    int split;         /* the last pseudo pass was split over group's ranks */
    double *recon;     /* (n k) -log p(x | z), per draw */
    double *dscale;    /* (n k, channels) the logistic's d recon / d log-scale, per draw */
    double *kl[VD_MAX_LEVELS]; /* (n k) per level: the ELBO's KL term (closed form where it
                                * exists, else the one-draw log q - log p) */
    double *lr[VD_MAX_LEVELS]; /* (n k) per level: one-draw log q(z|.) - log p(z|.) */
    float *dq[VD_MAX_LEVELS];  /* (n k, 2d) the terms' gradient wrt the posterior's heads */
    float *coef;       /* (n k) the objective's weight of each draw's terms (IWAE), or unused */
    int use_coef;
    int forward_only;  /* made by vae_work_create_forward: no gradient buffers */
    double *loss;      /* (n) per data row: the objective */
    double *row_recon; /* (n) per data row: recon, averaged over its draws */
    double *row_kl;    /* (n) per data row: loss - recon (the ELBO: the KL terms) */
    /* a VampPrior's components, from the pseudo pass: */
    float *mix_comp;   /* (K, 2 d_L) their [mu | logvar] */
    float *mix_ivar;   /* (K, d_L) exp(-logvar) */
    double *mix_norm;  /* (K) -1/2 (d_L log 2 pi + sum logvar) */
    double *mix;       /* (K) one row's log-densities, then responsibilities */
    float *mix_grad;   /* (K, 2 d_L) the loss's gradient wrt their [mu | logvar] */
} VaeWork;

/* ---- the objective --------------------------------------------------- */

typedef enum {
    VD_OBJ_ELBO = 0, /* recon + beta * sum of KL terms; closed-form KLs where they exist */
    VD_OBJ_IWAE = 1  /* -log (1/k) sum_j w_j, log w = -recon - beta sum (log q - log p) */
} VdObjective;

typedef struct {
    int kind;   /* VdObjective */
    int k;      /* draws per data row (1 for the ELBO) */
    float beta; /* KL weight (warm-up) */
    int one_draw; /* ELBO: every KL as the one-draw estimate (the IWAE bound at k = 1) */
} Objective;

/* The plain ELBO at KL weight beta. */
static inline Objective vae_elbo(float beta)
{
    return (Objective){VD_OBJ_ELBO, 1, beta, 0};
}

/* ---- the shape (model_desc.c) ----------------------------------------- */

/* "784-400-20" (or "28x28x1-conv32-conv64-256-20", "784-300-300-40,40",
 * "conv-hvae 28x28x1-40,40"), then ", tanh", ", gated", ", gaussian s^2
 * 0.1" or ", gaussian learned s^2", ", 10 classes", ", vamp 500" for
 * options away from the defaults. */
void vae_shape_text(const VaeShape *s, char *buf, size_t n);

/* Do a and b describe the same model? */
int vae_shape_equal(const VaeShape *a, const VaeShape *b);

/* NULL, or why s is not a model. */
const char *vae_shape_check(const VaeShape *s);

/* Does the model take images (in_h, in_w, in_c): convolutions, or a
 * convolutional preset? */
static inline int vae_shape_image(const VaeShape *s)
{
    return s->conv.n > 0 || s->preset != VD_PRESET_NONE;
}

/* The parameter count of a model of shape, without allocating it; -1 if
 * the shape is invalid. */
double vae_shape_params(const VaeShape *shape);

/* ---- the model (model.c) --------------------------------------------- */

/* A model with zeroed buffers and n_tail more gradient floats, or NULL
 * (with *why set) if the shape is invalid. */
Vae *vae_create(const VaeShape *shape, size_t n_tail, const char **why);
void vae_free(Vae *m);

/* Parameters from the VD_RNG_INIT generator (each tensor by its VdInit; the
 * learned log s^2 shape.obs_logvar). Same on every rank for the same seed. */
void vae_init_params(Vae *m, uint64_t seed);

/* Points m at buffers the caller owns and keeps alive (node shared memory),
 * or, with owned, hands them to m. Frees the old ones if m owned them;
 * copies nothing. NULL buffers leave m fit only for vae_free. */
void vae_set_buffers(Vae *m, float *params, float *grads, float *adam_m, float *adam_v,
                     int owned);

/* The graph as JSON (nodes, their kinds, inputs, activations, shapes and
 * tensors; the levels; the output node; the prior; the likelihood), for
 * readers without vae-dist (jobs/decode.py). The caller frees it with
 * vd_free. */
char *vae_graph_json(const Vae *m);

/* The tensor named name, or NULL; tensor t's view into buf (one of m's
 * flat buffers, or any buffer laid out like them). */
const VaeTensor *vae_tensor(const Vae *m, const char *name);
static inline float *vae_view(const Vae *m, float *buf, int t)
{
    return t < 0 ? NULL : buf + m->tensors[t].offset;
}
LayerParams vae_layer_params(const Vae *m, float *buf, const Layer *l);

/* Do m's data have to lie in [0, 1] (every likelihood but the Gaussian)? */
static inline int vae_unit_data(const VaeShape *s) { return s->likelihood != VD_LIK_GAUSSIAN; }

/* The top layer's size, and a level's. */
static inline int vae_top_latent(const Vae *m) { return m->levels[m->n_levels - 1].d; }

/* Work buffers for m and up to max_rows draws (data rows times draws), and
 * the bytes they take; _forward's have no gradients (half the memory):
 * evaluation, sampling, encoding, never vae_backward. */
VaeWork *vae_work_create(const Vae *m, int max_rows);
VaeWork *vae_work_create_forward(const Vae *m, int max_rows);
double vae_work_bytes(const Vae *m, int max_rows);
void vae_work_free(VaeWork *w);

/* Zeroes the gradients (n_params floats; not the tail): once per step. */
void vae_zero_grads(Vae *m);

/* The forward pass on n data rows of w->x with k = obj->k draws each (n k
 * <= max_rows), noise w->eps (n k, d_total) and labels w->y if conditional:
 * fills the pass, the per-draw terms and the per-row w->loss, w->row_recon,
 * w->row_kl. With want_grad, also the loss's gradient wrt the decoder's
 * outputs, for vae_backward. Returns the sum of w->loss. */
double vae_forward(const Vae *m, VaeWork *w, int n, const Objective *obj, int want_grad);

/* ADDS to m->grads the gradient of the sum over the n rows of the preceding
 * vae_forward(..., want_grad = 1)'s objective, calling ready(ctx, offset)
 * (unless NULL) as soon as m->grads[offset .. n_params) are final: the
 * offsets fall. */
void vae_backward(Vae *m, VaeWork *w, const Objective *obj,
                  void (*ready)(void *, size_t), void *ctx);

/* The inference path on n rows of w->x with noise w->eps (zeros: every
 * layer at its posterior mean given the means above): afterwards
 * vae_posterior gives each level's heads. */
void vae_encode(const Vae *m, VaeWork *w, int n);
/* Of row i of the last pass, level l's posterior mean and log-variance
 * (d_l floats each), and its z. */
const float *vae_mu(const Vae *m, const VaeWork *w, int l, int i);
const float *vae_logvar(const Vae *m, const VaeWork *w, int l, int i);
const float *vae_latent(const Vae *m, const VaeWork *w, int l, int i);

/* The means of p(x | z) (n, D) for n top-layer rows z_top (n, d_L), the
 * lower layers drawn from their conditional priors with noise eps_low (n,
 * d_total; the top's part unused), or at those priors' means when eps_low
 * is NULL; with z_all (n, d_total) the lower layers' values are written
 * there (the top's too). out may be NULL (the outputs stay in the pass). */
void vae_generate(const Vae *m, VaeWork *w, const float *z_top, const float *eps_low, int n,
                  float *z_all, float *out);

/* The decoder's outputs of the last pass (n k rows of D). */
const float *vae_outputs(const Vae *m, const VaeWork *w);

/* out (n, D) = the means of p(x|z) for decoder outputs (n, D): sigmoid of
 * Bernoulli logits, Gaussian means as they are. out may alias outputs. */
void vae_output_mean(const Vae *m, const float *outputs, int n, float *out);

/* out (n, D) = one draw from p(x | z) for decoder outputs (n, D), the
 * uniforms or normals of row k from counter row a of r at element (first +
 * k) D: a Bernoulli's 0 or 1; a Gaussian's mean + s eps; a logistic's
 * level k / 255. out may alias outputs. */
void vae_output_sample(const Vae *m, const float *outputs, int n, const Rng *r, uint32_t a,
                       uint64_t first, float *out);

/* log s^2 of the Gaussian likelihood: the learned parameter or the fixed value. */
float vae_obs_logvar(const Vae *m);

/* Multiply-adds of one sample's forward pass (with a VampPrior, its
 * pseudo-inputs' pass at batch B), and of the layers whose input is x
 * (whose backward computes no input gradient), for FLOP accounting. */
double vae_forward_macs(const Vae *m, int B);
double vae_first_layer_macs(const Vae *m);

/* ---- what a trained model is used for --------------------------------- */

/* One row's figures, in nats. */
typedef struct {
    double recon;  /* mean over the K draws of the reconstruction term */
    double kl;     /* mean over the K draws of the ELBO's KL terms */
    double log_px; /* the importance-weighted estimate of log p(x) */
} IwRow;

/* The importance-weighted estimate (docs/vae-math.md) of rows [0, n) of x
 * (n, D) with K draws each from q(z_L..z_1 | x), labels y (n) for a
 * conditional model (else NULL):
 *   log w_k = -R(x, z_k) + sum_l [log p(z_l | .) - log q(z_l | .)]
 *   log p(x) ~= logsumexp_k log w_k - log K,
 * accumulated with a running maximum so no exp overflows. eps for row i
 * and draw k at element ((row0 + i) K + k) d_total of counter row 0 of rng.
 * Uses all of w. */
void vae_importance(const Vae *m, VaeWork *w, const float *x, const int32_t *y, int n, int K,
                    const Rng *rng, int64_t row0, IwRow *out);

/* n draws z (n, d_L) from the top prior: N(0, I); N(m_c, I) for a
 * conditional model with c = cls, or (cls < 0) c = (k / cols) mod C for
 * draw k, one class per grid row (the classes go to y, 0 when
 * unconditional); a VampPrior's mixture. eps comes from the VD_RNG_EVAL
 * generator at counter row 2^32 - 1, where training draws its samples.png; a
 * VampPrior's components from row 2^32 - 2. Uses w's pseudo pass. */
void vae_prior_draws(const Vae *m, VaeWork *w, uint64_t seed, int n, int cols, int cls,
                     float *z, int32_t *y);

/* n ancestral draws decoded to the means of p(x | z), out (n, D), or with
 * noise to draws from it (VD_RNG_EVAL row 2^32 - 4, element k D for
 * draw k): the top layer from vae_prior_draws (same seed, cols, cls, y),
 * each lower one from its conditional prior with eps from VD_RNG_EVAL
 * row 2^32 - 3 (element k d_total). z (n, d_total) gets every layer's
 * values, z_1 first. In chunks of w->max_rows. */
void vae_sample(const Vae *m, VaeWork *w, uint64_t seed, int n, int cols, int cls, int noise,
                float *z, int32_t *y, float *out);

/* ---- kernels, exposed for the tests (latent.c, likelihood.c) ------------ */

/* recon[i] = sum_j softplus(a) - x a over row i; dlogits = sigmoid(a) - x
 * unless NULL (may alias logits). Row i's target is row i / k of x. (B, D) */
void bernoulli_loss(double *recon, float *dlogits, const float *logits, const float *x, int B,
                    int k, int D);
/* recon[i] = sum_j (x - a)^2 / (2 s^2) + 0.5 log(2 pi s^2) over row i, with
 * log s^2 = logvar; da = (a - x) / s^2 unless NULL (may alias a). (B, D) */
void gaussian_loss(double *recon, float *da, const float *a, const float *x, float logvar, int B,
                   int k, int D);
/* -log P(x) of the discretized logistic of mean mu and log-scale ls: x in
 * [0, 1] read as level k = round(255 x), P the logistic's mass on [k -
 * 1/2, k + 1/2] / 255 (from -inf for k = 0, to +inf for 255); its
 * derivatives wrt mu and ls in *dmu, *dls. In double. */
double logistic_bin(double x, double mu, double ls, double *dmu, double *dls);
/* recon[i] = the sum over row i of logistic_bin with channel j % C's
 * log-scale (held at VD_LOGSCALE_MIN from below), row i's target row i / k
 * of x; dmu (may alias mu) and dscale (B, C) the gradients unless NULL.
 * (B, D) */
void logistic_loss(double *recon, float *dmu, double *dscale, const float *mu, const float *x,
                   const float *logscale, int B, int k, int D, int C);
/* The reparameterized sample, z (d) = mu + exp(lv/2) eps, for one row. */
void reparam_row(float *z, const float *mu, const float *lv, const float *eps, int d);
/* The closed-form KL of N(mu, exp(lv)) to N(m, I), m = mean (d), or 0 when
 * mean is NULL: 0.5 sum ((mu - m)^2 + exp(lv) - lv - 1). */
double kl_diag(const float *mu, const float *lv, const float *mean, int d);
/* The closed-form KL of N(mq, exp(lq)) to N(mp, exp(lp)), diagonal:
 * 0.5 sum (lp - lq + (exp(lq) + (mq - mp)^2) exp(-lp) - 1). */
double kl_gauss(const float *mq, const float *lq, const float *mp, const float *lp, int d);
/* log N(z; mu, exp(lv)), diagonal, in double. */
double log_normal(const float *z, const float *mu, const float *lv, int d);

/* ---- the double-precision oracle (model_ref.c) ------------------------ */

/* The objective's sum over n data rows, computed naively in double from
 * params laid out as m's flat buffer: x (n, D), eps (n k, d_total), labels
 * y when conditional, else NULL. A test oracle for finite differences;
 * recon_sum and kl_sum (the ELBO's parts, summed over rows and averaged
 * over draws) may be NULL. */
double vae_loss_ref(const Vae *m, const double *params, const double *x, const double *eps,
                    const int32_t *y, int n, const Objective *obj, double *recon_sum,
                    double *kl_sum);

#endif
