/* sgemm_trace.c — an LD_PRELOAD shim that records every cblas_sgemm call
 * of a process (its shapes, transposes, leading dimensions and beta) to
 * the file $VD_SGEMM_TRACE, one line a call, and passes it on to the real
 * OpenBLAS. A one-step run of vae-dist under it lists exactly the products
 * of a step, whatever the model; bench/sgemm --products replays them alone.
 *
 *   mpirun -np 1 -x LD_PRELOAD=bench/sgemm_trace.so -x VD_SGEMM_TRACE=t.txt \
 *       vae-dist ... --max-steps 1 --test-dataset none
 *
 * Each line: "order transa transb M N K lda ldb ldc beta" (CBLAS enums as
 * numbers). Only the first process to open the file writes it. */
#define _GNU_SOURCE
#include <cblas.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

typedef void (*SgemmFn)(const enum CBLAS_ORDER, const enum CBLAS_TRANSPOSE,
                        const enum CBLAS_TRANSPOSE, const blasint, const blasint, const blasint,
                        const float, const float *, const blasint, const float *, const blasint,
                        const float, float *, const blasint);

static FILE *trace;
static int tried;

void cblas_sgemm(const enum CBLAS_ORDER order, const enum CBLAS_TRANSPOSE ta,
                 const enum CBLAS_TRANSPOSE tb, const blasint M, const blasint N, const blasint K,
                 const float alpha, const float *A, const blasint lda, const float *B,
                 const blasint ldb, const float beta, float *C, const blasint ldc)
{
    static SgemmFn real;
    if (!real)
        real = (SgemmFn)dlsym(RTLD_NEXT, "cblas_sgemm");
    if (!tried) {
        tried = 1;
        const char *path = getenv("VD_SGEMM_TRACE");
        int fd = path ? open(path, O_WRONLY | O_CREAT | O_EXCL, 0644) : -1; /* the first process */
        trace = fd >= 0 ? fdopen(fd, "w") : NULL;
    }
    if (trace)
        fprintf(trace, "%d %d %d %d %d %d %d %d %d %g\n", (int)order, (int)ta, (int)tb, (int)M,
                (int)N, (int)K, (int)lda, (int)ldb, (int)ldc, (double)beta);
    real(order, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

__attribute__((destructor)) static void close_trace(void)
{
    if (trace)
        fclose(trace);
}
