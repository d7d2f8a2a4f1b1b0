/* util.h — error reporting, exit codes, timers and allocation shared by every
 * module of vae-dist.
 *
 * Errors travel as a VdError filled by the function that failed and returned
 * as a sysexits-style code. Code that runs on every rank agrees on errors with
 * vd_error_agree() before the next collective, so one rank's failure never
 * leaves the others waiting; the lowest failing rank prints the one line. */
#ifndef VD_UTIL_H
#define VD_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <mpi.h>

/* Exit codes (sysexits.h values, plus our own above 75). Documented in README. */
enum {
    VD_OK = 0,
    VD_EX_USAGE = 64,    /* bad command line */
    VD_EX_DATAERR = 65,  /* input data malformed or unusable */
    VD_EX_NOINPUT = 66,  /* input file or dataset missing */
    VD_EX_SOFTWARE = 70, /* internal error (replicas differ, ...) */
    VD_EX_CANTCREAT = 73,/* cannot create an output file or directory */
    VD_EX_IOERR = 74,    /* read or write failed part way */
    VD_EX_TEMPFAIL = 75, /* stopped by a signal, checkpoint saved: requeue me */
    VD_EX_DIVERGED = 76  /* non-finite loss or gradient; the step was not applied */
};

typedef struct {
    int code;       /* VD_OK when no error */
    char msg[768];  /* one line, no trailing newline */
} VdError;

/* Records the first error only (later calls keep the original); returns code. */
int vd_fail(VdError *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Collective. Agrees on errors across comm: returns the code of the lowest
 * failing rank (VD_OK if none), after that rank printed "vae-dist: msg" to
 * stderr. Every rank's err is set to the agreed code. */
int vd_error_agree(VdError *err, MPI_Comm comm);

/* Rank 0 of comm prints "vae-dist: msg" unless the error is VD_OK. Local. */
void vd_error_print(const VdError *err, int rank);

/* Local. Prints "vae-dist: rank R: file:line: msg" and calls MPI_Abort. For
 * states that cannot be agreed on (out of memory in the middle of a step). */
#define VD_ABORT(...) vd_abort_at(__FILE__, __LINE__, __VA_ARGS__)
_Noreturn void vd_abort_at(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Marks a hot elementwise loop for an AVX2 clone, picked when the program
 * loads (x86-64, GCC or clang), beside the baseline one. The build's -std=c11
 * keeps a*b+c unfused and float sums in order, so both clones give bitwise
 * the same results: replicas on nodes with different CPUs stay identical. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(VD_NO_CLONES)
#define VD_VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define VD_VECTOR_CLONES
#endif

/* 1 if no x[i] is NaN or infinite. */
int vd_all_finite(const float *x, size_t n);

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

/* Local. A guard around calls into HDF5 on user files: HDF5 is not
 * hardened against damaged files, and a crafted one can make it crash
 * (seen: a NULL memcpy in H5F__accum_read). While armed, SIGSEGV, SIGBUS,
 * SIGFPE or SIGILL end the process with one line from rank 0, "HDF5
 * crashed reading FILE ...", and exit code VD_EX_DATAERR, instead of a
 * core dump; outside the guard they reach the previous handler. Nests. */
void vd_guard_arm(const char *file);
void vd_guard_disarm(void);
/* For the fuzz harnesses: jump to env (siglongjmp) instead of exiting, and
 * forget the nesting. NULL restores exiting. */
#include <setjmp.h>
void vd_guard_jump_to(sigjmp_buf *env);

/* Creates dir and its parents (like mkdir -p); 0 or -1 with errno set. */
int vd_mkdirs(const char *dir);

#endif
