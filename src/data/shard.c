/* shard.c — which rows each rank trains on, and a rank's rows in memory.
 * See shard.h. */
#include "shard.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"

/* ---- sharding --------------------------------------------------------- */

int64_t shard_steps_per_epoch(int64_t n, int64_t global_batch) { return n / global_batch; }

int shard_local_batch(int64_t global_batch, int rank, int size)
{
    return (int)(global_batch / size + (rank < global_batch % size));
}

int64_t shard_local_offset(int64_t global_batch, int rank, int size)
{
    int64_t base = global_batch / size, extra = global_batch % size;
    return rank * base + (rank < extra ? rank : extra);
}

void shard_epoch_rows(const int64_t *perm, int64_t steps, int64_t global_batch, int rank, int size,
                      int64_t *out)
{
    int B = shard_local_batch(global_batch, rank, size);
    int64_t off = shard_local_offset(global_batch, rank, size);
    for (int64_t s = 0; s < steps; s++)
        memcpy(out + s * B, perm + s * global_batch + off, sizeof(int64_t) * (size_t)B);
}

void shard_range(int64_t n, int rank, int size, int64_t *begin, int64_t *end)
{
    *begin = shard_local_offset(n, rank, size);
    *end = *begin + shard_local_batch(n, rank, size);
}

int64_t *shard_split_rows(int64_t n, double frac, uint64_t seed, int held, int64_t *count)
{
    int64_t n_held = (int64_t)llround(frac * (double)n);
    int64_t *perm = vd_calloc((size_t)(n ? n : 1), sizeof(int64_t));
    char *out = vd_calloc((size_t)(n ? n : 1), 1);
    Rng split = rng_for(seed, VD_RNG_SPLIT, 0);
    rng_permutation(&split, 0, perm, n);
    for (int64_t i = 0; i < n_held; i++)
        out[perm[i]] = 1;
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++)
        if (out[i] == held)
            perm[k++] = i;
    vd_free(out);
    *count = k;
    return perm;
}

/* ---- in-memory shard -------------------------------------------------- */

void shard_init(Shard *s, H5Rows *images, H5Rows *labels, int64_t capacity, int check_unit)
{
    memset(s, 0, sizeof *s);
    s->images = images;
    s->labels = labels;
    s->capacity = capacity;
    s->check_unit = check_unit;
    size_t cap = (size_t)capacity;
    s->raw = vd_calloc(cap * (size_t)images->row_len, images->is_u8 ? 1 : sizeof(float));
    s->lab = vd_calloc(cap, sizeof(int32_t));
    s->slot = vd_calloc(cap, sizeof(int64_t));
    s->sorted = vd_calloc(cap, sizeof(int64_t));
    s->pairs = vd_calloc(2 * cap, sizeof(int64_t));
}

void shard_free(Shard *s)
{
    if (!s)
        return;
    vd_free(s->raw);
    vd_free(s->lab);
    vd_free(s->slot);
    vd_free(s->sorted);
    vd_free(s->pairs);
    memset(s, 0, sizeof *s);
}

static int cmp_pair(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int shard_load(Shard *s, const int64_t *rows, int64_t n, VdError *err)
{
    if (n > s->capacity)
        VD_ABORT("shard_load: %lld rows exceed capacity %lld", (long long)n,
                 (long long)s->capacity);
    /* sort (row, training position) pairs by row */
    for (int64_t i = 0; i < n; i++) {
        s->pairs[2 * i] = rows[i];
        s->pairs[2 * i + 1] = i;
    }
    qsort(s->pairs, (size_t)n, 2 * sizeof(int64_t), cmp_pair);
    for (int64_t i = 0; i < n; i++) {
        s->sorted[i] = s->pairs[2 * i];
        s->slot[s->pairs[2 * i + 1]] = i;
    }
    s->n = n;
    int rc = h5rows_read(s->images, s->sorted, n, s->raw, err);
    if (rc == VD_OK && s->labels)
        rc = h5rows_read(s->labels, s->sorted, n, s->lab, err);
    if (rc != VD_OK)
        return rc;
    return h5rows_check(s->images, s->labels, s->check_unit, s->n_classes, s->raw, s->lab,
                       s->sorted, n, err);
}

void shard_batch(const Shard *s, int64_t first, int n, float *x, int32_t *y)
{
    size_t len = (size_t)s->images->row_len, esize = s->images->is_u8 ? 1 : sizeof(float);
    for (int i = 0; i < n; i++) {
        int64_t slot = s->slot[first + i];
        h5rows_to_float(s->images, (const char *)s->raw + (size_t)slot * len * esize, x + (size_t)i * len);
        if (y)
            y[i] = s->lab[slot];
    }
}
