/* eval.h — the `eval` command: the negative ELBO of a data set under a
 * trained model and the importance-weighted estimate of its log-likelihood
 * (vae_importance, model.h), the rows split across the ranks in contiguous
 * blocks. A row's draws depend only on its index, so the figures do not
 * depend on the rank count. */
#ifndef VD_EVAL_H
#define VD_EVAL_H

#include <mpi.h>

#include "opts.h"

extern const OptCommand eval_command;

/* Collective over comm. argv holds the arguments after "eval". Returns the
 * exit code, the same on every rank. */
int eval_main(int argc, char **argv, MPI_Comm comm);

#endif
