/* Blocks made from layer plugins (the layer block class): attribute parsing, the layer side of
 * the host table, shape inference, forward, and the fused backward recorded as a tape closure. */
#define _POSIX_C_SOURCE 200809L
#include "layer.h"
#include "tape.h"
#include "backward.h"
#include "block.h"
#include "callback.h"
#include "error.h"
#include "kv.h"
#include "param.h"
#include "registry.h"
#include "shape.h"
#include "start.h"
#include "tensor.h"
#include "util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Validated attribute values, one per schema entry (defaults applied). */
/* A layer block's own data (its block's impl); the plugin sees it as lam_layer. */
struct lam_layer {
    lam_block *block; /* weak: the block owns this */
    const lam__layer_type *type;
    void *state;
    struct lam__attrs *attrs;
    lam_block *share; /* while creating a shared layer */
    bool creating;
};

static lam_layer *layer_of(const lam_block *b) {
    return b->impl;
}

typedef struct lam__attrs lam__attrs;
struct lam__attrs {
    const lam_layer_desc *desc;
    char **values; /* NULL for an absent optional attribute is impossible: defaults fill it */
};

static void attrs_free(lam__attrs *a) {
    if (a == NULL) {
        return;
    }
    for (uint32_t i = 0; a->values && i < a->desc->n_attrs; i++) {
        free(a->values[i]);
    }
    free(a->values);
    free(a);
}

static bool parse_bool(const char *v, int32_t *out) {
    if (strcasecmp(v, "true") == 0 || strcmp(v, "1") == 0) {
        *out = 1;
        return true;
    }
    if (strcasecmp(v, "false") == 0 || strcmp(v, "0") == 0) {
        *out = 0;
        return true;
    }
    return false;
}

static bool parse_int(const char *v, int64_t *out) {
    return lam__kv_int(lam__kv_span_of(v), out);
}

static bool parse_float(const char *v, double *out) {
    double x;
    if (!lam__kv_double(lam__kv_span_of(v), &x) || !isfinite(x)) {
        return false;
    }
    *out = x;
    return true;
}

static bool enum_has(const char *choices, const char *v) {
    size_t n = strlen(v);
    const char *c = choices;
    while (*c) {
        const char *bar = strchr(c, '|');
        size_t len = bar ? (size_t)(bar - c) : strlen(c);
        if (len == n && strncmp(c, v, n) == 0) {
            return true;
        }
        c += len + (bar ? 1 : 0);
    }
    return false;
}

/* What attribute k's value should be, for messages (nothing for a free string). */
static void attr_expect(const void *desc, size_t k, lam__strbuf *sb) {
    const lam_attr_desc *a = &((const lam_layer_desc *)desc)->attrs[k];
    switch (a->type) {
    case LAM_ATTR_INT:
        lam__strbuf_printf(sb, "an integer");
        break;
    case LAM_ATTR_FLOAT:
        lam__strbuf_printf(sb, "a number");
        break;
    case LAM_ATTR_BOOL:
        lam__strbuf_printf(sb, "true or false");
        break;
    case LAM_ATTR_ENUM:
        lam__strbuf_printf(sb, "one of %s", a->choices);
        break;
    default:
        break;
    }
}

static lam_status check_value(const lam__kv_schema *s, const lam_layer_desc *d, uint32_t k,
                              const char *v) {
    const lam_attr_desc *a = &d->attrs[k];
    int64_t i;
    double f;
    int32_t b;
    bool ok = a->type == LAM_ATTR_INT     ? parse_int(v, &i)
              : a->type == LAM_ATTR_FLOAT ? parse_float(v, &f)
              : a->type == LAM_ATTR_BOOL  ? parse_bool(v, &b)
              : a->type == LAM_ATTR_ENUM  ? enum_has(a->choices, v)
                                          : true;
    if (ok) {
        return LAM_OK;
    }
    if (v[0] == '\0') {
        return lam__kv_missing(s, k);
    }
    lam__strbuf want = {0};
    attr_expect(d, k, &want);
    lam_status st =
        lam__error(LAM_ERR_INVALID_ARGUMENT, "%s: Invalid value for '%s', expected %s, got '%s'",
                   d->name, a->name, want.data ? want.data : "another value", v);
    lam__strbuf_fini(&want);
    return st;
}

/* The attribute string through the shared key=value parser (kv.c), then each value checked
 * against its type, defaults filled in. */
static lam_status attrs_parse(const lam_layer_desc *d, const char *text, lam__attrs **out) {
    *out = NULL;
    size_t n = d->n_attrs;
    lam__attrs *a = calloc(1, sizeof *a);
    const char **keys = calloc(n + 1, sizeof *keys);
    lam__kv_span *vals = calloc(n + 1, sizeof *vals);
    if (a == NULL || keys == NULL || vals == NULL ||
        (n > 0 && (a->values = calloc(n, sizeof *a->values)) == NULL)) {
        free(a);
        free(keys);
        free(vals);
        return lam__error(LAM_ERR_OUT_OF_MEMORY, "%s: Out of memory", d->name);
    }
    a->desc = d;
    for (uint32_t i = 0; i < n; i++) {
        keys[i] = d->attrs[i].name;
    }
    lam__kv_schema s = {.subject = d->name,
                        .what = "attribute",
                        .keys = keys,
                        .n_keys = n,
                        .empty_values = true, /* a string attribute may be empty */
                        .expect = attr_expect,
                        .expect_ctx = d};
    lam_status st = lam__kv_parse(&s, lam__kv_span_of(text), vals);
    /* The values given first, then what is missing. */
    for (uint32_t i = 0; st == LAM_OK && i < n; i++) {
        if (vals[i].p == NULL) {
            continue;
        }
        if ((a->values[i] = lam__kv_span_dup(vals[i])) == NULL) {
            st = lam__error(LAM_ERR_OUT_OF_MEMORY, "%s: Out of memory", d->name);
        } else {
            st = check_value(&s, d, i, a->values[i]);
        }
    }
    for (uint32_t i = 0; st == LAM_OK && i < n; i++) {
        if (a->values[i] != NULL) {
            continue;
        }
        if (d->attrs[i].default_value == NULL) {
            st = lam__error(LAM_ERR_INVALID_ARGUMENT, "%s: Missing attribute '%s' (required)",
                            d->name, d->attrs[i].name);
        } else if ((a->values[i] = lam__strdup(d->attrs[i].default_value)) == NULL) {
            st = lam__error(LAM_ERR_OUT_OF_MEMORY, "%s: Out of memory", d->name);
        }
    }
    free(keys);
    free(vals);
    if (st != LAM_OK) {
        attrs_free(a);
        return st;
    }
    *out = a;
    return LAM_OK;
}

/* ---- attribute getters for plugins ---- */

static lam_status find_attr(const lam_attrs *attrs, const char *fn, const char *name,
                            lam_attr_type want, const char **value) {
    const lam__attrs *a = (const lam__attrs *)attrs;
    if (a == NULL || name == NULL || value == NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "%s: Invalid argument, NULL attrs, name or "
                          "value",
                          fn);
    }
    for (uint32_t i = 0; i < a->desc->n_attrs; i++) {
        const lam_attr_desc *d = &a->desc->attrs[i];
        if (strcmp(d->name, name) == 0) {
            bool ok = d->type == want || (want == LAM_ATTR_STRING && d->type == LAM_ATTR_ENUM);
            if (!ok) {
                return lam__error(LAM_ERR_INVALID_ARGUMENT,
                                  "%s: Type mismatch, attribute '%s' of %s is not of the type "
                                  "asked for",
                                  fn, name, a->desc->name);
            }
            *value = a->values[i];
            return LAM_OK;
        }
    }
    return lam__error(LAM_ERR_NOT_FOUND, "%s: Not found, '%s' is not an attribute of %s", fn, name,
                      a->desc->name);
}

lam_status lam__host_attr_int(const lam_attrs *attrs, const char *name, int64_t *value) {
    const char *v;
    lam_status st = find_attr(attrs, "attr_int", name, LAM_ATTR_INT, &v);
    if (st == LAM_OK) {
        parse_int(v, value);
    }
    return st;
}

lam_status lam__host_attr_float(const lam_attrs *attrs, const char *name, double *value) {
    const char *v;
    lam_status st = find_attr(attrs, "attr_float", name, LAM_ATTR_FLOAT, &v);
    if (st == LAM_OK) {
        parse_float(v, value);
    }
    return st;
}

lam_status lam__host_attr_bool(const lam_attrs *attrs, const char *name, int32_t *value) {
    const char *v;
    lam_status st = find_attr(attrs, "attr_bool", name, LAM_ATTR_BOOL, &v);
    if (st == LAM_OK) {
        parse_bool(v, value);
    }
    return st;
}

lam_status lam__host_attr_string(const lam_attrs *attrs, const char *name, const char **value) {
    return find_attr(attrs, "attr_string", name, LAM_ATTR_STRING, value);
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
    if (flags & ~LAM_PARAM_CONSTANT) {
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
    if (st == LAM_OK && (flags & LAM_PARAM_CONSTANT)) {
        lam_param *p = lam_block_param(b, name);
        p->flags |= LAM_PARAM_CONSTANT;
        p->grad_req = LAM_GRAD_NULL;
    }
    return st;
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
    lam_tensor *grads[16] = {NULL};
    lam_block *outer = in_backward;
    const lam__node *outer_node = in_backward_node;
    const fused *outer_fused = in_backward_fused;
    in_backward = b;
    in_backward_node = n;
    in_backward_fused = f;
    uint64_t mark = lam__error_mark();
    /* The plugin's code runs: lam_shutdown refuses meanwhile (tensor.h). */
    lam_status st = lam__call_enter(b->name);
    if (st == LAM_OK) {
        st = d->backward(layer->state, layer, ni, n->in, n->out, g, grads);
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

static const lam__block_class layer_class = {
    .forward = layer_forward,
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
    st = attrs_parse(&lt->desc, attrs, &a);
    if (st != LAM_OK) {
        return st;
    }
    lam_layer *layer = calloc(1, sizeof *layer);
    if (layer == NULL) {
        attrs_free(a);
        return lam__error(LAM_ERR_OUT_OF_MEMORY, "%s: Out of memory", type);
    }
    lam_block *b;
    st = lam__block_alloc(&layer_class, lt->desc.name,
                          lt->desc.prefix ? lt->desc.prefix : lt->desc.name, &b);
    if (st != LAM_OK) {
        attrs_free(a);
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
    st = lt->desc.create(layer, (const lam_attrs *)a, &layer->state);
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
    attrs_free(layer->attrs);
    layer->attrs = NULL;
    layer->type = NULL;
}

static void layer_destroy(lam_block *b) {
    layer_detach(b);
    free(layer_of(b));
}

static lam_status layer_forward(lam_block *b, uint32_t n, lam_tensor *const *inputs,
                                lam_tensor **out) {
    lam_layer *layer = layer_of(b);
    const lam_layer_desc *d = &layer->type->desc;
    lam_shape shapes[16];
    if (n > 16) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "%s: Too many inputs, %u given, at most 16",
                          b->name, n);
    }
    for (uint32_t i = 0; i < n; i++) {
        shapes[i] = *lam_tensor_shape(inputs[i]);
    }
    lam_shape out_shape = {0};
    uint64_t mark = lam__error_mark();
    lam_status st = d->infer_shape(layer->state, layer, n, shapes, &out_shape);
    if (st != LAM_OK) {
        return plugin_status(st, mark, b, "infer_shape");
    }
    /* Shapes are known now: complete deferred initialization. */
    for (size_t i = 0; i < b->n_params; i++) {
        lam_param *p = b->params[i].param;
        if (!lam__shape_known(&p->shape)) {
            char b1[160];
            return lam__error(LAM_ERR_INTERNAL,
                              "%s: Shape inference left %s with shape %s (a bug in the %s plugin)",
                              b->name, p->name, lam_shape_format(&p->shape, b1, sizeof b1),
                              d->name);
        }
        st = lam__param_finish_deferred(p);
        if (st != LAM_OK) {
            return st;
        }
    }
    /* With a fused backward, the forward's ops are not recorded one by one: the whole layer
     * becomes one node whose inputs are the layer's inputs and its parameters' data. */
    bool fuse = d->backward != NULL && lam__recording() && lam__fused_backward();
    lam_tensor *node_in[16 + 64];
    uint32_t n_node_in = 0;
    if (fuse) {
        bool any = false;
        for (uint32_t i = 0; i < n; i++) {
            node_in[n_node_in++] = inputs[i];
            any = any || lam__needs_grad(inputs[i]);
        }
        for (size_t i = 0; i < b->n_params && n_node_in < 16 + 64; i++) {
            node_in[n_node_in++] = b->params[i].param->data;
            any = any || lam__needs_grad(b->params[i].param->data);
        }
        fuse = any && b->n_params <= 64;
    }
    int was = lam_autograd_record_begin(fuse ? 0 : lam_autograd_is_recording());
    mark = lam__error_mark();
    /* The plugin's code runs: lam_shutdown refuses meanwhile (tensor.h). */
    st = lam__call_enter(b->name);
    if (st == LAM_OK) {
        st = d->forward(layer->state, layer, n, inputs, out);
        lam__call_leave();
        st = plugin_status(st, mark, b, "forward");
    }
    lam_autograd_record_end(was);
    if (st == LAM_OK && fuse && *out != NULL) {
        fused *f = malloc(sizeof *f);
        if (f == NULL) {
            lam_tensor_release(*out);
            *out = NULL;
            return lam__error(LAM_ERR_OUT_OF_MEMORY, "%s: Out of memory recording the op", b->name);
        }
        *f = (fused){lam_block_retain(b), n};
        st = lam__record_closure(node_in, n_node_in, out,
                                 (lam__closure){fused_backward, f, fused_free});
        if (st != LAM_OK) {
            return st;
        }
    }
    if (st != LAM_OK) {
        if (*out != NULL) {
            lam_tensor_release(*out);
            *out = NULL;
        }
        return st;
    }
    if (*out == NULL) {
        return lam__error(LAM_ERR_INTERNAL,
                          "%s: Forward returned no output (a bug in the %s "
                          "plugin)",
                          b->name, d->name);
    }
    if (!lam_shape_equal(lam_tensor_shape(*out), &out_shape)) {
        char b1[160], b2[160];
        lam_shape got = *lam_tensor_shape(*out);
        lam_tensor_release(*out);
        *out = NULL;
        return lam__error(LAM_ERR_INTERNAL,
                          "%s: Output shape %s differs from the inferred %s (a bug in the %s "
                          "plugin)",
                          b->name, lam_shape_format(&got, b1, sizeof b1),
                          lam_shape_format(&out_shape, b2, sizeof b2), d->name);
    }
    return LAM_OK;
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
