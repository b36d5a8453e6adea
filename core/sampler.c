/*
 * The data sampler of data-parallel training: every rank draws the same permutation of the
 * data set for an epoch from (seed, epoch) and takes every size-th index of it, starting at
 * its rank (as PyTorch's DistributedSampler), so the ranks' shares are disjoint and together
 * cover the epoch.
 */
#include "error.h"
#include "rng.h"

#include <stdio.h>
#include <stdlib.h>

int64_t lam_sampler_count(int64_t n, int size, uint32_t flags) {
    if (n < 0 || size <= 0) {
        return 0;
    }
    return (flags & LAM_SAMPLER_PAD) ? (n + size - 1) / size : n / size;
}

lam_status lam_sampler_indices(int64_t n, int rank, int size, uint64_t seed, int64_t epoch,
                               uint32_t flags, int64_t *out, size_t cap) {
    if (n < 0 || size <= 0 || rank < 0 || rank >= size || (out == NULL && cap > 0) ||
        (flags & ~(uint32_t)(LAM_SAMPLER_SHUFFLE | LAM_SAMPLER_PAD)) != 0) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "lam_sampler_indices: Invalid argument, n %lld, rank %d of %d, flags "
                          "0x%x",
                          (long long)n, rank, size, flags);
    }
    int64_t count = lam_sampler_count(n, size, flags);
    if (cap < (size_t)count) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "lam_sampler_indices: Too small, room for %zu indices, %lld needed", cap,
                          (long long)count);
    }
    if (n == 0 || count == 0) {
        return LAM_OK;
    }
    /* Position p of the permutation is needed for p = rank + k*size only: the whole
     * permutation is drawn (Fisher-Yates, 64-bit draws from the stream (seed, "sampler/<e>")),
     * which every rank does the same way. */
    int64_t *perm = malloc((size_t)n * sizeof *perm);
    if (perm == NULL) {
        return lam__error(LAM_ERR_OUT_OF_MEMORY, "lam_sampler_indices: Out of memory");
    }
    for (int64_t i = 0; i < n; i++) {
        perm[i] = i;
    }
    if (flags & LAM_SAMPLER_SHUFFLE) {
        char key[48];
        snprintf(key, sizeof key, "sampler/%lld", (long long)epoch);
        lam_rng r;
        lam__rng_init(&r, seed, key);
        for (int64_t i = n - 1; i > 0; i--) {
            uint64_t u = ((uint64_t)lam__rng_next_u32(&r) << 32) | lam__rng_next_u32(&r);
            int64_t j = (int64_t)(u % (uint64_t)(i + 1));
            int64_t t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
    }
    /* Padding repeats the permutation's first indices, so every rank gets count of them. */
    for (int64_t k = 0; k < count; k++) {
        out[k] = perm[(rank + k * size) % n];
    }
    free(perm);
    return LAM_OK;
}
