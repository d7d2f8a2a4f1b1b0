/* fuzz_input.h — what both libFuzzer harnesses share: each input is written
 * to a per-process file, since the code under test opens files by name. */
#ifndef VD_FUZZ_INPUT_H
#define VD_FUZZ_INPUT_H

#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <hdf5.h>

#include "h5util.h"
#include "util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fuzz_path[256];

/* Names the input file after the harness and quiets HDF5's error stacks. */
static void fuzz_setup(const char *harness)
{
    /* A guarded crash leaves HDF5's state damaged; its exit-time cleanup
     * would then walk it and crash as a job of a fork-mode campaign ends
     * (H5F__close_cb, an empty "crash" input). vae-dist itself never goes
     * on after such a crash: its guard exits at once. */
    H5dont_atexit();
    h5_quiet();
    const char *tmp = getenv("TMPDIR");
    snprintf(fuzz_path, sizeof fuzz_path, "%s/fuzz-%s-%ld.h5", tmp && *tmp ? tmp : "/tmp",
             harness, (long)getpid());
}

/* HDF5 is not hardened against damaged files and crashes on some (a NULL
 * memcpy in H5F__accum_read, for one). vae-dist's crash guard turns that into
 * a clean exit 65; here it jumps back so that the campaign goes on looking
 * for bugs in our code. Use as: if (FUZZ_HDF5_CRASHED()) return 0; */
static sigjmp_buf fuzz_env;
static ssize_t fuzz_left_open; /* HDF5 objects a guarded crash left open: HDF5's, not ours */
#define FUZZ_HDF5_CRASHED()                                                                    \
    (sigsetjmp(fuzz_env, 1)                                                                    \
         ? (unlink(fuzz_path), fuzz_left_open = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL), 1) \
         : (vd_guard_jump_to(&fuzz_env), 0))

/* After an input that did not crash HDF5: every file, dataset, group,
 * datatype and attribute our code opened is closed again. A leak of ours
 * is a finding (abort), caught on the input that made it rather than as
 * memory growing over a long campaign. */
static void fuzz_check_closed(void)
{
    ssize_t n = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
    if (n > fuzz_left_open) {
        fprintf(stderr, "fuzz: %zd HDF5 object(s) left open after this input\n", n - fuzz_left_open);
        abort();
    }
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
