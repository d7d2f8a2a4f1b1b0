/* reduce_fused.h — --node-sum adam: on one node under --reduce shm
 * (reduce_shm.h), the sum of the node's gradients made inside Adam's pass
 * instead of during backward. Nothing crosses nodes, so the sum need not
 * exist before the update. Each rank notes the largest |g| of its own
 * gradient as backward writes it (reduce_fused_ready); one node barrier
 * agrees the verdict: the sum is not finite if a part is not, and is
 * finite if the parts' maxima add up to less than FLT_MAX / 4, for then no
 * partial sum can overflow. Each rank then sums its slice in L1-sized
 * blocks that go straight into Adam, and the sum never goes through
 * memory:
 *
 *   backward (+ own maximum) -> barrier -> sum + Adam on slice -> barrier
 *
 * A step whose maxima are too large, or that needs the sum's norm first
 * (--clip-norm), sums the slice and is judged as reduce_shm.h's. The
 * parameters are the same bits either way. Called by reduce.c, on a
 * reducer whose fuse is set. */
#ifndef VD_REDUCE_FUSED_H
#define VD_REDUCE_FUSED_H

#include "reduce_shm.h"

/* Local. A step starts (after reduce_shm_begin): nothing of this rank's
 * gradient is checked yet. */
void reduce_fused_begin(ReduceShm *r);

/* Local. This rank's gradient from offset up is final: its largest |g|,
 * while it is still in cache. */
void reduce_fused_ready(ReduceShm *r, size_t offset);

/* Collective over the node, instead of reduce_shm_finish. The summed tail
 * in r->extra, and the verdict: 0 (not finite) or 1 (finite; r->fused is
 * set and reduce_fused_update will sum), or -1 when the slice has been
 * summed into r->sum and reduce_shm_finish must judge it. */
int reduce_fused_verdict(ReduceShm *r, double *sumsq);

/* Local. Adam step t on this rank's slice, fed by its sum block by block,
 * whose sum of squares it posts; reduce_shm_update (without apply) then
 * ends the step, after which reduce_shm_node_sumsq adds the slices'. */
void reduce_fused_update(ReduceShm *r, const AdamConfig *c, long t, float grad_scale);

#endif
