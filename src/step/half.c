/* half.c — 16-bit floats for what crosses nodes. See half.h. */
#include "half.h"

#include <math.h>
#include <string.h>

#include "util.h"

/* float to bfloat16 and back: the top half of the bits, rounded to nearest
 * even; NaN stays NaN. */
static uint16_t to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((u >> 16) | 0x40);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1)) >> 16);
}
static float from_bf16(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
/* IEEE half precision, through the compiler's _Float16 (round to nearest
 * even; overflow to infinity, which the step's finite check then refuses). */
static uint16_t to_fp16(float f)
{
    _Float16 h = (_Float16)f;
    uint16_t u;
    memcpy(&u, &h, 2);
    return u;
}
static float from_fp16(uint16_t u)
{
    _Float16 h;
    memcpy(&h, &u, 2);
    return (float)h;
}
/* The MPI_Ops: inout[i] = in[i] + inout[i], added in float and rounded
 * back. Commutative, and every node receives the same result. */
static void bf16_sum(void *in, void *inout, int *len, MPI_Datatype *type)
{
    (void)type;
    const uint16_t *a = in;
    uint16_t *b = inout;
    for (int i = 0; i < *len; i++)
        b[i] = to_bf16(from_bf16(a[i]) + from_bf16(b[i]));
}
/* The three fp16 loops, twice: built for F16C, whose conversion
 * instructions are several times faster than the library's software ones,
 * and plain. Both round to nearest even, so nodes with and without F16C
 * get the same bits. */
#define FP16_LOOPS(suffix, attr)                                                                \
    attr static void fp16_add_##suffix(const uint16_t *a, uint16_t *b, size_t n)               \
    {                                                                                           \
        for (size_t i = 0; i < n; i++)                                                          \
            b[i] = to_fp16(from_fp16(a[i]) + from_fp16(b[i]));                                  \
    }                                                                                           \
    attr static void fp16_pack_##suffix(uint16_t *h, const float *x, float scale, size_t n)    \
    {                                                                                           \
        for (size_t i = 0; i < n; i++)                                                          \
            h[i] = to_fp16(x[i] * scale);                                                       \
    }                                                                                           \
    attr static void fp16_unpack_##suffix(float *x, const uint16_t *h, float unscale, size_t n) \
    {                                                                                           \
        for (size_t i = 0; i < n; i++)                                                          \
            x[i] = from_fp16(h[i]) * unscale;                                                   \
    }
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
FP16_LOOPS(f16c, __attribute__((target("avx,f16c"))))
#define HAVE_F16C_LOOPS 1
#endif
FP16_LOOPS(plain, )

static int use_f16c(void)
{
#ifdef HAVE_F16C_LOOPS
    static int known = -1;
    if (known < 0)
        known = __builtin_cpu_supports("f16c") && __builtin_cpu_supports("avx");
    return known;
#else
    return 0;
#endif
}
static void fp16_add(const uint16_t *a, uint16_t *b, size_t n)
{
#ifdef HAVE_F16C_LOOPS
    if (use_f16c()) {
        fp16_add_f16c(a, b, n);
        return;
    }
#endif
    fp16_add_plain(a, b, n);
}
static void fp16_pack(uint16_t *h, const float *x, float scale, size_t n)
{
#ifdef HAVE_F16C_LOOPS
    if (use_f16c()) {
        fp16_pack_f16c(h, x, scale, n);
        return;
    }
#endif
    fp16_pack_plain(h, x, scale, n);
}
static void fp16_unpack(float *x, const uint16_t *h, float unscale, size_t n)
{
#ifdef HAVE_F16C_LOOPS
    if (use_f16c()) {
        fp16_unpack_f16c(x, h, unscale, n);
        return;
    }
#endif
    fp16_unpack_plain(x, h, unscale, n);
}

static void fp16_sum(void *in, void *inout, int *len, MPI_Datatype *type)
{
    (void)type;
    fp16_add(in, inout, (size_t)*len);
}

long half_fp16_mismatches(void)
{
#ifdef HAVE_F16C_LOOPS
    if (!use_f16c())
        return -1;
    enum { N = 65536 };
    uint16_t *h = vd_calloc(N, sizeof *h), *a = vd_calloc(N, sizeof *a), *b = vd_calloc(N, sizeof *b);
    float *x = vd_calloc(N, sizeof *x), *y = vd_calloc(N, sizeof *y);
    long bad = 0;
    for (int i = 0; i < N; i++)
        h[i] = (uint16_t)i;
    fp16_unpack_f16c(x, h, 1.0f, N); /* every half */
    fp16_unpack_plain(y, h, 1.0f, N);
    for (int i = 0; i < N; i++)
        bad += memcmp(x + i, y + i, sizeof *x) != 0 && !(x[i] != x[i] && y[i] != y[i]);
    uint32_t s = 12345;
    for (int round = 0; round < 16; round++) {
        for (int i = 0; i < N; i++) { /* floats of every exponent, halves of every value */
            s = s * 1664525u + 1013904223u;
            uint32_t bits = s;
            memcpy(x + i, &bits, sizeof bits);
            if (!isfinite(x[i]))
                x[i] = 1.0f;
            s = s * 1664525u + 1013904223u;
            h[i] = (uint16_t)(s >> 16);
        }
        fp16_pack_f16c(a, x, 0.0078125f, N);
        fp16_pack_plain(b, x, 0.0078125f, N);
        bad += memcmp(a, b, sizeof *a * N) != 0;
        fp16_add_f16c(h, a, N);
        fp16_add_plain(h, b, N);
        for (int i = 0; i < N; i++) { /* NaN payloads aside: the finite check refuses them */
            int nan_a = (a[i] & 0x7c00) == 0x7c00 && (a[i] & 0x3ff),
                nan_b = (b[i] & 0x7c00) == 0x7c00 && (b[i] & 0x3ff);
            bad += a[i] != b[i] && !(nan_a && nan_b);
        }
    }
    vd_free(h);
    vd_free(a);
    vd_free(b);
    vd_free(x);
    vd_free(y);
    return bad;
#else
    return -1;
#endif
}

void half_pack(int mode, uint16_t *h, const float *x, float scale, size_t n)
{
    if (mode == VD_COMPRESS_FP16)
        fp16_pack(h, x, scale, n);
    else
        for (size_t i = 0; i < n; i++)
            h[i] = to_bf16(x[i]);
}

void half_unpack(int mode, float *x, const uint16_t *h, float unscale, size_t n)
{
    if (mode == VD_COMPRESS_FP16)
        fp16_unpack(x, h, unscale, n);
    else
        for (size_t i = 0; i < n; i++)
            x[i] = from_bf16(h[i]);
}

void half_sum_op(int mode, MPI_Op *op)
{
    MPI_Op_create(mode == VD_COMPRESS_FP16 ? fp16_sum : bf16_sum, 1, op);
}
