/* share.c — the gradient's sum and the Adam step through the node's shared
 * memory. See share.h. */
#include "share.h"

#include <string.h>

#include "util.h"

#define ALIGN 16       /* floats: slices start on their own 64-byte line */
#define FLAG_STRIDE 16 /* ints: one verdict per cache line */

struct NodeShare {
    MPI_Win win;
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

/* Orders every rank's stores to the window before every rank's loads after. */
static void node_sync(NodeShare *s)
{
    MPI_Win_sync(s->win);
    MPI_Barrier(s->node);
    MPI_Win_sync(s->win);
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

    /* Every rank's segment starts with its gradient; node rank 0's goes on
     * with the parameters, the moments, the sum and the verdicts. */
    size_t g_bytes = padded(s->n_red) * sizeof(float);
    size_t bytes = g_bytes;
    if (s->lrank == 0)
        bytes += (3 * padded(s->n) + padded(s->n_red)) * sizeof(float) +
                 (size_t)s->lsize * FLAG_STRIDE * sizeof(int);
    MPI_Info info;
    MPI_Info_create(&info);
    MPI_Info_set(info, "alloc_shared_noncontig", "true"); /* each segment on its rank's pages */
    MPI_Comm_set_errhandler(s->node, MPI_ERRORS_RETURN);
    float *mine = NULL;
    int rc = MPI_Win_allocate_shared((MPI_Aint)bytes, sizeof(float), info, s->node, &mine, &s->win);
    MPI_Info_free(&info);
    MPI_Comm_set_errhandler(s->node, MPI_ERRORS_ARE_FATAL);
    int ok = rc == MPI_SUCCESS;
    MPI_Allreduce(MPI_IN_PLACE, &ok, 1, MPI_INT, MPI_MIN, comm);
    if (!ok) {
        if (rc == MPI_SUCCESS)
            MPI_Win_free(&s->win);
        *why = "no shared memory window could be allocated";
        free_comms(s);
        return NULL;
    }
    s->g = vd_calloc((size_t)s->lsize, sizeof *s->g);
    for (int i = 0; i < s->lsize; i++) {
        MPI_Aint size;
        int disp;
        MPI_Win_shared_query(s->win, i, &size, &disp, &s->g[i]);
    }
    s->params = s->g[0] + padded(s->n_red);
    s->adam_m = s->params + padded(s->n);
    s->adam_v = s->adam_m + padded(s->n);
    s->sum = s->adam_v + padded(s->n);
    s->flags = (int *)(s->sum + padded(s->n_red));

    MPI_Win_lock_all(MPI_MODE_NOCHECK, s->win);
    if (s->lrank == 0) {
        memcpy(s->params, m->params, s->n * sizeof(float));
        memcpy(s->adam_m, m->adam_m, s->n * sizeof(float));
        memcpy(s->adam_v, m->adam_v, s->n * sizeof(float));
    }
    vae_set_buffers(m, s->params, s->g[s->lrank], s->adam_m, s->adam_v, 0);
    node_sync(s);
    return s;
}

void share_free(NodeShare *s, Vae *m)
{
    if (!s)
        return;
    float *p = vd_calloc(s->n, sizeof(float)), *g = vd_calloc(s->n_red, sizeof(float));
    float *am = vd_calloc(s->n, sizeof(float)), *av = vd_calloc(s->n, sizeof(float));
    node_sync(s); /* no rank is still writing */
    memcpy(p, s->params, s->n * sizeof(float));
    memcpy(g, m->grads, s->n_red * sizeof(float));
    memcpy(am, s->adam_m, s->n * sizeof(float));
    memcpy(av, s->adam_v, s->n * sizeof(float));
    node_sync(s); /* nor reading, before the window goes */
    vae_set_buffers(m, p, g, am, av, 1);
    MPI_Win_unlock_all(s->win);
    MPI_Win_free(&s->win);
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

size_t share_bytes(const NodeShare *s)
{
    return ((size_t)s->lsize * padded(s->n_red) + 3 * padded(s->n) + padded(s->n_red)) *
               sizeof(float) + (size_t)s->lsize * FLAG_STRIDE * sizeof(int);
}

int share_node_size(const NodeShare *s) { return s->lsize; }
int share_nodes(const NodeShare *s) { return s->nodes; }
