/*
 * Backends and contexts (context.c): a backend's probed devices and its lazily opened contexts.
 * Private to core/.
 */
#ifndef LAMINA_CORE_CONTEXT_H
#define LAMINA_CORE_CONTEXT_H

#include "registry_types.h"

#include "lamina/lamina.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Buffers freed by tensors, kept for reuse by size so the op hot path rarely reaches the
 * backend's allocator. */
#define LAM__CACHE_SLOTS 64
typedef struct lam__buffer_cache {
    size_t bytes[LAM__CACHE_SLOTS];
    void *buf[LAM__CACHE_SLOTS];
    uint32_t n;
    size_t total;
} lam__buffer_cache;

struct lam_ctx {
    lam__backend *backend;
    uint32_t device;
    void *dev;
    char name[80];
    pthread_mutex_t cache_lock; /* threads share a context: its cache is taken under the lock */
    lam__buffer_cache cache;
};

/* Closes every open context (at shutdown): waits for it, frees its cached buffers, closes the
 * device. */
void lam__contexts_close_all(void);
/* A cached buffer of exactly `bytes` (taken out of the cache), or NULL when none. */
void *lam__ctx_cache_take(lam_ctx *ctx, size_t bytes);
/* Gives a buffer of `bytes` back: cached for reuse, or freed through the backend when it is
 * too large or the cache is full. */
void lam__ctx_cache_give(lam_ctx *ctx, void *buf, size_t bytes);
/* Frees every cached buffer of ctx through its backend. */
void lam__ctx_cache_flush(lam_ctx *ctx);

#endif
