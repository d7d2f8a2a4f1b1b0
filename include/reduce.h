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
 * Two reductions live behind it, each in its own file:
 *
 *   reduce_shm.h   --reduce shm, the default: the ranks of a node share one
 *                  copy of the parameters in shared memory, each sums and
 *                  updates a slice of it; slices are allreduced between
 *                  nodes. With --node-sum adam, on one node, reduce_fused.h
 *                  sums each slice inside Adam's pass.
 *   reduce_mpi.h   --reduce mpi: every rank its own copy, the buffer summed
 *                  by MPI_Iallreduce in buckets during backward.
 *
 * Nodes must hold the same number of ranks, and /dev/shm must hold the
 * segment; otherwise reduce_create falls back to mpi and says why. On one
 * rank nothing is communicated. */
#ifndef VD_REDUCE_H
#define VD_REDUCE_H

#include <mpi.h>
#include <stddef.h>

#include "half.h"
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

typedef struct {
    int mode;      /* ReduceMode */
    size_t bucket; /* floats per chunk summed (shm) or bucket allreduced (mpi) during backward;
                      mpi 0: one allreduce after it */
    MPI_Comm node; /* shm: the ranks sharing memory, or MPI_COMM_NULL for
                    * MPI_COMM_TYPE_SHARED (tests pass a split of comm) */
    int compress;  /* shm on more than one node: CompressMode (half.h) of the gradient's
                    * part; the tail always goes as float */
    float scale;   /* fp16: the sums are multiplied by scale before the conversion and
                    * divided after (a power of two, about 1 / the global batch, so
                    * that sums of many samples stay below fp16's 65504) */
    int fuse;      /* shm on one node: sum each slice inside Adam's pass, not during
                    * backward (reduce_fused.h); ignored on more than one node */
} ReduceConfig;

typedef struct Reducer Reducer;

/* Collective over comm. m must have been created with the tail
 * (vae_create's n_tail = VD_GRAD_EXTRA). For shm, moves m's parameters and
 * Adam moments (from node rank 0; the ranks of a node must hold the same
 * values) and its gradient buffer into the node's segment, every page
 * reserved here. Where shm cannot be had (nodes of different sizes, a
 * /dev/shm too small; the test hook $VAE_DIST_TEST_NO_SHM=R fakes the
 * latter on node rank R), every rank falls back to mpi, m untouched, and
 * *why is one line saying why; else *why is NULL. m must outlive the
 * reducer. */
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
 * will be finite; afterwards reduce_extras gives the summed tail. Returns
 * 1 if the whole sum is finite, the same verdict on every rank. With sumsq,
 * also the sum of squares of the summed parameters' gradient (for
 * clipping), the same double on every rank. */
int reduce_finish(Reducer *r, double *sumsq);

/* Local, after reduce_update: the sum of squares of the summed gradient of
 * the parameters (before any scaling), the same double on every rank; NaN
 * when the fused pass did not run (a step not applied). With fuse it is
 * summed inside Adam's pass, as the gradient is. */
double reduce_grad_sumsq(const Reducer *r);

/* Local, between reduce_finish and the next reduce_begin: the summed tail
 * (VD_GRAD_EXTRA floats, indexed by VD_EXTRA_*). */
const float *reduce_extras(const Reducer *r);

/* Collective (shm: over the node). If apply, Adam step t with the summed
 * gradient times grad_scale; on return every rank sees all the updated
 * parameters, and the summed tail is in the tail of m->grads as well.
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

#endif
