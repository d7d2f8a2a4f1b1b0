/* fuzz_ckpt.c — libFuzzer harness for the checkpoint loader: the input is
 * written to a file, its model shape read, and (for shapes of modest size)
 * a model of that shape created and loaded from it. Built and run by
 * tests/fuzz/run.sh. */
#include <stdlib.h>
#include <string.h>

#include "ckpt.h"
#include "fuzz_input.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_setup("ckpt");
    return 0;
}

/* static: a guarded HDF5 crash jumps out of ckpt_load, and the model is
 * freed on that path too */
static Vae *m;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (fuzz_write(data, size) != 0)
        return 0;
    if (FUZZ_HDF5_CRASHED()) {
        vae_free(m);
        m = NULL;
        return 0;
    }
    VaeShape shape;
    VdError err = {0};
    if (ckpt_read_shape(fuzz_path, &shape, &err) == VD_OK) {
        double n = vae_shape_params(&shape); /* -1 for a shape vae_create refuses */
        const char *why;
        m = n < 1e6 ? vae_create(&shape, 0, &why) : NULL;
        if (m) {
            TrainState st;
            ckpt_load(fuzz_path, m, &st, &err);
            CkptData data;
            ckpt_read_data(fuzz_path, &data);
            char buf[64];
            ckpt_read_config(fuzz_path, "batch", buf, sizeof buf);
            vae_free(m);
            m = NULL;
        }
    }
    unlink(fuzz_path);
    fuzz_check_closed();
    return 0;
}
