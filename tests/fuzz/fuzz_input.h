/* fuzz_input.h — what both libFuzzer harnesses share: each input is written
 * to a per-process file, since the code under test opens files by name. */
#ifndef VD_FUZZ_INPUT_H
#define VD_FUZZ_INPUT_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "h5util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fuzz_path[256];

/* Names the input file after the harness and quiets HDF5's error stacks. */
static void fuzz_setup(const char *harness)
{
    h5_quiet();
    const char *tmp = getenv("TMPDIR");
    snprintf(fuzz_path, sizeof fuzz_path, "%s/fuzz-%s-%ld.h5", tmp && *tmp ? tmp : "/tmp",
             harness, (long)getpid());
}

/* Writes the input to fuzz_path; 0, or -1 if it cannot. */
static int fuzz_write(const uint8_t *data, size_t size)
{
    FILE *f = fopen(fuzz_path, "wb");
    if (!f)
        return -1;
    size_t done = fwrite(data, 1, size, f);
    return fclose(f) == 0 && done == size ? 0 : -1;
}

#endif
