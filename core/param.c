/* Parameters: named, shaped (possibly not yet), initialized now or at the first forward. */
#include "param.h"
#include "tape.h"
#include "error.h"
#include "init.h"
#include "log.h"
#include "pattern.h"
#include "shape.h"
#include "tensor.h"
#include "util.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

lam_status lam__param_create(const char *name, const char *local, const lam_shape *shape,
                             const lam_initializer *init, uint32_t flags, lam_param **out) {
    *out = NULL;
    if (shape->ndim > LAM_MAX_DIMS) {
        return lam__error(LAM_ERR_SHAPE, "%s: Too many dims, %u given, at most %d", name,
                          shape->ndim, LAM_MAX_DIMS);
    }
    for (uint32_t i = 0; i < shape->ndim; i++) {
        if (shape->dims[i] < LAM_DIM_UNKNOWN) {
            char b[160];
            return lam__error(LAM_ERR_SHAPE, "%s: Invalid shape, %s has a negative dim", name,
                              lam_shape_format(shape, b, sizeof b));
        }
    }
    /* The known dims alone must already be a valid size. */
    lam_shape known = *shape;
    for (uint32_t i = 0; i < known.ndim; i++) {
        known.dims[i] = known.dims[i] == LAM_DIM_UNKNOWN ? 1 : known.dims[i];
    }
    if (lam_shape_numel(&known) < 0) {
        char b[160];
        return lam__error(LAM_ERR_SHAPE, "%s: Shape too large, %s has more than 2^60 elements",
                          name, lam_shape_format(shape, b, sizeof b));
    }
    lam_param *p = calloc(1, sizeof *p);
    if (p == NULL || (p->name = lam__strdup(name)) == NULL ||
        (p->local = lam__strdup(local)) == NULL) {
        if (p) {
            free(p->name);
        }
        free(p);
        return lam__error(LAM_ERR_OUT_OF_MEMORY, "%s: Out of memory", name);
    }
    p->refcount = 1;
    p->shape = *shape;
    p->shape.reserved = 0;
    p->init = lam_initializer_retain((lam_initializer *)init);
    p->flags = flags;
    p->grad_req = (flags & LAM_PARAM_CONSTANT) ? LAM_GRAD_NULL : LAM_GRAD_WRITE;
    p->lr_mult = 1.0f;
    p->wd_mult = 1.0f;
    *out = p;
    return LAM_OK;
}

lam_param *lam__param_retain(lam_param *p) {
    if (p) {
        p->refcount++;
    }
    return p;
}

/* Tells the tape what the data tensor's gradient needs and where it goes (grad_req, the
 * gradient buffer). Called whenever the data, grad_req or the gradient buffer change. Cannot
 * fail once the data tensor went through lam__tape_reserve (set_data does that). */
static void sync_leaf(lam_param *p) {
    bool wants = p->grad_req != LAM_GRAD_NULL && !(p->flags & LAM_PARAM_CONSTANT);
    (void)lam__tape_leaf_set(p->data, wants, wants ? p->grad : NULL, p->grad_req == LAM_GRAD_ADD);
}

/* The parameter takes t (its reference) as its data; out of memory leaves it unchanged and
 * releases t. */
static lam_status set_data(lam_param *p, lam_tensor *t) {
    if (t != NULL && lam__tape_reserve(t) != LAM_OK) {
        lam_tensor_release(t);
        return lam__error(LAM_ERR_OUT_OF_MEMORY, "%s: Out of memory", p->name);
    }
    if (p->data != NULL) {
        (void)lam__tape_leaf_set(p->data, false, NULL, false);
        lam_tensor_release(p->data);
    }
    p->data = t;
    sync_leaf(p);
    return LAM_OK;
}

void lam__param_release(lam_param *p) {
    if (p == NULL || --p->refcount > 0) {
        return;
    }
    (void)set_data(p, NULL);
    lam_tensor_release(p->grad);
    lam_initializer_release(p->init);
    lam_initializer_release(p->deferred_init);
    free(p->const_values);
    free(p->name);
    free(p->local);
    free(p->key);
    free(p);
}

/* Getters accept NULL (lamina.h says what they return); setters ignore it. */
const char *lam_param_name(const lam_param *p) {
    return p ? p->name : NULL;
}
const lam_shape *lam_param_shape(const lam_param *p) {
    return p ? &p->shape : NULL;
}
int lam_param_is_initialized(const lam_param *p) {
    return p ? p->data != NULL : 0;
}
int lam_param_is_constant(const lam_param *p) {
    return p ? (p->flags & LAM_PARAM_CONSTANT) != 0 : 0;
}
lam_grad_req lam_param_grad_req(const lam_param *p) {
    return p ? p->grad_req : LAM_GRAD_INVALID;
}
float lam_param_lr_mult(const lam_param *p) {
    return p ? p->lr_mult : 0.0f;
}
float lam_param_wd_mult(const lam_param *p) {
    return p ? p->wd_mult : 0.0f;
}
void lam_param_set_lr_mult(lam_param *p, float mult) {
    if (p) {
        p->lr_mult = mult;
    }
}
void lam_param_set_wd_mult(lam_param *p, float mult) {
    if (p) {
        p->wd_mult = mult;
    }
}

static bool ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* The gradient buffer follows grad_req: zeros for write/add, none for null. */
static lam_status sync_grad_buffer(lam_param *p) {
    bool want = p->data != NULL && p->grad_req != LAM_GRAD_NULL && !lam_param_is_constant(p);
    if (!want) {
        lam_tensor_release(p->grad);
        p->grad = NULL;
        return LAM_OK;
    }
    if (p->grad != NULL && lam_tensor_ctx(p->grad) == lam_tensor_ctx(p->data) &&
        lam_shape_equal(lam_tensor_shape(p->grad), &p->shape)) {
        return LAM_OK;
    }
    lam_tensor_release(p->grad);
    p->grad = NULL;
    return lam_tensor_create(lam_tensor_ctx(p->data), &p->shape, &p->grad);
}

static lam_status sync_grad(lam_param *p) {
    lam_status st = sync_grad_buffer(p);
    sync_leaf(p);
    return st;
}

lam_status lam_param_set_grad_req(lam_param *p, lam_grad_req req) {
    if (p == NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "lam_param_set_grad_req: Invalid argument, NULL parameter");
    }
    if (req != LAM_GRAD_WRITE && req != LAM_GRAD_ADD && req != LAM_GRAD_NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "%s: Invalid grad_req %d, expected write, add or null", p->name,
                          (int)req);
    }
    if (lam_param_is_constant(p) && req != LAM_GRAD_NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "%s: Constant parameter, its grad_req is always null", p->name);
    }
    p->grad_req = req;
    return sync_grad(p);
}

/* Writes freshly computed host values into the parameter on ctx. */
static lam_status store(lam_param *p, lam_ctx *ctx, const float *values, size_t n) {
    lam_tensor *t = NULL;
    lam_status st;
    if (p->data != NULL && lam_tensor_ctx(p->data) == ctx &&
        lam_shape_equal(lam_tensor_shape(p->data), &p->shape)) {
        /* Re-initialization writes in place, so blocks sharing the tensor see it. */
        st = lam_tensor_write(p->data, values, n);
    } else {
        st = lam_tensor_from_data(ctx, &p->shape, values, n, &t);
        if (st == LAM_OK) {
            st = set_data(p, t);
        }
    }
    if (st != LAM_OK) {
        return lam__error_prefix(st, "%s", p->name);
    }
    return sync_grad(p);
}

/* Picks the initializer: explicit > declared > the block's (biases default to zero). */
static lam_status choose_init(lam_param *p, const lam_initializer *explicit_init,
                              const lam_initializer *fallback, lam_initializer **out) {
    if (explicit_init != NULL) {
        *out = lam_initializer_retain((lam_initializer *)explicit_init);
        return LAM_OK;
    }
    if (p->init != NULL) {
        *out = lam_initializer_retain(p->init);
        return LAM_OK;
    }
    if (ends_with(p->name, "bias") || ends_with(p->name, "beta")) {
        return lam_init_zero(out);
    }
    if (ends_with(p->name, "gamma")) {
        return lam_init_one(out);
    }
    if (fallback != NULL) {
        *out = lam_initializer_retain((lam_initializer *)fallback);
        return LAM_OK;
    }
    return lam_init_uniform(0.07f, out);
}

static lam_status init_now(lam_param *p, const lam_initializer *init, lam_ctx *ctx) {
    int64_t n;
    lam_status st = lam__shape_numel(p->name, &p->shape, &n);
    if (st != LAM_OK) {
        return st;
    }
    float *buf = malloc((size_t)(n > 0 ? n : 1) * sizeof *buf);
    if (buf == NULL) {
        return lam__error(LAM_ERR_OUT_OF_MEMORY, "%s: Out of memory, %lld elements", p->name,
                          (long long)n);
    }
    if (p->const_values != NULL) {
        memcpy(buf, p->const_values, (size_t)n * sizeof *buf);
        st = LAM_OK;
    } else {
        /* Never reached from a model's root: its key within its own block is its local name. */
        st = lam__init_fill(init, p->name, p->key ? p->key : p->local, &p->shape, buf, (size_t)n);
    }
    if (st == LAM_OK) {
        st = store(p, ctx, buf, (size_t)n);
    }
    free(buf);
    return st;
}

static lam_status set_key(lam_param *p, const char *key) {
    if (key == NULL || (p->key != NULL && strcmp(p->key, key) == 0)) {
        return LAM_OK;
    }
    char *k = lam__strdup(key);
    if (k == NULL) {
        return lam__error(LAM_ERR_OUT_OF_MEMORY, "%s: Out of memory", p->name);
    }
    free(p->key);
    p->key = k;
    return LAM_OK;
}

static lam_status initialize(lam_param *p, const lam_initializer *explicit_init,
                             const lam_initializer *fallback, lam_ctx *ctx, bool force,
                             const char *key) {
    if ((p->data != NULL || p->deferred) && !force) {
        /* Left as is, including the key a pending deferred initialization will use. */
        lam__log(LAM_LOG_WARN,
                 "%s: Already initialized, left as is; pass force_reinit to initialize it again",
                 p->name);
        return LAM_OK;
    }
    lam_status st = set_key(p, key);
    if (st != LAM_OK) {
        return st;
    }
    if (ctx == NULL && (st = lam_ctx_default(&ctx)) != LAM_OK) {
        return st;
    }
    lam_initializer *init;
    st = choose_init(p, explicit_init, fallback, &init);
    if (st != LAM_OK) {
        return st;
    }
    if (!lam__shape_known(&p->shape)) {
        /* Deferred: remember how, run it when the first forward has inferred the shape. */
        lam_initializer_release(p->deferred_init);
        p->deferred_init = init;
        p->deferred_ctx = ctx;
        p->deferred = true;
        return LAM_OK;
    }
    st = init_now(p, init, ctx);
    lam_initializer_release(init);
    if (st == LAM_OK) {
        p->deferred = false;
    }
    return st;
}

lam_status lam__param_initialize(lam_param *p, const lam_initializer *fallback, lam_ctx *ctx,
                                 bool force, const char *key) {
    return initialize(p, NULL, fallback, ctx, force, key);
}

lam_status lam_param_initialize(lam_param *p, const lam_initializer *init, lam_ctx *ctx,
                                int force_reinit) {
    if (p == NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "lam_param_initialize: Invalid argument, "
                                                    "NULL parameter");
    }
    if (ctx == NULL && p->data != NULL) {
        ctx = lam_tensor_ctx(p->data);
    }
    return initialize(p, init, NULL, ctx, force_reinit != 0, NULL);
}

lam_status lam__param_finish_deferred(lam_param *p) {
    if (!p->deferred || !lam__shape_known(&p->shape)) {
        return LAM_OK;
    }
    lam_status st = init_now(p, p->deferred_init, p->deferred_ctx);
    if (st != LAM_OK) {
        return st;
    }
    p->deferred = false;
    lam_initializer_release(p->deferred_init);
    p->deferred_init = NULL;
    return LAM_OK;
}

lam_status lam__param_infer_shape(lam_param *p, const char *subject, const lam_shape *inferred) {
    char b1[160], b2[160];
    bool ok = inferred->ndim == p->shape.ndim;
    for (uint32_t i = 0; ok && i < p->shape.ndim; i++) {
        ok = inferred->dims[i] >= 0 &&
             (p->shape.dims[i] < 0 || p->shape.dims[i] == inferred->dims[i]);
    }
    if (!ok) {
        return lam__error(LAM_ERR_SHAPE, "%s: Shape inconsistent, provided %s, inferred %s",
                          subject, lam_shape_format(&p->shape, b1, sizeof b1),
                          lam_shape_format(inferred, b2, sizeof b2));
    }
    /* Only unknown dims are written: every forward infers shapes, and forwards of a shared
     * model on several threads must only read a parameter once its shape is known. */
    for (uint32_t i = 0; i < p->shape.ndim; i++) {
        if (p->shape.dims[i] != inferred->dims[i]) {
            p->shape.dims[i] = inferred->dims[i];
        }
    }
    return LAM_OK;
}

lam_status lam_param_infer_shape(lam_param *p, const lam_shape *shape) {
    if (p == NULL || shape == NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "lam_param_infer_shape: Invalid argument, NULL parameter or shape");
    }
    return lam__param_infer_shape(p, p->name, shape);
}

/* Gluon's two cases: initialize() not called yet ("has not been initialized"), or called while
 * the shape was unknown (DeferredInitializationError until the first forward infers it). */
static lam_status not_ready(const lam_param *p) {
    char b[160];
    if (p->deferred) {
        return lam__error(LAM_ERR_DEFERRED_INIT,
                          "%s: Deferred initialization, shape %s is not known yet; run a forward "
                          "pass first, or give the layer its input size (e.g. in_units) so it "
                          "is initialized at once",
                          p->name, lam_shape_format(&p->shape, b, sizeof b));
    }
    if (!lam__shape_known(&p->shape)) {
        return lam__error(LAM_ERR_STATE,
                          "%s: Not initialized, call lam_block_initialize() on its model (or "
                          "lam_param_initialize()) first; its shape %s is then inferred at the "
                          "first forward pass",
                          p->name, lam_shape_format(&p->shape, b, sizeof b));
    }
    return lam__error(LAM_ERR_STATE,
                      "%s: Not initialized, call lam_block_initialize() on its model (or "
                      "lam_param_initialize()) first",
                      p->name);
}

lam_status lam_param_data(lam_param *p, lam_tensor **out) {
    if (p == NULL || out == NULL) {
        if (out) {
            *out = NULL;
        }
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "lam_param_data: Invalid argument, NULL "
                                                    "parameter or output");
    }
    if (p->data == NULL) {
        *out = NULL;
        return not_ready(p);
    }
    *out = lam_tensor_retain(p->data);
    return LAM_OK;
}

lam_status lam_param_grad(lam_param *p, lam_tensor **out) {
    if (p == NULL || out == NULL) {
        if (out) {
            *out = NULL;
        }
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "lam_param_grad: Invalid argument, NULL "
                                                    "parameter or output");
    }
    *out = NULL;
    if (p->data == NULL) {
        return not_ready(p);
    }
    if (p->grad == NULL) {
        return lam__error(LAM_ERR_STATE, "%s: No gradient, the parameter is %s", p->name,
                          lam_param_is_constant(p) ? "a constant" : "set to grad_req null");
    }
    *out = lam_tensor_retain(p->grad);
    return LAM_OK;
}

/* lam__param_stage, or lam__param_stage_tensor when `given` (its reference taken). */
static lam_status stage(lam_param *p, lam_ctx *ctx, const lam_shape *shape, const float *values,
                        size_t count, lam_tensor *given, lam__param_staged *out) {
    memset(out, 0, sizeof *out);
    lam_status st = LAM_OK;
    if (given != NULL) {
        out->data = given;
        if (p->const_values != NULL) {
            st = lam__error(LAM_ERR_INVALID_ARGUMENT,
                            "%s: Invalid argument, a constant's values are staged as a copy",
                            p->name);
        }
    } else {
        st = values != NULL ? lam_tensor_from_data(ctx, shape, values, count, &out->data)
                            : lam__tensor_alloc(ctx, shape, &out->data);
    }
    if (st == LAM_OK) {
        st = lam__tape_reserve(out->data); /* so the commit's set_data cannot fail */
    }
    if (st == LAM_OK && p->const_values != NULL) {
        out->const_values = malloc((count ? count : 1) * sizeof *out->const_values);
        if (out->const_values == NULL) {
            st = lam__error(LAM_ERR_OUT_OF_MEMORY, "%s: Out of memory, %zu elements", p->name,
                            count);
        } else if (count > 0 && values != NULL) {
            memcpy(out->const_values, values, count * sizeof *values);
        }
    }
    bool want_grad = p->grad_req != LAM_GRAD_NULL && !lam_param_is_constant(p);
    if (st == LAM_OK && want_grad &&
        !(p->grad != NULL && lam_tensor_ctx(p->grad) == ctx &&
          lam_shape_equal(lam_tensor_shape(p->grad), shape))) {
        st = lam_tensor_create(ctx, shape, &out->grad);
    }
    if (st != LAM_OK) {
        lam__param_staged_fini(out);
        return st;
    }
    /* The current tensor takes the new values when it can (same context and size, a whole
     * storage): every holder of it, views included, then sees them, as with a write. */
    lam_tensor *cur = p->data;
    out->swap = given == NULL && cur != NULL && lam_tensor_ctx(cur) == ctx &&
                lam_shape_equal(lam_tensor_shape(cur), shape) && cur->offset == 0 &&
                cur->storage->bytes == out->data->storage->bytes &&
                cur->storage->ctx == out->data->storage->ctx;
    return LAM_OK;
}

lam_status lam__param_stage(lam_param *p, lam_ctx *ctx, const lam_shape *shape, const float *values,
                            size_t count, lam__param_staged *out) {
    return stage(p, ctx, shape, values, count, NULL, out);
}

lam_status lam__param_stage_tensor(lam_param *p, lam_tensor *data, lam__param_staged *out) {
    return stage(p, lam_tensor_ctx(data), lam_tensor_shape(data), NULL, 0, data, out);
}

void lam__param_commit(lam_param *p, lam__param_staged *s) {
    if (s->swap) {
        /* Exchanging the buffers cannot fail, unlike writing into the current one. */
        void *buf = p->data->storage->buf;
        p->data->storage->buf = s->data->storage->buf;
        s->data->storage->buf = buf;
        lam_tensor_release(s->data);
    } else {
        p->shape = *lam_tensor_shape(s->data);
        (void)set_data(p, s->data); /* cannot fail: lam__param_stage reserved it */
    }
    s->data = NULL;
    if (s->const_values != NULL) {
        /* A constant keeps the loaded value across re-initialization. */
        free(p->const_values);
        p->const_values = s->const_values;
        s->const_values = NULL;
    }
    p->deferred = false;
    lam_initializer_release(p->deferred_init);
    p->deferred_init = NULL;
    if (s->grad != NULL) {
        lam_tensor_release(p->grad);
        p->grad = s->grad;
        s->grad = NULL;
    } else if (p->grad_req == LAM_GRAD_NULL || lam_param_is_constant(p)) {
        lam_tensor_release(p->grad);
        p->grad = NULL;
    }
    sync_leaf(p);
}

void lam__param_staged_fini(lam__param_staged *s) {
    lam_tensor_release(s->data);
    lam_tensor_release(s->grad);
    free(s->const_values);
    memset(s, 0, sizeof *s);
}

lam_status lam_param_set_data(lam_param *p, const lam_tensor *data) {
    if (p == NULL || data == NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "lam_param_set_data: Invalid argument, NULL "
                                                    "parameter or data");
    }
    const lam_shape *ds = lam_tensor_shape(data);
    lam_status st = lam__param_infer_shape(p, p->name, ds);
    if (st != LAM_OK) {
        char b1[160], b2[160];
        return lam__error(LAM_ERR_SHAPE, "%s: Shape mismatch, parameter has %s, data has %s",
                          p->name, lam_shape_format(&p->shape, b1, sizeof b1),
                          lam_shape_format(ds, b2, sizeof b2));
    }
    lam_ctx *ctx = p->data           ? lam_tensor_ctx(p->data)
                   : p->deferred_ctx ? p->deferred_ctx
                                     : lam_tensor_ctx(data);
    lam_tensor *src;
    st = lam_tensor_as_in_context((lam_tensor *)data, ctx, &src);
    if (st != LAM_OK) {
        return lam__error_prefix(st, "%s", p->name);
    }
    if (p->data != NULL) {
        st = lam_op_assign(p->data, src);
    } else {
        lam_tensor *t;
        int was = lam_autograd_record_begin(0);
        st = lam_op_copy(src, &t);
        lam_autograd_record_end(was);
        if (st == LAM_OK) {
            st = set_data(p, t);
        }
    }
    lam_tensor_release(src);
    if (st != LAM_OK) {
        return lam__error_prefix(st, "%s", p->name);
    }
    if (p->const_values != NULL) {
        /* A constant set by hand keeps that value across re-initialization. */
        st = lam_tensor_read(p->data, p->const_values, (size_t)lam_shape_numel(&p->shape));
    }
    p->deferred = false;
    lam_initializer_release(p->deferred_init);
    p->deferred_init = NULL;
    return st == LAM_OK ? sync_grad(p) : st;
}

char *lam_param_format(const lam_param *p, char *buf, size_t cap) {
    char b[160];
    if (buf == NULL || cap == 0) {
        return buf;
    }
    if (p == NULL) {
        snprintf(buf, cap, "(null)");
        return buf;
    }
    snprintf(buf, cap, "%s %s (shape=%s, dtype=float32)",
             lam_param_is_constant(p) ? "Constant" : "Parameter", p->name,
             lam_shape_format(&p->shape, b, sizeof b));
    return buf;
}

/* ---- lists ---- */

typedef struct list_item {
    char *key;
    lam_param *param;
} list_item;

struct lam_param_list {
    list_item *items;
    size_t n, cap;
    regex_t re;
    bool has_re;
};

size_t lam_param_list_count(const lam_param_list *list) {
    return list ? list->n : 0;
}

lam_param *lam_param_list_get(const lam_param_list *list, size_t index) {
    return (list && index < list->n) ? list->items[index].param : NULL;
}

const char *lam_param_list_key(const lam_param_list *list, size_t index) {
    return (list && index < list->n) ? list->items[index].key : NULL;
}

lam_param *lam_param_list_find(const lam_param_list *list, const char *name) {
    for (size_t i = 0; list && name && i < list->n; i++) {
        if (strcmp(list->items[i].key, name) == 0 ||
            strcmp(list->items[i].param->name, name) == 0) {
            return list->items[i].param;
        }
    }
    return NULL;
}

char *lam_param_list_format(const lam_param_list *list, const char *title, char *buf, size_t cap) {
    lam__strbuf sb = {0};
    lam__strbuf_printf(&sb, "%s (\n", title ? title : "");
    for (size_t i = 0; list && i < list->n; i++) {
        char line[400];
        lam__strbuf_printf(&sb, "  %s\n",
                           lam_param_format(list->items[i].param, line, sizeof line));
    }
    lam__strbuf_printf(&sb, ")");
    snprintf(buf, cap, "%s", sb.data ? sb.data : "");
    lam__strbuf_fini(&sb);
    return buf;
}

void lam_param_list_destroy(lam_param_list *list) {
    if (list == NULL) {
        return;
    }
    for (size_t i = 0; i < list->n; i++) {
        free(list->items[i].key);
        lam__param_release(list->items[i].param);
    }
    if (list->has_re) {
        regfree(&list->re);
    }
    free(list->items);
    free(list);
}

lam_status lam__param_list_create(const char *regex, lam_param_list **out) {
    *out = NULL; /* callers destroy *out on failure */
    lam_param_list *l = calloc(1, sizeof *l);
    if (l == NULL) {
        return lam__error(LAM_ERR_OUT_OF_MEMORY, "collect_params: Out of memory");
    }
    if (regex != NULL) {
        /* Anchored at the start only, like Python's re.match in Gluon's select. */
        lam_status st = lam__pattern_compile("collect_params", regex, &l->re);
        if (st != LAM_OK) {
            free(l);
            return st;
        }
        l->has_re = true;
    }
    *out = l;
    return LAM_OK;
}

/* Adds p under key unless already present or filtered out. */
lam_status lam__param_list_add(lam_param_list *l, const char *key, lam_param *p) {
    for (size_t i = 0; i < l->n; i++) {
        if (l->items[i].param == p) {
            return LAM_OK;
        }
    }
    if (l->has_re && !lam__pattern_match_start(&l->re, p->name)) {
        return LAM_OK;
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        list_item *items = realloc(l->items, cap * sizeof *items);
        if (items == NULL) {
            return lam__error(LAM_ERR_OUT_OF_MEMORY, "collect_params: Out of memory");
        }
        l->items = items;
        l->cap = cap;
    }
    char *k = lam__strdup(key);
    if (k == NULL) {
        return lam__error(LAM_ERR_OUT_OF_MEMORY, "collect_params: Out of memory");
    }
    l->items[l->n].key = k;
    l->items[l->n].param = lam__param_retain(p);
    l->n++;
    return LAM_OK;
}
