/* fuzz_h5rows.c — libFuzzer harness for the data reader: the input is
 * written to a file and opened as a training set (samples and labels), then
 * a few rows are read and loaded into a shard, as training would. Built and
 * run by tests/fuzz/run.sh. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data.h"
#include "h5util.h"

static char path[256];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    h5_quiet();
    const char *tmp = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/fuzz-h5rows-%ld.h5", tmp && *tmp ? tmp : "/tmp", (long)getpid());
    return 0;
}

static void try_dataset(const char *dset, int is_label)
{
    H5Rows r;
    VdError err = {0};
    if (h5rows_open(&r, path, dset, is_label, &err) == VD_OK) {
        int64_t n = r.n_rows, rows[3] = {0, n / 2, n - 1};
        int k = n >= 3 ? 3 : (int)n;
        if (n == 2)
            rows[1] = 1;
        /* what training would allocate for k rows, bounded by the open checks */
        void *out = malloc((size_t)k * (size_t)r.row_len * 4);
        if (out) {
            h5rows_read(&r, rows, k, out, &err);
            free(out);
        }
        if (!is_label && r.row_len <= (1 << 20)) {
            Shard s;
            shard_init(&s, &r, NULL, k, 1);
            int64_t order[3] = {rows[k - 1], rows[0], rows[k > 1 ? 1 : 0]};
            if (shard_load(&s, order, k, &err) == VD_OK) {
                float *x = malloc((size_t)k * (size_t)r.row_len * sizeof(float));
                if (x)
                    shard_batch(&s, 0, k, x, NULL);
                free(x);
            }
            shard_free(&s);
        }
    }
    h5rows_close(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    try_dataset("/train/images", 0);
    try_dataset("/train/labels", 1);
    try_dataset("/x", 0);
    unlink(path);
    return 0;
}
