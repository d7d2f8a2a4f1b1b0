/* main.c — vae-dist's entry point: process setup, then the command
 * (commands.h). Everything else is in the library. */
#include <malloc.h>
#include <mpi.h>
#include <stdio.h>

#include "commands.h"
#include "comm.h"
#include "h5util.h"
#include "signals.h"

int main(int argc, char **argv)
{
    signals_catch_stops(); /* a stop asked for during start-up is honoured at step 1 */
    int rc = commands_local(argc, argv);
    if (rc >= 0)
        return rc;
    /* Open MPI's non-blocking allreduce mallocs and frees a bucket-sized
     * buffer each call: keep freed memory in the heap instead of returning
     * it to the kernel and faulting it back in every step. */
    mallopt(M_MMAP_THRESHOLD, 64 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    MPI_Init(&argc, &argv);
    comm_init();
    h5_quiet();
    rc = commands_run(argc, argv, MPI_COMM_WORLD);
    fflush(stdout);
    MPI_Finalize();
    return rc;
}
