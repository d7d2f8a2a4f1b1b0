/* runtime.c — default data, threads, stop signals. See runtime.h. */
#include "config.h"
#include "runtime.h"

#include <sched.h>
#include <signal.h>
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

static volatile sig_atomic_t stop_signal;

static void on_stop(int sig) { stop_signal = sig; }

void runtime_catch_stops(void)
{
    int sigs[3] = {SIGTERM, SIGUSR1, SIGINT};
    for (int i = 0; i < 3; i++) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_stop;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = sigs[i] == SIGINT ? SA_RESETHAND : 0;
        sigaction(sigs[i], &sa, NULL);
    }
}

int runtime_stop_signal(void) { return stop_signal; }

void runtime_default_stops(void)
{
    int sigs[3] = {SIGTERM, SIGUSR1, SIGINT};
    for (int i = 0; i < 3; i++)
        signal(sigs[i], SIG_DFL);
    if (stop_signal)
        raise(stop_signal);
}
