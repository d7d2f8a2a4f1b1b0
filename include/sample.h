/* sample.h — the `sample` command (draws from the prior through the
 * decoder: a PNG grid and an HDF5 file) and the `reconstruct` command
 * (data rows above their reconstructions). Rank 0 does the work; the
 * others wait for its verdict. */
#ifndef VD_SAMPLE_H
#define VD_SAMPLE_H

#include <mpi.h>

#include "opts.h"

extern const OptCommand sample_command, reconstruct_command;

/* Collective over comm. argv holds the arguments after the command's name.
 * Return the exit code, the same on every rank. */
int sample_main(int argc, char **argv, MPI_Comm comm);
int reconstruct_main(int argc, char **argv, MPI_Comm comm);

#endif
