/* rng.h — counter-based random numbers (Philox4x32-10, Salmon et al.,
 * SC'11), one generator per use and rank.
 *
 * A draw is a pure function of (seed, use, rank, a, b): there is no state
 * to save, a resumed run reproduces the same numbers, and different
 * (use, rank) pairs occupy disjoint counter spaces, so they never overlap.
 *
 *   key     = the 64-bit seed
 *   counter = { b low 32, b high 32, a, use << 24 | rank }
 *
 * Uses (docs/vae-math.md, "Random generators"):
 *   VD_RNG_INIT      parameter init, rank field 0: identical on every rank;
 *                    a = tensor index, b = element index in the tensor / 4.
 *   VD_RNG_ORDER     data order, rank field 0: every rank derives the same
 *                    global permutation; a = epoch, b = Fisher-Yates position.
 *   VD_RNG_NOISE     eps for the reparameterized sample, one per rank;
 *                    a = global step, b = ((local sample * K + draw) * d +
 *                    dim) / 4, d the noise of a draw (every stochastic
 *                    layer's), K the draws per sample (--iw-samples).
 *   VD_RNG_EVAL      eps for test-set evaluation, rank field 0, so the test
 *                    figure does not depend on the rank count; a = epoch,
 *                    b = (test row * d + dim) / 4; a = 2^32 - 1 draws the
 *                    top layer's prior samples of the figures, 2^32 - 2 a
 *                    VampPrior's components of them, 2^32 - 3 the lower
 *                    layers' noise.
 *   VD_RNG_IWAE      eps for `vae-dist eval`'s importance samples, rank
 *                    field 0; a = 0, b = ((row * K + k) * d + dim) / 4, so
 *                    the estimate does not depend on the rank count.
 *   VD_RNG_BINARIZE  uniforms for dynamic binarization (--binarize), rank
 *                    field 0; a = epoch in training (0 in eval), b = (row * D
 *                    + value) / 4 for the row's index in its dataset.
 *   VD_RNG_UNITS     the order of the units read by --data-mode stream, rank
 *                    field 0; a = epoch, b = Fisher-Yates position.
 *   VD_RNG_WINDOW    the draws from each rank's shuffle window in
 *                    --data-mode stream, one per rank; a = epoch, b = draw
 *                    index.
 *   VD_RNG_SPLIT     the rows --val-fraction holds out, rank field 0; a = 0,
 *                    b = Fisher-Yates position. */
#ifndef VD_RNG_H
#define VD_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    VD_RNG_INIT = 1,
    VD_RNG_ORDER = 2,
    VD_RNG_NOISE = 3,
    VD_RNG_EVAL = 4,
    VD_RNG_IWAE = 5,
    VD_RNG_BINARIZE = 6,
    VD_RNG_UNITS = 7,
    VD_RNG_WINDOW = 8,
    VD_RNG_SPLIT = 9
} RngUse;

typedef struct {
    uint32_t key[2];
    uint32_t tag; /* use << 24 | rank */
} Rng;

/* The ten-round Philox4x32 bijection: out = philox(ctr, key). */
void philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* The generator of use for rank (below 2^24), keyed by seed. */
Rng rng_for(uint64_t seed, RngUse use, uint32_t rank);

/* The four 32-bit words at counter (a, b). */
void rng_block(const Rng *r, uint32_t a, uint64_t b, uint32_t out[4]);

/* Fills out[0..n) with the standard normals at element indices first,
 * first + 1, ... of counter row a (element e is word e % 4 of block e / 4;
 * Box-Muller on word pairs). */
void rng_normal_fill(const Rng *r, uint32_t a, uint64_t first, size_t n, float *out);

/* Fills out[0..n) with uniforms in [lo, hi) at element indices first, ... */
void rng_uniform_fill(const Rng *r, uint32_t a, uint64_t first, size_t n, float lo, float hi,
                      float *out);

/* A uniform integer in [0, n) from block (a, b) (multiply-shift, bias < n/2^64). */
uint64_t rng_below(const Rng *r, uint32_t a, uint64_t b, uint64_t n);

/* perm[0..n) = a permutation of 0..n-1 drawn from counter row a
 * (Fisher-Yates, one block per swap). */
void rng_permutation(const Rng *r, uint32_t a, int64_t *perm, int64_t n);

/* Dynamic binarization of rows [row0, row0 + n) of a data set with D values
 * per row: x[i] (n, D) becomes 1 with probability x[i], else 0, with the
 * uniform at counter row a, element row0 * D + i. */
void rng_binarize(const Rng *r, uint32_t a, int64_t row0, int n, int D, float *x);

#endif
