/* fuzz_h5rows.c — libFuzzer harness for the data reader: the input is
 * written to a file and opened as a training set (samples and labels), then
 * a few rows are read and loaded into a shard, as training would. Built and
 * run by tests/fuzz/run.sh. */
#include <stdlib.h>
#include <string.h>

#include "shard.h"
#include "fuzz_input.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_setup("h5rows");
    return 0;
}

/* What one input holds, static so that after a guarded HDF5 crash (which
 * jumps out of try_dataset) release() can free it. HDF5's own handles are
 * left alone then: its state is not to be trusted, and LSan ignores HDF5. */
static H5Rows r;
static Shard s;
static void *out;
static float *x;

static void release(void)
{
    free(out);
    free(x);
    out = x = NULL;
    shard_free(&s);
}

static void try_dataset(const char *dset, int is_label)
{
    VdError err = {0};
    if (h5rows_open(&r, fuzz_path, dset, is_label, &err) == VD_OK) {
        int64_t n = r.n_rows, rows[3] = {0, n / 2, n - 1};
        int k = n >= 3 ? 3 : (int)n;
        if (n == 2)
            rows[1] = 1;
        /* what training would allocate for k rows, bounded by the open checks */
        out = malloc((size_t)k * (size_t)r.row_len * 4);
        if (out)
            h5rows_read(&r, rows, k, out, &err);
        if (!is_label && r.row_len <= (1 << 20)) {
            shard_init(&s, &r, NULL, k, 1);
            int64_t order[3] = {rows[k - 1], rows[0], rows[k > 1 ? 1 : 0]};
            if (shard_load(&s, order, k, &err) == VD_OK) {
                x = malloc((size_t)k * (size_t)r.row_len * sizeof(float));
                if (x)
                    shard_batch(&s, 0, k, x, NULL);
            }
        }
        release();
    }
    h5rows_close(&r);
    memset(&r, 0, sizeof r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (fuzz_write(data, size) != 0)
        return 0;
    if (FUZZ_HDF5_CRASHED()) {
        release();
        vd_free(r.block);
        memset(&r, 0, sizeof r);
        return 0;
    }
    try_dataset("/train/images", 0);
    try_dataset("/train/labels", 1);
    try_dataset("/x", 0);
    unlink(fuzz_path);
    fuzz_check_closed();
    return 0;
}
