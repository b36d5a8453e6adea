/*
 * Tensors and their storage (tensor.c): lifetime, pools, the per-context buffer cache, and
 * running one op on a backend. Private to core/.
 */
#ifndef LAMINA_CORE_TENSOR_H
#define LAMINA_CORE_TENSOR_H

#include "lamina/lamina.h"

#include <stdatomic.h>
#include <stdint.h>

struct lam__node;
struct lam_param;

typedef struct lam__storage {
    atomic_long refcount;
    lam_ctx *ctx;
    void *buf;
    size_t bytes;
} lam__storage;

/*
 * A tensor's state, checked where a released or orphaned tensor would otherwise be used
 * (lamina.h documents what is detected). Released structs wait in a pool; the ASan build
 * poisons them there, so any use after release is reported.
 */
#define LAM__TENSOR_LIVE   0x4c54454eu /* in use */
#define LAM__TENSOR_ORPHAN 0x4c544f52u /* held by the user after lam_shutdown(): no data */
#define LAM__TENSOR_DEAD   0x4c544445u /* released */

struct lam_tensor {
    uint32_t magic;
    atomic_long refcount;
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
/* At shutdown: frees the device memory of every tensor still alive; the handles become
 * orphans that only lam_tensor_release (and the shape getters) accept. */
void lam__tensors_reclaim_all(void);
/*
 * The number of elements of a shape whose dims are all known, checked: LAM_ERR_SHAPE naming
 * `subject` and the shape when a dim is negative or the count exceeds LAM__MAX_NUMEL (so that
 * the byte count of any float tensor fits in int64_t and size_t). For every shape product
 * (tensors, parameters, files).
 */
#define LAM__MAX_NUMEL ((int64_t)1 << 60)
lam_status lam__shape_numel(const char *subject, const lam_shape *shape, int64_t *out);
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
