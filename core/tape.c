/*
 * The autograd tape: the per-tensor autograd state kept in each tensor's extension slot,
 * recording ops into nodes on their output tensors (with a generic closure for backward
 * functions of their own), leaves (attach_grad, parameters' data) and the recording switch.
 * It knows neither ops' gradient rules (grad_rules.c), nor the backward walk (backward.c),
 * nor blocks, layers or parameters.
 */
#include "tape.h"
#include "error.h"
#include "op_name.h"
#include "tensor.h"
#include "util.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* Recording is per thread (a thread starts with it off), so one thread's training never makes
 * another thread's inference record. The fused-backward switch is a process-wide setting. */
static _Thread_local bool recording LAM__TLS_FAST;
static atomic_bool fused = true;

int lam_autograd_set_recording(int on) {
    int old = recording;
    recording = on != 0;
    return old;
}

int lam_autograd_record_begin(int on) {
    return lam_autograd_set_recording(on);
}

void lam_autograd_record_end(int previous) {
    recording = previous != 0;
}

int lam_autograd_is_recording(void) {
    return recording;
}

/* The thread's train mode: -1 follows recording (Gluon: record() trains, predict otherwise). */
static _Thread_local int train_mode = -1;

int lam_autograd_train_mode_begin(int mode) {
    int was = train_mode;
    train_mode = mode < 0 ? -1 : mode != 0;
    return was;
}

void lam_autograd_train_mode_end(int previous) {
    train_mode = previous < 0 ? -1 : previous != 0;
}

int lam_autograd_is_training(void) {
    return train_mode < 0 ? (int)recording : train_mode;
}

bool lam__recording(void) {
    return recording;
}

int lam_autograd_set_fused_backward(int on) {
    return atomic_exchange_explicit(&fused, on != 0, memory_order_relaxed);
}

bool lam__fused_backward(void) {
    return atomic_load_explicit(&fused, memory_order_relaxed);
}

/* The tape's state lives in the tensor's inline extension room (no allocation). */
_Static_assert(sizeof(lam__tape_info) <= LAM__TENSOR_EXT_INLINE,
               "lam__tape_info must fit in a tensor's ext_inline");

static void info_destroy(void *data) {
    lam__tape_info *i = data;
    lam__node_free(i->node);
    lam_tensor_release(i->attached);
    lam_tensor_release(i->leaf_sink);
    lam_tensor_release(i->bw_grad);
}

lam__tape_info *lam__tape_info_of(const lam_tensor *t) {
    return t != NULL && t->ext.destroy == info_destroy ? t->ext.data : NULL;
}

lam__tape_info *lam__tape_info_get(lam_tensor *t) {
    lam__tape_info *i = lam__tape_info_of(t);
    if (i != NULL || t->ext.destroy != NULL) {
        return i;
    }
    i = (lam__tape_info *)(void *)t->ext_inline;
    memset(i, 0, sizeof *i);
    t->ext = (lam__tensor_ext){i, info_destroy};
    return i;
}

bool lam__needs_grad(const lam_tensor *t) {
    const lam__tape_info *i = lam__tape_info_of(t);
    return i != NULL && (i->node != NULL || i->attached != NULL || i->leaf_wants);
}

lam_status lam__tape_leaf_set(lam_tensor *t, bool wants, lam_tensor *sink, bool add) {
    if (t == NULL) {
        return LAM_OK;
    }
    lam__tape_info *i = lam__tape_info_of(t);
    if (i == NULL && !wants && sink == NULL) {
        return LAM_OK;
    }
    if (i == NULL && (i = lam__tape_info_get(t)) == NULL) {
        return lam__error(LAM_ERR_OUT_OF_MEMORY, "autograd: Out of memory");
    }
    lam_tensor_retain(sink);
    lam_tensor_release(i->leaf_sink);
    i->leaf_sink = sink;
    i->leaf_wants = wants;
    i->leaf_add = add;
    return LAM_OK;
}

lam_status lam__tape_leaf_hook(lam_tensor *t, lam__leaf_hook fn, void *ctx) {
    lam__tape_info *i = lam__tape_info_of(t);
    if (i == NULL && fn == NULL) {
        return LAM_OK;
    }
    if (i == NULL && (i = lam__tape_info_get(t)) == NULL) {
        return lam__error(LAM_ERR_OUT_OF_MEMORY, "autograd: Out of memory");
    }
    i->leaf_done = fn;
    i->leaf_done_ctx = fn ? ctx : NULL;
    return LAM_OK;
}

lam_status lam__tape_reserve(lam_tensor *t) {
    if (t != NULL && lam__tape_info_get(t) == NULL) {
        return lam__error(LAM_ERR_OUT_OF_MEMORY, "autograd: Out of memory");
    }
    return LAM_OK;
}

void lam__node_free(lam__node *n) {
    if (n == NULL) {
        return;
    }
    for (uint32_t i = 0; i < n->n_in; i++) {
        lam_tensor_release(n->in[i]);
    }
    if (n->closure.free) { /* n->in lies in n's own block (lam__record_op) */
        n->closure.free(n->closure.ctx);
    }
    free(n);
}

lam__node *lam__node_of(lam_tensor *t) {
    lam__tape_info *i = lam__tape_info_of(t);
    return i ? i->node : NULL;
}

lam_status lam__record_op(lam__grad_kind kind, lam_op op, lam_tensor *const *inputs, uint32_t n,
                          lam_tensor **out, float scalar, int32_t ta, int32_t tb) {
    if (!recording || *out == NULL) {
        return LAM_OK;
    }
    bool any = false;
    for (uint32_t i = 0; i < n; i++) {
        any = any || lam__needs_grad(inputs[i]);
    }
    if (!any) {
        return LAM_OK;
    }
    /* One block: the node, then its inputs (pointers, so the array after the struct is
     * aligned). */
    _Static_assert(sizeof(lam__node) % sizeof(lam_tensor *) == 0, "inputs after the node");
    lam__node *node = calloc(1, sizeof *node + (size_t)(n ? n : 1) * sizeof(lam_tensor *));
    lam_tensor **in = node != NULL ? (lam_tensor **)(void *)(node + 1) : NULL;
    lam__tape_info *oi = lam__tape_info_get(*out);
    if (node == NULL || oi == NULL) {
        free(node);
        lam_tensor_release(*out);
        *out = NULL;
        return lam__error(LAM_ERR_OUT_OF_MEMORY, "%s: Out of memory recording the op",
                          lam__op_name(op));
    }
    for (uint32_t i = 0; i < n; i++) {
        in[i] = lam_tensor_retain(inputs[i]);
    }
    node->kind = kind;
    node->op = op;
    node->n_in = n;
    node->in = in;
    node->out = *out;
    node->scalar = scalar;
    node->ta = ta;
    node->tb = tb;
    lam__node_free(oi->node);
    oi->node = node;
    return LAM_OK;
}

lam_status lam__record_closure(lam_tensor *const *inputs, uint32_t n, lam_tensor **out,
                               lam__closure closure) {
    const lam__node *before = lam__node_of(*out);
    lam_status st = lam__record_op(LAM__G_CLOSURE, LAM_OP_INVALID, inputs, n, out, 0.0f, 0, 0);
    lam__node *node = st == LAM_OK ? lam__node_of(*out) : NULL;
    if (node != NULL && node != before) {
        node->closure = closure;
        return LAM_OK;
    }
    if (closure.free) {
        closure.free(closure.ctx);
    }
    return st;
}

lam_status lam_tensor_attach_grad(lam_tensor *t) {
    if (t == NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "attach_grad: Invalid argument, NULL tensor");
    }
    lam_tensor *g;
    lam_status st = lam_tensor_create(lam_tensor_ctx(t), &t->shape, &g);
    if (st != LAM_OK) {
        return st;
    }
    lam__tape_info *i = lam__tape_info_get(t);
    if (i == NULL) {
        lam_tensor_release(g);
        return lam__error(LAM_ERR_OUT_OF_MEMORY, "attach_grad: Out of memory");
    }
    lam_tensor_release(i->attached);
    i->attached = g;
    /* A leaf again: whatever recorded op made it no longer matters. */
    lam__node_free(i->node);
    i->node = NULL;
    return LAM_OK;
}

lam_status lam_tensor_grad(const lam_tensor *t, lam_tensor **out) {
    if (out == NULL || t == NULL) {
        if (out) {
            *out = NULL;
        }
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "lam_tensor_grad: Invalid argument, NULL");
    }
    const lam__tape_info *i = lam__tape_info_of(t);
    if (i == NULL || i->attached == NULL) {
        *out = NULL;
        return lam__error(LAM_ERR_STATE,
                          "lam_tensor_grad: No gradient, call lam_tensor_attach_grad() on the "
                          "tensor before recording");
    }
    *out = lam_tensor_retain(i->attached);
    return LAM_OK;
}

lam_status lam_tensor_detach(lam_tensor *t, lam_tensor **out) {
    if (out == NULL || t == NULL) {
        if (out) {
            *out = NULL;
        }
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "detach: Invalid argument, NULL");
    }
    return lam__tensor_reshape_view(t, &t->shape, out);
}
