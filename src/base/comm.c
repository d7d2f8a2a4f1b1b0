/* comm.c — error agreement and small collective helpers. See comm.h. */
#include "comm.h"

#include <stdint.h>
#include <stdio.h>

#include "watch.h"

static void abort_job(int code) { MPI_Abort(MPI_COMM_WORLD, code); }

void comm_init(void)
{
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    vd_set_process(rank, abort_job);
}

int vd_error_agree(VdError *err, MPI_Comm comm)
{
    int rank, size;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    int mine = err->code != VD_OK ? rank : size, first;
    watch_wait("the agreement on errors");
    MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, comm);
    watch_done();
    if (first == size)
        return VD_OK;
    int code = err->code;
    MPI_Bcast(&code, 1, MPI_INT, first, comm);
    if (rank == first && !err->reported) { /* once, however often it is agreed on */
        fprintf(stderr, "vae-dist: %s\n", err->msg);
        fflush(stderr);
    } else if (rank != first && err->code == VD_OK) {
        snprintf(err->msg, sizeof err->msg, "error reported by rank %d", first);
    }
    err->code = code;
    err->reported = 1;
    return code;
}

int comm_node_ranks(MPI_Comm comm)
{
    MPI_Comm node;
    int local = 1;
    MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
    MPI_Comm_size(node, &local);
    MPI_Comm_free(&node);
    return local;
}

int comm_same_bits(const float *x, size_t n, MPI_Comm comm)
{
    uint64_t h = vd_checksum_f32(x, n), pair[2] = {h, ~h}, out[2];
    watch_wait("the check that replicas agree");
    MPI_Allreduce(pair, out, 2, MPI_UINT64_T, MPI_MAX, comm);
    watch_done();
    return out[0] == h && ~out[1] == h;
}
