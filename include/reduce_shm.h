/* reduce_shm.h — --reduce shm, the default: the k ranks of a node keep one
 * copy of the parameters and Adam moments in the node's shared segment
 * (shm_segment.h), and each rank's gradient buffer (with its tail,
 * reduce.h) lives there too. Node rank i owns slice i of the flat buffer:
 * it sums slice i of the k gradients, in node-rank order, and on more than
 * one node allreduces it with node rank i of the other nodes; it then runs
 * Adam on slice i alone, which every rank of the node reads.
 *
 * The sums start during backward: each rank publishes in the segment how
 * far its backward has come (reduce_shm_ready), and the owner sums each
 * chunk of its slice that every node rank has passed, posting its
 * allreduce between nodes at once (as 16-bit floats with --compress,
 * half.h). Two node barriers order the rest:
 *
 *   backward (+ sums and cross-node allreduces of finished chunks)
 *     -> the rest of the slice -> barrier -> Adam on slice -> barrier
 *     -> next forward
 *
 * On one node, with fuse (--node-sum adam), reduce.c calls reduce_fused.h's
 * functions instead of ready and finish, and for the update when its
 * verdict allows. Every node holds the same parameters: the
 * slices' sums are the same on every node (the same allreduce), and Adam
 * is elementwise. The order of calls is reduce.h's. */
#ifndef VD_REDUCE_SHM_H
#define VD_REDUCE_SHM_H

#include <mpi.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "model.h"
#include "optim.h"
#include "reduce.h"

#define VD_SHM_FLAG_STRIDE 16 /* ints: one rank's verdicts per cache line */

/* The state of the path. Its fields are shared with reduce_fused.c, the
 * other way to sum a slice, and reduce.c reads fuse and fused; nothing else
 * looks inside. */
typedef struct ReduceShm {
    Vae *m;
    size_t n, n_red;            /* parameters; parameters + tail */
    void *base;                 /* the node's segment, of bytes */
    size_t bytes;
    MPI_Comm node;              /* the ranks sharing this node's memory */
    MPI_Comm cross;             /* this node rank on every node */
    int lrank, lsize, nodes;
    size_t lo, hi;              /* this rank's slice of [0, n_red) */
    float **g;                  /* (lsize) every node rank's gradient buffer */
    float *sum;                 /* (n_red) the gradient summed over all ranks */
    float *params, *adam_m, *adam_v; /* (n) lent to m */
    int *flags;    /* (lsize * VD_SHM_FLAG_STRIDE) non-finite verdicts of the slices (slot 0
                    * of each line) and, fused, each rank's largest |g| as bits (slot 1) */
    double *sumsq; /* (lsize * VD_SHM_FLAG_STRIDE / 2) each slice's sum of squares */
    /* how far each node rank's backward has come this step: step tag << 40 |
     * offset, all of its gradient at >= offset final (one cache line each) */
    _Atomic int64_t *progress; /* (lsize * VD_SHM_FLAG_STRIDE / 2) */
    int64_t tag;                /* this step's tag */
    size_t chunk;               /* floats of the slice summed (and allreduced) at a time */
    size_t summed;              /* [summed, hi) of the slice is summed, and posted between nodes */
    int n_creq;
    MPI_Request *creq;          /* (chunks of the slice + 1) the cross-node allreduces in flight */
    int compress;               /* CompressMode */
    float scale, unscale;
    uint16_t *half;             /* compress: (hi - lo) the slice's parameters as 16-bit floats */
    MPI_Op half_sum;
    float extra[VD_GRAD_EXTRA]; /* the summed tail, after reduce_shm_finish */
    double grad_sumsq;          /* the summed gradient's sum of squares, after the update */
    /* fuse (one node): the slice is summed inside Adam's pass */
    int fuse;
    int fused;                  /* this step's verdict allows the fused pass */
    size_t checked;             /* this rank's gradient [checked, n_red) is checked */
    uint32_t maxbits;           /* the largest |g| of it, as bits (>= 0x7f800000: not finite) */
} ReduceShm;

/* Collective over comm. Takes over m's buffers (reduce.h): maps the node's
 * segment and moves node rank 0's parameters and Adam moments into it. Of
 * c: node, the ranks sharing memory; bucket, the floats of a chunk (0: the
 * whole slice); compress and scale, across nodes only; fuse, on one node
 * only. NULL on every rank, m untouched, with *why one line, when nodes
 * hold different numbers of ranks or the segment cannot be had. */
ReduceShm *reduce_shm_create(Vae *m, MPI_Comm comm, const ReduceConfig *c, const char **why);

/* Collective. m gets private copies of its buffers (keep) or none; the
 * segment is unmapped. */
void reduce_shm_free(ReduceShm *r, int keep);

/* Local. A step starts: a new progress tag. */
void reduce_shm_begin(ReduceShm *r);

/* Local (it posts non-blocking allreduces between nodes, in the same order
 * on every node): this rank's gradient from offset up is final. */
void reduce_shm_ready(ReduceShm *r, size_t offset);

/* Collective over the node (and, across nodes, over this node rank's
 * peers). The slice summed and judged; 1 if the whole sum is finite, the
 * same verdict on every rank; with sumsq the slices' sums of squares of
 * the parameters' part, added in node-rank order. */
int reduce_shm_finish(ReduceShm *r, double *sumsq);

/* Local, after a node sync that follows every rank's post of its slice's
 * sum of squares: their sum, in node-rank order (the same double on every
 * rank of every node). */
double reduce_shm_node_sumsq(const ReduceShm *r);

/* Collective over the node: Adam on this rank's slice from the summed
 * slice if apply, then a barrier; the summed tail is copied into the tail
 * of m->grads. */
void reduce_shm_update(ReduceShm *r, const AdamConfig *c, long t, float grad_scale, int apply);

/* Local: the summed tail, after reduce_shm_finish. */
const float *reduce_shm_extras(const ReduceShm *r);

/* Local: out (len) = the sum over the node ranks of g[.][lo, lo + len), in
 * node-rank order (the order every path sums in). */
void reduce_shm_sum(const ReduceShm *r, float *restrict out, size_t lo, size_t len);

#endif
