/* comm.h — the few things every collective part of vae-dist needs: agreeing
 * on an error across the ranks, the ranks sharing a node, and a check that
 * replicas hold the same bits. Everything here is collective over comm. */
#ifndef VD_COMM_H
#define VD_COMM_H

#include <mpi.h>
#include <stddef.h>

#include "util.h"

/* Local, once after MPI_Init: VD_ABORT then ends the whole job with
 * MPI_Abort, and only rank 0 prints the crash guard's line (util.h). */
void comm_init(void);

/* Collective. Agrees on errors across comm: returns the code of the lowest
 * failing rank (VD_OK if none), after that rank printed "vae-dist: msg" to
 * stderr. Every rank's err is set to the agreed code. */
int vd_error_agree(VdError *err, MPI_Comm comm);

/* Collective: how many ranks of comm share this rank's node. */
int comm_node_ranks(MPI_Comm comm);

/* Collective. Do all ranks hold bitwise the same n floats? */
int comm_same_bits(const float *x, size_t n, MPI_Comm comm);

#endif
