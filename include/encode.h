/* encode.h — the `encode` command (the posterior of every row of a data
 * set: /mu, /logvar and, with --sample, one draw /z, in row order; the rows
 * split across the ranks in contiguous blocks, rank 0 writing) and the
 * `interpolate` command (decoded points between two rows' latent means, on
 * rank 0). */
#ifndef VD_ENCODE_H
#define VD_ENCODE_H

#include <mpi.h>

#include "opts.h"

extern const OptCommand encode_command, interpolate_command;

/* Collective over comm. argv holds the arguments after the command's name.
 * Return the exit code, the same on every rank. */
int encode_main(int argc, char **argv, MPI_Comm comm);
int interpolate_main(int argc, char **argv, MPI_Comm comm);

#endif
