/* shm_segment.c — memory shared by the ranks of one node. See
 * shm_segment.h. */
#define _POSIX_C_SOURCE 200809L
#include "shm_segment.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "watch.h"

static char why_buf[256];

/* Reserves [off, off + len) of fd's pages for this rank: tmpfs places them
 * by the caller's memory policy, so each rank's slices land on its socket. */
static int reserve(int fd, size_t off, size_t len)
{
    int err;
    do
        err = len ? posix_fallocate(fd, (off_t)off, (off_t)len) : 0;
    while (err == EINTR);
    return err;
}

/* Node rank 0: a new POSIX shared memory object of bytes, named in name
 * (64 bytes). Returns the fd, or -1 with errno. */
static int create_object(size_t bytes, char *name)
{
    static int serial;
    int fd;
    do { /* a name left by a dead job of a reused pid is not ours to remove */
        snprintf(name, 64, "/vae-dist.%ld.%d", (long)getpid(), serial++);
        fd = shm_open(name, O_CREAT | O_EXCL | O_RDWR, 0600);
    } while (fd < 0 && errno == EEXIST && serial < 1000);
    if (fd < 0) {
        name[0] = '\0';
        return -1;
    }
    while (ftruncate(fd, (off_t)bytes) != 0) {
        if (errno != EINTR) {
            int saved = errno;
            close(fd);
            shm_unlink(name);
            name[0] = '\0';
            errno = saved;
            return -1;
        }
    }
    return fd;
}

/* This rank's pages: the ranges it writes. 0 or an errno. */
static int reserve_own(int fd, int lrank, const ShmRange *own, int n_own)
{
    const char *hook = getenv("VAE_DIST_TEST_NO_SHM"); /* test hook, see shm_segment.h */
    if (hook && *hook && atoi(hook) == lrank)
        return ENOSPC;
    int err = 0;
    for (int i = 0; i < n_own && !err; i++)
        err = reserve(fd, own[i].offset, own[i].len);
    return err;
}

/* Collective over comm: 0 if every rank succeeded; else -1 on every rank,
 * and rank 0's why_buf holds the lowest failing rank's reason. */
static int agree_mapped(int err, MPI_Comm comm)
{
    int rank, who[2], low[2];
    MPI_Comm_rank(comm, &rank);
    who[0] = err ? 0 : 1;
    who[1] = err ? rank : INT_MAX;
    MPI_Allreduce(who, low, 1, MPI_2INT, MPI_MINLOC, comm);
    if (low[0])
        return 0;
    if (low[1] != 0) {
        if (rank == low[1])
            MPI_Send(why_buf, sizeof why_buf, MPI_CHAR, 0, 0, comm);
        if (rank == 0)
            MPI_Recv(why_buf, sizeof why_buf, MPI_CHAR, low[1], 0, comm, MPI_STATUS_IGNORE);
    }
    return -1;
}

/* Node rank 0 creates the object, every rank maps it by name and reserves
 * the pages of what it writes, then node rank 0 the rest, and node rank 0
 * unlinks the name as soon as all have it open. */
void *shm_segment_map(MPI_Comm node, MPI_Comm comm, size_t *bytes, const ShmRange *own, int n_own,
                      const char **why)
{
    long page = sysconf(_SC_PAGESIZE);
    int lrank;
    MPI_Comm_rank(node, &lrank);
    *bytes = (*bytes + (size_t)page - 1) / (size_t)page * (size_t)page;
    double mib = (double)*bytes / (1 << 20);
    char name[64] = {0};
    void *base = NULL;
    int fd = -1, err = 0;
    if (lrank == 0 && (fd = create_object(*bytes, name)) < 0) {
        err = errno;
        snprintf(why_buf, sizeof why_buf, "no shared memory object of %.1f MiB (%s)", mib,
                 strerror(err));
    }
    MPI_Bcast(&err, 1, MPI_INT, 0, node);
    if (err && lrank != 0)
        snprintf(why_buf, sizeof why_buf, "node rank 0 could not create the shared memory");
    if (!err) {
        MPI_Bcast(name, sizeof name, MPI_CHAR, 0, node);
        if (lrank != 0 && (fd = shm_open(name, O_RDWR, 0600)) < 0) {
            err = errno;
            snprintf(why_buf, sizeof why_buf, "shared memory %s could not be opened (%s)", name,
                     strerror(err));
        }
        if (!err && (err = reserve_own(fd, lrank, own, n_own)) != 0)
            snprintf(why_buf, sizeof why_buf, "/dev/shm cannot hold the %.1f MiB shared segment (%s)",
                     mib, strerror(err));
        if (!err && (base = mmap(NULL, *bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) ==
                        MAP_FAILED) {
            err = errno;
            base = NULL;
            snprintf(why_buf, sizeof why_buf, "shared memory %s could not be mapped (%s)", name,
                     strerror(err));
        }
    }
    MPI_Barrier(node); /* every rank has its pages, or failed */
    if (lrank == 0 && fd >= 0 && !err && (err = reserve(fd, 0, *bytes)) != 0)
        snprintf(why_buf, sizeof why_buf, "/dev/shm cannot hold the %.1f MiB shared segment (%s)",
                 mib, strerror(err)); /* the verdicts, the padding */
    if (fd >= 0)
        close(fd);
    if (lrank == 0 && name[0])
        shm_unlink(name);
    if (agree_mapped(err, comm) == 0)
        return base;
    if (base)
        munmap(base, *bytes);
    *why = why_buf;
    return NULL;
}

void shm_segment_unmap(void *base, size_t bytes)
{
    if (base)
        munmap(base, bytes);
}

void shm_segment_sync(MPI_Comm node)
{
    atomic_thread_fence(memory_order_seq_cst);
    watch_wait("the node's shared-memory barrier");
    MPI_Barrier(node);
    watch_done();
    atomic_thread_fence(memory_order_seq_cst);
}
