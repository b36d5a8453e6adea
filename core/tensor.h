/*
 * Tensors and their storage (tensor.c): lifetime, pools, the per-context buffer cache, and
 * running one op on a backend. Private to core/.
 */
#ifndef LAMINA_CORE_TENSOR_H
#define LAMINA_CORE_TENSOR_H

#include "lamina/lamina.h"

#include <stdint.h>

struct lam__node;
struct lam_param;

typedef struct lam__storage {
    long refcount;
    lam_ctx *ctx;
    void *buf;
    size_t bytes;
} lam__storage;

struct lam_tensor {
    long refcount;
    lam__storage *storage;
    uint64_t offset; /* elements */
    lam_shape shape;
    int64_t numel;
    lam_dtype dtype;
    struct lam_tensor *prev, *next; /* live list, so shutdown can reclaim */
    /* autograd (autograd.c) */
    struct lam__node *node;      /* the recorded op that made this tensor, owned */
    struct lam_param *param;     /* the parameter whose data this is (weak) */
    struct lam_tensor *attached; /* gradient buffer of a lam_tensor_attach_grad leaf */
    struct lam_tensor *bw_grad;  /* gradient accumulated during a backward pass */
    uint64_t bw_mark;            /* visit mark of the backward pass */
};

/* A new uninitialized contiguous tensor on ctx. */
lam_status lam__tensor_alloc(lam_ctx *ctx, const lam_shape *shape, lam_tensor **out);
/* Contiguous view of the whole tensor. */
void lam__tensor_view(const lam_tensor *t, lam_tensor_view *view);
void lam__tensors_reclaim_all(void);
/* Frees the pooled tensor and storage structs (at shutdown). */
void lam__tensor_pool_flush(void);
/* Frees every cached buffer of ctx through its backend. */
void lam__ctx_cache_flush(lam_ctx *ctx);
/* Runs one op on the backend of ctx. */
lam_status lam__execute(lam_ctx *ctx, lam_op op, const lam_tensor_view *inputs, uint32_t n_inputs,
                        lam_tensor_view *output, const double *scalars, const int64_t *ints);
/* Checks that both tensors live on one context; error names both. */
lam_status lam__same_ctx(const char *op, const lam_tensor *a, const lam_tensor *b);

#endif
