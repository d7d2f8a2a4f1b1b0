/* feed_resident.c — each rank's block of rows in memory, and the epoch's
 * rows exchanged an epoch ahead. See feed_resident.h. */
#include "feed_resident.h"

#include <stdlib.h>
#include <string.h>

#include "h5util.h"
#include "rng.h"
#include "shard.h"
#include "watch.h"

struct FeedResident {
    FeedConfig c;
    int rank, size, B;
    size_t row_bytes;
    int64_t n_rows, need;        /* rows in the dataset; rows this rank trains on per epoch */
    double load;                 /* seconds reading the block */
    int64_t b0, nb;              /* this rank's block of rows */
    char *block;                 /* (nb, row_bytes) */
    int32_t *block_lab;          /* (nb) */
    int64_t *perm;               /* (n_rows) */
    int64_t *rows[2], *slot[2];  /* (need) per epoch buffer: dataset row, where it is */
    char *recv[2];               /* (need, row_bytes) rows from other ranks */
    int32_t *recv_lab[2];
    char *send;                  /* (nb, row_bytes) */
    int32_t *send_lab;
    int *counts;                 /* 4 size: send counts, send displs, recv counts, recv displs */
    MPI_Datatype row_type;
    MPI_Request req[2];
    int64_t pending;             /* epoch whose exchange is posted into buf, or -1 */
    int cur, pending_buf;        /* buffers of the current and the posted epoch */
};

static size_t row_bytes(const FeedConfig *c)
{
    return (size_t)c->images->row_len * (c->images->is_u8 ? 1 : sizeof(float));
}

double feed_resident_need(const FeedConfig *c)
{
    int rank, size;
    MPI_Comm_rank(c->comm, &rank);
    MPI_Comm_size(c->comm, &size);
    double need = (double)(c->steps_per_epoch * shard_local_batch(c->global_batch, rank, size));
    double rb = (double)row_bytes(c) + 4, blk = (double)(c->images->n_rows / size + 1);
    return 2 * blk * rb + 2 * need * (rb + 16) + 8.0 * (double)c->images->n_rows;
}

int64_t feed_resident_bytes(const FeedResident *f)
{
    size_t rb = f->row_bytes + 4;
    return (int64_t)((size_t)f->nb * 2 * rb + (size_t)f->need * 2 * (rb + 16) +
                     (size_t)f->n_rows * 8);
}

double feed_resident_load_seconds(const FeedResident *f) { return f->load; }

/* The rank whose block (shard_range) holds row. */
static int owner(int64_t row, int64_t n, int size)
{
    int64_t base = n / size, extra = n % size, big = extra * (base + 1);
    return row < big ? (int)(row / (base + 1)) : (int)(extra + (row - big) / base);
}

/* Reads rows [first, first + n) of r into raw (and lab): independent reads
 * through the H5Rows, or, collectively, by reopening the file with MPI-IO. */
static int read_range(const FeedResident *f, H5Rows *r, int64_t first, int64_t n, void *out,
                      int collective, VdError *err)
{
    if (!collective) {
        int64_t *ids = malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
        if (!ids)
            return vd_fail(err, VD_EX_IOERR, "out of memory listing %lld rows", (long long)n);
        for (int64_t i = 0; i < n; i++)
            ids[i] = first + i;
        int rc = h5rows_read(r, ids, n, out, err);
        free(ids);
        return rc;
    }
    char path[VD_PATH_MAX], name[512];
    if (H5Fget_name(r->file, path, sizeof path) < 0 || H5Iget_name(r->dset, name, sizeof name) < 0)
        return vd_fail(err, VD_EX_IOERR, "%s: cannot name the dataset", r->where);
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS), dxpl = H5Pcreate(H5P_DATASET_XFER);
    H5Pset_fapl_mpio(fapl, f->c.comm, MPI_INFO_NULL);
    H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE);
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    hid_t dset = file >= 0 ? H5Dopen2(file, name, H5P_DEFAULT) : H5I_INVALID_HID;
    hid_t fspace = dset >= 0 ? H5Dget_space(dset) : H5I_INVALID_HID;
    hsize_t start[VD_MAX_DIMS] = {0}, cnt[VD_MAX_DIMS];
    for (int i = 0; i < r->n_dims; i++)
        cnt[i] = (hsize_t)r->dims[i];
    start[0] = (hsize_t)first;
    cnt[0] = (hsize_t)n;
    hid_t mspace = H5Screate_simple(r->n_dims, cnt, NULL);
    hid_t mtype = r->is_label ? H5T_NATIVE_INT32 : r->is_u8 ? H5T_NATIVE_UINT8 : H5T_NATIVE_FLOAT;
    herr_t rc = -1;
    if (fspace >= 0) {
        if (n == 0) {
            H5Sselect_none(fspace);
            H5Sselect_none(mspace);
        } else {
            H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, cnt, NULL);
        }
        rc = H5Dread(dset, mtype, mspace, fspace, dxpl, out); /* every rank calls it */
    }
    H5Sclose(mspace);
    if (fspace >= 0)
        H5Sclose(fspace);
    if (dset >= 0)
        H5Dclose(dset);
    if (file >= 0)
        H5Fclose(file);
    H5Pclose(fapl);
    H5Pclose(dxpl);
    return rc < 0 ? vd_fail(err, VD_EX_IOERR, "%s: collective read of rows %lld..%lld failed",
                            r->where, (long long)first, (long long)(first + n - 1))
                  : VD_OK;
}

FeedResident *feed_resident_open(const FeedConfig *c, VdError *err)
{
    FeedResident *f = vd_calloc(1, sizeof *f);
    f->c = *c;
    MPI_Comm_rank(c->comm, &f->rank);
    MPI_Comm_size(c->comm, &f->size);
    f->B = shard_local_batch(c->global_batch, f->rank, f->size);
    f->row_bytes = row_bytes(c);
    f->n_rows = c->images->n_rows;
    f->need = c->steps_per_epoch * f->B;
    int64_t b1;
    shard_range(f->n_rows, f->rank, f->size, &f->b0, &b1);
    f->nb = b1 - f->b0;
    size_t rb = f->row_bytes;
    f->block = vd_calloc((size_t)f->nb + 1, rb);
    f->block_lab = vd_calloc((size_t)f->nb + 1, sizeof(int32_t));
    f->perm = vd_calloc((size_t)f->n_rows, sizeof(int64_t));
    for (int b = 0; b < 2; b++) {
        f->rows[b] = vd_calloc((size_t)f->need, sizeof(int64_t));
        f->slot[b] = vd_calloc((size_t)f->need, sizeof(int64_t));
        if (f->size > 1) {
            f->recv[b] = vd_calloc((size_t)f->need + 1, rb);
            f->recv_lab[b] = vd_calloc((size_t)f->need + 1, sizeof(int32_t));
        }
    }
    if (f->size > 1) {
        f->send = vd_calloc((size_t)f->nb + 1, rb);
        f->send_lab = vd_calloc((size_t)f->nb + 1, sizeof(int32_t));
    }
    f->counts = vd_calloc(4 * (size_t)f->size, sizeof(int));
    MPI_Type_contiguous((int)rb, MPI_BYTE, &f->row_type);
    MPI_Type_commit(&f->row_type);
    f->req[0] = f->req[1] = MPI_REQUEST_NULL;
    f->pending = -1;

    double t0 = vd_now();
    int rc = read_range(f, c->images, f->b0, f->nb, f->block, c->collective, err);
    /* collective reads are made by every rank, whatever its first one gave */
    if (c->labels && (rc == VD_OK || c->collective)) {
        VdError lerr = {0};
        int lrc = read_range(f, c->labels, f->b0, f->nb, f->block_lab, c->collective, &lerr);
        if (rc == VD_OK && lrc != VD_OK) {
            rc = lrc;
            *err = lerr;
        }
    }
    if (rc == VD_OK) {
        int64_t *ids = vd_calloc((size_t)f->nb + 1, sizeof(int64_t));
        for (int64_t i = 0; i < f->nb; i++)
            ids[i] = f->b0 + i;
        rc = h5rows_check(c->images, c->labels, c->check_unit, c->n_classes, f->block,
                        f->block_lab, ids, f->nb, err);
        vd_free(ids);
    }
    f->load = vd_now() - t0;
    (void)rc; /* the error is in err */
    return f;
}

/* Plans epoch's rows into buffer b and posts the exchange that brings the
 * rows held by other ranks. */
static void resident_post(FeedResident *f, int64_t epoch, int b)
{
    const FeedConfig *c = &f->c;
    int p = f->size, me = f->rank;
    Rng order = rng_for(c->seed, VD_RNG_ORDER, 0);
    rng_permutation(&order, (uint32_t)epoch, f->perm, f->n_rows);
    shard_epoch_rows(f->perm, c->steps_per_epoch, c->global_batch, me, p, f->rows[b]);
    if (p == 1) {
        for (int64_t i = 0; i < f->need; i++)
            f->slot[b][i] = f->rows[b][i] - f->b0;
        f->pending = epoch;
        f->pending_buf = b;
        return;
    }
    int *scount = f->counts, *sdispl = scount + p, *rcount = sdispl + p, *rdispl = rcount + p;
    memset(f->counts, 0, 4 * (size_t)p * sizeof(int));
    /* receive side: my rows held elsewhere, grouped by owner in training order */
    for (int64_t i = 0; i < f->need; i++) {
        int o = owner(f->rows[b][i], f->n_rows, p);
        if (o != me)
            rcount[o]++;
    }
    for (int q = 1; q < p; q++)
        rdispl[q] = rdispl[q - 1] + rcount[q - 1];
    int *fill = sdispl; /* borrowed as a cursor, rebuilt below */
    memcpy(fill, rdispl, sizeof(int) * (size_t)p);
    for (int64_t i = 0; i < f->need; i++) {
        int64_t row = f->rows[b][i];
        int o = owner(row, f->n_rows, p);
        f->slot[b][i] = o == me ? row - f->b0 : f->nb + fill[o]++;
    }
    /* send side: for each rank q in q's training order, the rows of my block it
     * trains on (every rank sees the same permutation, so no request is sent) */
    int64_t n_sent = 0;
    for (int q = 0; q < p; q++) {
        int Bq = shard_local_batch(c->global_batch, q, p);
        int64_t off = shard_local_offset(c->global_batch, q, p);
        sdispl[q] = (int)n_sent;
        scount[q] = 0;
        if (q == me)
            continue;
        for (int64_t s = 0; s < c->steps_per_epoch; s++)
            for (int k = 0; k < Bq; k++) {
                int64_t row = f->perm[s * c->global_batch + off + k];
                if (row >= f->b0 && row < f->b0 + f->nb) {
                    memcpy(f->send + (size_t)n_sent * f->row_bytes,
                           f->block + (size_t)(row - f->b0) * f->row_bytes, f->row_bytes);
                    f->send_lab[n_sent] = f->block_lab[row - f->b0];
                    n_sent++;
                    scount[q]++;
                }
            }
    }
    MPI_Ialltoallv(f->send, scount, sdispl, f->row_type, f->recv[b], rcount, rdispl, f->row_type,
                   c->comm, &f->req[0]);
    if (c->labels)
        MPI_Ialltoallv(f->send_lab, scount, sdispl, MPI_INT32_T, f->recv_lab[b], rcount, rdispl,
                       MPI_INT32_T, c->comm, &f->req[1]);
    f->pending = epoch;
    f->pending_buf = b;
}

void feed_resident_epoch(FeedResident *f, int64_t epoch)
{
    watch_wait("the exchange of training rows");
    if (f->pending != epoch) { /* the first epoch, or resumed: nothing read ahead */
        MPI_Waitall(2, f->req, MPI_STATUSES_IGNORE);
        resident_post(f, epoch, 0);
    }
    MPI_Waitall(2, f->req, MPI_STATUSES_IGNORE);
    watch_done();
    f->cur = f->pending_buf;
    if (epoch + 1 < f->c.epochs)
        resident_post(f, epoch + 1, f->cur ^ 1);
}

void feed_resident_batch(FeedResident *f, int64_t s, float *x, int32_t *y, int64_t *rows)
{
    int flag; /* lets the exchange in flight move on between steps */
    if (f->req[0] != MPI_REQUEST_NULL)
        MPI_Testall(2, f->req, &flag, MPI_STATUSES_IGNORE);
    int b = f->cur;
    for (int i = 0; i < f->B; i++) {
        int64_t pos = s * f->B + i, sl = f->slot[b][pos];
        const char *src = sl < f->nb ? f->block + (size_t)sl * f->row_bytes
                                     : f->recv[b] + (size_t)(sl - f->nb) * f->row_bytes;
        h5rows_to_float(f->c.images, src, x + (size_t)i * f->c.images->row_len);
        if (y)
            y[i] = sl < f->nb ? f->block_lab[sl] : f->recv_lab[b][sl - f->nb];
        rows[i] = f->rows[b][pos];
    }
}

void feed_resident_close(FeedResident *f)
{
    if (!f)
        return;
    if (f->req[0] != MPI_REQUEST_NULL || f->req[1] != MPI_REQUEST_NULL)
        MPI_Waitall(2, f->req, MPI_STATUSES_IGNORE);
    MPI_Type_free(&f->row_type);
    vd_free(f->block);
    vd_free(f->block_lab);
    vd_free(f->perm);
    for (int b = 0; b < 2; b++) {
        vd_free(f->rows[b]);
        vd_free(f->slot[b]);
        vd_free(f->recv[b]);
        vd_free(f->recv_lab[b]);
    }
    vd_free(f->send);
    vd_free(f->send_lab);
    vd_free(f->counts);
    vd_free(f);
}
