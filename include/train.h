/* train.h — the `train` command: data-parallel training over MPI.
 *
 * Every rank holds the full model and reads only its slice of each epoch's
 * global permutation. Per step (step.h): local forward and backward (the sum
 * of per-sample gradients), the sum over the ranks with the loss sums in the
 * buffer's tail, divided by the global sample count, and an identical Adam
 * step (reduce.h). Rank 0 alone writes checkpoints, metrics and figures.
 *
 * Where each part lives: the options, train_opts.h and .c; opening and
 * checking the data sets, train_data.c; the run directory (its name,
 * --fresh, resume, checkpoints), rundir.c; the figures, figures.c; the
 * epochs and steps, loop.c; the setup that ties them, train.c. */
#ifndef VD_TRAIN_H
#define VD_TRAIN_H

#include <mpi.h>

/* Collective over comm. Parses argv (the arguments after "train") and
 * trains. Returns the exit code, the same on every rank. */
int train_main(int argc, char **argv, MPI_Comm comm);

#endif
