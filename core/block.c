/* Blocks: the parts every block class shares: names, nesting, parameters, collection,
 * initialization, the checked forward entry point, summary. */
#include "block.h"
#include "error.h"
#include "log.h"
#include "param.h"
#include "util.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Per-prefix counters for display names; they keep rising for the life of the process, as
 * Gluon 1.x's do. */
typedef struct counter {
    char prefix[64];
    unsigned long next;
} counter;
static counter *counters;
static size_t n_counters;

static lam_block *live_blocks;
/* Blocks are made and released on any thread: the name counters and the list of live blocks
 * are used under this lock. */
static pthread_mutex_t blocks_lock = PTHREAD_MUTEX_INITIALIZER;

static lam_status next_name_locked(const char *prefix, char *out, size_t cap) {
    for (size_t i = 0; i < n_counters; i++) {
        if (strcmp(counters[i].prefix, prefix) == 0) {
            snprintf(out, cap, "%s%lu", prefix, counters[i].next++);
            return LAM_OK;
        }
    }
    counter *c = realloc(counters, (n_counters + 1) * sizeof *c);
    if (c == NULL) {
        return lam__error(LAM_ERR_OUT_OF_MEMORY, "%s: Out of memory", prefix);
    }
    counters = c;
    snprintf(c[n_counters].prefix, sizeof c[n_counters].prefix, "%s", prefix);
    c[n_counters].next = 1;
    n_counters++;
    snprintf(out, cap, "%s0", prefix);
    return LAM_OK;
}

static lam_status next_name(const char *prefix, char *out, size_t cap) {
    pthread_mutex_lock(&blocks_lock);
    lam_status st = next_name_locked(prefix, out, cap);
    pthread_mutex_unlock(&blocks_lock);
    return st;
}

lam_status lam__block_alloc(const lam__block_class *cls, const char *type, const char *prefix,
                            lam_block **out) {
    *out = NULL;
    char pfx[64];
    size_t n = 0;
    for (const char *c = prefix; *c && n + 1 < sizeof pfx; c++) {
        pfx[n++] = (char)tolower((unsigned char)*c);
    }
    pfx[n] = '\0';
    char name[96];
    lam_status st = next_name(pfx, name, sizeof name);
    if (st != LAM_OK) {
        return st;
    }
    lam_block *b = calloc(1, sizeof *b);
    if (b == NULL || (b->type = lam__strdup(type)) == NULL ||
        (b->name = lam__strdup(name)) == NULL) {
        if (b) {
            free(b->type);
        }
        free(b);
        return lam__error(LAM_ERR_OUT_OF_MEMORY, "%s: Out of memory", name);
    }
    b->magic = LAM__BLOCK_LIVE;
    atomic_store_explicit(&b->refcount, 1, memory_order_relaxed);
    b->cls = cls;
    pthread_mutex_lock(&blocks_lock);
    b->live_next = live_blocks;
    if (live_blocks != NULL) {
        live_blocks->live_prev = b;
    }
    live_blocks = b;
    pthread_mutex_unlock(&blocks_lock);
    *out = b;
    return LAM_OK;
}

void lam__blocks_detach_all(void) {
    for (lam_block *b = live_blocks; b != NULL; b = b->live_next) {
        if (b->cls->detach != NULL && !b->detached) {
            b->cls->detach(b);
            b->detached = true;
        }
    }
}

/* A freed block is detected while its memory is not reused yet (normal builds); ASan reports
 * the read itself as a use after free. */
static bool is_block(const lam_block *b) {
    return b->magic == LAM__BLOCK_LIVE &&
           atomic_load_explicit(&b->refcount, memory_order_relaxed) > 0;
}

lam_block *lam_block_retain(lam_block *b) {
    if (b == NULL) {
        return NULL;
    }
    if (!is_block(b)) {
        lam__log(LAM_LOG_ERROR,
                 "lam_block_retain: Released block %p, retained after its last release; "
                 "returned NULL",
                 (void *)b);
        return NULL;
    }
    atomic_fetch_add_explicit(&b->refcount, 1, memory_order_relaxed);
    return b;
}

void lam_block_release(lam_block *b) {
    if (b == NULL) {
        return;
    }
    if (!is_block(b)) {
        lam__log(LAM_LOG_ERROR,
                 "lam_block_release: Released block %p, released more often than retained; "
                 "ignored",
                 (void *)b);
        return;
    }
    if (atomic_fetch_sub_explicit(&b->refcount, 1, memory_order_acq_rel) > 1) {
        return;
    }
    for (size_t i = 0; i < b->n_children; i++) {
        lam_block_release(b->children[i].block);
        free(b->children[i].name);
    }
    free(b->children);
    for (size_t i = 0; i < b->n_params; i++) {
        lam__param_release(b->params[i].param);
        free(b->params[i].local);
    }
    free(b->params);
    if (b->cls->destroy) {
        b->cls->destroy(b);
    }
    free(b->type);
    free(b->name);
    pthread_mutex_lock(&blocks_lock);
    if (b->live_prev != NULL) {
        b->live_prev->live_next = b->live_next;
    } else {
        live_blocks = b->live_next;
    }
    if (b->live_next != NULL) {
        b->live_next->live_prev = b->live_prev;
    }
    pthread_mutex_unlock(&blocks_lock);
    b->magic = LAM__BLOCK_DEAD;
    free(b);
}

static bool contains(const lam_block *b, const lam_block *x) {
    if (b == x) {
        return true;
    }
    for (size_t i = 0; i < b->n_children; i++) {
        if (contains(b->children[i].block, x)) {
            return true;
        }
    }
    return false;
}

lam_status lam_block_register_child(lam_block *b, const char *name, lam_block *child) {
    if (b == NULL || child == NULL || name == NULL || name[0] == '\0') {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "lam_block_register_child: Invalid argument, NULL block, child or name");
    }
    for (size_t i = 0; i < b->n_children; i++) {
        if (strcmp(b->children[i].name, name) == 0) {
            return lam__error(LAM_ERR_INVALID_ARGUMENT,
                              "%s: Duplicate child name '%s', already holds %s", b->name, name,
                              b->children[i].block->name);
        }
    }
    if (strchr(name, '.') != NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "%s: Invalid child name '%s', '.' separates structural keys", b->name,
                          name);
    }
    if (contains(child, b)) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "%s: Cycle, cannot register %s as a child of itself or its descendant",
                          b->name, child->name);
    }
    lam__child *arr = realloc(b->children, (b->n_children + 1) * sizeof *arr);
    if (arr == NULL) {
        return lam__error(LAM_ERR_OUT_OF_MEMORY, "%s: Out of memory", b->name);
    }
    b->children = arr;
    char *n = lam__strdup(name);
    if (n == NULL) {
        return lam__error(LAM_ERR_OUT_OF_MEMORY, "%s: Out of memory", b->name);
    }
    arr[b->n_children].name = n;
    arr[b->n_children].block = lam_block_retain(child);
    b->n_children++;
    return LAM_OK;
}

size_t lam_block_child_count(const lam_block *b) {
    return b ? b->n_children : 0;
}

lam_block *lam_block_child_at(const lam_block *b, size_t index) {
    return (b && index < b->n_children) ? b->children[index].block : NULL;
}

lam_block *lam_block_child(const lam_block *b, const char *name) {
    for (size_t i = 0; b && name && i < b->n_children; i++) {
        if (strcmp(b->children[i].name, name) == 0) {
            return b->children[i].block;
        }
    }
    return NULL;
}

const char *lam_block_name(const lam_block *b) {
    return b ? b->name : "(null)";
}

const char *lam_block_type(const lam_block *b) {
    return b ? b->type : "(null)";
}

lam_status lam__block_add_param(lam_block *b, const char *local, lam_param *p) {
    for (size_t i = 0; i < b->n_params; i++) {
        if (strcmp(b->params[i].local, local) == 0) {
            return lam__error(LAM_ERR_INVALID_ARGUMENT, "%s: Duplicate parameter name '%s'",
                              b->name, local);
        }
    }
    lam__own_param *arr = realloc(b->params, (b->n_params + 1) * sizeof *arr);
    if (arr == NULL) {
        return lam__error(LAM_ERR_OUT_OF_MEMORY, "%s: Out of memory", b->name);
    }
    b->params = arr;
    char *l = lam__strdup(local);
    if (l == NULL) {
        return lam__error(LAM_ERR_OUT_OF_MEMORY, "%s: Out of memory", b->name);
    }
    arr[b->n_params].local = l;
    arr[b->n_params].param = lam__param_retain(p);
    b->n_params++;
    return LAM_OK;
}

static bool valid_local(const char *name) {
    if (name == NULL || name[0] == '\0' || strlen(name) > 60) {
        return false;
    }
    for (const char *c = name; *c; c++) {
        if (!isalnum((unsigned char)*c) && *c != '_') {
            return false;
        }
    }
    return true;
}

static lam_status new_param(lam_block *b, const char *name, const lam_shape *shape,
                            const lam_initializer *init, uint32_t flags, lam_param **out) {
    if (!valid_local(name)) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "%s: Invalid parameter name '%s', expected letters, digits and _",
                          b->name, name ? name : "(null)");
    }
    char display[200];
    snprintf(display, sizeof display, "%s_%s", b->name, name);
    lam_param *p;
    lam_status st = lam__param_create(display, name, shape, init, flags, &p);
    if (st != LAM_OK) {
        return st;
    }
    st = lam__block_add_param(b, name, p);
    lam__param_release(p); /* the block holds it now */
    if (st != LAM_OK) {
        return st;
    }
    if (out) {
        *out = p;
    }
    return LAM_OK;
}

lam_status lam_block_param_new(lam_block *b, const char *name, const lam_shape *shape,
                               const lam_initializer *init, lam_param **out) {
    if (out) {
        *out = NULL;
    }
    if (b == NULL || shape == NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "lam_block_param_new: Invalid argument, NULL block or shape");
    }
    return new_param(b, name, shape, init, 0, out);
}

lam_status lam_block_constant_new(lam_block *b, const char *name, const lam_tensor *value,
                                  lam_param **out) {
    if (out) {
        *out = NULL;
    }
    if (b == NULL || value == NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "lam_block_constant_new: Invalid argument, NULL block or value");
    }
    size_t n = (size_t)lam_tensor_numel(value);
    float *values = malloc((n ? n : 1) * sizeof *values);
    if (values == NULL) {
        return lam__error(LAM_ERR_OUT_OF_MEMORY, "%s: Out of memory", b->name);
    }
    lam_status st = lam_tensor_read(value, values, n);
    if (st != LAM_OK) {
        free(values);
        return st;
    }
    lam_param *p;
    st = new_param(b, name, lam_tensor_shape(value), NULL, LAM_PARAM_CONSTANT, &p);
    if (st != LAM_OK) {
        free(values);
        return st;
    }
    p->const_values = values;
    if (out) {
        *out = p;
    }
    return LAM_OK;
}

lam_param *lam_block_param(const lam_block *b, const char *name) {
    for (size_t i = 0; b && name && i < b->n_params; i++) {
        if (strcmp(b->params[i].local, name) == 0) {
            return b->params[i].param;
        }
    }
    return NULL;
}

lam_status lam_block_params(lam_block *b, lam_param_list **out) {
    if (b == NULL || out == NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "lam_block_params: Invalid argument, NULL "
                                                    "block or output");
    }
    *out = NULL;
    lam_param_list *l;
    lam_status st = lam__param_list_create(NULL, &l);
    for (size_t i = 0; st == LAM_OK && i < b->n_params; i++) {
        st = lam__param_list_add(l, b->params[i].local, b->params[i].param);
    }
    if (st != LAM_OK) {
        lam_param_list_destroy(l);
        return st;
    }
    *out = l;
    return LAM_OK;
}

static lam_status collect(lam_block *b, const char *prefix, lam_param_list *l, int depth) {
    if (depth > 256) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "%s: Nesting too deep", b->name);
    }
    lam__strbuf key = {0};
    lam_status st = LAM_OK;
    for (size_t i = 0; st == LAM_OK && i < b->n_params; i++) {
        key.len = 0;
        if (!lam__strbuf_printf(&key, "%s%s", prefix, b->params[i].local)) {
            st = lam__error(LAM_ERR_OUT_OF_MEMORY, "collect_params: Out of memory");
        } else {
            st = lam__param_list_add(l, key.data, b->params[i].param);
        }
    }
    for (size_t i = 0; st == LAM_OK && i < b->n_children; i++) {
        key.len = 0;
        if (!lam__strbuf_printf(&key, "%s%s.", prefix, b->children[i].name)) {
            st = lam__error(LAM_ERR_OUT_OF_MEMORY, "collect_params: Out of memory");
        } else {
            st = collect(b->children[i].block, key.data, l, depth + 1);
        }
    }
    lam__strbuf_fini(&key);
    return st;
}

lam_status lam_block_collect_params(lam_block *b, const char *regex, lam_param_list **out) {
    if (b == NULL || out == NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "lam_block_collect_params: Invalid argument, NULL block or output");
    }
    *out = NULL;
    lam_param_list *l;
    lam_status st = lam__param_list_create(regex, &l);
    if (st != LAM_OK) {
        return st;
    }
    st = collect(b, "", l, 0);
    if (st != LAM_OK) {
        lam_param_list_destroy(l);
        return st;
    }
    *out = l;
    return LAM_OK;
}

lam_status lam_block_initialize(lam_block *b, const lam_initializer *init, lam_ctx *ctx,
                                int force_reinit) {
    if (b == NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "lam_block_initialize: Invalid argument, "
                                                    "NULL block");
    }
    lam_status st = ctx ? LAM_OK : lam_ctx_default(&ctx);
    if (st != LAM_OK) {
        return st;
    }
    lam_param_list *l;
    st = lam_block_collect_params(b, NULL, &l);
    if (st != LAM_OK) {
        return st;
    }
    size_t n = lam_param_list_count(l);
    for (size_t i = 0; st == LAM_OK && i < n; i++) {
        st = lam__param_initialize(lam_param_list_get(l, i), init, ctx, force_reinit != 0,
                                   lam_param_list_key(l, i));
    }
    lam_param_list_destroy(l);
    return st;
}

/* Every own parameter must be initialized, or waiting for its shape (deferred). */
static lam_status check_ready(const lam_block *b) {
    for (size_t i = 0; i < b->n_params; i++) {
        const lam_param *p = b->params[i].param;
        if (p->data == NULL && !p->deferred) {
            return lam__error(LAM_ERR_STATE,
                              "%s: Not initialized, call lam_block_initialize() on it or on the "
                              "model containing it before the first forward (a child of a custom "
                              "block is only reached once registered with "
                              "lam_block_register_child)",
                              b->name);
        }
    }
    return LAM_OK;
}

static pthread_mutex_t first_forward_lock = PTHREAD_MUTEX_INITIALIZER;
static _Thread_local bool holds_first_forward;
static _Thread_local const lam__forward_observer *observer LAM__TLS_FAST;

const lam__forward_observer *lam__block_set_observer(const lam__forward_observer *obs) {
    const lam__forward_observer *was = observer;
    observer = obs;
    return was;
}

/* Checks and the first-forward lock around one forward of b (one output or several). */
static lam_status forward_any(lam_block *b, uint32_t n_inputs, lam_tensor *const *inputs,
                              uint32_t n_outputs, lam_tensor **outputs) {
    if (b == NULL || (n_inputs > 0 && inputs == NULL)) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "lam_block_forward: Invalid argument, NULL block or inputs");
    }
    for (uint32_t i = 0; i < n_inputs; i++) {
        if (inputs[i] == NULL) {
            return lam__error(LAM_ERR_INVALID_ARGUMENT, "%s: Invalid argument, input %u is NULL",
                              b->name, i);
        }
    }
    if (b->detached) {
        return lam__error(LAM_ERR_STATE,
                          "%s: Runtime shut down, lam_shutdown() unloaded its layer plugin; "
                          "create the model again",
                          b->name);
    }
    /* One output is always allowed (the first, lam_block_forward), else exactly all. */
    uint32_t have = b->cls->n_outputs ? b->cls->n_outputs(b) : 1;
    if (n_outputs != 1 && n_outputs != have) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "%s: Wrong number of outputs, %u asked for, the block gives %u", b->name,
                          (unsigned)n_outputs, (unsigned)have);
    }
    lam_status st = check_ready(b);
    if (st != LAM_OK) {
        return st;
    }
    /* Shape inference and deferred initialization write parameters on a block's first
     * forwards; later forwards only read them. So that threads may run a shared model's first
     * forward at once, forwards of blocks not yet ready run one at a time (nested blocks run
     * under the lock their outermost block took). */
    bool ready = atomic_load_explicit(&b->params_ready, memory_order_acquire);
    bool take = !ready && !holds_first_forward;
    if (take) {
        pthread_mutex_lock(&first_forward_lock);
        holds_first_forward = true;
    }
    const lam__forward_observer *obs = observer;
    if (obs != NULL) {
        obs->begin(obs->user, b);
    }
    st = n_outputs > 1 ? b->cls->forward_outputs(b, n_inputs, inputs, n_outputs, outputs)
                       : b->cls->forward(b, n_inputs, inputs, outputs);
    if (obs != NULL) {
        obs->end(obs->user, b, st, n_outputs, outputs);
    }
    if (!ready && st == LAM_OK) {
        atomic_store_explicit(&b->params_ready, true, memory_order_release);
    }
    if (take) {
        holds_first_forward = false;
        pthread_mutex_unlock(&first_forward_lock);
    }
    return st;
}

lam_status lam_block_forward(lam_block *b, uint32_t n_inputs, lam_tensor *const *inputs,
                             lam_tensor **output) {
    if (output == NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "lam_block_forward: Invalid argument, "
                                                    "output is NULL");
    }
    *output = NULL;
    return forward_any(b, n_inputs, inputs, 1, output);
}

lam_status lam_block_forward_outputs(lam_block *b, uint32_t n_inputs, lam_tensor *const *inputs,
                                     uint32_t n_outputs, lam_tensor **outputs) {
    if (outputs == NULL || n_outputs == 0) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "lam_block_forward_outputs: Invalid argument, "
                                                    "no outputs");
    }
    for (uint32_t i = 0; i < n_outputs; i++) {
        outputs[i] = NULL;
    }
    return forward_any(b, n_inputs, inputs, n_outputs, outputs);
}

uint32_t lam_block_output_count(const lam_block *b) {
    return b == NULL ? 0 : b->cls->n_outputs ? b->cls->n_outputs(b) : 1;
}

lam_status lam_block_call(lam_block *b, lam_tensor *input, lam_tensor **output) {
    return lam_block_forward(b, 1, &input, output);
}

void lam__block_summarize(const lam_block *b, lam__strbuf *sb, int indent) {
    if (b->detached) { /* after lam_shutdown */
        lam__strbuf_printf(sb, "%s()", b->type);
        return;
    }
    if (b->cls->describe) {
        b->cls->describe(b, sb, indent);
        return;
    }
    if (b->n_children == 0) {
        lam__strbuf_printf(sb, "%s()", b->type);
        return;
    }
    lam__strbuf_printf(sb, "%s(\n", b->type);
    for (size_t i = 0; i < b->n_children; i++) {
        lam__strbuf_printf(sb, "%*s(%s): ", indent + 2, "", b->children[i].name);
        lam__block_summarize(b->children[i].block, sb, indent + 2);
        lam__strbuf_printf(sb, "\n");
    }
    lam__strbuf_printf(sb, "%*s)", indent, "");
}

char *lam_block_summary(const lam_block *b) {
    if (b == NULL) {
        return NULL;
    }
    lam__strbuf sb = {0};
    lam__block_summarize(b, &sb, 0);
    return sb.data;
}
