/* reduce_mpi.h — --reduce mpi: every rank keeps its own copy of the
 * parameters and Adam moments and runs the whole Adam step, and the flat
 * gradient buffer (with its tail, reduce.h) is summed by MPI_Iallreduce in
 * buckets. Backward completes the buffer from its end, so each bucket is
 * posted as soon as backward has passed it and moved on with MPI_Testall
 * between layers; the last, holding the encoder's gradient, goes after
 * backward. With bucket 0 the whole buffer is one allreduce after
 * backward. On one rank nothing is communicated. This is also what
 * --reduce shm falls back to (reduce.h). The order of calls is reduce.h's. */
#ifndef VD_REDUCE_MPI_H
#define VD_REDUCE_MPI_H

#include <mpi.h>
#include <stddef.h>

#include "model.h"
#include "optim.h"
#include "reduce.h"

typedef struct ReduceMpi ReduceMpi;

/* Local. Works on m's own buffers, its gradient with the tail (reduce.h).
 * bucket: floats per allreduce posted during backward (0: one after it). */
ReduceMpi *reduce_mpi_create(Vae *m, MPI_Comm comm, size_t bucket);
void reduce_mpi_free(ReduceMpi *r);

/* Local. A step starts: nothing is posted. */
void reduce_mpi_begin(ReduceMpi *r);

/* Local, though it posts non-blocking allreduces, which every rank posts
 * in the same order (backward passes the same offsets on every rank): the
 * buffer from offset up is final, and every bucket of it is posted. */
void reduce_mpi_ready(ReduceMpi *r, size_t offset);

/* Collective: posts the rest, waits for every bucket; 1 if the whole
 * summed buffer is finite. With sumsq, the sum of squares of the summed
 * gradient (without the tail), in order. */
int reduce_mpi_finish(ReduceMpi *r, double *sumsq);

/* Local, after reduce_mpi_finish: the summed gradient's sum of squares. */
double reduce_mpi_grad_sumsq(const ReduceMpi *r);

/* Local: if apply, Adam step t on all the parameters. */
void reduce_mpi_update(ReduceMpi *r, const AdamConfig *c, long t, float grad_scale, int apply);

/* Local: the summed tail, after reduce_mpi_finish. */
const float *reduce_mpi_extras(const ReduceMpi *r);

#endif
