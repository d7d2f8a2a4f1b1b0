/* watch.c — the stall watchdog. See watch.h. */
#include "watch.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

static struct {
    double timeout;
    int rank, running;
    pthread_t thread;
    _Atomic int64_t since_ns; /* when the current wait began; 0: not waiting */
    _Atomic int64_t step;
    _Atomic(const char *) what;
    _Atomic int quit;
    _Atomic int io;      /* the current wait is for rank 0's writing */
    _Atomic int stalled; /* the process is ending: the main thread goes no further */
    double grace;        /* seconds a stalled rank waits for mpirun to end the job */
    int under_mpirun;
    char unparsed[96];   /* "NAME=VALUE" of a keepalive setting that is no number */
    void (*on_stall)(int64_t step);
    int in_io;
} w;

static int64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* Ends the process from the watchdog thread: the main thread is stuck in
 * MPI, so nothing can be agreed with the other ranks. Output the main thread
 * had buffered goes first, unless it holds stdout's lock. */
static void stalled(double waited)
{
    char host[256] = "?";
    gethostname(host, sizeof host - 1);
    const char *what = atomic_load(&w.what);
    char io[64] = "";
    if (atomic_load(&w.io))
        snprintf(io, sizeof io, ", times %d at start-up and epoch ends", WATCH_IO_FACTOR);
    char grace[256] = "";
    if (w.grace > 0)
        snprintf(grace, sizeof grace, ", once mpirun has seen it (at most %.0f s)", w.grace);
    else if (w.unparsed[0])
        snprintf(grace, sizeof grace, "; mpirun may wait many minutes for the lost node: %s is not "
                 "a whole number of seconds (docs/faults-and-resume.md)", w.unparsed);
    else if (w.under_mpirun)
        snprintf(grace, sizeof grace, "; mpirun may wait many minutes for the lost node unless it checks "
                 "its links (OMPI_MCA_oob_tcp_keepalive_time, docs/faults-and-resume.md)");
    atomic_store(&w.stalled, 1);
    if (ftrylockfile(stdout) == 0) {
        fflush_unlocked(stdout);
        funlockfile(stdout);
    }
    fprintf(stderr, "vae-dist: rank %d on %s stalled at step %lld: %s made no progress for %.0f s "
            "(--stall-timeout %g%s): a node or link is lost; ending the job (exit %d)%s\n",
            w.rank, host, (long long)atomic_load(&w.step), what ? what : "a wait on other ranks",
            waited, w.timeout, io, VD_EX_STALL, grace);
    fflush(stderr);
    if (w.on_stall)
        w.on_stall(atomic_load(&w.step));
    /* mpirun ends this process (SIGTERM, then SIGKILL) when it finds the
     * lost node; exiting first would leave it waiting on that node */
    struct timespec left = {(time_t)w.grace, (long)((w.grace - (double)(time_t)w.grace) * 1e9)};
    while (w.grace > 0 && nanosleep(&left, &left) != 0)
        ;
    _exit(VD_EX_STALL);
}

/* The main thread, back from a wait the watchdog gave up on (the link
 * came back while this process waits for mpirun), must not go on: the
 * failure is recorded and the watchdog thread ends the process. */
static void park_if_stalled(void)
{
    while (atomic_load(&w.stalled))
        pause();
}

/* A whole number of seconds in [1, 1e6], else -1 */
static double env_seconds(const char *s, double dflt)
{
    if (!s)
        return dflt;
    char *end;
    long v = strtol(s, &end, 10);
    return end != s && *end == '\0' && v >= 1 && v <= 1000000 ? (double)v : -1;
}

/* The keepalive settings, in watch_grace_seconds's order */
static const char *const ka_names[3] = {"OMPI_MCA_oob_tcp_keepalive_time",
                                        "OMPI_MCA_oob_tcp_keepalive_intvl",
                                        "OMPI_MCA_oob_tcp_keepalive_probes"};

double watch_grace_seconds(const char *hnp_uri, const char *ka_time, const char *ka_intvl,
                           const char *ka_probes)
{
    if (!hnp_uri || !*hnp_uri)
        return 0; /* not started by mpirun (srun, or no launcher) */
    /* Open MPI's own defaults: 300 + 20 x 9 s */
    double t = env_seconds(ka_time, 300), i = env_seconds(ka_intvl, 20), n = env_seconds(ka_probes, 9);
    if (t < 0 || i < 0 || n < 0)
        return 0; /* unset to 0 (keepalive off) or not understood */
    double check = t + i * n;
    return check <= WATCH_GRACE_MAX ? check + 5 : 0;
}

static void *watch_thread(void *arg)
{
    (void)arg;
    double tick = w.timeout / 4 < 1.0 ? w.timeout / 4 : 1.0;
    struct timespec nap = {(time_t)tick, (long)((tick - (double)(time_t)tick) * 1e9)};
    while (!atomic_load(&w.quit)) {
        nanosleep(&nap, NULL);
        /* io before since: watch_wait stores them the other way round, so
         * a wait's start is never paired with an older wait's shorter limit */
        double limit = w.timeout * (atomic_load(&w.io) ? WATCH_IO_FACTOR : 1);
        int64_t since = atomic_load(&w.since_ns);
        if (since && (double)(now_ns() - since) * 1e-9 >= limit)
            stalled((double)(now_ns() - since) * 1e-9);
    }
    return NULL;
}

void watch_start(double timeout, int rank)
{
    if (timeout <= 0 || w.running)
        return;
    w.timeout = timeout;
    w.rank = rank;
    const char *hnp = getenv("OMPI_MCA_orte_hnp_uri");
    w.under_mpirun = hnp && *hnp;
    w.grace = watch_grace_seconds(hnp, getenv(ka_names[0]), getenv(ka_names[1]),
                                  getenv(ka_names[2]));
    w.unparsed[0] = '\0'; /* named in the stall line, rather than taken for keepalive off */
    for (int i = 0; i < 3 && w.under_mpirun && !w.unparsed[0]; i++) {
        const char *v = getenv(ka_names[i]);
        char *end = NULL;
        if (v)
            strtol(v, &end, 10);
        if (v && (end == v || *end != '\0'))
            snprintf(w.unparsed, sizeof w.unparsed, "%s=%.40s", ka_names[i], v);
    }
    atomic_store(&w.quit, 0);
    w.running = pthread_create(&w.thread, NULL, watch_thread, NULL) == 0;
}

void watch_step(int64_t step) { atomic_store(&w.step, step); }

void watch_on_stall(void (*fn)(int64_t step)) { w.on_stall = fn; }

void watch_rank0_io(int on) { w.in_io = on; }

void watch_wait(const char *what)
{
    if (!w.running)
        return;
    park_if_stalled();
    atomic_store(&w.what, what);
    atomic_store(&w.io, w.in_io);
    atomic_store(&w.since_ns, now_ns());
}

void watch_done(void)
{
    if (!w.running)
        return;
    park_if_stalled();
    atomic_store(&w.since_ns, 0);
}

void watch_stop(void)
{
    if (!w.running)
        return;
    atomic_store(&w.quit, 1);
    pthread_join(w.thread, NULL);
    w.running = 0;
}
