/*
 * The backward pass: walks the nodes reachable from the head in reverse topological order,
 * applies each node's gradient rule (grad_rules.c) or its own closure, accumulates the
 * gradients, and delivers them to the leaves (attach_grad buffers, parameters' gradients).
 */
#include "backward.h"
#include "error.h"
#include "grad_rules.h"
#include "ops.h"
#include "tape.h"
#include "tensor.h"

#include <stdatomic.h>
#include <stdlib.h>

/* Visit marks of backward passes: every pass takes its own mark, so passes on other threads
 * (other models) never mistake each other's marks. */
static atomic_uint_fast64_t epoch_counter;

/* True when acc += g may be done in acc's own buffer, where nothing else can tell: the pass
 * holds acc's only reference and acc its storage's only one (no view, no wrapped host memory),
 * both float32 of one shape on one context. */
static bool add_in_place(const lam_tensor *acc, const lam_tensor *g) {
    const lam__storage *s = acc->storage;
    return atomic_load(&acc->refcount) == 1 && s != NULL && g->storage != NULL &&
           atomic_load(&s->refcount) == 1 && s->release == NULL && s != g->storage &&
           s->ctx == g->storage->ctx && acc->dtype == LAM_DTYPE_F32 && g->dtype == LAM_DTYPE_F32 &&
           lam_shape_equal(&acc->shape, &g->shape);
}

/* Adds g into t's bw_grad (taking a reference to g). */
static lam_status accumulate(lam_tensor *t, lam_tensor *g) {
    lam__tape_info *i = lam__tape_info_get(t);
    if (i == NULL) {
        return lam__error(LAM_ERR_OUT_OF_MEMORY, "backward: Out of memory");
    }
    if (i->bw_grad == NULL) {
        i->bw_grad = lam_tensor_retain(g);
        return LAM_OK;
    }
    if (add_in_place(i->bw_grad, g)) { /* 1 * a + 1 * b: the bits of a + b, no new tensor */
        return lam__axpby_inplace(i->bw_grad, 1.0f, g, 1.0f);
    }
    lam_tensor *sum;
    lam_status st = lam_op_add(i->bw_grad, g, &sum);
    if (st != LAM_OK) {
        return st;
    }
    lam_tensor_release(i->bw_grad);
    i->bw_grad = sum;
    return LAM_OK;
}

lam_status lam__grad_accumulate(lam_tensor *leaf, const lam_tensor *g) {
    if (!lam_shape_equal(&leaf->shape, &g->shape)) {
        char b1[160], b2[160];
        return lam__error(LAM_ERR_SHAPE, "backward: Gradient shape %s differs from %s",
                          lam_shape_format(&g->shape, b1, sizeof b1),
                          lam_shape_format(&leaf->shape, b2, sizeof b2));
    }
    return accumulate(leaf, (lam_tensor *)g);
}

/* Applies the node's rule (or its closure) and accumulates into its inputs. */
static lam_status apply(lam__node *n, lam_tensor *g) {
    if (n->kind == LAM__G_CLOSURE) {
        return n->closure.backward(n->closure.ctx, n, g);
    }
    lam_tensor *grads[2];
    lam_status st = lam__grad_rule(n, g, grads);
    for (uint32_t i = 0; st == LAM_OK && i < n->n_in && i < 2; i++) {
        if (grads[i] != NULL && lam__needs_grad(n->in[i])) {
            st = accumulate(n->in[i], grads[i]);
        }
    }
    lam_tensor_release(grads[0]);
    lam_tensor_release(grads[1]);
    return st;
}

/* Tensors reachable from the head, inputs before the tensors made from them. */
typedef struct order {
    lam_tensor **items;
    size_t n, cap;
} order;

static bool push(order *o, lam_tensor *t) {
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 64;
        lam_tensor **items = realloc(o->items, cap * sizeof *items);
        if (items == NULL) {
            return false;
        }
        o->items = items;
        o->cap = cap;
    }
    o->items[o->n++] = t;
    return true;
}

static lam_status topo(lam_tensor *head, uint64_t epoch, order *out) {
    /* Iterative DFS: a stack of (tensor, next input index). */
    typedef struct frame {
        lam_tensor *t;
        uint32_t next;
    } frame;
    size_t cap = 64, depth = 0;
    frame *stack = malloc(cap * sizeof *stack);
    if (stack == NULL) {
        return lam__error(LAM_ERR_OUT_OF_MEMORY, "backward: Out of memory");
    }
    lam__tape_info_of(head)->bw_mark = epoch;
    stack[depth++] = (frame){head, 0};
    while (depth > 0) {
        frame *f = &stack[depth - 1];
        lam__node *n = lam__tape_info_of(f->t)->node;
        if (n != NULL && f->next < n->n_in) {
            lam_tensor *in = n->in[f->next++];
            if (lam__needs_grad(in) && lam__tape_info_of(in)->bw_mark != epoch) {
                lam__tape_info_of(in)->bw_mark = epoch;
                if (depth == cap) {
                    frame *s = realloc(stack, 2 * cap * sizeof *s);
                    if (s == NULL) {
                        free(stack);
                        return lam__error(LAM_ERR_OUT_OF_MEMORY, "backward: Out of memory");
                    }
                    stack = s;
                    cap *= 2;
                }
                stack[depth++] = (frame){in, 0};
            }
            continue;
        }
        if (!push(out, f->t)) {
            free(stack);
            return lam__error(LAM_ERR_OUT_OF_MEMORY, "backward: Out of memory");
        }
        depth--;
    }
    free(stack);
    return LAM_OK;
}

/*
 * Hands g's storage to dst and dst's to g instead of copying g into dst, where nothing else can
 * tell: g is held by the tape alone, each tensor is the only user of its storage (no view, no
 * bucket, no wrapped host memory), both start at element 0 on the same context with the same
 * dtype and shape. dst (an attach_grad buffer or a parameter's gradient) keeps its identity and
 * now holds g's values; its old buffer goes with g. The copy was a tenth of a BatchNorm's or a
 * max pooling's forward and backward.
 */
static bool hand_over(lam_tensor *dst, lam_tensor *g) {
    lam__storage *a = dst->storage, *b = g->storage;
    if (atomic_load(&g->refcount) != 1 || a == NULL || b == NULL || a == b ||
        atomic_load(&a->refcount) != 1 || atomic_load(&b->refcount) != 1 || a->ctx != b->ctx ||
        a->release != NULL || b->release != NULL || dst->offset != 0 || g->offset != 0 ||
        dst->dtype != g->dtype || !lam_shape_equal(&dst->shape, &g->shape)) {
        return false;
    }
    const size_t need = (size_t)dst->numel * lam_dtype_size(dst->dtype);
    if (a->bytes < need || b->bytes < need) {
        return false;
    }
    dst->storage = b;
    g->storage = a;
    return true;
}

/* Delivers a leaf's accumulated gradient to where the user reads it. */
static lam_status deliver(lam_tensor *t) {
    const lam__tape_info *i = lam__tape_info_of(t);
    if (i == NULL || i->bw_grad == NULL) {
        return LAM_OK;
    }
    lam_tensor *dst = NULL;
    bool add = false;
    if (i->attached != NULL) {
        dst = i->attached;
    } else if (i->leaf_wants && i->leaf_sink != NULL) {
        dst = i->leaf_sink;
        add = i->leaf_add;
    }
    if (dst == NULL) {
        return LAM_OK;
    }
    if (!add) {
        return hand_over(dst, i->bw_grad) ? LAM_OK : lam_op_assign(dst, i->bw_grad);
    }
    lam_tensor *sum;
    lam_status st = lam_op_add(dst, i->bw_grad, &sum);
    if (st == LAM_OK) {
        st = lam_op_assign(dst, sum);
        lam_tensor_release(sum);
    }
    return st;
}

lam_status lam_autograd_backward(lam_tensor *head, const lam_tensor *head_grad) {
    if (head == NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "backward: Invalid argument, NULL head");
    }
    if (!lam__needs_grad(head)) {
        return lam__error(LAM_ERR_STATE,
                          "backward: Not recorded, the head was not computed inside "
                          "lam_autograd_set_recording(1) from parameters or tensors that need "
                          "gradients");
    }
    if (head_grad != NULL && !lam_shape_equal(&head_grad->shape, &head->shape)) {
        char b1[160], b2[160];
        return lam__error(LAM_ERR_SHAPE, "backward: Shape mismatch, head is %s, head_grad is %s",
                          lam_shape_format(&head->shape, b1, sizeof b1),
                          lam_shape_format(&head_grad->shape, b2, sizeof b2));
    }
    int was = lam_autograd_record_begin(0);
    uint64_t mark = atomic_fetch_add_explicit(&epoch_counter, 1, memory_order_relaxed) + 1;
    order o = {0};
    lam_status st = topo(head, mark, &o);
    lam_tensor *g0 = NULL;
    if (st == LAM_OK) {
        st = head_grad ? lam_op_copy(head_grad, &g0)
                       : lam_tensor_full(lam_tensor_ctx(head), &head->shape, 1.0f, &g0);
    }
    if (st == LAM_OK) {
        lam__tape_info_of(head)->bw_grad = g0;
    }
    /* Every tensor in the order needs a gradient, so it has the tape's info. Tensors made from
     * a leaf come after it in the order, so when the reverse walk reaches a leaf its gradient
     * is complete: a leaf with a hook gets it there (the distributed trainer overlaps its
     * reduction with the rest of the pass), the others at the end. */
    for (size_t i = o.n; st == LAM_OK && i-- > 0;) {
        const lam__tape_info *ti = lam__tape_info_of(o.items[i]);
        if (ti->node != NULL && ti->bw_grad != NULL) {
            st = apply(ti->node, ti->bw_grad);
        } else if (ti->node == NULL && ti->leaf_done != NULL && ti->bw_grad != NULL) {
            st = deliver(o.items[i]);
            if (st == LAM_OK) {
                st = ti->leaf_done(ti->leaf_done_ctx);
            }
        }
    }
    for (size_t i = 0; st == LAM_OK && i < o.n; i++) {
        const lam__tape_info *ti = lam__tape_info_of(o.items[i]);
        if (ti->node == NULL && ti->leaf_done == NULL) {
            st = deliver(o.items[i]);
        }
    }
    for (size_t i = 0; i < o.n; i++) {
        lam__tape_info *ti = lam__tape_info_of(o.items[i]);
        lam_tensor_release(ti->bw_grad);
        ti->bw_grad = NULL;
    }
    free(o.items);
    lam_autograd_record_end(was);
    return st;
}
