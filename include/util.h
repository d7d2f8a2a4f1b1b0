/* util.h — error reporting, exit codes, timers, paths and allocation shared
 * by every module of vae-dist. Local: nothing here talks to other ranks, so
 * the math (model, optim, rng) builds without MPI; the collective half of
 * error handling is comm.h.
 *
 * Errors travel as a VdError filled by the function that failed and returned
 * as a sysexits-style code. Code that runs on every rank agrees on errors with
 * vd_error_agree() (comm.h) before the next collective, so one rank's failure
 * never leaves the others waiting; the lowest failing rank prints the one
 * line. */
#ifndef VD_UTIL_H
#define VD_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Exit codes (sysexits.h values, plus our own above 75). Documented in README. */
enum {
    VD_OK = 0,
    VD_EX_USAGE = 64,    /* bad command line */
    VD_EX_DATAERR = 65,  /* input data malformed or unusable */
    VD_EX_NOINPUT = 66,  /* input file or dataset missing */
    VD_EX_STALL = 69,    /* other ranks stopped answering (--stall-timeout): a node or link lost */
    VD_EX_SOFTWARE = 70, /* internal error (replicas differ, ...) */
    VD_EX_CANTCREAT = 73,/* cannot create an output file or directory */
    VD_EX_IOERR = 74,    /* read or write failed part way */
    VD_EX_TEMPFAIL = 75, /* stopped by a signal, checkpoint saved: requeue me */
    VD_EX_DIVERGED = 76  /* non-finite loss or gradient; the step was not applied */
};

/* What an exit code means, in a few words ("bad data"). */
const char *vd_exit_meaning(int code);

typedef struct {
    int code;       /* VD_OK when no error */
    char msg[768];  /* one line, no trailing newline */
    int reported;   /* vd_error_agree has printed it */
} VdError;

/* Records the first error only (later calls keep the original); returns code. */
int vd_fail(VdError *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prints "vae-dist: rank R: file:line: msg" and ends the job: through the
 * hook comm_init() installs (MPI_Abort), else exit(VD_EX_SOFTWARE). For
 * states that cannot be agreed on (out of memory in the middle of a step). */
#define VD_ABORT(...) vd_abort_at(__FILE__, __LINE__, __VA_ARGS__)
_Noreturn void vd_abort_at(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The process's rank for messages, and how it ends the job on VD_ABORT
 * (called by comm_init). */
void vd_set_process(int rank, void (*abort_job)(int code));
int vd_process_rank(void);

/* Marks a hot elementwise loop for an AVX2 clone, picked when the program
 * loads (x86-64, GCC or clang), beside the baseline one. The build's
 * -ffp-contract=off keeps a*b+c unfused (and C keeps float sums in order),
 * so both clones give bitwise the same results: replicas on nodes with
 * different CPUs stay identical. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(VD_NO_CLONES)
#define VD_VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define VD_VECTOR_CLONES
#endif

/* 1 if no x[i] is NaN or infinite. */
int vd_all_finite(const float *x, size_t n);

/* The sum of x[i]^2, in double: eight partial sums, one per vector lane,
 * added up in a fixed order, so the same double for the same x on any rank
 * and in any clone (the clipping norm, and the norm metrics.csv reports on
 * every step; one chain would wait four cycles an element, a tenth of a
 * small model's step). */
double vd_sum_squares(const float *x, size_t n);

/* Zeroed, 64-byte aligned allocation; aborts the job if memory runs out. */
void *vd_calloc(size_t n, size_t size);
void vd_free(void *p);

/* Wall clock in seconds (monotonic). */
double vd_now(void);

/* Order-sensitive 64-bit checksum of a float buffer's bits (FNV-1a over
 * 32-bit words): equal buffers give equal sums, bit flips change it.
 * vd_checksum_more continues a checksum h over another buffer. */
#define VD_CHECKSUM_INIT 1469598103934665603ULL
uint64_t vd_checksum_more(uint64_t h, const float *x, size_t n);
static inline uint64_t vd_checksum_f32(const float *x, size_t n)
{
    return vd_checksum_more(VD_CHECKSUM_INIT, x, n);
}

/* A guard around calls into HDF5 on user files: HDF5 is not hardened
 * against damaged files, and a crafted one can make it crash (seen: a NULL
 * memcpy in H5F__accum_read). While armed, SIGSEGV, SIGBUS, SIGFPE or
 * SIGILL end the process with one line from rank 0 (vd_set_process), "HDF5
 * crashed reading FILE ...", and exit code VD_EX_DATAERR, instead of a core
 * dump; outside the guard they reach the previous handler. Nests. */
void vd_guard_arm(const char *file);
void vd_guard_disarm(void);
/* For the fuzz harnesses: jump to env (siglongjmp) instead of exiting, and
 * forget the nesting. NULL restores exiting. */
#include <setjmp.h>
void vd_guard_jump_to(sigjmp_buf *env);

/* Creates dir and its parents (like mkdir -p); 0 or -1 with errno set. */
int vd_mkdirs(const char *dir);

/* Every file path in vae-dist fits VD_PATH_MAX bytes. */
#define VD_PATH_MAX 4096

/* path (VD_PATH_MAX bytes) made absolute, symbolic links resolved, when
 * it names an existing file; else left as it is. */
void vd_absolute(char *path);

/* out (VD_PATH_MAX bytes) = dir "/" name; 0, or -1 with errno ENAMETOOLONG
 * (out then holds the truncated path, for messages). */
int vd_path_join(char *out, const char *dir, const char *name);

#endif
