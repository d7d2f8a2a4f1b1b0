/* reduce.h — the sum of every rank's gradient and the optimizer step that
 * follows it: the one interface behind which the two reductions of `train`
 * live. A step reads
 *
 *   forward -> reduce_begin -> backward, calling reduce_ready as each part of
 *   the flat gradient is final -> reduce_finish (the sum, and its verdict)
 *   -> reduce_update (Adam)
 *
 * After the n_params floats of the gradient, the gradient buffer holds
 * VD_GRAD_EXTRA more, the tail (reduce_tail), where the step writes its
 * loss sums, its sample count and the stop and failure flags. The tail is
 * summed with the gradient, so after reduce_finish every rank holds the
 * global sums (reduce_extras): one sum carries both the gradient and the
 * step's verdicts. The tail is the reduction's: the model only makes room
 * for it (vae_create's n_tail).
 *
 * shm (the default): the k ranks of a node keep one copy of the parameters
 * and Adam moments in a POSIX shared memory segment; each rank's gradient
 * buffer lives there too. Node rank i owns slice i: it sums slice i of the
 * k gradients (in node-rank order) and, on more than one node, allreduces
 * it with node rank i of the other nodes; it then runs Adam on slice i
 * alone, which every rank of the node then reads. The sums start during
 * backward: each rank publishes in the segment how far its backward has
 * come (reduce_ready), and the owner sums each chunk (ReduceConfig.bucket)
 * of its slice that all node ranks have passed, posting its allreduce
 * between nodes at once. Two node barriers order the rest:
 *
 *   backward (+ sums and cross-node allreduces of finished chunks)
 *     -> the rest of the slice -> barrier -> Adam on slice -> barrier
 *     -> next forward
 *
 * fuse, on one node without clipping: nothing crosses nodes, so the sum
 * need not exist before Adam. Each rank notes the largest |g| of its own
 * gradient as backward writes it; one barrier agrees the verdict (the sum
 * is finite if every part is, and their maxima cannot overflow it); then
 * each rank sums its slice in L1-sized blocks that go straight into Adam,
 * and the sum never goes through memory:
 *
 *   backward (+ own maximum) -> barrier -> sum + Adam on slice -> barrier
 *
 * The values are the same bits as the unfused path's.
 *
 * Every node holds the same parameters: the slices' sums are the same on
 * every node (the same allreduce), and Adam is elementwise. Nodes must hold
 * the same number of ranks, and /dev/shm must hold the segment; otherwise
 * reduce_create falls back to mpi and says why.
 *
 * mpi: every rank keeps its own copy and runs the whole Adam step; the
 * buffer is summed by MPI_Iallreduce in buckets posted as soon as backward
 * has finished them (backward completes the buffer from its end), moved on
 * with MPI_Testall between layers; bucket 0 is one MPI_Allreduce after
 * backward. On one rank nothing is communicated. */
#ifndef VD_REDUCE_H
#define VD_REDUCE_H

#include <mpi.h>
#include <stddef.h>

#include "model.h"
#include "optim.h"

/* The gradient buffer's tail, summed with the gradient: the step's loss
 * sums, its sample count, and the stop and failure flags. The model is
 * created with this many more gradient floats (vae_create's n_tail). */
#define VD_GRAD_EXTRA 5
enum { VD_EXTRA_RECON = 0, VD_EXTRA_KL = 1, VD_EXTRA_COUNT = 2, VD_EXTRA_STOP = 3,
       VD_EXTRA_FAIL = 4 };

/* The --reduce choices, in the option's order. */
typedef enum { VD_REDUCE_SHM = 0, VD_REDUCE_MPI = 1 } ReduceMode;

/* What crosses nodes under shm (--compress): the slices' float sums, or
 * 16-bit floats of them. The extras (loss sums, counts, flags) always go as
 * float. */
typedef enum { VD_COMPRESS_NONE = 0, VD_COMPRESS_FP16 = 1, VD_COMPRESS_BF16 = 2 } CompressMode;

typedef struct {
    int mode;      /* ReduceMode */
    size_t bucket; /* floats per chunk summed (shm) or bucket allreduced (mpi) during backward;
                      mpi 0: one allreduce after it */
    MPI_Comm node; /* shm: the ranks sharing memory, or MPI_COMM_NULL for
                    * MPI_COMM_TYPE_SHARED (tests pass a split of comm) */
    int compress;  /* shm on more than one node: CompressMode */
    float scale;   /* fp16: the sums are multiplied by scale before the conversion and
                    * divided after (a power of two, about 1 / the global batch, so
                    * that sums of many samples stay below fp16's 65504) */
    int fuse;      /* shm on one node: sum each slice inside Adam's pass, not during
                    * backward (see above); ignored on more than one node */
} ReduceConfig;

typedef struct Reducer Reducer;

/* Collective over comm. m must have been created with the tail
 * (vae_create's n_tail = VD_GRAD_EXTRA). For shm, moves m's parameters and
 * Adam moments (from node rank 0; the ranks of a node must hold the same
 * values) and its gradient buffer into the node's segment, every page
 * reserved here. Where
 * that cannot be done (nodes of different sizes, a /dev/shm too small; the
 * test hook $VAE_DIST_TEST_NO_SHM=R fakes the latter on node rank R), every
 * rank falls back to mpi, m untouched, and *why is one line saying why; else
 * *why is NULL. m must outlive the reducer. */
Reducer *reduce_create(Vae *m, MPI_Comm comm, const ReduceConfig *c, const char **why);

/* Collective. With shm, unmaps the segment: with keep, m gets private
 * copies of its buffers first, else m is left without buffers (for vae_free
 * only), which spares the memory of k copies at the end of a run. NULL does
 * nothing. */
void reduce_free(Reducer *r, int keep);

/* Local. This rank's tail (VD_GRAD_EXTRA floats, indexed by VD_EXTRA_*),
 * to fill before reduce_begin. */
float *reduce_tail(Reducer *r);

/* Local. Starts a step's reduction; then backward calls reduce_ready(r,
 * offset) (the hook of vae_backward_hook) whenever m->grads[offset ..) is
 * final. */
void reduce_begin(Reducer *r);
void reduce_ready(void *r, size_t offset);

/* Collective. Completes the sum over all ranks, or (fuse) agrees that it
 * will be finite; afterwards reduce_extras gives the summed extras. Returns
 * 1 if the whole sum is finite, the same verdict on every rank. With sumsq,
 * also the sum of squares of the summed parameters' gradient (for
 * clipping), the same double on every rank. */
int reduce_finish(Reducer *r, double *sumsq);

/* Local, between reduce_finish and the next reduce_begin: the summed extras
 * (VD_GRAD_EXTRA floats). */
const float *reduce_extras(const Reducer *r);

/* Collective (shm: over the node). If apply, Adam step t with the summed
 * gradient times grad_scale; on return every rank sees all the updated
 * parameters, and the summed extras are in the tail of m->grads as well.
 * Called on every step, applied or not, so that every step passes the same
 * barriers. */
void reduce_update(Reducer *r, const AdamConfig *c, long t, float grad_scale, int apply);

/* What is in use. mode: VD_REDUCE_SHM or _MPI; node_size and nodes (shm:
 * ranks per node and nodes; mpi: 1 and the rank count); the shared segment's
 * bytes on each node (0 for mpi). */
int reduce_mode(const Reducer *r);
int reduce_fused(const Reducer *r); /* 1 if shm sums inside Adam's pass (fuse) */
int reduce_node_size(const Reducer *r);
int reduce_nodes(const Reducer *r);
size_t reduce_shared_bytes(const Reducer *r);

/* For the tests: how many values the F16C and the plain fp16 loops of
 * --compress fp16 convert or add to different bits (every half, and a
 * million random floats and sums), or -1 where there is no F16C. */
long reduce_fp16_mismatches(void);

#endif
