/*
 * Core internals shared between core/ files; never exported (lam__ prefix, hidden visibility).
 */
#ifndef LAMINA_CORE_INTERNAL_H
#define LAMINA_CORE_INTERNAL_H

#include "lamina/lamina.h"

#include <regex.h>
#include <stdarg.h>
#include <stdbool.h>

/* ---- errors (error.c) ---- */
lam_status lam__error(lam_status status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
lam_status lam__verror(lam_status status, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
/* Prefixes the current message with "<prefix>: " and returns status (context on the way up). */
lam_status lam__error_prefix(lam_status status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/*
 * Callbacks (plugins, backends, user functions) report errors through lam_set_error or the host
 * table. To tell whether one set a message, take a mark before calling it; never clear the
 * message, as lam_last_error() must survive successful calls:
 *   uint64_t mark = lam__error_mark();
 *   st = callback(...);
 *   if (st != LAM_OK) return lam__error_prefix(lam__error_from_callback(st, mark, "backend"), ..);
 */
uint64_t lam__error_mark(void);
/* True when a non-empty message was set on this thread since `mark`. */
bool lam__error_set_since(uint64_t mark);
/* When nothing set a message since `mark`, sets "No message, the <who> returned <status>" (so
 * context is not put in front of an older message). Returns status. */
lam_status lam__error_from_callback(lam_status status, uint64_t mark, const char *who);

/* ---- user regular expressions (pattern.c) ---- */
/* Compiles a POSIX extended regular expression given by the user after checking it against
 * limits (length, nesting, size after expanding repetitions; no back references), so that a
 * hostile pattern is an error instead of a crash or a hang. Errors name `subject`. */
lam_status lam__pattern_compile(const char *subject, const char *pattern, regex_t *out);
/* True when the pattern matches at the start of text (Python's re.match). */
bool lam__pattern_match_start(const regex_t *re, const char *text);

/* ---- logging (log.c) ---- */
void lam__log(lam_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void lam__vlog(lam_log_level level, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* ---- ABI (abi.c) ---- */
/* Fingerprint of the layout this core was compiled with. */
uint64_t lam__abi_fingerprint(void);
/* Expected descriptor sizes for a given minor of the current major; 0 when unknown. */
uint32_t lam__backend_desc_size(uint32_t minor);
uint32_t lam__layer_desc_size(uint32_t minor);
/* Fingerprint of the layout of a given minor of the current major; 0 when unknown. */
uint64_t lam__abi_fingerprint_for_minor(uint32_t minor);

/* ---- small helpers (util.c) ---- */
char *lam__strdup(const char *s);
/* Appends formatted text to a growable string; returns false on out of memory. */
typedef struct lam__strbuf {
    char *data;
    size_t len;
    size_t cap;
} lam__strbuf;
bool lam__strbuf_printf(lam__strbuf *sb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void lam__strbuf_fini(lam__strbuf *sb);

/* ---- backends and contexts (context.c) ---- */
typedef struct lam__backend {
    lam_backend_desc desc; /* copied; fields past the plugin's struct_size are zero; its strings
                              point into `strings`, the host's own copy */
    char *strings;
    struct lam_plugin *plugin;
    bool probed; /* probe runs on first use: lam__backend_probe */
    uint32_t n_devices;
    char why[512];
    lam_ctx **ctxs; /* n_devices entries, opened lazily */
} lam__backend;

/* Buffers freed by tensors, kept for reuse by size so the op hot path rarely reaches the
 * backend's allocator (tensor.c). */
#define LAM__CACHE_SLOTS 64
typedef struct lam__buffer_cache {
    size_t bytes[LAM__CACHE_SLOTS];
    void *buf[LAM__CACHE_SLOTS];
    uint32_t n;
    size_t total;
} lam__buffer_cache;

struct lam_ctx {
    lam__backend *backend;
    uint32_t device;
    void *dev;
    char name[80];
    lam__buffer_cache cache;
};

/* Frees every cached buffer of ctx through its backend. */
void lam__ctx_cache_flush(lam_ctx *ctx);
/* Frees the pooled tensor and storage structs (at shutdown). */
void lam__tensor_pool_flush(void);

void lam__contexts_close_all(void);
/* Probes a backend once (devices, or why there are none); later calls do nothing. */
void lam__backend_probe(lam__backend *b);
void lam__backends_probe_all(void);

/* ---- layer types (registry.c) ---- */
typedef struct lam__layer_type {
    lam_layer_desc desc; /* copied; its strings and attrs point into `owned`, the host's copy */
    struct lam_plugin *plugin;
    void *owned;
} lam__layer_type;

/* ---- runtime (runtime.c) ---- */
typedef struct lam__record {
    char *path;
    char *kind;
    char *names;
    char *version;
    uint32_t plugin_abi;
    lam_plugin_decision decision;
    lam_plugin_reason reason;
    char *message;
} lam__record;

struct lam_plugin {
    char *path;
    void *handle;
    size_t record;            /* index into the report */
    bool loading;             /* registration allowed */
    lam_status refuse_status; /* first refused registration */
    lam_plugin_reason refuse_reason;
    char *refuse_message;
    uint32_t abi_seen;  /* abi_version of the first descriptor */
    char *version_seen; /* copied from the first descriptor with a version */
};

typedef struct lam__runtime {
    bool started;
    lam_host_api host;
    lam__record *records;
    size_t n_records;
    struct lam_plugin **plugins;
    size_t n_plugins;
    lam__backend **backends;
    size_t n_backends;
    lam__layer_type **layers;
    size_t n_layers;
} lam__runtime;

extern lam__runtime lam__rt;

/* Starts the runtime with default options if it is not started. */
lam_status lam__ensure_started(void);
void lam__host_table_init(lam_host_api *host);
/*
 * Checks the status a plugin callback returned (host.c), given lam__error_mark() from just
 * before the call. A status that is no lam_status (positive, or a negative the host does not
 * know) becomes LAM_ERR_INTERNAL with a message naming the subject, the callback and the
 * plugin; an error without a message (or with an empty one) keeps its status and gets
 * "<subject>: <status string> (the plugin set no message)". `subject` is what the user sees
 * (a layer instance "dense0"; NULL: none, the caller prefixes one); `who` names the plugin's
 * part ("layer type 'Dense'", "backend 'cpu'"). LAM_OK passes through.
 */
lam_status lam__plugin_status(lam_status st, uint64_t mark, const struct lam_plugin *plugin,
                              const char *who, const char *subject, const char *callback);
/* lam__plugin_status for a backend callback, without a subject: the caller prefixes its own
 * ("add on cpu(0)") as usual. */
lam_status lam__backend_status(lam_status st, uint64_t mark, const lam__backend *b,
                               const char *callback);

/* ---- registry (registry.c) ---- */
lam_status lam__registry_load(const char *plugin_path, bool skip_builtin);
void lam__registry_unload(void);
lam__backend *lam__backend_find(const char *name);
const lam__layer_type *lam__layer_type_find(const char *name);

/* ---- tensors (tensor.c) ---- */
typedef struct lam__storage {
    long refcount;
    lam_ctx *ctx;
    void *buf;
    size_t bytes;
} lam__storage;

struct lam_tensor {
    long refcount;
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
void lam__tensors_reclaim_all(void);
/* Runs one op on the backend of ctx. */
lam_status lam__execute(lam_ctx *ctx, lam_op op, const lam_tensor_view *inputs, uint32_t n_inputs,
                        lam_tensor_view *output, const double *scalars, const int64_t *ints);
/* Checks that both tensors live on one context; error names both. */
lam_status lam__same_ctx(const char *op, const lam_tensor *a, const lam_tensor *b);

/* ---- ops for the host table (ops.c) ---- */
lam_status lam__op_unary(lam_op op, const lam_tensor *a, lam_tensor **out);
lam_status lam__op_scalar(lam_op op, const lam_tensor *a, float s, lam_tensor **out);
lam_status lam__op_reduce(lam_op op, const lam_tensor *a, const int32_t *axes, uint32_t n_axes,
                          int32_t keepdims, lam_tensor **out);
lam_status lam__op_softmax(const lam_tensor *a, int32_t axis, int32_t log, lam_tensor **out);
const char *lam__op_name(lam_op op);
/* x = a*x + b*y in place (same shape and context), through the backend's fused op when it has
 * one. Not recorded. */
lam_status lam__axpby_inplace(lam_tensor *x, float a, const lam_tensor *y, float b);

/* ---- initializers (init.c, rng.c) ---- */
/*
 * Fills `count` floats for a parameter of full shape `shape` with `init`. The random stream is
 * derived from (lam_seed_get(), key), so the values depend on nothing else. `name` is the
 * display name passed to custom callbacks and used in messages.
 */
lam_status lam__init_fill(const lam_initializer *init, const char *name, const char *key,
                          const lam_shape *shape, float *data, size_t count);

/* ---- parameters (param.c) ---- */
struct lam_param {
    long refcount;
    char *name;  /* display name, "dense0_weight" */
    char *local; /* local name in its block, "weight" */
    char *key;   /* structural key from the last initialize/collect, NULL before */
    lam_shape shape;
    lam_initializer *init; /* declared default, NULL: the block's */
    uint32_t flags;        /* LAM_PARAM_CONSTANT */
    lam_grad_req grad_req;
    float lr_mult, wd_mult;
    lam_tensor *data, *grad;
    float *const_values; /* constants: the value, kept on the host */
    /* Deferred initialization: requested, waiting for the shape. */
    bool deferred;
    lam_initializer *deferred_init;
    lam_ctx *deferred_ctx;
};

lam_status lam__param_create(const char *name, const char *local, const lam_shape *shape,
                             const lam_initializer *init, uint32_t flags, lam_param **out);
lam_param *lam__param_retain(lam_param *p);
void lam__param_release(lam_param *p);
/* Initialization from a block: `fallback` is the block's initializer (NULL: Uniform(0.07)). */
lam_status lam__param_initialize(lam_param *p, const lam_initializer *fallback, lam_ctx *ctx,
                                 bool force, const char *key);
/* Completes a deferred initialization once the shape is known (no-op otherwise). */
lam_status lam__param_finish_deferred(lam_param *p);
/* Merges an inferred full shape into the parameter's shape; the subject names the block. */
lam_status lam__param_infer_shape(lam_param *p, const char *subject, const lam_shape *inferred);
bool lam__shape_known(const lam_shape *s);
/* Loading a parameter in two steps, so that a failed load of a model changes nothing:
 * lam__param_stage allocates everything the new values need (data on ctx, a gradient buffer,
 * a constant's host copy) and changes nothing; lam__param_commit cannot fail: the values go
 * into the current data tensor (its buffer is exchanged, so holders see them) or replace it,
 * the shape becomes theirs, a deferred initialization counts as done, the gradient follows. */
typedef struct lam__param_staged {
    lam_tensor *data;
    lam_tensor *grad;    /* a new gradient buffer; NULL when the current one fits or none */
    float *const_values; /* constants: the new host copy */
    bool swap;           /* exchange buffers with the current data tensor */
} lam__param_staged;
lam_status lam__param_stage(lam_param *p, lam_ctx *ctx, const lam_shape *shape, const float *values,
                            size_t count, lam__param_staged *out);
void lam__param_commit(lam_param *p, lam__param_staged *s);
/* Releases what a stage holds (after a commit: nothing). */
void lam__param_staged_fini(lam__param_staged *s);
lam_status lam__param_list_create(const char *regex, lam_param_list **out);
lam_status lam__param_list_add(lam_param_list *l, const char *key, lam_param *p);

/* ---- blocks (block.c, layer.c) ---- */
typedef struct lam__attrs lam__attrs;
struct lam_layer {
    struct lam_block *block;
};

typedef enum lam__block_kind {
    LAM__BLOCK_CUSTOM = 1,
    LAM__BLOCK_SEQUENTIAL,
    LAM__BLOCK_LAYER
} lam__block_kind;

typedef struct lam__child {
    char *name;
    struct lam_block *block;
} lam__child;

typedef struct lam__own_param {
    char *local;
    lam_param *param;
} lam__own_param;

struct lam_block {
    long refcount;
    lam__block_kind kind;
    char *type; /* "Dense", "Sequential", "MLP" */
    char *name; /* "dense0" */
    lam__child *children;
    size_t n_children;
    lam__own_param *params;
    size_t n_params;
    /* custom */
    lam_forward_fn forward;
    void *state;
    void (*free_state)(void *state);
    /* layer */
    const lam__layer_type *layer_type;
    void *layer_state;
    struct lam__attrs *attrs;
    struct lam_layer layer;
    struct lam_block *share; /* while creating a shared layer */
    bool creating;
};

/* Allocates a block with a display name from the per-type counter. */
lam_status lam__block_alloc(lam__block_kind kind, const char *type, const char *prefix,
                            lam_block **out);
lam_status lam__block_add_param(lam_block *b, const char *local, lam_param *p);
lam_status lam__layer_forward(lam_block *b, uint32_t n, lam_tensor *const *inputs,
                              lam_tensor **out);
void lam__layer_destroy(lam_block *b);
/* Summary of a layer block ("Dense(20 -> 256, Activation(relu))"). */
void lam__layer_describe(const lam_block *b, lam__strbuf *sb);
void lam__host_table_init_layers(lam_host_api *host);

/* ---- autograd (autograd.c) ---- */
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
