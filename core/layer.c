/* Blocks made from layer plugins (the layer block class): attribute parsing, the layer side of
 * the host table, shape inference, forward, and the fused backward recorded as a tape closure. */
#define _POSIX_C_SOURCE 200809L
#include "layer.h"
#include "tape.h"
#include "backward.h"
#include "block.h"
#include "callback.h"
#include "error.h"
#include "layer_attrs.h"
#include "param.h"
#include "registry.h"
#include "rng.h"
#include "shape.h"
#include "start.h"
#include "tensor.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <stdatomic.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The most inputs and outputs one layer call takes here. */
#define LAYER_MAX_IO 16

/* Validated attribute values, one per schema entry (defaults applied). */
/* A layer block's own data (its block's impl); the plugin sees it as lam_layer. */
struct lam_layer {
    lam_block *block; /* weak: the block owns this */
    const lam__layer_type *type;
    void *state;
    struct lam__attrs *attrs;
    lam_block *share; /* while creating a shared layer */
    bool creating;
    _Atomic uint64_t rng_offset; /* elements drawn since rng_generation (layer_rng) */
    _Atomic uint64_t rng_generation;
};

static lam_layer *layer_of(const lam_block *b) {
    return b->impl;
}

/* ---- parameters for plugins ---- */

static lam_param *layer_param(lam_layer *layer, const char *name) {
    return layer ? lam_block_param(layer->block, name) : NULL;
}

lam_status lam__host_declare_param(lam_layer *layer, const char *name, const lam_shape *shape,
                                   const char *init, uint32_t flags) {
    if (layer == NULL || shape == NULL || name == NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "layer_declare_param: Invalid argument, NULL layer, name or shape");
    }
    lam_block *b = layer->block;
    if (!layer->creating) {
        return lam__error(LAM_ERR_STATE, "%s: Invalid state, parameters are declared in create",
                          b->name);
    }
    if ((flags & ~(LAM_PARAM_CONSTANT | LAM_PARAM_STATE)) ||
        (flags & LAM_PARAM_CONSTANT && flags & LAM_PARAM_STATE)) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "%s: Unknown parameter flags 0x%x", b->name,
                          flags);
    }
    if (layer->share != NULL) {
        /* A shared layer takes the other layer's parameter itself, after checking the shape. */
        lam_param *p = lam_block_param(layer->share, name);
        if (p == NULL) {
            return lam__error(LAM_ERR_INVALID_ARGUMENT,
                              "%s: Cannot share, %s has no parameter '%s'", b->name,
                              layer->share->name, name);
        }
        bool ok = p->shape.ndim == shape->ndim;
        for (uint32_t i = 0; ok && i < shape->ndim; i++) {
            ok = shape->dims[i] < 0 || p->shape.dims[i] < 0 || shape->dims[i] == p->shape.dims[i];
        }
        if (!ok) {
            char b1[160], b2[160];
            return lam__error(LAM_ERR_SHAPE,
                              "%s: Cannot share %s, it has shape %s, this layer declares %s",
                              b->name, p->name, lam_shape_format(&p->shape, b1, sizeof b1),
                              lam_shape_format(shape, b2, sizeof b2));
        }
        for (uint32_t i = 0; i < shape->ndim; i++) {
            if (p->shape.dims[i] < 0) {
                p->shape.dims[i] = shape->dims[i];
            }
        }
        return lam__block_add_param(b, name, p);
    }
    lam_initializer *in = NULL;
    if (init != NULL && init[0] != '\0') {
        lam_status st = lam_init_parse(init, &in);
        if (st != LAM_OK) {
            return lam__error_prefix(st, "%s: parameter '%s'", b->name, name);
        }
    }
    lam_status st = lam_block_param_new(b, name, shape, in, NULL);
    lam_initializer_release(in);
    if (st == LAM_OK && (flags & (LAM_PARAM_CONSTANT | LAM_PARAM_STATE))) {
        lam_param *p = lam_block_param(b, name);
        p->flags |= flags & (LAM_PARAM_CONSTANT | LAM_PARAM_STATE);
        p->grad_req = LAM_GRAD_NULL;
    }
    return st;
}

lam_status lam__host_param_assign(lam_layer *layer, const char *name, const lam_tensor *value) {
    if (layer == NULL || name == NULL || value == NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "layer_param_assign: Invalid argument, NULL layer, name or value");
    }
    lam_param *p = lam_block_param(layer->block, name);
    if (p == NULL || !(p->flags & LAM_PARAM_STATE)) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "%s: Cannot assign '%s', %s",
                          layer->block->name, name,
                          p == NULL ? "the layer has no such parameter"
                                    : "it is not declared with LAM_PARAM_STATE");
    }
    if (p->data == NULL) {
        return lam__error(LAM_ERR_DEFERRED_INIT, "%s: Cannot assign %s, it is not initialized",
                          layer->block->name, p->name);
    }
    int was = lam_autograd_record_begin(0);
    lam_status st = lam_op_assign(p->data, value);
    lam_autograd_record_end(was);
    return st == LAM_OK ? LAM_OK
                        : lam__error_prefix(st, "%s: assigning %s", layer->block->name, p->name);
}

lam_status lam__host_layer_rng(lam_layer *layer, uint64_t count, lam_rng_key *key) {
    if (layer == NULL || key == NULL || key->struct_size < sizeof *key) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "layer_rng: Invalid argument, NULL layer or key, or key's struct_size "
                          "too small");
    }
    uint64_t gen = lam__seed_generation();
    if (atomic_exchange_explicit(&layer->rng_generation, gen, memory_order_relaxed) != gen) {
        atomic_store_explicit(&layer->rng_offset, 0, memory_order_relaxed);
    }
    key->seed = lam_seed_get();
    key->key = lam__rng_stream_key(0, layer->block->name);
    key->offset = atomic_fetch_add_explicit(&layer->rng_offset, count, memory_order_relaxed);
    return LAM_OK;
}

lam_status lam__host_param_infer_shape(lam_layer *layer, const char *name, const lam_shape *shape) {
    lam_param *p = layer_param(layer, name);
    if (p == NULL || shape == NULL) {
        return lam__error(LAM_ERR_NOT_FOUND, "%s: Not found, no parameter '%s'",
                          layer ? layer->block->name : "(null)", name ? name : "(null)");
    }
    return lam__param_infer_shape(p, layer->block->name, shape);
}

const lam_shape *lam__host_param_shape(lam_layer *layer, const char *name) {
    lam_param *p = layer_param(layer, name);
    return p ? &p->shape : NULL;
}

lam_status lam__host_param_data(lam_layer *layer, const char *name, const lam_tensor *like,
                                lam_tensor **data) {
    if (data == NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "layer_param_data: Invalid argument, NULL "
                                                    "output");
    }
    *data = NULL;
    lam_param *p = layer_param(layer, name);
    if (p == NULL) {
        return lam__error(LAM_ERR_NOT_FOUND, "%s: Not found, no parameter '%s'",
                          layer ? layer->block->name : "(null)", name ? name : "(null)");
    }
    if (p->data == NULL) {
        lam_tensor *unused;
        return lam_param_data(p, &unused);
    }
    if (like != NULL && lam_tensor_ctx(like) != lam_tensor_ctx(p->data)) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "%s: Context mismatch, parameter %s lives on %s, the input on %s "
                          "(initialize the model on the input's context, or move the input)",
                          layer->block->name, p->name, lam_ctx_name(lam_tensor_ctx(p->data)),
                          lam_ctx_name(lam_tensor_ctx(like)));
    }
    *data = p->data;
    return LAM_OK;
}

/* The layer whose fused backward is running (parameter gradients may be added only then). */
static _Thread_local lam_block *in_backward; /* per thread: other threads run other models */

lam_status lam__host_param_add_grad(lam_layer *layer, const char *name, const lam_tensor *grad) {
    if (layer == NULL || grad == NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "layer_param_add_grad: Invalid argument, NULL layer or gradient");
    }
    if (layer->block != in_backward) {
        return lam__error(LAM_ERR_STATE,
                          "%s: Invalid state, parameter gradients are added only in backward",
                          layer->block->name);
    }
    lam_param *p = layer_param(layer, name);
    if (p == NULL || p->data == NULL) {
        return lam__error(LAM_ERR_NOT_FOUND, "%s: Not found, no parameter '%s'", layer->block->name,
                          name ? name : "(null)");
    }
    if (!lam__needs_grad(p->data)) {
        return LAM_OK; /* constant or grad_req null: nothing to do */
    }
    lam_status st = lam__grad_accumulate(p->data, grad);
    if (st != LAM_OK) {
        return lam__error_prefix(st, "%s: gradient of %s", layer->block->name, p->name);
    }
    return LAM_OK;
}

/* What a layer's callback returned, checked at the boundary (lam__plugin_status). */
static lam_status plugin_status(lam_status st, uint64_t mark, const lam_block *b,
                                const char *callback) {
    if (st == LAM_OK) {
        return LAM_OK; /* the hot path: no message to build (as lam__backend_status) */
    }
    const lam__layer_type *lt = layer_of(b)->type;
    char who[96];
    snprintf(who, sizeof who, "layer type '%s'", lt->desc.name);
    return lam__plugin_status(st, mark, lt->plugin ? lt->plugin->path : NULL, who, b->name,
                              callback);
}

/* The closure of a fused layer node: the layer (retained) and how many of the node's inputs
 * are the layer's inputs (the rest are its parameters' data). */
typedef struct fused {
    lam_block *block;
    uint32_t n_inputs;
} fused;

static void fused_free(void *ctx) {
    fused *f = ctx;
    lam_block_release(f->block);
    free(f);
}

/* The node whose fused backward is running (for layer_input_needs_grad). */
static _Thread_local const lam__node *in_backward_node;
static _Thread_local const fused *in_backward_fused;

int32_t lam__host_input_needs_grad(const lam_layer *layer, uint32_t index) {
    const lam__node *n = in_backward_node;
    const fused *f = in_backward_fused;
    if (layer == NULL || n == NULL || f->block != layer->block || index >= f->n_inputs) {
        return 1; /* outside a backward: the safe answer */
    }
    return lam__needs_grad(n->in[index]) ? 1 : 0;
}

static lam_status fused_backward(void *ctx, const lam__node *n, lam_tensor *g) {
    const fused *f = ctx;
    lam_block *b = f->block;
    lam_layer *layer = layer_of(b);
    const lam_layer_desc *d = &layer->type->desc;
    uint32_t ni = f->n_inputs;
    lam_tensor *grads[LAYER_MAX_IO] = {NULL};
    lam_block *outer = in_backward;
    const lam__node *outer_node = in_backward_node;
    const fused *outer_fused = in_backward_fused;
    in_backward = b;
    in_backward_node = n;
    in_backward_fused = f;
    uint64_t mark = lam__error_mark();
    lam_tensor *outs[1] = {n->out};
    const lam_tensor *gouts[1] = {g};
    /* The plugin's code runs: lam_shutdown refuses meanwhile (tensor.h). */
    lam_status st = lam__call_enter(b->name);
    if (st == LAM_OK) {
        st = d->backward(layer->state, layer, ni, n->in, 1, outs, gouts, grads);
        lam__call_leave();
        st = plugin_status(st, mark, b, "backward");
    }
    in_backward = outer;
    in_backward_node = outer_node;
    in_backward_fused = outer_fused;
    for (uint32_t i = 0; i < ni; i++) {
        if (st == LAM_OK && grads[i] != NULL && lam__needs_grad(n->in[i])) {
            if (!lam_shape_equal(lam_tensor_shape(grads[i]), lam_tensor_shape(n->in[i]))) {
                char b1[160], b2[160];
                st = lam__error(
                    LAM_ERR_INTERNAL,
                    "%s: Fused backward gave input %u a gradient of shape %s, the "
                    "input is %s (a bug in the %s plugin)",
                    b->name, i, lam_shape_format(lam_tensor_shape(grads[i]), b1, sizeof b1),
                    lam_shape_format(lam_tensor_shape(n->in[i]), b2, sizeof b2), d->name);
            } else {
                st = lam__grad_accumulate(n->in[i], grads[i]);
            }
        }
        lam_tensor_release(grads[i]);
    }
    return st;
}

const char *lam__host_layer_name(const lam_layer *layer) {
    return layer ? layer->block->name : "(null)";
}

/* ---- layer blocks ---- */

static lam_status layer_forward(lam_block *b, uint32_t n, lam_tensor *const *inputs,
                                lam_tensor **out);
static void layer_describe(const lam_block *b, lam__strbuf *sb, int indent);
static void layer_destroy(lam_block *b);
static void layer_detach(lam_block *b);

static lam_status layer_forward_outputs(lam_block *b, uint32_t n, lam_tensor *const *inputs,
                                        uint32_t n_want, lam_tensor **outputs);
static uint32_t layer_n_outputs(const lam_block *b);

static const lam__block_class layer_class = {
    .forward = layer_forward,
    .forward_outputs = layer_forward_outputs,
    .n_outputs = layer_n_outputs,
    .describe = layer_describe,
    .destroy = layer_destroy,
    .no_infer_shape = "a layer infers its shapes itself",
    .detach = layer_detach,
};

static lam_status unknown_type(const char *type) {
    lam__strbuf sb = {0};
    for (size_t i = 0; i < lam__layer_type_count(); i++) {
        lam__strbuf_printf(&sb, "%s%s", i ? ", " : "", lam__layer_type_at(i)->desc.name);
    }
    lam_status st = lam__error(LAM_ERR_NOT_FOUND, "%s: Unknown layer type, loaded types: %s", type,
                               sb.data ? sb.data : "none (see `lamina plugins`)");
    lam__strbuf_fini(&sb);
    return st;
}

static lam_status create(const char *type, const char *attrs, lam_block *share, lam_block **out) {
    if (out == NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "lam_layer_create: Invalid argument, out is "
                                                    "NULL");
    }
    *out = NULL;
    if (type == NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "lam_layer_create: Invalid argument, type "
                                                    "is NULL");
    }
    lam_status st = lam__ensure_started();
    if (st != LAM_OK) {
        return st;
    }
    const lam__layer_type *lt = lam__layer_type_find(type);
    if (lt == NULL) {
        return unknown_type(type);
    }
    if (share != NULL && (share->cls != &layer_class || layer_of(share)->type != lt)) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "%s: Cannot share parameters with %s, it is a %s, not a %s", type,
                          share->name, share->type, type);
    }
    lam__attrs *a;
    st = lam__attrs_parse(&lt->desc, attrs, &a);
    if (st != LAM_OK) {
        return st;
    }
    lam_layer *layer = calloc(1, sizeof *layer);
    if (layer == NULL) {
        lam__attrs_free(a);
        return lam__error(LAM_ERR_OUT_OF_MEMORY, "%s: Out of memory", type);
    }
    lam_block *b;
    st = lam__block_alloc(&layer_class, lt->desc.name,
                          lt->desc.prefix ? lt->desc.prefix : lt->desc.name, &b);
    if (st != LAM_OK) {
        lam__attrs_free(a);
        free(layer);
        return st;
    }
    *layer = (lam_layer){.block = b, .type = lt, .attrs = a, .share = share, .creating = true};
    b->impl = layer;
    /* Declaring a shared parameter may fill its unknown dims: remember them, so a create that
     * fails later leaves the layer shared from as it was. */
    lam_shape *saved = NULL;
    if (share != NULL && share->n_params > 0) {
        saved = malloc(share->n_params * sizeof *saved);
        if (saved == NULL) {
            lam_block_release(b);
            return lam__error(LAM_ERR_OUT_OF_MEMORY, "%s: Out of memory", type);
        }
        for (size_t i = 0; i < share->n_params; i++) {
            saved[i] = share->params[i].param->shape;
        }
    }
    uint64_t mark = lam__error_mark();
    st = lt->desc.create(lt->desc.user, layer, (const lam_attrs *)a, &layer->state);
    st = plugin_status(st, mark, b, "create");
    layer->creating = false;
    layer->share = NULL;
    if (st != LAM_OK && saved != NULL) {
        for (size_t i = 0; i < share->n_params; i++) {
            share->params[i].param->shape = saved[i];
        }
    }
    free(saved);
    if (st != LAM_OK) {
        lam_block_release(b);
        return st;
    }
    *out = b;
    return LAM_OK;
}

lam_status lam_layer_create(const char *type, const char *attrs, lam_block **out) {
    return create(type, attrs, NULL, out);
}

lam_status lam_layer_create_shared(const char *type, const char *attrs, lam_block *share,
                                   lam_block **out) {
    if (share == NULL) {
        if (out) {
            *out = NULL;
        }
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "lam_layer_create_shared: Invalid argument, share is NULL");
    }
    return create(type, attrs, share, out);
}

/* Drops the plugin's state and the attributes (parsed against the plugin's descriptor). */
static void layer_detach(lam_block *b) {
    lam_layer *layer = layer_of(b);
    if (layer == NULL) {
        return;
    }
    if (layer->type != NULL && layer->state != NULL) {
        layer->type->desc.destroy(layer->state);
    }
    layer->state = NULL;
    lam__attrs_free(layer->attrs);
    layer->attrs = NULL;
    layer->type = NULL;
}

static void layer_destroy(lam_block *b) {
    layer_detach(b);
    free(layer_of(b));
}

/* Number of outputs of a layer type (0 in the descriptor means 1). */
static uint32_t n_outputs_of(const lam_layer_desc *d) {
    return d->n_outputs == 0 ? 1u : d->n_outputs;
}

/* Checks the number of inputs against the descriptor's arity (plugin.h: min 0 means 1, max 0
 * means min). */
static lam_status check_arity(const lam_block *b, const lam_layer_desc *d, uint32_t n) {
    uint32_t lo = d->min_inputs ? d->min_inputs : 1, hi = d->max_inputs ? d->max_inputs : lo;
    /* A shape error in the words 1.0 layers used for it ("expected 1, got 2"). */
    if (n < lo || n > hi || n > LAYER_MAX_IO) {
        if (lo == hi) {
            return lam__error(LAM_ERR_SHAPE, "%s: Wrong number of inputs, expected %u, got %u",
                              b->name, (unsigned)lo, (unsigned)n);
        }
        return lam__error(LAM_ERR_SHAPE, "%s: Wrong number of inputs, expected %u to %u, got %u",
                          b->name, (unsigned)lo, (unsigned)hi, (unsigned)n);
    }
    return LAM_OK;
}

/* Shape inference through the plugin: the outputs' dtypes and shapes. */
static lam_status infer(lam_block *b, lam_layer *layer, uint32_t n, lam_tensor *const *inputs,
                        uint32_t n_out, lam_tensor_info *outs) {
    const lam_layer_desc *d = &layer->type->desc;
    lam_tensor_info ins[LAYER_MAX_IO];
    const lam_tensor_info *inp[LAYER_MAX_IO];
    lam_tensor_info *outp[LAYER_MAX_IO];
    for (uint32_t i = 0; i < n; i++) {
        const lam_shape *sh = lam_tensor_shape(inputs[i]);
        ins[i] = (lam_tensor_info)LAM_TENSOR_INFO_INIT;
        ins[i].dtype = lam_tensor_dtype(inputs[i]);
        ins[i].ndim = sh->ndim;
        memcpy(ins[i].dims, sh->dims, sizeof ins[i].dims);
        inp[i] = &ins[i];
    }
    for (uint32_t i = 0; i < n_out; i++) {
        outs[i] = (lam_tensor_info)LAM_TENSOR_INFO_INIT;
        outp[i] = &outs[i];
    }
    uint64_t mark = lam__error_mark();
    lam_status st = d->infer_shape(layer->state, layer, n, inp, n_out, outp);
    return plugin_status(st, mark, b, "infer_shape");
}

/* Completes deferred initialization once shape inference has set every parameter's shape. */
static lam_status finish_params(lam_block *b, const lam_layer_desc *d) {
    for (size_t i = 0; i < b->n_params; i++) {
        lam_param *p = b->params[i].param;
        if (!lam__shape_known(&p->shape)) {
            char b1[160];
            return lam__error(LAM_ERR_INTERNAL,
                              "%s: Shape inference left %s with shape %s (a bug in the %s plugin)",
                              b->name, p->name, lam_shape_format(&p->shape, b1, sizeof b1),
                              d->name);
        }
        lam_status st = lam__param_finish_deferred(p);
        if (st != LAM_OK) {
            return st;
        }
    }
    return LAM_OK;
}

/* Checks what forward returned against the inferred infos; releases all on a mismatch. */
static lam_status check_outputs(lam_block *b, const lam_layer_desc *d, uint32_t n_out,
                                lam_tensor **outs, const lam_tensor_info *want) {
    lam_status st = LAM_OK;
    for (uint32_t i = 0; st == LAM_OK && i < n_out; i++) {
        if (outs[i] == NULL) {
            st = lam__error(LAM_ERR_INTERNAL,
                            "%s: Forward returned no output%s (a bug in the %s plugin)", b->name,
                            i == 0 ? "" : " for one of its outputs", d->name);
            break;
        }
        lam_shape ws = {.ndim = want[i].ndim};
        memcpy(ws.dims, want[i].dims, sizeof ws.dims);
        if (!lam_shape_equal(lam_tensor_shape(outs[i]), &ws)) {
            char b1[160], b2[160];
            st = lam__error(LAM_ERR_INTERNAL,
                            "%s: Output shape %s differs from the inferred %s (a bug in the %s "
                            "plugin)",
                            b->name, lam_shape_format(lam_tensor_shape(outs[i]), b1, sizeof b1),
                            lam_shape_format(&ws, b2, sizeof b2), d->name);
        } else if (lam_tensor_dtype(outs[i]) != want[i].dtype) {
            st = lam__error(LAM_ERR_INTERNAL,
                            "%s: Output dtype %s differs from the inferred %s (a bug in the %s "
                            "plugin)",
                            b->name, lam__dtype_name(lam_tensor_dtype(outs[i])),
                            lam__dtype_name(want[i].dtype), d->name);
        }
    }
    if (st != LAM_OK) {
        for (uint32_t i = 0; i < n_out; i++) {
            lam_tensor_release(outs[i]);
            outs[i] = NULL;
        }
    }
    return st;
}

/* A layer with several outputs runs here for lam_block_forward_outputs (all of them) and for
 * lam_block_forward (the first; the others are released). n_want is 1 or all. */
static lam_status layer_forward_outputs(lam_block *b, uint32_t n, lam_tensor *const *inputs,
                                        uint32_t n_want, lam_tensor **outputs) {
    lam_layer *layer = layer_of(b);
    const lam_layer_desc *d = &layer->type->desc;
    uint32_t n_out = n_outputs_of(d);
    lam_status st = check_arity(b, d, n);
    if (st == LAM_OK && n_out > LAYER_MAX_IO) {
        st = lam__error(LAM_ERR_UNSUPPORTED, "%s: %u outputs, this host takes at most %d", b->name,
                        (unsigned)n_out, LAYER_MAX_IO);
    }
    lam_tensor_info want[LAYER_MAX_IO];
    if (st == LAM_OK) {
        st = infer(b, layer, n, inputs, n_out, want);
    }
    if (st == LAM_OK) {
        st = finish_params(b, d);
    }
    if (st != LAM_OK) {
        return st;
    }
    /* With a fused backward, the forward's ops are not recorded one by one: the whole layer
     * becomes one node whose inputs are the layer's inputs and its parameters' data. */
    bool fuse = d->backward != NULL && n_out == 1 && lam__recording() && lam__fused_backward();
    lam_tensor *node_in[LAYER_MAX_IO + 64];
    uint32_t n_node_in = 0;
    if (fuse) {
        bool any = false;
        for (uint32_t i = 0; i < n; i++) {
            node_in[n_node_in++] = inputs[i];
            any = any || lam__needs_grad(inputs[i]);
        }
        for (size_t i = 0; i < b->n_params && n_node_in < LAYER_MAX_IO + 64; i++) {
            node_in[n_node_in++] = b->params[i].param->data;
            any = any || lam__needs_grad(b->params[i].param->data);
        }
        fuse = any && b->n_params <= 64;
    }
    lam_tensor *outs[LAYER_MAX_IO] = {NULL};
    int was = lam_autograd_record_begin(fuse ? 0 : lam_autograd_is_recording());
    uint64_t mark = lam__error_mark();
    /* The plugin's code runs: lam_shutdown refuses meanwhile (tensor.h). */
    st = lam__call_enter(b->name);
    if (st == LAM_OK) {
        st = d->forward(layer->state, layer, n, inputs, n_out, outs);
        lam__call_leave();
        st = plugin_status(st, mark, b, "forward");
    }
    lam_autograd_record_end(was);
    if (st != LAM_OK) {
        for (uint32_t i = 0; i < n_out; i++) {
            lam_tensor_release(outs[i]);
        }
        return st;
    }
    st = check_outputs(b, d, n_out, outs, want);
    if (st != LAM_OK) {
        return st;
    }
    if (fuse) {
        fused *f = malloc(sizeof *f);
        if (f == NULL) {
            lam_tensor_release(outs[0]);
            return lam__error(LAM_ERR_OUT_OF_MEMORY, "%s: Out of memory recording the op", b->name);
        }
        *f = (fused){lam_block_retain(b), n};
        st = lam__record_closure(node_in, n_node_in, &outs[0],
                                 (lam__closure){fused_backward, f, fused_free});
        if (st != LAM_OK) {
            return st;
        }
    }
    for (uint32_t i = 0; i < n_out; i++) {
        if (i < n_want) {
            outputs[i] = outs[i];
        } else {
            lam_tensor_release(outs[i]);
        }
    }
    return LAM_OK;
}

/* One output: the first (the others are released). */
static lam_status layer_forward(lam_block *b, uint32_t n, lam_tensor *const *inputs,
                                lam_tensor **out) {
    return layer_forward_outputs(b, n, inputs, 1, out);
}

static uint32_t layer_n_outputs(const lam_block *b) {
    return n_outputs_of(&layer_of(b)->type->desc);
}

static void layer_describe(const lam_block *b, lam__strbuf *sb, int indent) {
    (void)indent; /* a layer's summary is one line */
    lam_layer *layer = layer_of(b);
    const lam_layer_desc *d = &layer->type->desc;
    if (d->describe != NULL) {
        char buf[512];
        buf[0] = '\0';
        if (d->describe(layer->state, layer, buf, sizeof buf) == LAM_OK) {
            buf[sizeof buf - 1] = '\0';
            lam__strbuf_printf(sb, "%s", buf);
            return;
        }
    }
    lam__strbuf_printf(sb, "%s()", d->name);
}

size_t lam_layer_type_count(void) {
    return lam__ensure_started() == LAM_OK ? lam__layer_type_count() : 0;
}

const char *lam_layer_type_name(size_t index) {
    if (lam__ensure_started() != LAM_OK || index >= lam__layer_type_count()) {
        return NULL;
    }
    return lam__layer_type_at(index)->desc.name;
}
