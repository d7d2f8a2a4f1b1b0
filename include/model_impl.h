/* model_impl.h — the model's internals, shared by its files and nothing
 * else: the graph's passes (model.c), its builder (model_build.c), the
 * stochastic layers' terms (latent.c), the top priors (prior.c), the
 * likelihoods (likelihood.c) and the objectives (objective.c). Local. */
#ifndef VD_MODEL_IMPL_H
#define VD_MODEL_IMPL_H

#include <math.h>

#include "model.h"

/* model_build.c: m's graph and tensor table from m->shape; NULL or why not. */
const char *vae_build(Vae *m);

/* ---- model.c: a pass over nodes [from, to) ----------------------------- */

/* Buffers for nodes [0, to) and rows rows; input_grad: the input node gets
 * a gradient buffer too (a VampPrior's pseudo-inputs); grads 0: none at
 * all (forward passes only). */
void pass_alloc(VaePass *p, const Vae *m, int to, int rows, int input_grad, int grads);
void pass_free(VaePass *p);
/* Forward of nodes [1, to) on input x (n rows), k draws per row, noise eps
 * (n k, d_total) for the samples. */
void pass_forward(const Vae *m, VaePass *p, const float *x, int to, int n, int k,
                  const float *eps);
/* Marks every gradient unwritten: the start of a backward. */
void pass_clear(VaePass *p, int to);
/* Backward of nodes [from, to) in reverse, from the gradients written into
 * p->dout so far, adding the parameters' gradients to m->grads; the samples'
 * posterior gradients come from w. ready as in vae_backward. */
void pass_backward(Vae *m, VaeWork *w, VaePass *p, int from, int to, int input_grad,
                   void (*ready)(void *, size_t), void *ctx);
/* The first row of node i's output that row r (of n k) of a per-draw node
 * reads: r for a per-draw node, r / k for a per-data one. */
static inline int pass_row(const VaePass *p, const VaeNode *node, int r)
{
    return node->per_draw ? r : r / p->k;
}
/* Writes (first writer) or adds v (n floats) into p->dout[i] at offset at. */
void pass_grad_put(VaePass *p, int i, size_t at, const float *v, size_t n);

#define LOG_2PI 1.8378770664093453 /* log(2 pi) */

/* log sum exp by a running maximum: adds exp(v) to exp(*top) * *sum. Start
 * from *top = -INFINITY, *sum = 0; the result is *top + log(*sum), -INFINITY
 * when every v was (a NaN v stays NaN). */
static inline void lse_add(double *top, double *sum, double v)
{
    if (v > *top) { /* rescale the running sum to the new maximum */
        *sum = *sum * exp(*top - v) + 1.0;
        *top = v;
    } else if (v > -INFINITY || v != v) {
        *sum += exp(v - *top);
    }
}

/* ---- latent.c: the stochastic layers ----------------------------------- */

/* What the objective needs of the terms. */
typedef struct {
    int want_kl;  /* the ELBO's terms: closed-form KLs where they exist */
    int want_lr;  /* the one-draw log q - log p */
    int grad_lr;  /* the gradient is of the one-draw terms (IWAE), else of the kl ones */
} TermMode;

/* z_l for the rows of the last pass (the sample node's forward). */
void level_sample_forward(const Vae *m, VaePass *p, int l, const float *eps);
/* Level l's terms for the n k rows of the data pass: w->kl[l], w->lr[l]. */
void level_terms(const Vae *m, VaeWork *w, int l, const TermMode *mode);
/* Their gradient, draw row r weighted by beta (times w->coef[r] when
 * w->use_coef): w->dq[l], and the prior's side written at once: p's heads'
 * gradient, the class means', a VampPrior's components', and the one-draw
 * terms' gradient wrt z_l into the sample's dout. */
void level_terms_backward(Vae *m, VaeWork *w, int l, float beta, const TermMode *mode);
/* The sample's backward: the posterior heads' gradient from dz and w->dq[l]. */
void level_sample_backward(const Vae *m, VaeWork *w, VaePass *p, int l);

/* ---- prior.c: the top prior -------------------------------------------- */

/* A VampPrior's pseudo pass (the encoder on the hardtanh'd pseudo-inputs)
 * and its components' constants; nothing for the other priors. With split
 * and w->group, this rank's share of the pass and the group's gather
 * (collective over the group). */
void prior_prepare(const Vae *m, VaeWork *w, int split);
/* log p(z) of the top prior for one row z (d_L) of label y. */
double prior_log_density(const Vae *m, const VaeWork *w, const float *z, int32_t y);
/* For one row: dz (d_L) += -cf d log p(z) / dz, and the prior's own
 * gradients -cf d log p / d(its parameters): the class means into m->grads,
 * a VampPrior's components into the pseudo pass's dout of q_L (accumulated
 * in w->mix_grad until prior_backward). */
void prior_log_density_backward(Vae *m, VaeWork *w, const float *z, int32_t y, float cf,
                                float *dz);
/* A VampPrior: its components' accumulated gradient through the pseudo pass
 * to the pseudo-inputs; nothing for the other priors. */
void prior_backward(Vae *m, VaeWork *w, void (*ready)(void *, size_t), void *ctx);
/* Work buffers for the prior (w->pseudo, w->u, w->mix, ...); grads 0:
 * none for its gradient. */
void prior_work_alloc(const Vae *m, VaeWork *w, int grads);
void prior_work_free(VaeWork *w);

/* ---- likelihood.c -------------------------------------------------------- */

/* w->recon for the n k rows of the pass's outputs against x (n, D); with
 * want_grad the outputs become dR/doutputs (fused with the loss). */
void lik_forward(const Vae *m, VaeWork *w, const float *x, int want_grad);
/* Scales the outputs' gradient rows by w->coef (the IWAE weights). */
void lik_scale(const Vae *m, VaeWork *w);
/* Adds the learned log s^2's gradient (if any) to m->grads. */
void lik_backward(Vae *m, VaeWork *w);

/* ---- objective.c ---------------------------------------------------------- */

/* The terms obj needs, the same for training and for figures. */
TermMode objective_terms(const Objective *obj);
/* Combines the per-draw terms into w->loss, w->row_recon, w->row_kl and
 * (IWAE) w->coef; returns the sum of w->loss over the n rows. */
double objective_forward(const Objective *obj, const Vae *m, VaeWork *w, int n);

#endif
