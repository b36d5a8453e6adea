/*
 * Philox-4x32-10 random streams for initializers (rng.c). Private to core/.
 *
 * A stream is named by (seed, key): its Philox key is a 64-bit hash of both and its counter
 * starts at 0, so the numbers drawn for a parameter depend on nothing else. Each counter value
 * gives four 32-bit outputs, consumed in order.
 */
#ifndef LAMINA_CORE_RNG_H
#define LAMINA_CORE_RNG_H

#include "lamina/lamina.h"

struct lam_rng {
    uint32_t key[2];    /* Philox key: low and high half of the stream hash */
    uint32_t ctr[4];    /* counter of the next block, ctr[0] least significant */
    uint32_t buf[4];    /* outputs of the current block */
    uint32_t pos;       /* next unread index into buf; 4 = buffer empty */
    uint32_t has_spare; /* nonzero: `spare` holds the second normal of a Box-Muller pair */
    double spare;
};

/* One Philox-4x32-10 block: out = Philox(ctr, key), as Random123's philox4x32(ctr, key). */
void lam__philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* The 64-bit stream key derived from (seed, key); key NULL counts as "". */
uint64_t lam__rng_stream_key(uint64_t seed, const char *key);
/* How many times lam_seed has been called (streams that count draws restart when it moves). */
uint64_t lam__seed_generation(void);

/* Starts the stream (seed, key) at counter 0. */
void lam__rng_init(lam_rng *r, uint64_t seed, const char *key);

/* The next raw 32-bit output of the stream. */
uint32_t lam__rng_next_u32(lam_rng *r);

#endif
