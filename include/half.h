/* half.h — 16-bit floats for the gradient sums that cross nodes
 * (--compress fp16|bf16): packing float sums into IEEE half or bfloat16,
 * unpacking them, and the MPI operation that adds two packed buffers.
 * Both round to nearest even. The fp16 loops are built twice, for F16C
 * and plain, and give the same bits, so nodes with and without F16C
 * agree. Local: the MPI_Op runs inside the caller's allreduce. */
#ifndef VD_HALF_H
#define VD_HALF_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

/* What crosses nodes under --reduce shm (--compress): the slices' float
 * sums, or 16-bit floats of them. */
typedef enum { VD_COMPRESS_NONE = 0, VD_COMPRESS_FP16 = 1, VD_COMPRESS_BF16 = 2 } CompressMode;

/* h (n) = x * scale as fp16, or x as bf16 (scale unused), by mode
 * (VD_COMPRESS_FP16 or _BF16). */
void half_pack(int mode, uint16_t *h, const float *x, float scale, size_t n);

/* x (n) = h as float, times unscale for fp16. */
void half_unpack(int mode, float *x, const uint16_t *h, float unscale, size_t n);

/* The MPI_Op that adds buffers of mode's 16-bit floats (MPI_UINT16_T), in
 * float, rounded back: commutative, the same result on every rank. Free it
 * with MPI_Op_free. */
void half_sum_op(int mode, MPI_Op *op);

/* For the tests: how many values the F16C and the plain fp16 loops
 * convert or add to different bits (every half, and a million random
 * floats and sums), or -1 where there is no F16C. */
long half_fp16_mismatches(void);

#endif
