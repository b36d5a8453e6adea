/*
 * Autograd (autograd.c): recording ops into nodes on their output tensors, and gradient
 * accumulation. Private to core/.
 */
#ifndef LAMINA_CORE_AUTOGRAD_H
#define LAMINA_CORE_AUTOGRAD_H

#include "lamina/lamina.h"

#include <stdbool.h>
#include <stdint.h>

struct lam_block;

typedef enum lam__grad_kind {
    LAM__G_BINARY = 1, /* add, sub, mul, div, maximum, minimum (op) */
    LAM__G_SCALAR,     /* scalar ops (op, scalar) */
    LAM__G_UNARY,      /* element-wise functions (op) */
    LAM__G_MATMUL,     /* ta, tb */
    LAM__G_RESHAPE,
    LAM__G_TRANSPOSE,
    LAM__G_REDUCE,  /* op, mask, keepdims */
    LAM__G_SOFTMAX, /* axis, log */
    LAM__G_LAYER    /* fused backward of a layer plugin */
} lam__grad_kind;

typedef struct lam__node {
    lam__grad_kind kind;
    lam_op op;
    uint32_t n_in;
    lam_tensor **in; /* retained */
    lam_tensor *out; /* weak: the node lives exactly as long as its output */
    float scalar;
    int32_t ta, tb, axis, keepdims;
    bool mask[LAM_MAX_DIMS];
    uint32_t n_layer_inputs; /* LAYER: the first n_layer_inputs of in are the layer's inputs */
    struct lam_block *layer; /* LAYER: retained */
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
/* Fills in the extra fields of the node just recorded on t (reductions, softmax). */
lam__node *lam__node_of(lam_tensor *t);
void lam__node_free(lam__node *n);
/* Accumulates a parameter gradient from a fused layer backward. */
lam_status lam__grad_accumulate(lam_tensor *leaf, const lam_tensor *g);

#endif
