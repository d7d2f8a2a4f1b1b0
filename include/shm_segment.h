/* shm_segment.h — memory shared by the ranks of one node, for --reduce shm
 * (reduce_shm.h): a POSIX shared memory object that node rank 0 creates and
 * every rank of the node maps. Its name is unlinked as soon as every rank
 * has it open, so a job killed after start-up leaves nothing in /dev/shm.
 * Every page is reserved when the segment is mapped (posix_fallocate): a
 * full /dev/shm fails here, with a reason, not with SIGBUS in a later step.
 * Each rank reserves the pages it writes first, so that tmpfs places them
 * by that rank's memory policy, on its socket. */
#ifndef VD_SHM_SEGMENT_H
#define VD_SHM_SEGMENT_H

#include <mpi.h>
#include <stddef.h>

/* Bytes [offset, offset + len) of a segment. */
typedef struct {
    size_t offset, len;
} ShmRange;

/* Collective over comm, which holds node (the ranks that share this node's
 * memory) and the other nodes. Maps *bytes, rounded up here to whole pages,
 * shared by node's ranks: each reserves the n_own ranges own first, node
 * rank 0 then the rest. Returns the mapping, zeroed, or NULL on every rank
 * of comm with *why one line saying why (rank 0's names the lowest failing
 * rank's reason). The test hook $VAE_DIST_TEST_NO_SHM=R fakes a full
 * /dev/shm on node rank R. */
void *shm_segment_map(MPI_Comm node, MPI_Comm comm, size_t *bytes, const ShmRange *own, int n_own,
                      const char **why);

/* Local. NULL does nothing. */
void shm_segment_unmap(void *base, size_t bytes);

/* Collective over node: every rank's stores to the segment before it are
 * seen by every rank's loads after it. A watched wait (watch.h). */
void shm_segment_sync(MPI_Comm node);

#endif
