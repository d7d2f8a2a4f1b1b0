/* runtime.h — what a rank needs from its surroundings: where the default
 * data file lives (import.h imports it on first use), and how many OpenBLAS
 * threads it runs. (The stop signals are signals.h's.) */
#ifndef VD_RUNTIME_H
#define VD_RUNTIME_H

#include <mpi.h>

#include "util.h"

/* The data file used when --data is not given (VD_PATH_MAX bytes):
 * $VAE_DIST_DATA, else ${XDG_DATA_HOME:-$HOME/.local/share}/vae-dist/fashion-mnist.h5 */
void runtime_default_data(char *buf);

/* Collective. Sets OpenBLAS threads per rank: threads > 0 as given; 0 means
 * $OPENBLAS_NUM_THREADS if set, else the cores this rank may use divided by
 * the ranks sharing its node (at least 1). Returns the count set. */
int runtime_set_threads(int threads, MPI_Comm comm);

#endif
