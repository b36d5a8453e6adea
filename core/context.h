/*
 * Backends and contexts (context.c): a backend's probed devices and its lazily opened contexts.
 * Private to core/.
 */
#ifndef LAMINA_CORE_CONTEXT_H
#define LAMINA_CORE_CONTEXT_H

#include "lamina/lamina.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lam_plugin;

typedef struct lam__backend {
    lam_backend_desc desc; /* copied; fields past the plugin's struct_size are zero; its strings
                              point into `strings`, the host's own copy */
    char *strings;
    struct lam_plugin *plugin;
    atomic_bool probed; /* probe runs once, on first use: lam__backend_probe */
    uint32_t n_devices;
    char why[512];
    _Atomic(lam_ctx *) *ctxs; /* n_devices entries, opened lazily (once, under a lock) */
} lam__backend;

/* Buffers freed by tensors, kept for reuse by size so the op hot path rarely reaches the
 * backend's allocator (tensor.c). */
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

void lam__contexts_close_all(void);

#endif
