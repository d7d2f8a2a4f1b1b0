/* reduce_shm.c — the node's shared replica: slices summed during backward,
 * allreduced between nodes, and Adam on each rank's slice. See
 * reduce_shm.h. */
#define _POSIX_C_SOURCE 200809L
#include "reduce_shm.h"

#include <sched.h>
#include <string.h>

#include "half.h"
#include "shm_segment.h"
#include "util.h"
#include "watch.h"

#define ALIGN 16 /* floats: slices start on their own 64-byte line */
#define STRIDE VD_SHM_FLAG_STRIDE
#define TAG_MASK 0x7fffff /* 23 bits of the step count: ranks are at most a step apart */
#define PROGRESS(tag, offset) ((int64_t)((tag) & TAG_MASK) << 40 | (int64_t)(offset))

static size_t padded(size_t n) { return (n + ALIGN - 1) / ALIGN * ALIGN; }

void reduce_shm_sum(const ReduceShm *r, float *restrict out, size_t lo, size_t n)
{
    float *const *g = r->g;
    int k = r->lsize;
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

/* ---- the segment ---------------------------------------------------------- */

static void free_comms(ReduceShm *r)
{
    if (r->cross != MPI_COMM_NULL)
        MPI_Comm_free(&r->cross);
    if (r->node != MPI_COMM_NULL)
        MPI_Comm_free(&r->node);
    vd_free(r->g);
    r->g = NULL;
}

/* Collective over comm. The node's segment, [gradient of node rank 0 | ...
 * | of rank k-1 | parameters | m | v | sum | verdicts], of which this rank
 * reserves its own gradient buffer and its slices of the parameters, m, v
 * and the sum. 0, or -1 on every rank of comm with *why set. */
static int map_segment(ReduceShm *r, MPI_Comm comm, const char **why)
{
    size_t gs = padded(r->n_red) * sizeof(float), ps = padded(r->n) * sizeof(float);
    size_t slice = (r->hi - r->lo) * sizeof(float), lo = r->lo * sizeof(float);
    size_t pslice = r->lo < r->n ? ((r->hi < r->n ? r->hi : r->n) - r->lo) * sizeof(float) : 0;
    size_t shared = (size_t)r->lsize * gs;
    ShmRange own[5] = {{(size_t)r->lrank * gs, gs},
                       {shared + lo, pslice},
                       {shared + ps + lo, pslice},
                       {shared + 2 * ps + lo, pslice},
                       {shared + 3 * ps + lo, slice}};
    r->bytes = (size_t)(r->lsize + 1) * gs + 3 * ps + 3 * (size_t)r->lsize * STRIDE * sizeof(int);
    r->base = shm_segment_map(r->node, comm, &r->bytes, own, 5, why);
    if (!r->base)
        return -1;
    for (int i = 0; i < r->lsize; i++)
        r->g[i] = (float *)r->base + (size_t)i * padded(r->n_red);
    r->params = r->g[r->lsize - 1] + padded(r->n_red);
    r->adam_m = r->params + padded(r->n);
    r->adam_v = r->adam_m + padded(r->n);
    r->sum = r->adam_v + padded(r->n);
    r->flags = (int *)(r->sum + padded(r->n_red));
    r->sumsq = (double *)(r->flags + (size_t)r->lsize * STRIDE);
    r->progress = (_Atomic int64_t *)(r->sumsq + (size_t)r->lsize * STRIDE / 2);
    return 0;
}

/* Collective over comm: the node communicators and this rank's slice; -1
 * on every rank when the nodes hold different numbers of ranks. */
static int split_nodes(ReduceShm *r, MPI_Comm comm, MPI_Comm node, const char **why)
{
    int rank;
    MPI_Comm_rank(comm, &rank);
    if (node == MPI_COMM_NULL)
        MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &r->node);
    else
        MPI_Comm_dup(node, &r->node);
    MPI_Comm_rank(r->node, &r->lrank);
    MPI_Comm_size(r->node, &r->lsize);
    int sizes[2] = {r->lsize, -r->lsize};
    MPI_Allreduce(MPI_IN_PLACE, sizes, 2, MPI_INT, MPI_MAX, comm);
    if (sizes[0] != -sizes[1]) {
        *why = "the nodes hold different numbers of ranks";
        return -1;
    }
    MPI_Comm_split(comm, r->lrank, rank, &r->cross);
    MPI_Comm_size(r->cross, &r->nodes);
    size_t step = padded((r->n_red + (size_t)r->lsize - 1) / (size_t)r->lsize);
    r->lo = (size_t)r->lrank * step < r->n_red ? (size_t)r->lrank * step : r->n_red;
    r->hi = r->lo + step < r->n_red ? r->lo + step : r->n_red;
    r->g = vd_calloc((size_t)r->lsize, sizeof *r->g);
    return 0;
}

ReduceShm *reduce_shm_create(Vae *m, MPI_Comm comm, const ReduceConfig *c, const char **why)
{
    ReduceShm *r = vd_calloc(1, sizeof *r);
    r->m = m;
    r->n = m->n_params;
    r->n_red = m->n_params + VD_GRAD_EXTRA;
    r->node = r->cross = MPI_COMM_NULL;
    if (split_nodes(r, comm, c->node, why) != 0 || map_segment(r, comm, why) != 0) {
        free_comms(r);
        vd_free(r);
        return NULL;
    }
    r->chunk = c->bucket > 0 ? c->bucket : (r->hi > r->lo ? r->hi - r->lo : 1);
    r->creq = vd_calloc((r->hi - r->lo) / r->chunk + 3, sizeof *r->creq);
    r->compress = r->nodes > 1 ? c->compress : VD_COMPRESS_NONE;
    r->scale = r->compress == VD_COMPRESS_FP16 ? c->scale : 1.0f;
    r->unscale = 1.0f / r->scale;
    if (r->compress != VD_COMPRESS_NONE) {
        r->half = vd_calloc(r->hi - r->lo + 1, sizeof *r->half);
        half_sum_op(r->compress, &r->half_sum);
    }
    r->fuse = r->nodes == 1 && c->fuse; /* else the slice's sum must cross nodes before Adam */
    if (r->lrank == 0) {
        memcpy(r->params, m->params, r->n * sizeof(float));
        memcpy(r->adam_m, m->adam_m, r->n * sizeof(float));
        memcpy(r->adam_v, m->adam_v, r->n * sizeof(float));
    }
    vae_set_buffers(m, r->params, r->g[r->lrank], r->adam_m, r->adam_v, 0);
    shm_segment_sync(r->node);
    return r;
}

void reduce_shm_free(ReduceShm *r, int keep)
{
    Vae *m = r->m;
    float *p = NULL, *g = NULL, *am = NULL, *av = NULL;
    shm_segment_sync(r->node); /* no rank is still writing */
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
    shm_segment_sync(r->node); /* nor reading, before the segment goes */
    vae_set_buffers(m, p, g, am, av, 1);
    shm_segment_unmap(r->base, r->bytes);
    free_comms(r);
    vd_free(r->creq);
    vd_free(r->half);
    if (r->half)
        MPI_Op_free(&r->half_sum);
    vd_free(r);
}

/* ---- a step --------------------------------------------------------------- */

void reduce_shm_begin(ReduceShm *r)
{
    r->tag++;
    r->summed = r->hi;
    r->n_creq = 0;
    atomic_store_explicit(&r->progress[r->lrank * STRIDE / 2], PROGRESS(r->tag, r->n_red),
                          memory_order_release);
}

/* Starts the allreduce between nodes of sum[start, start + len): as float,
 * or its parameters as 16-bit floats and the tail as float. */
static void post_cross(ReduceShm *r, size_t start, size_t len)
{
    if (r->compress == VD_COMPRESS_NONE) {
        MPI_Iallreduce(MPI_IN_PLACE, r->sum + start, (int)len, MPI_FLOAT, MPI_SUM, r->cross,
                       &r->creq[r->n_creq++]);
        return;
    }
    size_t end = start + len, pend = end < r->n ? end : r->n;
    if (pend > start) {
        uint16_t *h = r->half + (start - r->lo);
        half_pack(r->compress, h, r->sum + start, r->scale, pend - start);
        MPI_Iallreduce(MPI_IN_PLACE, h, (int)(pend - start), MPI_UINT16_T, r->half_sum, r->cross,
                       &r->creq[r->n_creq++]);
    }
    if (end > pend)
        MPI_Iallreduce(MPI_IN_PLACE, r->sum + pend, (int)(end - pend), MPI_FLOAT, MPI_SUM,
                       r->cross, &r->creq[r->n_creq++]);
}

/* After the allreduces: the slice's parameters back to float. */
static void decode_cross(ReduceShm *r)
{
    size_t pend = r->hi < r->n ? r->hi : r->n;
    if (r->compress != VD_COMPRESS_NONE && pend > r->lo)
        half_unpack(r->compress, r->sum + r->lo, r->half, r->unscale, pend - r->lo);
}

/* Where every node rank's gradient is final this step: [from, n_red). A rank
 * still on the last step's tag has nothing final yet. */
static size_t node_final_from(const ReduceShm *r)
{
    size_t from = 0;
    for (int i = 0; i < r->lsize; i++) {
        int64_t p = atomic_load_explicit(&r->progress[i * STRIDE / 2], memory_order_acquire);
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
static int sum_ready_chunks(ReduceShm *r)
{
    if (r->summed <= r->lo)
        return 1;
    size_t from = node_final_from(r);
    while (r->summed > r->lo) {
        size_t len = r->summed - r->lo < r->chunk ? r->summed - r->lo : r->chunk;
        size_t start = r->summed - len;
        if (start < from)
            break;
        reduce_shm_sum(r, r->sum + start, start, len);
        if (r->nodes > 1)
            post_cross(r, start, len);
        r->summed = start;
    }
    return r->summed <= r->lo;
}

void reduce_shm_ready(ReduceShm *r, size_t offset)
{
    atomic_store_explicit(&r->progress[r->lrank * STRIDE / 2], PROGRESS(r->tag, offset),
                          memory_order_release);
    sum_ready_chunks(r);
    if (r->n_creq) {
        int done; /* Open MPI moves non-blocking collectives on inside MPI calls */
        MPI_Testall(r->n_creq, r->creq, &done, MPI_STATUSES_IGNORE);
    }
}

/* The rest of the slice, once the node's slower ranks are through
 * backward, and the allreduces between nodes. */
static void sum_rest(ReduceShm *r)
{
    if (!sum_ready_chunks(r)) {
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
}

double reduce_shm_node_sumsq(const ReduceShm *r)
{
    double s = 0.0; /* the slices' in node-rank order: the same double everywhere */
    for (int i = 0; i < r->lsize; i++)
        s += r->sumsq[i * STRIDE / 2];
    return s;
}

int reduce_shm_finish(ReduceShm *r, double *sumsq)
{
    size_t len = r->hi - r->lo, hi = r->hi < r->n ? r->hi : r->n;
    atomic_store_explicit(&r->progress[r->lrank * STRIDE / 2], PROGRESS(r->tag, 0),
                          memory_order_release);
    sum_rest(r);
    r->flags[r->lrank * STRIDE] = !vd_all_finite(r->sum + r->lo, len);
    /* this slice's, of the parameters' part: for clipping, and reported */
    r->sumsq[r->lrank * STRIDE / 2] = hi > r->lo ? vd_sum_squares(r->sum + r->lo, hi - r->lo) : 0;
    shm_segment_sync(r->node); /* every slice is summed and judged */
    int bad = 0;
    for (int i = 0; i < r->lsize; i++)
        bad |= r->flags[i * STRIDE];
    r->grad_sumsq = reduce_shm_node_sumsq(r);
    if (sumsq)
        *sumsq = r->grad_sumsq;
    memcpy(r->extra, r->sum + r->n, sizeof r->extra);
    return !bad;
}

void reduce_shm_update(ReduceShm *r, const AdamConfig *c, long t, float grad_scale, int apply)
{
    Vae *m = r->m;
    size_t hi = r->hi < r->n ? r->hi : r->n;
    if (apply && hi > r->lo)
        adam_step(c, t, hi - r->lo, m->params + r->lo, r->sum + r->lo, m->adam_m + r->lo,
                  m->adam_v + r->lo, grad_scale);
    /* every slice is updated, and every gradient read, before any rank goes on */
    shm_segment_sync(r->node);
    memcpy(m->grads + r->n, r->extra, sizeof r->extra);
}

const float *reduce_shm_extras(const ReduceShm *r) { return r->extra; }
