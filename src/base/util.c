/* util.c — errors, allocation, timers. See util.h. */
#include "util.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

const char *vd_exit_meaning(int code)
{
    switch (code) {
    case VD_OK: return "success";
    case VD_EX_USAGE: return "bad command line";
    case VD_EX_DATAERR: return "bad data or no valid checkpoint";
    case VD_EX_NOINPUT: return "missing input";
    case VD_EX_STALL: return "a node or link lost: other ranks stopped answering";
    case VD_EX_SOFTWARE: return "internal error";
    case VD_EX_CANTCREAT: return "cannot create an output, or the run directory is in use";
    case VD_EX_IOERR: return "I/O error";
    case VD_EX_TEMPFAIL: return "stopped by a signal, checkpoint saved";
    case VD_EX_DIVERGED: return "non-finite loss or gradient";
    default: return "error";
    }
}

int vd_fail(VdError *err, int code, const char *fmt, ...)
{
    if (err == NULL || err->code != VD_OK)
        return err ? err->code : code;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return code;
}

static int process_rank;
static void (*process_abort)(int code);

int vd_process_rank(void) { return process_rank; }

void vd_set_process(int rank, void (*abort_job)(int code))
{
    process_rank = rank;
    process_abort = abort_job;
}

_Noreturn void vd_abort_at(const char *file, int line, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "vae-dist: rank %d: %s:%d: %s\n", process_rank, file, line, msg);
    fflush(stderr);
    if (process_abort)
        process_abort(VD_EX_SOFTWARE);
    exit(VD_EX_SOFTWARE);
}

void *vd_calloc(size_t n, size_t size)
{
    if (n == 0 || size == 0)
        n = size = 1;
    if (n > SIZE_MAX / size)
        VD_ABORT("allocation of %zu x %zu bytes overflows", n, size);
    void *p = NULL;
    if (posix_memalign(&p, 64, n * size) != 0)
        VD_ABORT("out of memory allocating %zu bytes", n * size);
    memset(p, 0, n * size);
    return p;
}

void vd_free(void *p) { free(p); }

double vd_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

uint64_t vd_checksum_more(uint64_t h, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t w;
        memcpy(&w, &x[i], sizeof w);
        h = (h ^ w) * 1099511628211ULL;
    }
    return h;
}

void vd_absolute(char *path)
{
    char *real = realpath(path, NULL);
    if (real && strlen(real) < VD_PATH_MAX)
        memcpy(path, real, strlen(real) + 1);
    free(real);
}

int vd_path_join(char *out, const char *dir, const char *name)
{
    int len = snprintf(out, VD_PATH_MAX, "%s/%s", dir, name);
    if (len < 0 || len >= VD_PATH_MAX) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

int vd_mkdirs(const char *dir)
{
    char path[VD_PATH_MAX];
    size_t len = strlen(dir);
    if (len == 0 || len >= sizeof path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(path, dir, len + 1);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0777) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(path, 0777) != 0 && errno != EEXIST)
        return -1;
    struct stat st;
    if (stat(path, &st) != 0)
        return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

/* ---- crash guard ------------------------------------------------------ */

static const int guard_signals[4] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL};
static struct sigaction guard_previous[4];
static volatile sig_atomic_t guard_depth;
static int guard_installed, guard_quiet;
static char guard_msg[1200];
static size_t guard_len;
static sigjmp_buf *guard_env;

static void guard_handler(int sig)
{
    if (guard_depth > 0) {
        if (guard_env) {
            guard_depth = 0;
            siglongjmp(*guard_env, sig);
        }
        if (!guard_quiet) {
            ssize_t unused = write(STDERR_FILENO, guard_msg, guard_len);
            (void)unused;
        }
        _exit(VD_EX_DATAERR);
    }
    for (int i = 0; i < 4; i++) /* not ours: the previous handler, on re-delivery */
        if (guard_signals[i] == sig)
            sigaction(sig, &guard_previous[i], NULL);
    raise(sig);
}

void vd_guard_arm(const char *file)
{
    if (!guard_installed) {
        for (int i = 0; i < 4; i++) {
            struct sigaction sa;
            memset(&sa, 0, sizeof sa);
            sa.sa_handler = guard_handler;
            sigemptyset(&sa.sa_mask);
            sa.sa_flags = SA_NODEFER;
            sigaction(guard_signals[i], &sa, &guard_previous[i]);
        }
        guard_installed = 1;
    }
    if (guard_depth++ == 0) {
        guard_quiet = process_rank != 0;
        int len = snprintf(guard_msg, sizeof guard_msg,
                           "vae-dist: HDF5 crashed reading %s: the file is damaged "
                           "(HDF5 is not hardened against such files)\n",
                           file);
        guard_len = len < 0 ? 0 : (size_t)len < sizeof guard_msg ? (size_t)len : sizeof guard_msg - 1;
    }
}

void vd_guard_disarm(void)
{
    if (guard_depth > 0)
        guard_depth--;
}

void vd_guard_jump_to(sigjmp_buf *env)
{
    guard_env = env;
    guard_depth = 0;
}

/* NaN and Inf are the floats whose exponent bits are all ones: an integer OR
 * over the buffer finds any, and vectorizes. */
VD_VECTOR_CLONES
int vd_all_finite(const float *x, size_t n)
{
    uint32_t nonfinite = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &x[i], sizeof bits);
        nonfinite |= (uint32_t)((bits & 0x7f800000u) == 0x7f800000u);
    }
    return !nonfinite;
}

VD_VECTOR_CLONES
double vd_sum_squares(const float *x, size_t n)
{
    double part[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++)
            part[k] += (double)x[i + k] * x[i + k];
    double s = 0.0;
    for (; i < n; i++)
        s += (double)x[i] * x[i];
    for (int k = 0; k < 8; k++)
        s += part[k];
    return s;
}
