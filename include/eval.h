/* eval.h — what users do with a trained model: `eval` (the negative ELBO and
 * the importance-weighted log-likelihood estimate of a data set), `sample`
 * (draws from the prior through the decoder) and `reconstruct` (inputs above
 * their reconstructions). Each reads a checkpoint file, or a run directory's
 * newest complete checkpoint.
 *
 * The importance-weighted estimate (vae-math.md, "Evaluation"), per row x
 * with K draws z_k = mu + sigma eps_k from q(z|x):
 *
 *   log w_k = -R(x, z_k) + log N(z_k; m, I) - log q(z_k | x)
 *           = -R(x, z_k) - 0.5 |z_k - m|^2 + 0.5 |eps_k|^2 + 0.5 sum_j lv_j
 *
 * (m = 0, or the class mean m_y of a conditional model)
 *   log p(x) ~= logsumexp_k log w_k - log K
 *
 * (the (2 pi)^(d/2) factors cancel), accumulated with a running maximum so no
 * exp overflows. */
#ifndef VD_EVAL_H
#define VD_EVAL_H

#include <mpi.h>
#include <stdint.h>

#include "model.h"
#include "rng.h"
#include "util.h"

/* One row's figures, in nats. */
typedef struct {
    double recon;  /* mean over the K draws of the reconstruction term R */
    double kl;     /* closed-form KL of q(z|x) to the prior */
    double log_px; /* the importance-weighted estimate of log p(x) */
} IwRow;

/* Local. For rows [0, n) of x (n, D), n <= w->max_batch, with labels y
 * (n) for a conditional model (else NULL): K importance samples each, eps for
 * row i and draw k at element ((row0 + i) * K + k) * d of counter row 0 of
 * rng. Uses all of w. A conditional model's prior is N(m_y, I), so the
 * estimate is of log p(x | y). */
void vae_importance(const Vae *m, VaeWork *w, const float *x, const int32_t *y, int n, int K,
                    const Rng *rng, int64_t row0, IwRow *out);

/* Local. Dynamic binarization: x[i] = 1 with probability x[i], else 0, with
 * uniforms from rng at counter row a, element row0 * D + i. (n, D) */
void vd_binarize(float *x, int n, int D, const Rng *rng, uint32_t a, int64_t row0);

/* Local. n draws z (n, d) from the prior, N(0, I) or, for a conditional
 * model, N(m_c, I) with c = cls, or (cls < 0) c = (k / cols) mod C for draw
 * k, one class per grid row; the classes go to y (n), 0 when unconditional.
 * eps comes from the VD_STREAM_EVAL stream at counter row 2^32 - 1, where
 * training draws its samples.png. */
void vd_prior_draws(const Vae *m, uint64_t seed, int n, int cols, int cls, float *z, int32_t *y);

/* Local. Resolves a checkpoint argument: a checkpoint file, or a run
 * directory (its "latest", else its newest ckpt-*.h5). path gets the file.
 * VD_OK or VD_EX_NOINPUT. */
int vd_find_checkpoint(const char *arg, char *path, size_t n, VdError *err);

/* Collective over comm. The subcommands; argv holds the arguments after the
 * command's name. Return the exit code, the same on every rank. */
int eval_main(int argc, char **argv, MPI_Comm comm);
int sample_main(int argc, char **argv, MPI_Comm comm);
int reconstruct_main(int argc, char **argv, MPI_Comm comm);

#endif
