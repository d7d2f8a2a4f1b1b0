/* reduce_mpi.c — the gradient summed by MPI_Allreduce in buckets, and
 * the whole Adam step on every rank. See reduce_mpi.h. */
#include "reduce_mpi.h"

#include "util.h"
#include "watch.h"

struct ReduceMpi {
    Vae *m;
    MPI_Comm comm;
    int size;
    size_t n, n_red;  /* parameters; parameters + tail */
    size_t bucket;    /* floats per bucket posted during backward; 0: one allreduce after */
    size_t sent;      /* grads[sent ..) are posted */
    int n_req, max_req;
    MPI_Request *req; /* (max_req): every bucket but the last holds >= bucket floats */
    double grad_sumsq; /* the summed gradient's sum of squares, after reduce_mpi_finish */
};

ReduceMpi *reduce_mpi_create(Vae *m, MPI_Comm comm, size_t bucket)
{
    ReduceMpi *r = vd_calloc(1, sizeof *r);
    r->m = m;
    r->comm = comm;
    MPI_Comm_size(comm, &r->size);
    r->n = m->n_params;
    r->n_red = m->n_params + VD_GRAD_EXTRA;
    r->bucket = bucket;
    r->max_req = (int)(bucket > 0 ? r->n_red / bucket + 1 : 1);
    r->req = vd_calloc((size_t)r->max_req, sizeof *r->req);
    return r;
}

void reduce_mpi_free(ReduceMpi *r)
{
    vd_free(r->req);
    vd_free(r);
}

/* Starts the allreduce of grads[from, sent). */
static void post_bucket(ReduceMpi *r, size_t from)
{
    if (r->n_req == r->max_req)
        VD_ABORT("more gradient buckets than the buffer holds");
    MPI_Iallreduce(MPI_IN_PLACE, r->m->grads + from, (int)(r->sent - from), MPI_FLOAT, MPI_SUM,
                   r->comm, &r->req[r->n_req++]);
    r->sent = from;
}

void reduce_mpi_begin(ReduceMpi *r)
{
    r->sent = r->n_red; /* the tail, after the parameters, travels with the first bucket */
    r->n_req = 0;
}

void reduce_mpi_ready(ReduceMpi *r, size_t offset)
{
    if (r->bucket == 0 || r->size == 1)
        return;
    if (r->sent - offset >= r->bucket)
        post_bucket(r, offset);
    int done; /* Open MPI moves non-blocking collectives on inside MPI calls */
    MPI_Testall(r->n_req, r->req, &done, MPI_STATUSES_IGNORE);
}

int reduce_mpi_finish(ReduceMpi *r, double *sumsq)
{
    if (r->size > 1) {
        if (r->sent > 0)
            post_bucket(r, 0);
        watch_wait("the gradient allreduce");
        MPI_Waitall(r->n_req, r->req, MPI_STATUSES_IGNORE);
        watch_done();
    }
    r->grad_sumsq = vd_sum_squares(r->m->grads, r->n); /* for clipping, and reported */
    if (sumsq)
        *sumsq = r->grad_sumsq;
    return vd_all_finite(r->m->grads, r->n_red);
}

void reduce_mpi_update(ReduceMpi *r, const AdamConfig *c, long t, float grad_scale, int apply)
{
    if (apply)
        adam_step(c, t, r->n, r->m->params, r->m->grads, r->m->adam_m, r->m->adam_v, grad_scale);
}

const float *reduce_mpi_extras(const ReduceMpi *r) { return r->m->grads + r->n; }

double reduce_mpi_grad_sumsq(const ReduceMpi *r) { return r->grad_sumsq; }
