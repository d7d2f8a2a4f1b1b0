/* reduce.c — which reduction a run uses, and the one interface in front of
 * them: reduce_mpi.c (the allreduce), reduce_shm.c (the node's shared
 * replica) and reduce_fused.c (its sum inside Adam's pass). See reduce.h. */
#include "reduce.h"

#include <math.h>

#include "reduce_fused.h"
#include "reduce_mpi.h"
#include "reduce_shm.h"
#include "util.h"

struct Reducer {
    Vae *m;
    int size;       /* ranks */
    ReduceShm *shm; /* one of the two */
    ReduceMpi *mpi;
};

Reducer *reduce_create(Vae *m, MPI_Comm comm, const ReduceConfig *c, const char **why)
{
    Reducer *r = vd_calloc(1, sizeof *r);
    MPI_Comm_size(comm, &r->size);
    r->m = m;
    *why = NULL;
    if (c->mode == VD_REDUCE_SHM && r->size > 1)
        r->shm = reduce_shm_create(m, comm, c, why);
    if (!r->shm)
        r->mpi = reduce_mpi_create(m, comm, c->bucket);
    return r;
}

void reduce_free(Reducer *r, int keep)
{
    if (!r)
        return;
    if (r->shm)
        reduce_shm_free(r->shm, keep);
    else
        reduce_mpi_free(r->mpi);
    vd_free(r);
}

float *reduce_tail(Reducer *r) { return r->m->grads + r->m->n_params; }

void reduce_begin(Reducer *r)
{
    if (r->mpi) {
        reduce_mpi_begin(r->mpi);
        return;
    }
    reduce_shm_begin(r->shm);
    if (r->shm->fuse)
        reduce_fused_begin(r->shm);
}

void reduce_ready(void *ctx, size_t offset)
{
    Reducer *r = ctx;
    if (r->mpi)
        reduce_mpi_ready(r->mpi, offset);
    else if (r->shm->fuse) /* nothing is summed before the verdict */
        reduce_fused_ready(r->shm, offset);
    else
        reduce_shm_ready(r->shm, offset);
}

int reduce_finish(Reducer *r, double *sumsq)
{
    if (r->mpi)
        return reduce_mpi_finish(r->mpi, sumsq);
    if (r->shm->fuse) {
        int verdict = reduce_fused_verdict(r->shm, sumsq);
        if (verdict >= 0)
            return verdict;
    }
    return reduce_shm_finish(r->shm, sumsq);
}

void reduce_update(Reducer *r, const AdamConfig *c, long t, float grad_scale, int apply)
{
    if (r->mpi) {
        reduce_mpi_update(r->mpi, c, t, grad_scale, apply);
        return;
    }
    int fused = apply && r->shm->fused; /* the node's ranks agree on both */
    if (fused) {
        reduce_fused_update(r->shm, c, t, grad_scale);
        apply = 0;
    }
    reduce_shm_update(r->shm, c, t, grad_scale, apply);
    if (r->shm->fused) /* every slice posted its sum of squares, or (not applied) none */
        r->shm->grad_sumsq = fused ? reduce_shm_node_sumsq(r->shm) : NAN;
}

double reduce_grad_sumsq(const Reducer *r)
{
    return r->mpi ? reduce_mpi_grad_sumsq(r->mpi) : r->shm->grad_sumsq;
}

const float *reduce_extras(const Reducer *r)
{
    return r->mpi ? reduce_mpi_extras(r->mpi) : reduce_shm_extras(r->shm);
}

int reduce_mode(const Reducer *r) { return r->shm ? VD_REDUCE_SHM : VD_REDUCE_MPI; }
int reduce_fused(const Reducer *r) { return r->shm && r->shm->fuse; }
int reduce_node_size(const Reducer *r) { return r->shm ? r->shm->lsize : 1; }
int reduce_nodes(const Reducer *r) { return r->shm ? r->shm->nodes : r->size; }
size_t reduce_shared_bytes(const Reducer *r) { return r->shm ? r->shm->bytes : 0; }
