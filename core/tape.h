/*
 * The autograd tape (tape.c): recording ops into nodes on their output tensors, the tape's
 * state on each tensor (its extension slot), leaves. Private to core/.
 */
#ifndef LAMINA_CORE_TAPE_H
#define LAMINA_CORE_TAPE_H

#include "lamina/lamina.h"

#include <stdbool.h>
#include <stdint.h>

typedef enum lam__grad_kind {
    LAM__G_BINARY = 1, /* add, sub, mul, div, maximum, minimum (op) */
    LAM__G_SCALAR,     /* scalar ops (op, scalar) */
    LAM__G_UNARY,      /* element-wise functions (op) */
    LAM__G_MATMUL,     /* ta, tb */
    LAM__G_RESHAPE,
    LAM__G_TRANSPOSE,
    LAM__G_REDUCE,  /* op, mask, keepdims */
    LAM__G_SOFTMAX, /* axis, log */
    LAM__G_CLOSURE  /* a backward function of its own (closure), e.g. a fused layer backward */
} lam__grad_kind;

struct lam__node;

/*
 * A node's own backward: the tape calls backward(ctx, node, g) with the gradient g of the
 * node's output; it accumulates into the node's inputs itself (lam__grad_accumulate). The
 * tape calls free(ctx) when the node goes (free may be NULL). The tape knows nothing else
 * about what recorded it.
 */
typedef struct lam__closure {
    lam_status (*backward)(void *ctx, const struct lam__node *n, lam_tensor *g);
    void *ctx;
    void (*free)(void *ctx);
} lam__closure;

typedef struct lam__node {
    lam__grad_kind kind;
    lam_op op;
    uint32_t n_in;
    lam_tensor **in; /* retained */
    lam_tensor *out; /* weak: the node lives exactly as long as its output */
    float scalar;
    int32_t ta, tb, axis, keepdims;
    bool mask[LAM_MAX_DIMS];
    lam__closure closure; /* CLOSURE: owned */
} lam__node;

bool lam__recording(void);
/* True when layers with a backward callback record one fused node
 * (lam_autograd_set_fused_backward). */
bool lam__fused_backward(void);
/* Nonzero when ops on t must be recorded (t needs a gradient, directly or through its inputs). */
bool lam__needs_grad(const lam_tensor *t);
/* Records `out = kind(inputs)` when recording and an input needs a gradient. On failure `out`
 * is released and set to NULL. */
lam_status lam__record_op(lam__grad_kind kind, lam_op op, lam_tensor *const *inputs, uint32_t n,
                          lam_tensor **out, float scalar, int32_t ta, int32_t tb);
/* Records `out = closure(inputs)` when recording and an input needs a gradient; the node then
 * owns the closure. When nothing is recorded, or on failure, the closure's ctx is freed here;
 * on failure `out` is also released and set to NULL. */
lam_status lam__record_closure(lam_tensor *const *inputs, uint32_t n, lam_tensor **out,
                               lam__closure closure);
/* Marks t as a leaf that needs a gradient when `wants` (a parameter's data): backward writes
 * its gradient into `sink` (retained; NULL: nowhere), or adds it there when `add`. wants false
 * and sink NULL clears the mark. The parameter keeps this in step with its data, grad_req and
 * gradient buffer; the tape never knows parameters. Errors: out of memory (never when the
 * tensor went through lam__tape_reserve, or when clearing). */
lam_status lam__tape_leaf_set(lam_tensor *t, bool wants, lam_tensor *sink, bool add);
/* Called by a backward pass right after it delivered the leaf's complete gradient to its
 * sink (every use of the leaf in the graph has contributed): the distributed trainer starts a
 * gradient bucket's reduction there while the pass goes on. An error fails the pass. */
typedef lam_status (*lam__leaf_hook)(void *ctx);
/* Sets (fn non-NULL) or clears t's leaf hook; the caller keeps ctx alive while it is set.
 * Errors: out of memory (never when t went through lam__tape_reserve, or when clearing). */
lam_status lam__tape_leaf_hook(lam_tensor *t, lam__leaf_hook fn, void *ctx);
/* Allocates the tape's data on t ahead of time, so a later lam__tape_leaf_set cannot fail. */
lam_status lam__tape_reserve(lam_tensor *t);
/* Fills in the extra fields of the node just recorded on t (reductions, softmax). */
lam__node *lam__node_of(lam_tensor *t);
void lam__node_free(lam__node *n);

/*
 * What the tape keeps on a tensor, in its extension slot (allocated on first need): the
 * recorded op that made it, the gradient buffer of an attach_grad leaf, the leaf settings a
 * parameter gives its data (lam__tape_leaf_set), and the state of a backward pass.
 */
typedef struct lam__tape_info {
    lam__node *node;          /* the recorded op that made this tensor, owned */
    lam_tensor *attached;     /* gradient buffer of a lam_tensor_attach_grad leaf */
    bool leaf_wants;          /* a parameter's data that needs a gradient */
    bool leaf_add;            /* its gradient is added to the sink (grad_req add), not written */
    lam_tensor *leaf_sink;    /* where its gradient goes (the parameter's gradient buffer) */
    lam_tensor *bw_grad;      /* gradient accumulated during a backward pass */
    uint64_t bw_mark;         /* visit mark of the backward pass */
    lam__leaf_hook leaf_done; /* called once the leaf's gradient is delivered (NULL: none) */
    void *leaf_done_ctx;
} lam__tape_info;

/* The tape's state on t; NULL when it has none (t never needed a gradient). */
lam__tape_info *lam__tape_info_of(const lam_tensor *t);
/* The tape's state on t (in the tensor's inline extension room), set up when missing; NULL
 * when the extension slot is taken by something else. */
lam__tape_info *lam__tape_info_get(lam_tensor *t);

#endif
