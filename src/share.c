/* share.c — the gradient's sum and the Adam step through the node's shared
 * memory. See share.h. */
#define _POSIX_C_SOURCE 200809L
#include "share.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "util.h"

#define ALIGN 16       /* floats: slices start on their own 64-byte line */
#define FLAG_STRIDE 16 /* ints: one verdict per cache line */

struct NodeShare {
    void *base;     /* the node's segment, mapped by each of its ranks */
    size_t bytes;
    MPI_Comm node;  /* the ranks sharing this node's memory */
    MPI_Comm cross; /* this node rank on every node */
    int lrank, lsize, nodes;
    size_t n, n_red;       /* parameters; parameters + extras */
    size_t lo, hi;         /* this rank's slice of [0, n_red) */
    float **g;             /* (lsize) every node rank's gradient buffer */
    float *sum;            /* (n_red) the gradient summed over all ranks */
    float *params, *adam_m, *adam_v;
    int *flags;            /* (lsize * FLAG_STRIDE) non-finite verdicts of the slices */
};

static size_t padded(size_t n) { return (n + ALIGN - 1) / ALIGN * ALIGN; }

/* Orders every rank's stores to the segment before every rank's loads after. */
static void node_sync(NodeShare *s)
{
    atomic_thread_fence(memory_order_seq_cst);
    MPI_Barrier(s->node);
    atomic_thread_fence(memory_order_seq_cst);
}

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

/* Collective over comm. The node's segment, [gradient of node rank 0 | ...
 * | of rank k-1 | parameters | m | v | sum | verdicts]: node rank 0 creates
 * a POSIX shared memory object, every rank maps it by name and reserves the
 * pages of what it writes, then node rank 0 the rest (posix_fallocate, so
 * that a full /dev/shm fails here with ENOSPC, not with SIGBUS in a later
 * step), and node rank 0 unlinks the name as soon as all have it open.
 * 0, or -1 on every rank of comm with *why set on rank 0 to the lowest
 * failing rank's reason. */
static int map_segment(NodeShare *s, MPI_Comm comm, const char **why)
{
    static int serial;
    long page = sysconf(_SC_PAGESIZE);
    size_t gs = padded(s->n_red) * sizeof(float), ps = padded(s->n) * sizeof(float);
    s->bytes = (size_t)(s->lsize + 1) * gs + 3 * ps + (size_t)s->lsize * FLAG_STRIDE * sizeof(int);
    s->bytes = (s->bytes + (size_t)page - 1) / (size_t)page * (size_t)page;
    char name[64] = {0};
    int fd = -1, err = 0;
    if (s->lrank == 0) {
        do { /* a name left by a dead job of a reused pid is not ours to remove */
            snprintf(name, sizeof name, "/vae-dist.%ld.%d", (long)getpid(), serial++);
            fd = shm_open(name, O_CREAT | O_EXCL | O_RDWR, 0600);
        } while (fd < 0 && errno == EEXIST && serial < 1000);
        if (fd < 0) {
            err = errno;
            name[0] = '\0';
        } else {
            while (ftruncate(fd, (off_t)s->bytes) != 0 && (err = errno) == EINTR)
                err = 0;
        }
        if (err)
            snprintf(why_buf, sizeof why_buf, "no shared memory object of %.1f MiB (%s)",
                     (double)s->bytes / (1 << 20), strerror(err));
    }
    MPI_Bcast(&err, 1, MPI_INT, 0, s->node);
    if (err && s->lrank != 0)
        snprintf(why_buf, sizeof why_buf, "node rank 0 could not create the shared memory");
    if (!err) {
        MPI_Bcast(name, sizeof name, MPI_CHAR, 0, s->node);
        if (s->lrank != 0 && (fd = shm_open(name, O_RDWR, 0600)) < 0) {
            err = errno;
            snprintf(why_buf, sizeof why_buf, "shared memory %s could not be opened (%s)", name,
                     strerror(err));
        }
        /* this rank's gradient, and its slices of the parameters, m, v, sum */
        size_t slice = (s->hi - s->lo) * sizeof(float), lo = s->lo * sizeof(float);
        size_t pslice = s->lo < s->n ? ((s->hi < s->n ? s->hi : s->n) - s->lo) * sizeof(float) : 0;
        size_t shared = (size_t)s->lsize * gs;
        const char *hook = getenv("VAE_DIST_TEST_NO_SHM"); /* test hook, see README */
        if (!err) {
            err = hook && *hook && atoi(hook) == s->lrank ? ENOSPC
                                                         : reserve(fd, (size_t)s->lrank * gs, gs);
            for (int a = 0; a < 3 && !err; a++)
                err = reserve(fd, shared + (size_t)a * ps + lo, pslice);
            if (!err)
                err = reserve(fd, shared + 3 * ps + lo, slice);
            if (err)
                snprintf(why_buf, sizeof why_buf,
                         "/dev/shm cannot hold the %.1f MiB shared segment (%s)",
                         (double)s->bytes / (1 << 20), strerror(err));
        }
        if (!err) {
            s->base = mmap(NULL, s->bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
            if (s->base == MAP_FAILED) {
                err = errno;
                s->base = NULL;
                snprintf(why_buf, sizeof why_buf, "shared memory %s could not be mapped (%s)",
                         name, strerror(err));
            }
        }
    }
    MPI_Barrier(s->node); /* every rank has its pages, or failed */
    if (s->lrank == 0 && fd >= 0 && !err && (err = reserve(fd, 0, s->bytes)) != 0)
        snprintf(why_buf, sizeof why_buf, "/dev/shm cannot hold the %.1f MiB shared segment (%s)",
                 (double)s->bytes / (1 << 20), strerror(err)); /* the verdicts, the padding */
    if (fd >= 0)
        close(fd);
    if (s->lrank == 0 && name[0])
        shm_unlink(name);
    /* the lowest failing rank's reason reaches rank 0 */
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
    if (s->base)
        munmap(s->base, s->bytes);
    s->base = NULL;
    *why = why_buf;
    return -1;
}

static void free_comms(NodeShare *s)
{
    if (s->cross != MPI_COMM_NULL)
        MPI_Comm_free(&s->cross);
    if (s->node != MPI_COMM_NULL)
        MPI_Comm_free(&s->node);
    vd_free(s->g);
    vd_free(s);
}

NodeShare *share_create(Vae *m, MPI_Comm comm, MPI_Comm node, const char **why)
{
    NodeShare *s = vd_calloc(1, sizeof *s);
    s->node = s->cross = MPI_COMM_NULL;
    int rank;
    MPI_Comm_rank(comm, &rank);
    if (node == MPI_COMM_NULL)
        MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &s->node);
    else
        MPI_Comm_dup(node, &s->node);
    MPI_Comm_rank(s->node, &s->lrank);
    MPI_Comm_size(s->node, &s->lsize);
    int sizes[2] = {s->lsize, -s->lsize};
    MPI_Allreduce(MPI_IN_PLACE, sizes, 2, MPI_INT, MPI_MAX, comm);
    if (sizes[0] != -sizes[1]) {
        *why = "the nodes hold different numbers of ranks";
        free_comms(s);
        return NULL;
    }
    MPI_Comm_split(comm, s->lrank, rank, &s->cross);
    MPI_Comm_size(s->cross, &s->nodes);

    s->n = m->n_params;
    s->n_red = m->n_params + VD_GRAD_EXTRA;
    size_t step = padded((s->n_red + (size_t)s->lsize - 1) / (size_t)s->lsize);
    s->lo = (size_t)s->lrank * step < s->n_red ? (size_t)s->lrank * step : s->n_red;
    s->hi = s->lo + step < s->n_red ? s->lo + step : s->n_red;

    s->g = vd_calloc((size_t)s->lsize, sizeof *s->g);
    if (map_segment(s, comm, why)) {
        free_comms(s);
        return NULL;
    }
    for (int i = 0; i < s->lsize; i++)
        s->g[i] = (float *)s->base + (size_t)i * padded(s->n_red);
    s->params = s->g[s->lsize - 1] + padded(s->n_red);
    s->adam_m = s->params + padded(s->n);
    s->adam_v = s->adam_m + padded(s->n);
    s->sum = s->adam_v + padded(s->n);
    s->flags = (int *)(s->sum + padded(s->n_red));

    if (s->lrank == 0) {
        memcpy(s->params, m->params, s->n * sizeof(float));
        memcpy(s->adam_m, m->adam_m, s->n * sizeof(float));
        memcpy(s->adam_v, m->adam_v, s->n * sizeof(float));
    }
    vae_set_buffers(m, s->params, s->g[s->lrank], s->adam_m, s->adam_v, 0);
    node_sync(s);
    return s;
}

void share_free(NodeShare *s, Vae *m, int keep)
{
    if (!s)
        return;
    float *p = NULL, *g = NULL, *am = NULL, *av = NULL;
    node_sync(s); /* no rank is still writing */
    if (keep) {
        p = vd_calloc(s->n, sizeof(float));
        g = vd_calloc(s->n_red, sizeof(float));
        am = vd_calloc(s->n, sizeof(float));
        av = vd_calloc(s->n, sizeof(float));
        memcpy(p, s->params, s->n * sizeof(float));
        memcpy(g, m->grads, s->n_red * sizeof(float));
        memcpy(am, s->adam_m, s->n * sizeof(float));
        memcpy(av, s->adam_v, s->n * sizeof(float));
    }
    node_sync(s); /* nor reading, before the segment goes */
    vae_set_buffers(m, p, g, am, av, 1);
    munmap(s->base, s->bytes);
    free_comms(s);
}

/* out = g[0] + g[1] + ... + g[k-1] over [lo, lo + n), in that order. */
VD_VECTOR_CLONES
static void sum_slice(float *restrict out, float *const *g, int k, size_t lo, size_t n)
{
    const float *a = g[0] + lo, *b = k > 1 ? g[1] + lo : NULL;
    if (b)
        for (size_t i = 0; i < n; i++)
            out[i] = a[i] + b[i];
    else
        memcpy(out, a, n * sizeof(float));
    for (int r = 2; r < k; r++) {
        const float *c = g[r] + lo;
        for (size_t i = 0; i < n; i++)
            out[i] += c[i];
    }
}

int share_reduce(NodeShare *s, Vae *m)
{
    size_t len = s->hi - s->lo;
    node_sync(s); /* every gradient is written */
    sum_slice(s->sum + s->lo, s->g, s->lsize, s->lo, len);
    if (s->nodes > 1)
        MPI_Allreduce(MPI_IN_PLACE, s->sum + s->lo, (int)len, MPI_FLOAT, MPI_SUM, s->cross);
    s->flags[s->lrank * FLAG_STRIDE] = !vd_all_finite(s->sum + s->lo, len);
    node_sync(s); /* every slice is summed and judged */
    int bad = 0;
    for (int i = 0; i < s->lsize; i++)
        bad |= s->flags[i * FLAG_STRIDE];
    memcpy(m->grads + s->n, s->sum + s->n, VD_GRAD_EXTRA * sizeof(float));
    return !bad;
}

void share_adam(NodeShare *s, Vae *m, const AdamConfig *c, long t, float grad_scale, int apply)
{
    size_t hi = s->hi < s->n ? s->hi : s->n;
    if (apply && hi > s->lo)
        adam_step(c, t, hi - s->lo, m->params + s->lo, s->sum + s->lo, m->adam_m + s->lo,
                  m->adam_v + s->lo, grad_scale);
    node_sync(s); /* every slice is updated before any rank's next forward */
}

size_t share_bytes(const NodeShare *s) { return s->bytes; }

int share_node_size(const NodeShare *s) { return s->lsize; }
int share_nodes(const NodeShare *s) { return s->nodes; }
