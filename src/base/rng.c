/* rng.c — Philox4x32-10 and the draws built on it. See rng.h. */
#include "rng.h"

#include <math.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

void philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4])
{
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int round = 0; round < 10; round++) {
        uint64_t p0 = (uint64_t)PHILOX_M0 * c0;
        uint64_t p1 = (uint64_t)PHILOX_M1 * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
        uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        c0 = n0;
        c1 = (uint32_t)p1;
        c2 = n2;
        c3 = (uint32_t)p0;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

Rng rng_for(uint64_t seed, RngUse use, uint32_t rank)
{
    Rng r;
    r.key[0] = (uint32_t)seed;
    r.key[1] = (uint32_t)(seed >> 32);
    r.tag = ((uint32_t)use << 24) | (rank & 0xFFFFFFu);
    return r;
}

void rng_block(const Rng *r, uint32_t a, uint64_t b, uint32_t out[4])
{
    uint32_t ctr[4] = {(uint32_t)b, (uint32_t)(b >> 32), a, r->tag};
    philox4x32_10(ctr, r->key, out);
}

/* (0, 1): never 0, so log() is finite. */
static inline double u01_open(uint32_t x) { return ((double)x + 0.5) * 0x1p-32; }

void rng_normal_fill(const Rng *r, uint32_t a, uint64_t first, size_t n, float *out)
{
    const double two_pi = 6.283185307179586476925286766559;
    uint64_t block = UINT64_MAX;
    float v[4] = {0};
    for (size_t i = 0; i < n; i++) {
        uint64_t e = first + i;
        if (e / 4 != block) {
            uint32_t w[4];
            block = e / 4;
            rng_block(r, a, block, w);
            double r0 = sqrt(-2.0 * log(u01_open(w[0]))), t0 = two_pi * u01_open(w[1]);
            double r1 = sqrt(-2.0 * log(u01_open(w[2]))), t1 = two_pi * u01_open(w[3]);
            v[0] = (float)(r0 * cos(t0));
            v[1] = (float)(r0 * sin(t0));
            v[2] = (float)(r1 * cos(t1));
            v[3] = (float)(r1 * sin(t1));
        }
        out[i] = v[e % 4];
    }
}

void rng_uniform_fill(const Rng *r, uint32_t a, uint64_t first, size_t n, float lo, float hi,
                      float *out)
{
    uint64_t block = UINT64_MAX;
    uint32_t w[4] = {0};
    for (size_t i = 0; i < n; i++) {
        uint64_t e = first + i;
        if (e / 4 != block) {
            block = e / 4;
            rng_block(r, a, block, w);
        }
        float u = (float)(w[e % 4] >> 8) * 0x1p-24f; /* [0, 1) exactly in float */
        out[i] = lo + (hi - lo) * u;
    }
}

uint64_t rng_below(const Rng *r, uint32_t a, uint64_t b, uint64_t n)
{
    uint32_t w[4];
    rng_block(r, a, b, w);
    uint64_t x = (uint64_t)w[0] | (uint64_t)w[1] << 32;
    return (uint64_t)(((unsigned __int128)x * n) >> 64);
}

void rng_permutation(const Rng *r, uint32_t a, int64_t *perm, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        perm[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)rng_below(r, a, (uint64_t)i, (uint64_t)i + 1);
        int64_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

void rng_binarize(const Rng *r, uint32_t a, int64_t row0, int n, int D, float *x)
{
    uint64_t first = (uint64_t)row0 * (uint64_t)D;
    size_t total = (size_t)n * (size_t)D;
    uint32_t block[4];
    for (size_t i = 0; i < total; i++) {
        uint64_t e = first + i;
        if (i == 0 || e % 4 == 0)
            rng_block(r, a, e / 4, block);
        float u = (float)(block[e % 4] >> 8) * 0x1p-24f; /* [0, 1) */
        x[i] = u < x[i] ? 1.0f : 0.0f;
    }
}
