/* runtime.c — default data, threads. See runtime.h. */
#include "config.h"
#include "runtime.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "comm.h"

void runtime_default_data(char *buf)
{
    const char *env = getenv("VAE_DIST_DATA"), *xdg = getenv("XDG_DATA_HOME");
    const char *home = getenv("HOME");
    if (env && *env)
        snprintf(buf, VD_PATH_MAX, "%s", env);
    else if (xdg && *xdg)
        snprintf(buf, VD_PATH_MAX, "%s/vae-dist/fashion-mnist.h5", xdg);
    else
        snprintf(buf, VD_PATH_MAX, "%s/.local/share/vae-dist/fashion-mnist.h5", home ? home : ".");
}

#ifdef HAVE_OPENBLAS_SET_NUM_THREADS
void openblas_set_num_threads(int);
#endif

int runtime_set_threads(int threads, MPI_Comm comm)
{
    int local = comm_node_ranks(comm);
    if (threads <= 0) {
        const char *env = getenv("OPENBLAS_NUM_THREADS");
        if (env && atoi(env) > 0) {
            threads = atoi(env);
        } else {
            cpu_set_t set;
            long online = sysconf(_SC_NPROCESSORS_ONLN);
            int mine = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : (int)online;
            int share = (int)(online / local);
            threads = mine < share ? mine : share;
            if (threads < 1)
                threads = 1;
        }
    }
#ifdef HAVE_OPENBLAS_SET_NUM_THREADS
    openblas_set_num_threads(threads);
#endif
    return threads;
}
