/* share.h — the gradient's sum and the Adam step through the node's shared
 * memory (a POSIX shared memory segment per node), the default reduction of
 * `train`.
 *
 * The k ranks on a node keep one copy of the parameters and Adam moments in
 * the segment; each rank's gradient buffer lives there too. After
 * backward, rank i of the node sums slice i of the k gradients (in node-rank
 * order), and, on more than one node, allreduces that slice with the ranks
 * of node rank i on the other nodes. It then runs Adam on slice i alone:
 * each rank updates 1/k of the parameters, which every rank of the node then
 * reads. No gradient is copied between ranks and no parameter is gathered;
 * three barriers of the node order the phases:
 *
 *   backward -> barrier -> sum slice (+ allreduce over nodes) -> barrier
 *            -> Adam on slice -> barrier -> next forward
 *
 * Every node holds the same parameters: the slices' sums are the same on
 * every node (the same allreduce), and Adam is elementwise. Nodes must hold
 * the same number of ranks, so that slices line up; otherwise share_create
 * declines and `train` reduces with MPI_Allreduce instead. */
#ifndef VD_SHARE_H
#define VD_SHARE_H

#include <mpi.h>
#include <stddef.h>

#include "model.h"
#include "optim.h"

typedef struct NodeShare NodeShare;

/* Collective over comm. Moves m's parameters and Adam moments (from node
 * rank 0; the ranks of a node must hold the same values) and its gradient
 * buffer into a segment shared by node, the ranks sharing memory: pass
 * MPI_COMM_NULL for MPI_COMM_TYPE_SHARED, or a split of comm (tests). Every
 * page is reserved here. Returns NULL, with *why set to one line and m
 * untouched, on every rank if the nodes differ in size or any node's
 * segment cannot be created or mapped (a small /dev/shm, as in containers;
 * $VAE_DIST_TEST_NO_SHM=R fakes that on node rank R). */
NodeShare *share_create(Vae *m, MPI_Comm comm, MPI_Comm node, const char **why);

/* Collective. Unmaps the segment; with keep, m gets private copies of its
 * buffers first, else m is left without buffers (for vae_free only), which
 * spares the memory of k copies at the end of a run. NULL does nothing. */
void share_free(NodeShare *s, Vae *m, int keep);

/* Collective over comm, after every rank's backward wrote its m->grads
 * (with the extras in the tail). Sums the gradients of all ranks into the
 * shared sum, and copies the summed extras into the tail of m->grads.
 * Returns 1 if the whole sum is finite, the same verdict on every rank. */
int share_reduce(NodeShare *s, Vae *m);

/* Collective over the node, after share_reduce. If apply, Adam step t on
 * this rank's slice with the summed gradient times grad_scale; on return
 * every rank of the node sees all the updated parameters. Called on every
 * step, applied or not, so that every step passes the same barriers. */
void share_adam(NodeShare *s, Vae *m, const AdamConfig *c, long t, float grad_scale, int apply);

/* The segment's bytes on each node. */
size_t share_bytes(const NodeShare *s);

/* Ranks per node (k above), and nodes. */
int share_node_size(const NodeShare *s);
int share_nodes(const NodeShare *s);

#endif
