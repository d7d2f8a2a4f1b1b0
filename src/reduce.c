/* reduce.c — the gradient's sum over the ranks and the update: node shared
 * memory with a sharded Adam, or MPI_Allreduce in buckets. See reduce.h. */
#define _POSIX_C_SOURCE 200809L
#include "reduce.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "util.h"
#include "watch.h"

#define ALIGN 16       /* floats: slices start on their own 64-byte line */
#define FLAG_STRIDE 16 /* ints: one verdict per cache line */
#define FUSE_BLOCK 2048 /* floats of the slice summed into L1 at a time, then updated */

struct Reducer {
    int mode;
    Vae *m;
    MPI_Comm comm;
    int size;
    size_t n, n_red; /* parameters; parameters + extras */

    /* mpi: buckets of the flat buffer, posted as backward finishes them;
     * shm: the chunk of a slice summed during backward (r->chunk) */
    size_t bucket;   /* floats per bucket or chunk; mpi 0: one allreduce after backward */
    size_t sent;     /* grads[sent ..) are posted */
    int n_req, max_req;
    MPI_Request *req; /* (max_req) every bucket but the last holds >= bucket floats */

    /* shm: the node's segment */
    void *base;
    size_t bytes;
    MPI_Comm node;  /* the ranks sharing this node's memory */
    MPI_Comm cross; /* this node rank on every node */
    int lrank, lsize, nodes;
    size_t lo, hi;  /* this rank's slice of [0, n_red) */
    float **g;      /* (lsize) every node rank's gradient buffer */
    float *sum;     /* (n_red) the gradient summed over all ranks */
    float *params, *adam_m, *adam_v;
    int *flags;     /* (lsize * FLAG_STRIDE) non-finite verdicts of the slices (slot 0 of
                     * each line) and, with fuse, each rank's largest |g| as bits (slot 1) */
    double *sumsq;  /* (lsize * FLAG_STRIDE / 2) each slice's sum of squares */
    /* how far each node rank's backward has come this step: step tag << 40 |
     * offset, all of its gradient at >= offset final (one cache line each) */
    _Atomic int64_t *progress; /* (lsize * FLAG_STRIDE / 2) */
    int64_t tag;      /* this step's tag */
    size_t chunk;     /* floats of the slice summed (and allreduced) at a time */
    size_t summed;    /* [summed, hi) of the slice is summed, and posted between nodes */
    int n_creq;
    MPI_Request *creq; /* (chunks of the slice + 1) the cross-node allreduces in flight */
    int compress;      /* CompressMode */
    float scale, unscale;
    uint16_t *half;    /* compress: (hi - lo) the slice's parameters as 16-bit floats */
    MPI_Op half_sum;

    /* fuse (shm on one node): the slice is summed inside Adam's pass */
    int fuse;
    int fused;         /* this step's verdict allows the fused pass */
    size_t checked;    /* this rank's gradient [checked, n_red) is checked */
    uint32_t maxbits;  /* the largest |g| of it, as bits (>= 0x7f800000: not finite) */
    float extra[VD_GRAD_EXTRA]; /* the summed extras, after reduce_finish */
};

#define TAG_MASK 0x7fffff /* 23 bits of the step count: ranks are at most a step apart */
#define PROGRESS(tag, offset) ((int64_t)((tag) & TAG_MASK) << 40 | (int64_t)(offset))

static void fp16_sum(void *in, void *inout, int *len, MPI_Datatype *type);
static void bf16_sum(void *in, void *inout, int *len, MPI_Datatype *type);

static size_t padded(size_t n) { return (n + ALIGN - 1) / ALIGN * ALIGN; }

/* Orders every rank's stores to the segment before every rank's loads after. */
static void node_sync(Reducer *r)
{
    atomic_thread_fence(memory_order_seq_cst);
    watch_wait("the node's shared-memory barrier");
    MPI_Barrier(r->node);
    watch_done();
    atomic_thread_fence(memory_order_seq_cst);
}

/* ---- the shared segment ------------------------------------------------- */

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

/* Node rank 0: a new POSIX shared memory object of r->bytes, named in name
 * (64 bytes). Returns the fd, or -1 with errno. */
static int create_object(const Reducer *r, char *name)
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
    while (ftruncate(fd, (off_t)r->bytes) != 0) {
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

/* This rank's pages: its gradient buffer, and its slices of the parameters,
 * m, v and the sum. 0 or an errno. */
static int reserve_own(const Reducer *r, int fd)
{
    size_t gs = padded(r->n_red) * sizeof(float), ps = padded(r->n) * sizeof(float);
    size_t slice = (r->hi - r->lo) * sizeof(float), lo = r->lo * sizeof(float);
    size_t pslice = r->lo < r->n ? ((r->hi < r->n ? r->hi : r->n) - r->lo) * sizeof(float) : 0;
    size_t shared = (size_t)r->lsize * gs;
    const char *hook = getenv("VAE_DIST_TEST_NO_SHM"); /* test hook, see reduce.h */
    int err = hook && *hook && atoi(hook) == r->lrank ? ENOSPC
                                                     : reserve(fd, (size_t)r->lrank * gs, gs);
    for (int a = 0; a < 3 && !err; a++)
        err = reserve(fd, shared + (size_t)a * ps + lo, pslice);
    return err ? err : reserve(fd, shared + 3 * ps + lo, slice);
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

/* Collective over comm. The node's segment, [gradient of node rank 0 | ...
 * | of rank k-1 | parameters | m | v | sum | verdicts]: node rank 0 creates
 * a POSIX shared memory object, every rank maps it by name and reserves the
 * pages of what it writes, then node rank 0 the rest (posix_fallocate, so
 * that a full /dev/shm fails here with ENOSPC, not with SIGBUS in a later
 * step), and node rank 0 unlinks the name as soon as all have it open.
 * 0, or -1 on every rank of comm with *why set. */
static int map_segment(Reducer *r, MPI_Comm comm, const char **why)
{
    long page = sysconf(_SC_PAGESIZE);
    size_t gs = padded(r->n_red) * sizeof(float), ps = padded(r->n) * sizeof(float);
    r->bytes = (size_t)(r->lsize + 1) * gs + 3 * ps + 3 * (size_t)r->lsize * FLAG_STRIDE * sizeof(int);
    r->bytes = (r->bytes + (size_t)page - 1) / (size_t)page * (size_t)page;
    double mib = (double)r->bytes / (1 << 20);
    char name[64] = {0};
    int fd = -1, err = 0;
    if (r->lrank == 0 && (fd = create_object(r, name)) < 0) {
        err = errno;
        snprintf(why_buf, sizeof why_buf, "no shared memory object of %.1f MiB (%s)", mib,
                 strerror(err));
    }
    MPI_Bcast(&err, 1, MPI_INT, 0, r->node);
    if (err && r->lrank != 0)
        snprintf(why_buf, sizeof why_buf, "node rank 0 could not create the shared memory");
    if (!err) {
        MPI_Bcast(name, sizeof name, MPI_CHAR, 0, r->node);
        if (r->lrank != 0 && (fd = shm_open(name, O_RDWR, 0600)) < 0) {
            err = errno;
            snprintf(why_buf, sizeof why_buf, "shared memory %s could not be opened (%s)", name,
                     strerror(err));
        }
        if (!err && (err = reserve_own(r, fd)) != 0)
            snprintf(why_buf, sizeof why_buf, "/dev/shm cannot hold the %.1f MiB shared segment (%s)",
                     mib, strerror(err));
        if (!err && (r->base = mmap(NULL, r->bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) ==
                        MAP_FAILED) {
            err = errno;
            r->base = NULL;
            snprintf(why_buf, sizeof why_buf, "shared memory %s could not be mapped (%s)", name,
                     strerror(err));
        }
    }
    MPI_Barrier(r->node); /* every rank has its pages, or failed */
    if (r->lrank == 0 && fd >= 0 && !err && (err = reserve(fd, 0, r->bytes)) != 0)
        snprintf(why_buf, sizeof why_buf, "/dev/shm cannot hold the %.1f MiB shared segment (%s)",
                 mib, strerror(err)); /* the verdicts, the padding */
    if (fd >= 0)
        close(fd);
    if (r->lrank == 0 && name[0])
        shm_unlink(name);
    if (agree_mapped(err, comm) == 0)
        return 0;
    if (r->base)
        munmap(r->base, r->bytes);
    r->base = NULL;
    *why = why_buf;
    return -1;
}

static void free_comms(Reducer *r)
{
    if (r->cross != MPI_COMM_NULL)
        MPI_Comm_free(&r->cross);
    if (r->node != MPI_COMM_NULL)
        MPI_Comm_free(&r->node);
    vd_free(r->g);
    r->g = NULL;
}

/* Collective over comm: the shm reduction, or -1 (on every rank) with *why. */
static int shm_open_node(Reducer *r, MPI_Comm node, const char **why)
{
    int rank;
    MPI_Comm_rank(r->comm, &rank);
    if (node == MPI_COMM_NULL)
        MPI_Comm_split_type(r->comm, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &r->node);
    else
        MPI_Comm_dup(node, &r->node);
    MPI_Comm_rank(r->node, &r->lrank);
    MPI_Comm_size(r->node, &r->lsize);
    int sizes[2] = {r->lsize, -r->lsize};
    MPI_Allreduce(MPI_IN_PLACE, sizes, 2, MPI_INT, MPI_MAX, r->comm);
    if (sizes[0] != -sizes[1]) {
        *why = "the nodes hold different numbers of ranks";
        free_comms(r);
        return -1;
    }
    MPI_Comm_split(r->comm, r->lrank, rank, &r->cross);
    MPI_Comm_size(r->cross, &r->nodes);
    size_t step = padded((r->n_red + (size_t)r->lsize - 1) / (size_t)r->lsize);
    r->lo = (size_t)r->lrank * step < r->n_red ? (size_t)r->lrank * step : r->n_red;
    r->hi = r->lo + step < r->n_red ? r->lo + step : r->n_red;
    r->g = vd_calloc((size_t)r->lsize, sizeof *r->g);
    if (map_segment(r, r->comm, why)) {
        free_comms(r);
        return -1;
    }
    for (int i = 0; i < r->lsize; i++)
        r->g[i] = (float *)r->base + (size_t)i * padded(r->n_red);
    r->params = r->g[r->lsize - 1] + padded(r->n_red);
    r->adam_m = r->params + padded(r->n);
    r->adam_v = r->adam_m + padded(r->n);
    r->sum = r->adam_v + padded(r->n);
    r->flags = (int *)(r->sum + padded(r->n_red));
    r->sumsq = (double *)(r->flags + (size_t)r->lsize * FLAG_STRIDE);
    r->progress = (_Atomic int64_t *)(r->sumsq + (size_t)r->lsize * FLAG_STRIDE / 2);
    r->chunk = r->bucket > 0 ? r->bucket : (r->hi > r->lo ? r->hi - r->lo : 1);
    r->creq = vd_calloc((r->hi - r->lo) / r->chunk + 3, sizeof *r->creq);
    if (r->nodes > 1 && r->compress != VD_COMPRESS_NONE) {
        r->half = vd_calloc(r->hi - r->lo + 1, sizeof *r->half);
        MPI_Op_create(r->compress == VD_COMPRESS_FP16 ? fp16_sum : bf16_sum, 1, &r->half_sum);
    } else {
        r->compress = VD_COMPRESS_NONE;
    }
    if (r->nodes > 1)
        r->fuse = 0; /* the slice's sum must cross nodes before Adam */
    Vae *m = r->m;
    if (r->lrank == 0) {
        memcpy(r->params, m->params, r->n * sizeof(float));
        memcpy(r->adam_m, m->adam_m, r->n * sizeof(float));
        memcpy(r->adam_v, m->adam_v, r->n * sizeof(float));
    }
    vae_set_buffers(m, r->params, r->g[r->lrank], r->adam_m, r->adam_v, 0);
    node_sync(r);
    return 0;
}

Reducer *reduce_create(Vae *m, MPI_Comm comm, const ReduceConfig *c, const char **why)
{
    Reducer *r = vd_calloc(1, sizeof *r);
    r->m = m;
    r->comm = comm;
    r->node = r->cross = MPI_COMM_NULL;
    r->n = m->n_params;
    r->n_red = m->n_params + VD_GRAD_EXTRA;
    r->bucket = c->bucket;
    r->compress = c->compress;
    r->scale = c->compress == VD_COMPRESS_FP16 ? c->scale : 1.0f;
    r->fuse = c->fuse;
    r->unscale = 1.0f / r->scale;
    MPI_Comm_size(comm, &r->size);
    *why = NULL;
    r->mode = VD_REDUCE_MPI;
    if (c->mode == VD_REDUCE_SHM && r->size > 1 && shm_open_node(r, c->node, why) == 0)
        r->mode = VD_REDUCE_SHM;
    r->max_req = (int)(r->bucket > 0 ? r->n_red / r->bucket + 1 : 1);
    r->req = vd_calloc((size_t)r->max_req, sizeof *r->req);
    return r;
}

void reduce_free(Reducer *r, int keep)
{
    if (!r)
        return;
    vd_free(r->req);
    if (r->mode == VD_REDUCE_SHM) {
        Vae *m = r->m;
        float *p = NULL, *g = NULL, *am = NULL, *av = NULL;
        node_sync(r); /* no rank is still writing */
        if (keep) {
            p = vd_calloc(r->n, sizeof(float));
            g = vd_calloc(r->n_red, sizeof(float));
            am = vd_calloc(r->n, sizeof(float));
            av = vd_calloc(r->n, sizeof(float));
            memcpy(p, r->params, r->n * sizeof(float));
            memcpy(g, m->grads, r->n_red * sizeof(float));
            memcpy(am, r->adam_m, r->n * sizeof(float));
            memcpy(av, r->adam_v, r->n * sizeof(float));
        }
        node_sync(r); /* nor reading, before the segment goes */
        vae_set_buffers(m, p, g, am, av, 1);
        munmap(r->base, r->bytes);
        free_comms(r);
        vd_free(r->creq);
        vd_free(r->half);
        if (r->half)
            MPI_Op_free(&r->half_sum);
    }
    vd_free(r);
}

/* ---- a step --------------------------------------------------------------- */

static void bucket_post(Reducer *r, size_t from)
{
    if (r->n_req == r->max_req)
        VD_ABORT("more gradient buckets than the buffer holds");
    MPI_Iallreduce(MPI_IN_PLACE, r->m->grads + from, (int)(r->sent - from), MPI_FLOAT, MPI_SUM,
                   r->comm, &r->req[r->n_req++]);
    r->sent = from;
}

void reduce_begin(Reducer *r)
{
    r->sent = r->n_red; /* the extras, after the parameters, travel with the first bucket */
    r->n_req = 0;
    if (r->mode == VD_REDUCE_SHM) {
        r->tag++;
        r->summed = r->hi;
        r->n_creq = 0;
        r->checked = r->n_red;
        r->maxbits = 0;
        atomic_store_explicit(&r->progress[r->lrank * FLAG_STRIDE / 2], PROGRESS(r->tag, r->n_red),
                              memory_order_release);
    }
}

static void shm_ready(Reducer *r, size_t offset);

void reduce_ready(void *ctx, size_t offset)
{
    Reducer *r = ctx;
    if (r->mode == VD_REDUCE_SHM) {
        shm_ready(r, offset);
        return;
    }
    if (r->bucket == 0 || r->size == 1)
        return;
    if (r->sent - offset >= r->bucket)
        bucket_post(r, offset);
    int done; /* Open MPI moves non-blocking collectives on inside MPI calls */
    MPI_Testall(r->n_req, r->req, &done, MPI_STATUSES_IGNORE);
}

static void sum_slice(float *restrict out, float *const *g, int k, size_t lo, size_t n)
{
    const float *a = g[0] + lo, *b = k > 1 ? g[1] + lo : NULL;
    if (b)
        for (size_t i = 0; i < n; i++)
            out[i] = a[i] + b[i];
    else
        memcpy(out, a, n * sizeof(float));
    for (int q = 2; q < k; q++) {
        const float *c = g[q] + lo;
        for (size_t i = 0; i < n; i++)
            out[i] += c[i];
    }
}

/* ---- 16-bit floats for what crosses nodes (--compress) ------------------ */

/* float to bfloat16 and back: the top half of the bits, rounded to nearest
 * even; NaN stays NaN. */
static uint16_t to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((u >> 16) | 0x40);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1)) >> 16);
}
static float from_bf16(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
/* IEEE half precision, through the compiler's _Float16 (round to nearest
 * even; overflow to infinity, which the step's finite check then refuses). */
static uint16_t to_fp16(float f)
{
    _Float16 h = (_Float16)f;
    uint16_t u;
    memcpy(&u, &h, 2);
    return u;
}
static float from_fp16(uint16_t u)
{
    _Float16 h;
    memcpy(&h, &u, 2);
    return (float)h;
}
/* The MPI_Ops: inout[i] = in[i] + inout[i], added in float and rounded
 * back. Commutative, and every node receives the same result. */
static void bf16_sum(void *in, void *inout, int *len, MPI_Datatype *type)
{
    (void)type;
    const uint16_t *a = in;
    uint16_t *b = inout;
    for (int i = 0; i < *len; i++)
        b[i] = to_bf16(from_bf16(a[i]) + from_bf16(b[i]));
}
/* The three fp16 loops, twice: built for F16C, whose conversion
 * instructions are several times faster than the library's software ones,
 * and plain. Both round to nearest even, so nodes with and without F16C
 * get the same bits. */
#define FP16_LOOPS(suffix, attr)                                                                \
    attr static void fp16_add_##suffix(const uint16_t *a, uint16_t *b, size_t n)               \
    {                                                                                           \
        for (size_t i = 0; i < n; i++)                                                          \
            b[i] = to_fp16(from_fp16(a[i]) + from_fp16(b[i]));                                  \
    }                                                                                           \
    attr static void fp16_pack_##suffix(uint16_t *h, const float *x, float scale, size_t n)    \
    {                                                                                           \
        for (size_t i = 0; i < n; i++)                                                          \
            h[i] = to_fp16(x[i] * scale);                                                       \
    }                                                                                           \
    attr static void fp16_unpack_##suffix(float *x, const uint16_t *h, float unscale, size_t n) \
    {                                                                                           \
        for (size_t i = 0; i < n; i++)                                                          \
            x[i] = from_fp16(h[i]) * unscale;                                                   \
    }
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
FP16_LOOPS(f16c, __attribute__((target("avx,f16c"))))
#define HAVE_F16C_LOOPS 1
#endif
FP16_LOOPS(plain, )

static int use_f16c(void)
{
#ifdef HAVE_F16C_LOOPS
    static int known = -1;
    if (known < 0)
        known = __builtin_cpu_supports("f16c") && __builtin_cpu_supports("avx");
    return known;
#else
    return 0;
#endif
}
static void fp16_add(const uint16_t *a, uint16_t *b, size_t n)
{
#ifdef HAVE_F16C_LOOPS
    if (use_f16c()) {
        fp16_add_f16c(a, b, n);
        return;
    }
#endif
    fp16_add_plain(a, b, n);
}
static void fp16_pack(uint16_t *h, const float *x, float scale, size_t n)
{
#ifdef HAVE_F16C_LOOPS
    if (use_f16c()) {
        fp16_pack_f16c(h, x, scale, n);
        return;
    }
#endif
    fp16_pack_plain(h, x, scale, n);
}
static void fp16_unpack(float *x, const uint16_t *h, float unscale, size_t n)
{
#ifdef HAVE_F16C_LOOPS
    if (use_f16c()) {
        fp16_unpack_f16c(x, h, unscale, n);
        return;
    }
#endif
    fp16_unpack_plain(x, h, unscale, n);
}

static void fp16_sum(void *in, void *inout, int *len, MPI_Datatype *type)
{
    (void)type;
    fp16_add(in, inout, (size_t)*len);
}

long reduce_fp16_mismatches(void)
{
#ifdef HAVE_F16C_LOOPS
    if (!use_f16c())
        return -1;
    enum { N = 65536 };
    uint16_t *h = vd_calloc(N, sizeof *h), *a = vd_calloc(N, sizeof *a), *b = vd_calloc(N, sizeof *b);
    float *x = vd_calloc(N, sizeof *x), *y = vd_calloc(N, sizeof *y);
    long bad = 0;
    for (int i = 0; i < N; i++)
        h[i] = (uint16_t)i;
    fp16_unpack_f16c(x, h, 1.0f, N); /* every half */
    fp16_unpack_plain(y, h, 1.0f, N);
    for (int i = 0; i < N; i++)
        bad += memcmp(x + i, y + i, sizeof *x) != 0 && !(x[i] != x[i] && y[i] != y[i]);
    uint32_t s = 12345;
    for (int round = 0; round < 16; round++) {
        for (int i = 0; i < N; i++) { /* floats of every exponent, halves of every value */
            s = s * 1664525u + 1013904223u;
            uint32_t bits = s;
            memcpy(x + i, &bits, sizeof bits);
            if (!isfinite(x[i]))
                x[i] = 1.0f;
            s = s * 1664525u + 1013904223u;
            h[i] = (uint16_t)(s >> 16);
        }
        fp16_pack_f16c(a, x, 0.0078125f, N);
        fp16_pack_plain(b, x, 0.0078125f, N);
        bad += memcmp(a, b, sizeof *a * N) != 0;
        fp16_add_f16c(h, a, N);
        fp16_add_plain(h, b, N);
        for (int i = 0; i < N; i++) { /* NaN payloads aside: the finite check refuses them */
            int nan_a = (a[i] & 0x7c00) == 0x7c00 && (a[i] & 0x3ff),
                nan_b = (b[i] & 0x7c00) == 0x7c00 && (b[i] & 0x3ff);
            bad += a[i] != b[i] && !(nan_a && nan_b);
        }
    }
    vd_free(h);
    vd_free(a);
    vd_free(b);
    vd_free(x);
    vd_free(y);
    return bad;
#else
    return -1;
#endif
}

/* Starts the allreduce between nodes of sum[start, start + len): as float,
 * or its parameters as 16-bit floats and the extras as float. */
static void post_cross(Reducer *r, size_t start, size_t len)
{
    if (r->compress == VD_COMPRESS_NONE) {
        MPI_Iallreduce(MPI_IN_PLACE, r->sum + start, (int)len, MPI_FLOAT, MPI_SUM, r->cross,
                       &r->creq[r->n_creq++]);
        return;
    }
    size_t end = start + len, pend = end < r->n ? end : r->n;
    if (pend > start) {
        uint16_t *h = r->half + (start - r->lo);
        const float *x = r->sum + start;
        if (r->compress == VD_COMPRESS_FP16)
            fp16_pack(h, x, r->scale, pend - start);
        else
            for (size_t i = 0; i < pend - start; i++)
                h[i] = to_bf16(x[i]);
        MPI_Iallreduce(MPI_IN_PLACE, h, (int)(pend - start), MPI_UINT16_T, r->half_sum, r->cross,
                       &r->creq[r->n_creq++]);
    }
    if (end > pend)
        MPI_Iallreduce(MPI_IN_PLACE, r->sum + pend, (int)(end - pend), MPI_FLOAT, MPI_SUM,
                       r->cross, &r->creq[r->n_creq++]);
}

/* After the allreduces: the slice's parameters back to float. */
static void decode_cross(Reducer *r)
{
    size_t pend = r->hi < r->n ? r->hi : r->n;
    float *x = r->sum + r->lo;
    const uint16_t *h = r->half;
    if (r->compress == VD_COMPRESS_FP16 && pend > r->lo)
        fp16_unpack(x, h, r->unscale, pend - r->lo);
    else if (r->compress == VD_COMPRESS_BF16)
        for (size_t i = 0; r->lo + i < pend; i++)
            x[i] = from_bf16(h[i]);
}

/* Where every node rank's gradient is final this step: [from, n_red). A rank
 * still on the last step's tag has nothing final yet. */
static size_t node_final_from(const Reducer *r)
{
    size_t from = 0;
    for (int i = 0; i < r->lsize; i++) {
        int64_t p = atomic_load_explicit(&r->progress[i * FLAG_STRIDE / 2], memory_order_acquire);
        size_t at = (p >> 40) == (r->tag & TAG_MASK) ? (size_t)(p & (((int64_t)1 << 40) - 1)) : r->n_red;
        if (at > from)
            from = at;
    }
    return from;
}

/* Sums each chunk of this rank's slice that every node rank has finished,
 * from the top down (backward finishes the flat buffer's high offsets
 * first), and on more than one node starts its allreduce between nodes at
 * once, so that it travels while backward goes on. Returns 1 when the
 * whole slice is summed. */
static int sum_ready_chunks(Reducer *r)
{
    if (r->summed <= r->lo)
        return 1;
    size_t from = node_final_from(r);
    while (r->summed > r->lo) {
        size_t len = r->summed - r->lo < r->chunk ? r->summed - r->lo : r->chunk;
        size_t start = r->summed - len;
        if (start < from)
            break;
        sum_slice(r->sum + start, r->g, r->lsize, start, len);
        if (r->nodes > 1)
            post_cross(r, start, len);
        r->summed = start;
    }
    return r->summed <= r->lo;
}

/* The largest (bits & 0x7fffffff) of x (n): the bits of the largest |x[i]|,
 * since non-negative floats order as their bits; infinity and NaN lie above
 * every finite value. */
VD_VECTOR_CLONES
static uint32_t max_abs_bits(const float *x, size_t n)
{
    uint32_t top = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &x[i], sizeof bits);
        bits &= 0x7fffffffu;
        top = bits > top ? bits : top;
    }
    return top;
}

/* fuse: checks this rank's own gradient from offset up, while backward has
 * just written it and it is still in cache. */
static void check_own(Reducer *r, size_t offset)
{
    if (offset >= r->checked)
        return;
    uint32_t top = max_abs_bits(r->m->grads + offset, r->checked - offset);
    r->maxbits = top > r->maxbits ? top : r->maxbits;
    r->checked = offset;
}

static void shm_ready(Reducer *r, size_t offset)
{
    if (r->fuse) { /* nothing is summed before the verdict (fused_verdict) */
        check_own(r, offset);
        return;
    }
    atomic_store_explicit(&r->progress[r->lrank * FLAG_STRIDE / 2], PROGRESS(r->tag, offset),
                          memory_order_release);
    sum_ready_chunks(r);
    if (r->n_creq) {
        int done; /* Open MPI moves non-blocking collectives on inside MPI calls */
        MPI_Testall(r->n_creq, r->creq, &done, MPI_STATUSES_IGNORE);
    }
}

/* The sum of squares of x (n), in double, in order. */
static double sum_squares(const float *x, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += (double)x[i] * x[i];
    return s;
}

/* fuse, collective over the node: the step's verdict before anything is
 * summed. Each rank has the largest |g| of its own gradient (check_own). If
 * one is not finite, neither is the sum: 0. If all are finite and their sum
 * is far below FLT_MAX, no partial sum can overflow, so the sum is finite:
 * 1, and reduce_update sums the slice inside Adam's pass. Otherwise (or
 * with sumsq, which needs the sum first) this sums the whole slice now and
 * returns -1, for shm_finish's own verdict. Either way the summed extras
 * are in r->extra, added in node-rank order as sum_slice adds. */
static int fused_verdict(Reducer *r, double *sumsq)
{
    check_own(r, 0);
    /* next to the verdict's slot, which the fallback below rewrites while
     * other ranks may still be reading these */
    r->flags[r->lrank * FLAG_STRIDE + 1] = (int)r->maxbits;
    node_sync(r); /* every gradient is final, and every rank's maximum posted */
    int bad = 0;
    double bound = 0.0;
    for (int i = 0; i < r->lsize; i++) {
        uint32_t bits = (uint32_t)r->flags[i * FLAG_STRIDE + 1];
        float top;
        memcpy(&top, &bits, sizeof top);
        bad |= bits >= 0x7f800000u;
        bound += top;
    }
    sum_slice(r->extra, r->g, r->lsize, r->n, VD_GRAD_EXTRA);
    if (bad)
        return 0;
    if (!sumsq && bound <= FLT_MAX / 4) {
        r->fused = 1;
        return 1;
    }
    sum_slice(r->sum + r->lo, r->g, r->lsize, r->lo, r->hi - r->lo);
    r->summed = r->lo;
    return -1;
}

static int shm_finish(Reducer *r, double *sumsq)
{
    size_t len = r->hi - r->lo, hi = r->hi < r->n ? r->hi : r->n;
    atomic_store_explicit(&r->progress[r->lrank * FLAG_STRIDE / 2], PROGRESS(r->tag, 0),
                          memory_order_release);
    if (r->fuse) {
        int verdict = fused_verdict(r, sumsq);
        if (verdict >= 0)
            return verdict;
    }
    if (!sum_ready_chunks(r)) { /* the rest waits for the node's slower ranks */
        watch_wait("the node's other ranks' gradients");
        for (long spins = 0; !sum_ready_chunks(r); spins++) {
            if (r->n_creq) {
                int done;
                MPI_Testall(r->n_creq, r->creq, &done, MPI_STATUSES_IGNORE);
            }
            if (spins > 1000)
                sched_yield(); /* more ranks than cores: let the others run */
        }
        watch_done();
    }
    if (r->n_creq) {
        watch_wait("the cross-node gradient allreduce");
        MPI_Waitall(r->n_creq, r->creq, MPI_STATUSES_IGNORE);
        watch_done();
        decode_cross(r);
    }
    r->flags[r->lrank * FLAG_STRIDE] = !vd_all_finite(r->sum + r->lo, len);
    if (sumsq) /* this slice's, of the parameters' part */
        r->sumsq[r->lrank * FLAG_STRIDE / 2] = hi > r->lo ? sum_squares(r->sum + r->lo, hi - r->lo) : 0;
    node_sync(r); /* every slice is summed and judged */
    int bad = 0;
    for (int i = 0; i < r->lsize; i++)
        bad |= r->flags[i * FLAG_STRIDE];
    if (sumsq) { /* the slices' in node-rank order: the same double everywhere */
        *sumsq = 0.0;
        for (int i = 0; i < r->lsize; i++)
            *sumsq += r->sumsq[i * FLAG_STRIDE / 2];
    }
    memcpy(r->extra, r->sum + r->n, sizeof r->extra);
    return !bad;
}

int reduce_finish(Reducer *r, double *sumsq)
{
    if (r->mode == VD_REDUCE_SHM)
        return shm_finish(r, sumsq);
    if (r->size > 1) {
        if (r->sent > 0)
            bucket_post(r, 0);
        watch_wait("the gradient allreduce");
        MPI_Waitall(r->n_req, r->req, MPI_STATUSES_IGNORE);
        watch_done();
    }
    if (sumsq)
        *sumsq = sum_squares(r->m->grads, r->n);
    return vd_all_finite(r->m->grads, r->n_red);
}

void reduce_update(Reducer *r, const AdamConfig *c, long t, float grad_scale, int apply)
{
    Vae *m = r->m;
    if (r->mode == VD_REDUCE_MPI) {
        if (apply)
            adam_step(c, t, r->n, m->params, m->grads, m->adam_m, m->adam_v, grad_scale);
        return;
    }
    size_t hi = r->hi < r->n ? r->hi : r->n;
    if (apply && r->fused) { /* the sum of each block, in L1, goes straight into Adam */
        float block[FUSE_BLOCK];
        for (size_t at = r->lo; at < hi; at += FUSE_BLOCK) {
            size_t len = hi - at < FUSE_BLOCK ? hi - at : FUSE_BLOCK;
            sum_slice(block, r->g, r->lsize, at, len);
            adam_step(c, t, len, m->params + at, block, m->adam_m + at, m->adam_v + at,
                      grad_scale);
        }
    } else if (apply && hi > r->lo) {
        adam_step(c, t, hi - r->lo, m->params + r->lo, r->sum + r->lo, m->adam_m + r->lo,
                  m->adam_v + r->lo, grad_scale);
    }
    r->fused = 0;
    node_sync(r); /* every slice is updated, and every gradient read, before any rank goes on */
    memcpy(m->grads + r->n, r->extra, sizeof r->extra);
}

float *reduce_tail(Reducer *r) { return r->m->grads + r->n; }

const float *reduce_extras(const Reducer *r)
{
    return r->mode == VD_REDUCE_SHM ? r->extra : r->m->grads + r->n;
}

int reduce_fused(const Reducer *r) { return r->mode == VD_REDUCE_SHM && r->fuse; }

int reduce_mode(const Reducer *r) { return r->mode; }
int reduce_node_size(const Reducer *r) { return r->mode == VD_REDUCE_SHM ? r->lsize : 1; }
int reduce_nodes(const Reducer *r) { return r->mode == VD_REDUCE_SHM ? r->nodes : r->size; }
size_t reduce_shared_bytes(const Reducer *r) { return r->mode == VD_REDUCE_SHM ? r->bytes : 0; }
