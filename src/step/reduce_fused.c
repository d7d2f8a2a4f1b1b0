/* reduce_fused.c — the node's sum made inside Adam's pass. See
 * reduce_fused.h. */
#include "reduce_fused.h"

#include <float.h>
#include <string.h>

#include "shm_segment.h"
#include "util.h"

#define STRIDE VD_SHM_FLAG_STRIDE
#define FUSE_BLOCK 2048 /* floats of the slice summed into L1 at a time, then updated */

void reduce_fused_begin(ReduceShm *r)
{
    r->checked = r->n_red;
    r->maxbits = 0;
    r->fused = 0;
}

/* The largest (bits & 0x7fffffff) of x (n): the bits of the largest |x[i]|,
 * since non-negative floats order as their bits; infinity and NaN lie above
 * every finite value. */
VD_VECTOR_CLONES
static uint32_t max_abs_bits(const float *x, size_t n)
{
    uint32_t top = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &x[i], sizeof bits);
        bits &= 0x7fffffffu;
        top = bits > top ? bits : top;
    }
    return top;
}

void reduce_fused_ready(ReduceShm *r, size_t offset)
{
    if (offset >= r->checked)
        return;
    uint32_t top = max_abs_bits(r->m->grads + offset, r->checked - offset);
    r->maxbits = top > r->maxbits ? top : r->maxbits;
    r->checked = offset;
}

int reduce_fused_verdict(ReduceShm *r, double *sumsq)
{
    reduce_fused_ready(r, 0);
    /* next to the verdict's slot, which the fallback below rewrites while
     * other ranks may still be reading these */
    r->flags[r->lrank * STRIDE + 1] = (int)r->maxbits;
    shm_segment_sync(r->node); /* every gradient is final, and every rank's maximum posted */
    int bad = 0;
    double bound = 0.0;
    for (int i = 0; i < r->lsize; i++) {
        uint32_t bits = (uint32_t)r->flags[i * STRIDE + 1];
        float top;
        memcpy(&top, &bits, sizeof top);
        bad |= bits >= 0x7f800000u;
        bound += top;
    }
    reduce_shm_sum(r, r->extra, r->n, VD_GRAD_EXTRA);
    if (bad)
        return 0;
    if (!sumsq && bound <= FLT_MAX / 4) {
        r->fused = 1;
        return 1;
    }
    reduce_shm_sum(r, r->sum + r->lo, r->lo, r->hi - r->lo);
    r->summed = r->lo;
    return -1;
}

void reduce_fused_update(ReduceShm *r, const AdamConfig *c, long t, float grad_scale)
{
    Vae *m = r->m;
    size_t hi = r->hi < r->n ? r->hi : r->n;
    float block[FUSE_BLOCK];
    double sq = 0.0; /* the norm reported: summed from each block while it is in L1 */
    for (size_t at = r->lo; at < hi; at += FUSE_BLOCK) {
        size_t len = hi - at < FUSE_BLOCK ? hi - at : FUSE_BLOCK;
        reduce_shm_sum(r, block, at, len);
        sq += vd_sum_squares(block, len);
        adam_step(c, t, len, m->params + at, block, m->adam_m + at, m->adam_v + at, grad_scale);
    }
    r->sumsq[r->lrank * VD_SHM_FLAG_STRIDE / 2] = sq; /* added after reduce_shm_update's sync */
}
