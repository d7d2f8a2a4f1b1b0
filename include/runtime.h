/* runtime.h — what a rank needs from its surroundings: where the default
 * data file lives (import.h imports it on first use), how many OpenBLAS
 * threads it runs, and the stop signals. */
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

/* Local. SIGTERM, SIGUSR1 and SIGINT only record that a stop was asked for
 * (a second SIGINT kills); runtime_stop_signal returns the last such signal,
 * or 0. Installed first thing in main. */
void runtime_catch_stops(void);
int runtime_stop_signal(void);

/* Local. For the commands that have nothing to save (all but train): the
 * three signals end the process again, and one that came during start-up
 * is acted on now. */
void runtime_default_stops(void);

#endif
