/*
 * Counter-based random numbers: Philox-4x32-10 (Salmon et al., "Parallel random numbers: as
 * easy as 1, 2, 3", SC 2011; the constants of Random123) and the global seed.
 *
 * Why counter-based: a parameter's stream is a pure function of (seed, structural key), so its
 * values do not depend on creation order, on eager versus deferred initialization, or on how
 * many numbers other parameters drew.
 */
#include "rng.h"

#include <math.h>
#include <stdatomic.h>

#define PHILOX_M0     0xD2511F53u
#define PHILOX_M1     0xCD9E8D57u
#define PHILOX_W0     0x9E3779B9u
#define PHILOX_W1     0xBB67AE85u
#define PHILOX_ROUNDS 10

/* Process-wide; atomic, so a seed set on one thread is read whole on every other. */
static _Atomic uint64_t global_seed;
static _Atomic uint64_t seed_generation; /* lam_seed calls so far */

void lam_seed(uint64_t seed) {
    atomic_store_explicit(&global_seed, seed, memory_order_relaxed);
    atomic_fetch_add_explicit(&seed_generation, 1, memory_order_relaxed);
}

uint64_t lam__seed_generation(void) {
    return atomic_load_explicit(&seed_generation, memory_order_relaxed);
}

uint64_t lam_seed_get(void) {
    return atomic_load_explicit(&global_seed, memory_order_relaxed);
}

static void philox_round(uint32_t c[4], const uint32_t k[2]) {
    uint64_t p0 = (uint64_t)PHILOX_M0 * c[0];
    uint64_t p1 = (uint64_t)PHILOX_M1 * c[2];
    uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
    uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
    uint32_t n0 = hi1 ^ c[1] ^ k[0];
    uint32_t n2 = hi0 ^ c[3] ^ k[1];
    c[0] = n0;
    c[1] = lo1;
    c[2] = n2;
    c[3] = lo0;
}

void lam__philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
    uint32_t c[4] = {ctr[0], ctr[1], ctr[2], ctr[3]};
    uint32_t k[2] = {key[0], key[1]};
    for (int round = 0; round < PHILOX_ROUNDS; round++) {
        if (round > 0) {
            k[0] += PHILOX_W0;
            k[1] += PHILOX_W1;
        }
        philox_round(c, k);
    }
    for (int i = 0; i < 4; i++) {
        out[i] = c[i];
    }
}

/* splitmix64's output function: a bijective 64-bit mixer with full avalanche. */
static uint64_t mix64(uint64_t z) {
    z += 0x9E3779B97F4A7C15u;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

/*
 * FNV-1a over the key bytes, started from a basis that depends on the seed, then finalized by
 * mix64 so that keys differing in one character give unrelated Philox keys.
 */
uint64_t lam__rng_stream_key(uint64_t seed, const char *key) {
    uint64_t h = 0xCBF29CE484222325u ^ mix64(seed);
    uint64_t len = 0;
    for (const unsigned char *p = (const unsigned char *)(key ? key : ""); *p; p++, len++) {
        h ^= *p;
        h *= 0x100000001B3u;
    }
    return mix64(h ^ len);
}

void lam__rng_init(lam_rng *r, uint64_t seed, const char *key) {
    uint64_t h = lam__rng_stream_key(seed, key);
    r->key[0] = (uint32_t)h;
    r->key[1] = (uint32_t)(h >> 32);
    for (int i = 0; i < 4; i++) {
        r->ctr[i] = 0;
        r->buf[i] = 0;
    }
    r->pos = 4;
    r->has_spare = 0;
    r->spare = 0.0;
}

uint32_t lam__rng_next_u32(lam_rng *r) {
    if (r->pos >= 4) {
        lam__philox4x32_10(r->ctr, r->key, r->buf);
        /* 128-bit increment; a stream would need 2^130 outputs to wrap. */
        for (int i = 0; i < 4; i++) {
            if (++r->ctr[i] != 0) {
                break;
            }
        }
        r->pos = 0;
    }
    return r->buf[r->pos++];
}

/*
 * One output per number: u = (x >> 8) * 2^-24 lies in [0, 1 - 2^-24] and every value is a
 * float. lo + (hi - lo) * u is formed in double and rounded once; the rounding can reach hi,
 * which the half-open interval excludes, so such a result becomes the float just below hi.
 * With hi <= lo there is no interval to respect and the formula is returned as is.
 */
float lam_rng_uniform(lam_rng *rng, float lo, float hi) {
    uint32_t x = lam__rng_next_u32(rng);
    double u = (double)(x >> 8) * 0x1p-24;
    double d = (double)hi - (double)lo;
    float v = (float)((double)lo + d * u);
    if (lo < hi && v >= hi) {
        v = nextafterf(hi, lo);
    }
    return v;
}

/*
 * Box-Muller on two outputs: u1 = (x1 + 1) * 2^-32 in (0, 1] so log never sees 0 (largest
 * |z| is about 6.66), u2 = x2 * 2^-32 in [0, 1). A pair gives two independent normals,
 * r*cos(2*pi*u2) now and r*sin(2*pi*u2) on the next call, which draws nothing from the stream.
 * Uniform calls in between leave the spare alone, so any sequence of calls stays deterministic.
 */
float lam_rng_normal(lam_rng *rng, float mean, float std) {
    double z;
    if (rng->has_spare) {
        rng->has_spare = 0;
        z = rng->spare;
    } else {
        uint32_t x1 = lam__rng_next_u32(rng);
        uint32_t x2 = lam__rng_next_u32(rng);
        double u1 = ((double)x1 + 1.0) * 0x1p-32;
        double u2 = (double)x2 * 0x1p-32;
        double r = sqrt(-2.0 * log(u1));
        double theta = 6.283185307179586476925286766559 * u2;
        z = r * cos(theta);
        rng->spare = r * sin(theta);
        rng->has_spare = 1;
    }
    return (float)((double)mean + (double)std * z);
}
