/* watch.h — the stall watchdog (--stall-timeout). A lost node or a cut
 * link leaves the other ranks in an MPI call that never returns, spinning:
 * TCP takes many minutes to give up, and the MPI library keeps waiting.
 * The main thread marks each wait on other ranks (watch_wait ... watch_done);
 * a thread looks once a second, and a wait that has lasted the timeout ends
 * this process: one line on stderr naming the rank, its host, the step and
 * what it waited for, then exit VD_EX_STALL. Every rank watches for itself,
 * so ranks on both sides of a cut end. Nothing written is lost: checkpoints
 * and metrics rows are complete on disk before any wait that could stall.
 *
 * Under mpirun a rank that exits makes mpirun send an abort to every
 * daemon, the lost node's too, and then wait until TCP gives up on that
 * one (a quarter of an hour). When mpirun checks its daemons' links
 * (Open MPI's oob_tcp_keepalive settings, in the ranks' environment), a
 * stalled rank waits for that check to find the lost node first, after
 * which mpirun ends the whole job at once (watch_grace_seconds).
 * Local; MPI-free. */
#ifndef VD_WATCH_H
#define VD_WATCH_H

#include <stdint.h>

/* Starts the watchdog thread for this process (rank, for the message);
 * timeout <= 0 starts nothing and makes the other calls no-ops. */
void watch_start(double timeout, int rank);

/* fn(step) runs in the watchdog thread just before it ends the process
 * (rank 0 records the failure in the run directory). */
void watch_on_stall(void (*fn)(int64_t step));

/* The optimizer step the process is at, for the message. */
void watch_step(int64_t step);

/* The main thread enters a wait on other ranks, described by what (a
 * string constant: "the cross-node gradient allreduce"), and leaves it. */
void watch_wait(const char *what);
void watch_done(void);

/* Around start-up (where rank 0 alone may import the data, resume and
 * rebuild the metrics files) and each epoch's end (the test pass, then
 * rank 0's checkpoint and figures): on, the waits begun get
 * WATCH_IO_FACTOR times the timeout, as a slow shared file system is no
 * lost node. Rank 0's metrics rows at log intervals are not covered. */
#define WATCH_IO_FACTOR 10
void watch_rank0_io(int on);

/* How long a stalled rank started by mpirun waits for mpirun to find the
 * lost node before it exits: the longest that mpirun's link check takes
 * (keepalive time + interval x probes) and 5 s more, when hnp_uri (the
 * launcher's address, OMPI_MCA_orte_hnp_uri: set only under mpirun) is
 * set and the check takes at most WATCH_GRACE_MAX seconds; else 0, exit
 * at once. The arguments are the environment's strings (NULL: unset; then
 * Open MPI's defaults, 300, 20 and 9, which make it too long). */
#define WATCH_GRACE_MAX 60
double watch_grace_seconds(const char *hnp_uri, const char *ka_time, const char *ka_intvl,
                           const char *ka_probes);

/* Stops the thread (before MPI_Finalize). */
void watch_stop(void);

#endif
