/* watch.c — the stall watchdog. See watch.h. */
#include "watch.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
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
    if (ftrylockfile(stdout) == 0) {
        fflush_unlocked(stdout);
        funlockfile(stdout);
    }
    fprintf(stderr, "vae-dist: rank %d on %s stalled at step %lld: %s made no progress for %.0f s "
            "(--stall-timeout %g%s): a node or link is lost; ending the job (exit %d)\n",
            w.rank, host, (long long)atomic_load(&w.step), what ? what : "a wait on other ranks",
            waited, w.timeout, io, VD_EX_STALL);
    fflush(stderr);
    if (w.on_stall)
        w.on_stall(atomic_load(&w.step));
    _exit(VD_EX_STALL);
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
    atomic_store(&w.what, what);
    atomic_store(&w.io, w.in_io);
    atomic_store(&w.since_ns, now_ns());
}

void watch_done(void)
{
    if (w.running)
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
