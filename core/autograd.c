/*
 * Autograd: ops record a node on their output while recording is on; backward walks the
 * nodes reachable from the head in reverse topological order and applies each op's gradient
 * rule, written with front-end ops so it runs on every backend.
 */
#include "autograd.h"
#include "error.h"
#include "ops.h"
#include "tensor.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* Recording is per thread (a thread starts with it off), so one thread's training never makes
 * another thread's inference record. The fused-backward switch is a process-wide setting. */
static _Thread_local bool recording;
static atomic_bool fused = true;
/* Visit marks of backward passes: every pass takes its own mark, so passes on other threads
 * (other models) never mistake each other's marks. */
static atomic_uint_fast64_t epoch_counter;

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

bool lam__recording(void) {
    return recording;
}

int lam_autograd_set_fused_backward(int on) {
    return atomic_exchange_explicit(&fused, on != 0, memory_order_relaxed);
}

bool lam__fused_backward(void) {
    return atomic_load_explicit(&fused, memory_order_relaxed);
}

/*
 * What the tape keeps on a tensor, in its extension slot (allocated on first need): the
 * recorded op that made it, the gradient buffer of an attach_grad leaf, the leaf settings a
 * parameter gives its data (lam__tape_leaf_set), and the state of a backward pass.
 */
typedef struct info {
    lam__node *node;       /* the recorded op that made this tensor, owned */
    lam_tensor *attached;  /* gradient buffer of a lam_tensor_attach_grad leaf */
    bool leaf_wants;       /* a parameter's data that needs a gradient */
    bool leaf_add;         /* its gradient is added to the sink (grad_req add), not written */
    lam_tensor *leaf_sink; /* where its gradient goes (the parameter's gradient buffer) */
    lam_tensor *bw_grad;   /* gradient accumulated during a backward pass */
    uint64_t bw_mark;      /* visit mark of the backward pass */
} info;

static void info_destroy(void *data) {
    info *i = data;
    lam__node_free(i->node);
    lam_tensor_release(i->attached);
    lam_tensor_release(i->leaf_sink);
    lam_tensor_release(i->bw_grad);
    free(i);
}

static info *info_of(const lam_tensor *t) {
    return t != NULL && t->ext.destroy == info_destroy ? t->ext.data : NULL;
}

/* The tape's info on t, allocated when missing; NULL when out of memory (or the slot is
 * taken by something else). */
static info *info_get(lam_tensor *t) {
    info *i = info_of(t);
    if (i != NULL || t->ext.destroy != NULL) {
        return i;
    }
    i = calloc(1, sizeof *i);
    if (i != NULL) {
        t->ext = (lam__tensor_ext){i, info_destroy};
    }
    return i;
}

bool lam__needs_grad(const lam_tensor *t) {
    const info *i = info_of(t);
    return i != NULL && (i->node != NULL || i->attached != NULL || i->leaf_wants);
}

lam_status lam__tape_leaf_set(lam_tensor *t, bool wants, lam_tensor *sink, bool add) {
    if (t == NULL) {
        return LAM_OK;
    }
    info *i = info_of(t);
    if (i == NULL && !wants && sink == NULL) {
        return LAM_OK;
    }
    if (i == NULL && (i = info_get(t)) == NULL) {
        return lam__error(LAM_ERR_OUT_OF_MEMORY, "autograd: Out of memory");
    }
    lam_tensor_retain(sink);
    lam_tensor_release(i->leaf_sink);
    i->leaf_sink = sink;
    i->leaf_wants = wants;
    i->leaf_add = add;
    return LAM_OK;
}

lam_status lam__tape_reserve(lam_tensor *t) {
    if (t != NULL && info_get(t) == NULL) {
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
    free(n->in);
    if (n->closure.free) {
        n->closure.free(n->closure.ctx);
    }
    free(n);
}

lam__node *lam__node_of(lam_tensor *t) {
    info *i = info_of(t);
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
    lam__node *node = calloc(1, sizeof *node);
    lam_tensor **in = calloc(n ? n : 1, sizeof *in);
    info *oi = info_get(*out);
    if (node == NULL || in == NULL || oi == NULL) {
        free(node);
        free(in);
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
    info *i = info_get(t);
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
    const info *i = info_of(t);
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

/* ---- backward ---- */

/* Adds g into t's bw_grad (taking a reference to g). */
static lam_status accumulate(lam_tensor *t, lam_tensor *g) {
    info *i = info_get(t);
    if (i == NULL) {
        return lam__error(LAM_ERR_OUT_OF_MEMORY, "backward: Out of memory");
    }
    if (i->bw_grad == NULL) {
        i->bw_grad = lam_tensor_retain(g);
        return LAM_OK;
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

/* Sums g down to `shape` (undoing broadcasting). Returns a new reference. */
static lam_status unbroadcast(lam_tensor *g, const lam_shape *shape, lam_tensor **out) {
    if (lam_shape_equal(&g->shape, shape)) {
        *out = lam_tensor_retain(g);
        return LAM_OK;
    }
    uint32_t nd = g->shape.ndim, off = nd - shape->ndim;
    int32_t axes[LAM_MAX_DIMS];
    uint32_t n = 0;
    for (uint32_t i = 0; i < nd; i++) {
        if (i < off || (shape->dims[i - off] == 1 && g->shape.dims[i] != 1)) {
            axes[n++] = (int32_t)i;
        }
    }
    lam_tensor *s;
    lam_status st = n ? lam_op_sum(g, axes, n, 1, &s) : (s = lam_tensor_retain(g), LAM_OK);
    if (st != LAM_OK) {
        return st;
    }
    st = lam_tensor_reshape(s, shape, out);
    lam_tensor_release(s);
    return st;
}

/* A tensor of `shape` holding g broadcast (g has the reduced shape with keepdims). */
static lam_status broadcast_to(lam_tensor *g, const lam_shape *shape, lam_tensor **out) {
    lam_status st = lam__tensor_alloc(lam_tensor_ctx(g), shape, out);
    if (st != LAM_OK) {
        return st;
    }
    st = lam_op_assign(*out, g);
    if (st != LAM_OK) {
        lam_tensor_release(*out);
        *out = NULL;
    }
    return st;
}

#define TRY(call)                                                                                  \
    do {                                                                                           \
        if ((st = (call)) != LAM_OK) {                                                             \
            goto done;                                                                             \
        }                                                                                          \
    } while (0)

/* Gradient of a reduced output back to the input: g reshaped with keepdims, broadcast. */
static lam_status reduce_grad(lam__node *n, lam_tensor *g, lam_tensor **gx) {
    lam_tensor *x = n->in[0], *gk = NULL, *gb = NULL, *mask = NULL, *outk = NULL, *outb = NULL;
    lam_status st = LAM_OK;
    lam_shape ks = x->shape;
    int64_t count = 1;
    for (uint32_t i = 0; i < ks.ndim; i++) {
        if (n->mask[i]) {
            count *= ks.dims[i];
            ks.dims[i] = 1;
        }
    }
    TRY(lam_tensor_reshape(g, &ks, &gk));
    TRY(broadcast_to(gk, &x->shape, &gb));
    if (n->op == LAM_OP_REDUCE_SUM) {
        *gx = lam_tensor_retain(gb);
    } else if (n->op == LAM_OP_REDUCE_MEAN) {
        TRY(lam_op_mul_scalar(gb, count > 0 ? 1.0f / (float)count : 0.0f, gx));
    } else {
        /* max/min: the gradient goes to every element equal to the extreme. */
        TRY(lam_tensor_reshape(n->out, &ks, &outk));
        TRY(broadcast_to(outk, &x->shape, &outb));
        TRY(n->op == LAM_OP_REDUCE_MAX ? lam_op_greater_equal(x, outb, &mask)
                                       : lam_op_greater_equal(outb, x, &mask));
        TRY(lam_op_mul(gb, mask, gx));
    }
done:
    lam_tensor_release(gk);
    lam_tensor_release(gb);
    lam_tensor_release(mask);
    lam_tensor_release(outk);
    lam_tensor_release(outb);
    return st;
}

static lam_status unary_grad(lam__node *n, lam_tensor *g, lam_tensor **gx) {
    lam_tensor *x = n->in[0], *y = n->out, *a = NULL, *b = NULL;
    lam_status st = LAM_OK;
    switch (n->op) {
    case LAM_OP_COPY:
        *gx = lam_tensor_retain(g);
        break;
    case LAM_OP_NEG:
        TRY(lam_op_neg(g, gx));
        break;
    case LAM_OP_ABS: /* sign(x) = step(x) - step(-x) */
        TRY(lam_op_neg(x, &a));
        TRY(lam_op_step(a, &b));
        lam_tensor_release(a);
        a = NULL;
        TRY(lam_op_step(x, &a));
        {
            lam_tensor *sign;
            TRY(lam_op_sub(a, b, &sign));
            st = lam_op_mul(g, sign, gx);
            lam_tensor_release(sign);
        }
        break;
    case LAM_OP_SQUARE:
        TRY(lam_op_mul_scalar(x, 2.0f, &a));
        TRY(lam_op_mul(g, a, gx));
        break;
    case LAM_OP_SQRT: /* g / (2 y) */
        TRY(lam_op_mul_scalar(y, 2.0f, &a));
        TRY(lam_op_div(g, a, gx));
        break;
    case LAM_OP_EXP:
        TRY(lam_op_mul(g, y, gx));
        break;
    case LAM_OP_LOG:
        TRY(lam_op_div(g, x, gx));
        break;
    case LAM_OP_RELU:
        TRY(lam_op_step(x, &a));
        TRY(lam_op_mul(g, a, gx));
        break;
    case LAM_OP_SIGMOID: /* g y (1 - y) */
        TRY(lam_op_rsub_scalar(y, 1.0f, &a));
        TRY(lam_op_mul(y, a, &b));
        TRY(lam_op_mul(g, b, gx));
        break;
    case LAM_OP_TANH: /* g (1 - y^2) */
        TRY(lam_op_square(y, &a));
        TRY(lam_op_rsub_scalar(a, 1.0f, &b));
        TRY(lam_op_mul(g, b, gx));
        break;
    case LAM_OP_SOFTRELU: /* g sigmoid(x) */
        TRY(lam_op_sigmoid(x, &a));
        TRY(lam_op_mul(g, a, gx));
        break;
    default:
        st = lam__error(LAM_ERR_INTERNAL, "backward: No gradient rule for %s", lam__op_name(n->op));
    }
done:
    lam_tensor_release(a);
    lam_tensor_release(b);
    return st;
}

static lam_status scalar_grad(lam__node *n, lam_tensor *g, lam_tensor **gx) {
    lam_tensor *x = n->in[0], *a = NULL, *b = NULL;
    float s = n->scalar;
    lam_status st = LAM_OK;
    switch (n->op) {
    case LAM_OP_ADD_SCALAR:
        *gx = lam_tensor_retain(g);
        break;
    case LAM_OP_MUL_SCALAR:
        TRY(lam_op_mul_scalar(g, s, gx));
        break;
    case LAM_OP_RSUB_SCALAR:
        TRY(lam_op_neg(g, gx));
        break;
    case LAM_OP_DIV_SCALAR:
        TRY(lam_op_div_scalar(g, s, gx));
        break;
    case LAM_OP_RDIV_SCALAR: /* d(s/x) = -s/x^2 */
        TRY(lam_op_square(x, &a));
        TRY(lam_op_rdiv_scalar(a, -s, &b));
        TRY(lam_op_mul(g, b, gx));
        break;
    case LAM_OP_POW_SCALAR: /* s x^(s-1) */
        TRY(lam_op_pow_scalar(x, s - 1.0f, &a));
        TRY(lam_op_mul_scalar(a, s, &b));
        TRY(lam_op_mul(g, b, gx));
        break;
    default:
        st = lam__error(LAM_ERR_INTERNAL, "backward: No gradient rule for %s", lam__op_name(n->op));
    }
done:
    lam_tensor_release(a);
    lam_tensor_release(b);
    return st;
}

static lam_status binary_grad(lam__node *n, lam_tensor *g, lam_tensor **ga, lam_tensor **gb) {
    lam_tensor *x = n->in[0], *y = n->in[1], *fa = NULL, *fb = NULL, *t = NULL, *u = NULL;
    lam_status st = LAM_OK;
    switch (n->op) {
    case LAM_OP_ADD:
        fa = lam_tensor_retain(g);
        fb = lam_tensor_retain(g);
        break;
    case LAM_OP_SUB:
        fa = lam_tensor_retain(g);
        TRY(lam_op_neg(g, &fb));
        break;
    case LAM_OP_MUL:
        TRY(lam_op_mul(g, y, &fa));
        TRY(lam_op_mul(g, x, &fb));
        break;
    case LAM_OP_DIV: /* d(x/y) = g/y, -g x / y^2 */
        TRY(lam_op_div(g, y, &fa));
        TRY(lam_op_div(fa, y, &t));
        TRY(lam_op_mul(t, x, &u));
        TRY(lam_op_neg(u, &fb));
        break;
    case LAM_OP_MAXIMUM:
    case LAM_OP_MINIMUM: /* ties go to x */
        TRY(n->op == LAM_OP_MAXIMUM ? lam_op_greater_equal(x, y, &t)
                                    : lam_op_greater_equal(y, x, &t));
        TRY(lam_op_mul(g, t, &fa));
        TRY(lam_op_rsub_scalar(t, 1.0f, &u));
        TRY(lam_op_mul(g, u, &fb));
        break;
    default:
        st = lam__error(LAM_ERR_INTERNAL, "backward: No gradient rule for %s", lam__op_name(n->op));
        goto done;
    }
    TRY(unbroadcast(fa, &x->shape, ga));
    TRY(unbroadcast(fb, &y->shape, gb));
done:
    lam_tensor_release(fa);
    lam_tensor_release(fb);
    lam_tensor_release(t);
    lam_tensor_release(u);
    return st;
}

static lam_status softmax_grad(lam__node *n, lam_tensor *g, lam_tensor **gx) {
    lam_tensor *y = n->out, *a = NULL, *s = NULL, *b = NULL;
    int32_t axis = n->axis;
    lam_status st = LAM_OK;
    if (n->ta) { /* log_softmax: g - softmax(x) * sum(g) */
        TRY(lam_op_exp(y, &a));
        TRY(lam_op_sum(g, &axis, 1, 1, &s));
        TRY(lam_op_mul(a, s, &b));
        TRY(lam_op_sub(g, b, gx));
    } else { /* softmax: y * (g - sum(g y)) */
        TRY(lam_op_mul(g, y, &a));
        TRY(lam_op_sum(a, &axis, 1, 1, &s));
        TRY(lam_op_sub(g, s, &b));
        TRY(lam_op_mul(y, b, gx));
    }
done:
    lam_tensor_release(a);
    lam_tensor_release(s);
    lam_tensor_release(b);
    return st;
}

/* Applies the node's rule and accumulates into its inputs. */
static lam_status apply(lam__node *n, lam_tensor *g) {
    lam_tensor *grads[2] = {NULL, NULL};
    lam_status st = LAM_OK;
    switch (n->kind) {
    case LAM__G_BINARY:
        st = binary_grad(n, g, &grads[0], &grads[1]);
        break;
    case LAM__G_SCALAR:
        st = scalar_grad(n, g, &grads[0]);
        break;
    case LAM__G_UNARY:
        st = unary_grad(n, g, &grads[0]);
        break;
    case LAM__G_MATMUL: {
        /* Each product costs as much as the forward: skip the one nobody needs (the input
         * batch of a first layer has no gradient). */
        lam_tensor *a = n->in[0], *b = n->in[1];
        if (lam__needs_grad(a)) {
            st = n->ta ? lam_op_matmul(b, g, n->tb, 1, &grads[0])
                       : lam_op_matmul(g, b, 0, !n->tb, &grads[0]);
        }
        if (st == LAM_OK && lam__needs_grad(b)) {
            st = n->tb ? lam_op_matmul(g, a, 1, n->ta, &grads[1])
                       : lam_op_matmul(a, g, !n->ta, 0, &grads[1]);
        }
        break;
    }
    case LAM__G_RESHAPE:
        st = lam_tensor_reshape(g, &n->in[0]->shape, &grads[0]);
        break;
    case LAM__G_TRANSPOSE:
        st = lam_op_transpose(g, &grads[0]);
        break;
    case LAM__G_REDUCE:
        st = reduce_grad(n, g, &grads[0]);
        break;
    case LAM__G_SOFTMAX:
        st = softmax_grad(n, g, &grads[0]);
        break;
    case LAM__G_CLOSURE:
        return n->closure.backward(n->closure.ctx, n, g);
    }
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
    info_of(head)->bw_mark = epoch;
    stack[depth++] = (frame){head, 0};
    while (depth > 0) {
        frame *f = &stack[depth - 1];
        lam__node *n = info_of(f->t)->node;
        if (n != NULL && f->next < n->n_in) {
            lam_tensor *in = n->in[f->next++];
            if (lam__needs_grad(in) && info_of(in)->bw_mark != epoch) {
                info_of(in)->bw_mark = epoch;
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

/* Delivers a leaf's accumulated gradient to where the user reads it. */
static lam_status deliver(lam_tensor *t) {
    const info *i = info_of(t);
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
        return lam_op_assign(dst, i->bw_grad);
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
        info_of(head)->bw_grad = g0;
    }
    /* Every tensor in the order needs a gradient, so it has the tape's info. */
    for (size_t i = o.n; st == LAM_OK && i-- > 0;) {
        const info *ti = info_of(o.items[i]);
        if (ti->node != NULL && ti->bw_grad != NULL) {
            st = apply(ti->node, ti->bw_grad);
        }
    }
    for (size_t i = 0; st == LAM_OK && i < o.n; i++) {
        if (info_of(o.items[i])->node == NULL) {
            st = deliver(o.items[i]);
        }
    }
    for (size_t i = 0; i < o.n; i++) {
        info *ti = info_of(o.items[i]);
        lam_tensor_release(ti->bw_grad);
        ti->bw_grad = NULL;
    }
    free(o.items);
    lam_autograd_record_end(was);
    return st;
}
