/*
 * lamina/plugin.h - the plugin ABI: what a layer or backend plugin sees of the host.
 *
 * A plugin is a shared object that exports exactly one symbol, lamina_plugin_entry. The host
 * dlopen()s it, calls the entry with its ABI version and a table of host functions
 * (lam_host_api), and the plugin registers one or more layer types and/or backends by passing
 * descriptors (lam_layer_desc, lam_backend_desc) to the host's register callbacks.
 *
 * Plugins never link against liblamina: everything they need from the host comes through the
 * host table, so one plugin binary works with every host of the same ABI major version whose
 * minor is at least the plugin's (a plugin built for 1.x loads into a 1.y host, y >= x).
 *
 * Descriptor memory (Ownership): a plugin keeps its descriptors' strings and attribute arrays
 * valid for as long as it is loaded (static storage is the norm); `lamina conform` fails a
 * plugin whose strings change or are freed once its entry returns, since hosts of ABI 1.0
 * before this rule kept the pointers. This host does not rely on it: register_layer and
 * register_backend copy every string of the descriptor (name, prefix, version, doc, and each
 * attribute's name, default_value, choices and doc) and the attribute array before they
 * return, so a plugin breaking the rule cannot make it read freed memory. The descriptor
 * struct itself may live on the entry's stack. The host reads at most 4096 bytes of each
 * string (names: 63): a longer one, or one without its terminating NUL, refuses the plugin
 * (LAM_REASON_BAD_DESCRIPTOR). Kept as given: the callbacks and `user`.
 *
 * What the host checks (Errors): a callback returns LAM_OK or a negative lam_status after
 * host->set_error. Any other value (12345, INT_MIN, a positive number, a status newer than the
 * host) reaches the caller as LAM_ERR_INTERNAL with a message naming the callback, the layer or
 * backend and the plugin file; an error returned with no message (or an empty one) keeps its
 * status and gets "<subject>: <status string> (the plugin set no message)". Text a plugin
 * writes into host buffers (probe's why, device_info's strings, describe) is cut at the
 * buffer's end if it has no NUL.
 *
 * Rules every boundary struct keeps (see STYLE.md):
 *  - it starts with `uint32_t struct_size; uint32_t abi_version;` and grows only at the end;
 *    the reader uses a field only if it lies inside struct_size;
 *  - only fixed-width integers, size_t, float/double, pointers and pinned enums inside;
 *  - the descriptors also carry abi_fingerprint, a hash of every boundary struct's size and
 *    field offsets and of every enum's count. The host refuses a descriptor whose fingerprint
 *    does not match the layout it knows for that ABI version, so an accidental layout change
 *    without a version change is an ABI error instead of a crash.
 */
#ifndef LAMINA_PLUGIN_H
#define LAMINA_PLUGIN_H

#include "lamina/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Hash of the ABI layout for LAM_ABI_VERSION (FNV-1a 64 over sizes, offsets and enum counts).
 * Generated: `build/bin/lamina abi` prints the value the current headers produce, and a test
 * fails when this constant and the layout disagree.
 */
#define LAM_ABI_FINGERPRINT 0x71a77d6b16c68589ULL

/* Opaque host objects a plugin handles only through the host table. */
typedef struct lam_tensor lam_tensor;
typedef struct lam_ctx lam_ctx;
typedef struct lam_plugin lam_plugin; /* the plugin being loaded, passed to register calls */
typedef struct lam_layer lam_layer;   /* one instance of a plugin layer, owned by the host */
typedef struct lam_attrs lam_attrs;   /* validated attributes of a layer instance */

/* ------------------------------------------------------------------------------------------ */
/* Backend primitive ops                                                                      */
/* ------------------------------------------------------------------------------------------ */

/*
 * Primitive ops a backend may implement. Numbering is append-only and never reused.
 * Operands are lam_tensor_view values (element strides, so broadcasting is a zero stride).
 * Unless noted, every operand is float32 and has the same ndim and dims as the output, which
 * is written densely or through its strides; inputs never alias the output unless the op says
 * so. "x" is inputs[0], "y" is inputs[1], "s" is call->scalars[0], "out" is the output.
 * A backend answers ops it does not know (numbers appended after it was built) with
 * supports_op 0 and LAM_ERR_UNSUPPORTED from execute; it must not size tables by LAM_OP_COUNT
 * of the header it was built with and then index them with a newer host's op.
 */
typedef enum lam_op {
    LAM_OP_INVALID = 0,
    LAM_OP_FILL = 1,         /* out = s (no inputs) */
    LAM_OP_COPY = 2,         /* out = x (x may broadcast through zero strides) */
    LAM_OP_ADD = 3,          /* out = x + y */
    LAM_OP_SUB = 4,          /* out = x - y */
    LAM_OP_MUL = 5,          /* out = x * y */
    LAM_OP_DIV = 6,          /* out = x / y */
    LAM_OP_ADD_SCALAR = 7,   /* out = x + s */
    LAM_OP_MUL_SCALAR = 8,   /* out = x * s */
    LAM_OP_RSUB_SCALAR = 9,  /* out = s - x */
    LAM_OP_DIV_SCALAR = 10,  /* out = x / s */
    LAM_OP_RDIV_SCALAR = 11, /* out = s / x */
    LAM_OP_POW_SCALAR = 12,  /* out = powf(x, s) */
    LAM_OP_NEG = 13,         /* out = -x */
    LAM_OP_ABS = 14,         /* out = fabsf(x) */
    LAM_OP_SQUARE = 15,      /* out = x * x */
    LAM_OP_SQRT = 16,        /* out = sqrtf(x) */
    LAM_OP_EXP = 17,         /* out = expf(x) */
    LAM_OP_LOG = 18,         /* out = logf(x) */
    LAM_OP_RELU = 19,        /* out = x > 0 ? x : 0 (NaN stays NaN) */
    LAM_OP_SIGMOID = 20,     /* out = 1 / (1 + expf(-x)) */
    LAM_OP_TANH = 21,        /* out = tanhf(x) */
    LAM_OP_SOFTRELU = 22,    /* out = log(1 + exp(x)), computed without overflow */
    /*
     * out[M,N] = alpha * op(A) * op(B) + beta * out, A = inputs[0], B = inputs[1], all 2-D.
     * op(A) is A, or A transposed when ints[0] != 0; op(B) likewise with ints[1].
     * alpha = scalars[0], beta = scalars[1]; with beta == 0 out is not read (NaN in out
     * does not propagate). Operands have a unit last-dimension stride.
     */
    LAM_OP_GEMM = 23,
    /*
     * Reductions over the middle axis of a 3-D view: x has dims (outer, n, inner), out has
     * dims (outer, 1, inner). For n == 0: SUM is 0, MEAN NaN, MAX -inf, MIN +inf, and ARGMAX
     * an error (LAM_ERR_SHAPE, as NumPy). NaN propagates. ARGMAX indices are exact up to 2^24.
     */
    LAM_OP_REDUCE_SUM = 24,
    LAM_OP_REDUCE_MEAN = 25,
    LAM_OP_REDUCE_MAX = 26,
    LAM_OP_REDUCE_MIN = 27,
    LAM_OP_ARGMAX = 28, /* like REDUCE_MAX, out holds the first index of the maximum (as float) */
    /* Along the middle axis of a 3-D view, x and out both (outer, n, inner); numerically stable. */
    LAM_OP_SOFTMAX = 29,
    LAM_OP_LOG_SOFTMAX = 30,
    LAM_OP_MAXIMUM = 31,       /* out = fmaxf-like max(x, y); NaN in either operand gives NaN */
    LAM_OP_MINIMUM = 32,       /* out = min(x, y); NaN in either operand gives NaN */
    LAM_OP_STEP = 33,          /* out = x > 0 ? 1 : 0 (NaN gives 0) */
    LAM_OP_GREATER_EQUAL = 34, /* out = x >= y ? 1 : 0 (NaN gives 0) */
    /* out = s0 * x + s1 * y with s0 = scalars[0], s1 = scalars[1]. The output may be the very
     * same view as x or y (an in-place update, as optimizers use it). */
    LAM_OP_AXPBY = 35,
    /*
     * A dense layer in one op: out[M,N] = act(op(A) op(B) + bias). A = inputs[0], B =
     * inputs[1] (2-D, transposed when ints[0] / ints[1] != 0, as GEMM); bias = inputs[2], 1-D
     * of N elements, optional (n_inputs 2 or 3); act = ints[2]: LAM_OP_INVALID (none),
     * LAM_OP_RELU, LAM_OP_SIGMOID, LAM_OP_TANH or LAM_OP_SOFTRELU, with the semantics of those
     * ops. The host falls back to GEMM + ADD + the activation when a backend lacks it.
     */
    LAM_OP_LINEAR = 36,
    LAM_OP_MAX_ENUM = 0x7FFFFFFF
} lam_op;

/* Number of lam_op values including INVALID; part of the ABI fingerprint. */
#define LAM_OP_COUNT 37

/*
 * A strided view of a backend buffer as handed to a backend op. Strides and offset count
 * elements, not bytes. A zero stride repeats an element (broadcasting).
 */
typedef struct lam_tensor_view {
    void *buffer;    /* the backend's buffer handle from buffer_alloc */
    uint64_t offset; /* first element, in elements from the start of the buffer */
    lam_dtype dtype;
    uint32_t ndim;
    int64_t dims[LAM_MAX_DIMS];
    int64_t strides[LAM_MAX_DIMS];
} lam_tensor_view;

/* One op invocation, built by the host and passed to lam_backend_desc.execute. */
typedef struct lam_op_call {
    uint32_t struct_size;
    uint32_t abi_version;
    lam_op op;
    uint32_t n_inputs;
    const lam_tensor_view *inputs;
    lam_tensor_view *output;
    double scalars[4];
    int64_t ints[4];
} lam_op_call;

/* How an op takes its operands, from the semantics above (header-only, not part of the ABI). */
typedef enum lam_op_form {
    LAM_OP_FORM_INVALID = 0,
    LAM_OP_FORM_FILL = 1,    /* no inputs */
    LAM_OP_FORM_UNARY = 2,   /* one input, same dims as the output */
    LAM_OP_FORM_BINARY = 3,  /* two inputs, same dims as the output */
    LAM_OP_FORM_GEMM = 4,    /* two 2-D inputs */
    LAM_OP_FORM_LINEAR = 5,  /* GEMM's inputs and an optional 1-D bias */
    LAM_OP_FORM_REDUCE = 6,  /* one 3-D input (outer, n, inner), output (outer, 1, inner) */
    LAM_OP_FORM_SOFTMAX = 7, /* one 3-D input, output of the same dims */
    LAM_OP_FORM_MAX_ENUM = 0x7FFFFFFF
} lam_op_form;

/* The op's name as backends report it ("gemm", "reduce_sum"); "unknown" past this header's
 * ops (a newer host's), so it is safe to call with any value. */
static inline const char *lam_op_name(lam_op op) {
    static const char *const names[LAM_OP_COUNT] = {
        "invalid",     "fill",        "copy",       "add",         "sub",           "mul",
        "div",         "add_scalar",  "mul_scalar", "rsub_scalar", "div_scalar",    "rdiv_scalar",
        "pow_scalar",  "neg",         "abs",        "square",      "sqrt",          "exp",
        "log",         "relu",        "sigmoid",    "tanh",        "softrelu",      "gemm",
        "reduce_sum",  "reduce_mean", "reduce_max", "reduce_min",  "argmax",        "softmax",
        "log_softmax", "maximum",     "minimum",    "step",        "greater_equal", "axpby",
        "linear",
    };
    int64_t n = (int64_t)(int32_t)op;
    return (n >= 0 && n < LAM_OP_COUNT && names[n] != NULL) ? names[n] : "unknown";
}

/* How `op` takes its operands; LAM_OP_FORM_INVALID for INVALID and ops this header lacks. */
static inline lam_op_form lam_op_form_of(lam_op op) {
    switch (op) {
    case LAM_OP_FILL:
        return LAM_OP_FORM_FILL;
    case LAM_OP_COPY:
    case LAM_OP_ADD_SCALAR:
    case LAM_OP_MUL_SCALAR:
    case LAM_OP_RSUB_SCALAR:
    case LAM_OP_DIV_SCALAR:
    case LAM_OP_RDIV_SCALAR:
    case LAM_OP_POW_SCALAR:
    case LAM_OP_NEG:
    case LAM_OP_ABS:
    case LAM_OP_SQUARE:
    case LAM_OP_SQRT:
    case LAM_OP_EXP:
    case LAM_OP_LOG:
    case LAM_OP_RELU:
    case LAM_OP_SIGMOID:
    case LAM_OP_TANH:
    case LAM_OP_SOFTRELU:
    case LAM_OP_STEP:
        return LAM_OP_FORM_UNARY;
    case LAM_OP_ADD:
    case LAM_OP_SUB:
    case LAM_OP_MUL:
    case LAM_OP_DIV:
    case LAM_OP_MAXIMUM:
    case LAM_OP_MINIMUM:
    case LAM_OP_GREATER_EQUAL:
    case LAM_OP_AXPBY:
        return LAM_OP_FORM_BINARY;
    case LAM_OP_GEMM:
        return LAM_OP_FORM_GEMM;
    case LAM_OP_LINEAR:
        return LAM_OP_FORM_LINEAR;
    case LAM_OP_REDUCE_SUM:
    case LAM_OP_REDUCE_MEAN:
    case LAM_OP_REDUCE_MAX:
    case LAM_OP_REDUCE_MIN:
    case LAM_OP_ARGMAX:
        return LAM_OP_FORM_REDUCE;
    case LAM_OP_SOFTMAX:
    case LAM_OP_LOG_SOFTMAX:
        return LAM_OP_FORM_SOFTMAX;
    default:
        return LAM_OP_FORM_INVALID;
    }
}

/* The most inputs an op of this form takes (LINEAR also takes one fewer: no bias). */
static inline uint32_t lam_op_form_inputs(lam_op_form form) {
    switch (form) {
    case LAM_OP_FORM_BINARY:
    case LAM_OP_FORM_GEMM:
        return 2;
    case LAM_OP_FORM_LINEAR:
        return 3;
    case LAM_OP_FORM_UNARY:
    case LAM_OP_FORM_REDUCE:
    case LAM_OP_FORM_SOFTMAX:
        return 1;
    default:
        return 0;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Backend descriptor                                                                         */
/* ------------------------------------------------------------------------------------------ */

/*
 * A compute backend. `user` is passed back to the backend-level callbacks; `dev` is what
 * device_open returned. Callbacks marked optional may be NULL; the host checks the required
 * ones once at load and refuses the plugin naming the first one that is NULL.
 * Callbacks report failures by returning a negative status after calling host->set_error.
 * A backend may run ops asynchronously: buffer_read and synchronize wait for all earlier work
 * and report an error raised by it.
 * Thread safety: the host calls the device callbacks (buffer_*, execute, synchronize) from any
 * thread, also on one `dev` from several threads at once (threads share a context); a backend
 * serializes what it must (the Vulkan backend locks each device). probe, device_info,
 * device_open, device_close and shutdown are called one at a time.
 */
typedef struct lam_backend_desc {
    uint32_t struct_size; /* sizeof(lam_backend_desc) */
    uint32_t abi_version; /* LAM_ABI_VERSION the plugin was built for */
    uint64_t abi_fingerprint;
    const char *name;    /* e.g. "cpu"; [a-z0-9_]+, unique among backends */
    const char *version; /* the plugin's own version, e.g. "1.0.0" */
    const char *doc;     /* one line */
    void *user;
    /* Required. How many devices there are; 0 with a reason in `why` when there are none. */
    lam_status (*probe)(void *user, uint32_t *n_devices, char *why, size_t why_cap);
    /* Required. Describes device `index`; info->struct_size says which fields to fill. */
    lam_status (*device_info)(void *user, uint32_t index, lam_device_info *info);
    /* Required. Opens device `index` for use; closed by device_close at host shutdown. */
    lam_status (*device_open)(void *user, uint32_t index, void **dev);
    void (*device_close)(void *dev); /* required */
    /* Required. A buffer of at least `bytes` bytes (bytes may be 0). */
    lam_status (*buffer_alloc)(void *dev, size_t bytes, void **buffer);
    void (*buffer_free)(void *dev, void *buffer); /* required; NULL buffer is a no-op */
    /* Required. Host memory -> buffer, at byte offset. */
    lam_status (*buffer_write)(void *dev, void *buffer, size_t offset, const void *src,
                               size_t bytes);
    /* Required. Buffer -> host memory; waits for earlier work on the buffer. */
    lam_status (*buffer_read)(void *dev, const void *buffer, size_t offset, void *dst,
                              size_t bytes);
    /* Required. Buffer -> buffer of the same device. */
    lam_status (*buffer_copy)(void *dev, void *dst, size_t dst_offset, const void *src,
                              size_t src_offset, size_t bytes);
    /* Required. Nonzero when `op` is implemented for the dtypes in `call` (call may be NULL). */
    int32_t (*supports_op)(void *dev, lam_op op, const lam_op_call *call);
    /* Required. Runs (or enqueues) one op. */
    lam_status (*execute)(void *dev, const lam_op_call *call);
    /* Required. Waits for all enqueued work; reports the first asynchronous error. */
    lam_status (*synchronize)(void *dev);
    /* Optional. Called once at host shutdown after every device is closed. */
    void (*shutdown)(void *user);
} lam_backend_desc;

/* ------------------------------------------------------------------------------------------ */
/* Layer descriptor                                                                           */
/* ------------------------------------------------------------------------------------------ */

/* Type of a layer attribute; the host parses and checks values against it. */
typedef enum lam_attr_type {
    LAM_ATTR_INVALID = 0,
    LAM_ATTR_INT = 1,    /* decimal integer */
    LAM_ATTR_FLOAT = 2,  /* decimal float */
    LAM_ATTR_BOOL = 3,   /* true/false/1/0 */
    LAM_ATTR_STRING = 4, /* any text */
    LAM_ATTR_ENUM = 5,   /* one of `choices`, '|'-separated */
    LAM_ATTR_TYPE_MAX_ENUM = 0x7FFFFFFF
} lam_attr_type;

#define LAM_ATTR_TYPE_COUNT 6

/*
 * One attribute of a layer's schema. default_value NULL means the attribute is required.
 * `lamina conform` (attrs.effect) requires every attribute to matter: another valid value must
 * change the layer's parameters or its output. An attribute that by design changes neither (a
 * label, a log verbosity) says so by starting its doc with "(cosmetic)", e.g.
 * "(cosmetic) how much the layer logs"; the kit then reports it as not judged.
 */
typedef struct lam_attr_desc {
    const char *name;
    lam_attr_type type;
    uint32_t reserved;
    const char *default_value;
    const char *choices; /* LAM_ATTR_ENUM only, e.g. "none|relu|sigmoid" */
    const char *doc;
} lam_attr_desc;

/* Flags of a declared parameter. */
#define LAM_PARAM_CONSTANT 1u /* never trained, gets no gradient (Gluon's get_constant) */

/*
 * A layer type. The host owns each instance (lam_layer) and its parameters; the plugin keeps
 * its own per-instance state, created by `create`. Forward is written with host ops, so the
 * host differentiates it and every backend runs it; `backward` is an optional fused version.
 */
typedef struct lam_layer_desc {
    uint32_t struct_size; /* sizeof(lam_layer_desc) */
    uint32_t abi_version; /* LAM_ABI_VERSION the plugin was built for */
    uint64_t abi_fingerprint;
    const char *name;    /* type name users create it by, e.g. "Dense"; unique among layers */
    const char *prefix;  /* display-name prefix, e.g. "dense" gives dense0_weight; NULL: name */
    const char *version; /* the plugin's own version */
    const char *doc;
    uint32_t n_attrs;
    uint32_t reserved;
    const lam_attr_desc *attrs;
    /*
     * Required. Makes per-instance state from validated attributes (defaults applied) and
     * declares the parameters with host->layer_declare_param.
     */
    lam_status (*create)(lam_layer *layer, const lam_attrs *attrs, void **state);
    void (*destroy)(void *state); /* required; NULL state is a no-op */
    /*
     * Required. Given input shapes, sets every parameter dimension still unknown (with
     * host->layer_param_infer_shape) and writes the output shape.
     */
    lam_status (*infer_shape)(void *state, lam_layer *layer, uint32_t n_inputs,
                              const lam_shape *inputs, lam_shape *output);
    /*
     * Required. Computes the output from the inputs with host ops; *output is a new reference.
     * Thread safety: the host may call forward (and infer_shape) on one instance from several
     * threads at once (inference on a shared model); they must only read `state` after create.
     * The host serializes the calls that may set parameter shapes (an instance's first
     * forwards); backward runs one call at a time per model (training is serialized by the
     * application).
     */
    lam_status (*forward)(void *state, lam_layer *layer, uint32_t n_inputs,
                          lam_tensor *const *inputs, lam_tensor **output);
    /*
     * Optional fused backward: given the output gradient, writes a new reference per input
     * gradient (NULL where none is needed: host->layer_input_needs_grad says which) and adds
     * parameter gradients with host->layer_param_add_grad. Must equal differentiating forward.
     */
    lam_status (*backward)(void *state, lam_layer *layer, uint32_t n_inputs,
                           lam_tensor *const *inputs, const lam_tensor *output,
                           const lam_tensor *grad_output, lam_tensor **grad_inputs);
    /* Optional. One-line summary such as "Dense(20 -> 256, Activation(relu))". */
    lam_status (*describe)(void *state, lam_layer *layer, char *buf, size_t cap);
} lam_layer_desc;

/* ------------------------------------------------------------------------------------------ */
/* Host table                                                                                 */
/* ------------------------------------------------------------------------------------------ */

/*
 * The host's functions, handed to lamina_plugin_entry. The first four fields are frozen for
 * every ABI major version, so a plugin of another major can still report why it refuses.
 * Fields are only ever appended; a plugin built for 1.x uses only fields that lie inside
 * struct_size. Tensors returned through `**out` are new references the caller releases;
 * on failure *out is NULL.
 */
typedef struct lam_host_api {
    uint32_t struct_size;
    uint32_t abi_version; /* the host's LAM_ABI_VERSION */
    uint64_t abi_fingerprint;
    /* Sets the calling thread's error message (printf format) and returns `status`. */
    lam_status (*set_error)(lam_status status, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
    /* ---- frozen above ---- */
    void (*log)(lam_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
    /* Registration; valid only during lamina_plugin_entry. The descriptor and its strings are
     * copied before the call returns (see "What the host copies" at the top). */
    lam_status (*register_backend)(lam_plugin *plugin, const lam_backend_desc *desc);
    lam_status (*register_layer)(lam_plugin *plugin, const lam_layer_desc *desc);

    /* Tensors (see lamina.h for each function's contract). */
    lam_status (*tensor_create)(lam_ctx *ctx, const lam_shape *shape, lam_tensor **out);
    lam_tensor *(*tensor_retain)(lam_tensor *t);
    void (*tensor_release)(lam_tensor *t);
    const lam_shape *(*tensor_shape)(const lam_tensor *t);
    lam_ctx *(*tensor_ctx)(const lam_tensor *t);
    lam_status (*tensor_read)(const lam_tensor *t, float *dst, size_t count);
    lam_status (*tensor_write)(lam_tensor *t, const float *src, size_t count);
    lam_status (*tensor_reshape)(lam_tensor *t, const lam_shape *shape, lam_tensor **out);

    /* Ops (see lamina.h). */
    lam_status (*op_matmul)(const lam_tensor *a, const lam_tensor *b, int32_t trans_a,
                            int32_t trans_b, lam_tensor **out);
    lam_status (*op_add)(const lam_tensor *a, const lam_tensor *b, lam_tensor **out);
    lam_status (*op_sub)(const lam_tensor *a, const lam_tensor *b, lam_tensor **out);
    lam_status (*op_mul)(const lam_tensor *a, const lam_tensor *b, lam_tensor **out);
    lam_status (*op_div)(const lam_tensor *a, const lam_tensor *b, lam_tensor **out);
    lam_status (*op_unary)(lam_op op, const lam_tensor *a, lam_tensor **out);
    lam_status (*op_scalar)(lam_op op, const lam_tensor *a, float s, lam_tensor **out);
    lam_status (*op_reduce)(lam_op op, const lam_tensor *a, const int32_t *axes, uint32_t n_axes,
                            int32_t keepdims, lam_tensor **out);
    lam_status (*op_softmax)(const lam_tensor *a, int32_t axis, int32_t log, lam_tensor **out);

    /* Layers: attributes (defaults applied) of the instance being created. */
    lam_status (*attr_int)(const lam_attrs *attrs, const char *name, int64_t *value);
    lam_status (*attr_float)(const lam_attrs *attrs, const char *name, double *value);
    lam_status (*attr_bool)(const lam_attrs *attrs, const char *name, int32_t *value);
    /* Text of a STRING or ENUM attribute; valid for the lifetime of the layer instance. */
    lam_status (*attr_string)(const lam_attrs *attrs, const char *name, const char **value);
    /* Declares a parameter during create; shape dims may be LAM_DIM_UNKNOWN. `init` names a
     * default initializer ("zeros", "ones", ...) or is NULL for the block's initializer. */
    lam_status (*layer_declare_param)(lam_layer *layer, const char *name, const lam_shape *shape,
                                      const char *init, uint32_t flags);
    /* Sets a parameter's full shape during infer_shape; an inconsistent shape is an error. */
    lam_status (*layer_param_infer_shape)(lam_layer *layer, const char *name,
                                          const lam_shape *shape);
    /* The parameter's shape (dims may be unknown); borrowed until the layer is destroyed. */
    const lam_shape *(*layer_param_shape)(lam_layer *layer, const char *name);
    /* The parameter's data, on the context of `like` (an input of the forward). Borrowed: valid
     * for the forward call, not to be released. Errors name both contexts when they differ. */
    lam_status (*layer_param_data)(lam_layer *layer, const char *name, const lam_tensor *like,
                                   lam_tensor **data);
    lam_status (*layer_param_add_grad)(lam_layer *layer, const char *name, const lam_tensor *grad);
    /* The instance's display name ("dense0"), the subject of its error messages. Borrowed. */
    const char *(*layer_name)(const lam_layer *layer);
    /* act(x . w^T + bias) in one op where the backend can (see lam_op_linear in lamina.h). */
    lam_status (*op_linear)(const lam_tensor *x, const lam_tensor *w, const lam_tensor *bias,
                            lam_op act, lam_tensor **out);
    /* In a fused backward: nonzero when input `index` needs a gradient. A backward may leave
     * grad_inputs[index] NULL (and skip computing it) when this says no. */
    int32_t (*layer_input_needs_grad)(const lam_layer *layer, uint32_t index);
} lam_host_api;

/*
 * The one symbol a plugin exports. Called once after dlopen; registers everything the plugin
 * provides with host->register_layer / host->register_backend and returns LAM_OK, or returns
 * an error after host->set_error. If any registration is refused or the entry fails, the host
 * rolls back every registration of this plugin and unloads it.
 */
typedef lam_status (*lam_plugin_entry_fn)(const lam_host_api *host, lam_plugin *plugin);

#define LAM_PLUGIN_ENTRY_NAME "lamina_plugin_entry"

#define LAM_PLUGIN_ENTRY                                                                           \
    LAM_EXPORT lam_status lamina_plugin_entry(const lam_host_api *host, lam_plugin *plugin);       \
    LAM_EXPORT lam_status lamina_plugin_entry(const lam_host_api *host, lam_plugin *plugin)

/*
 * Checks that the host can serve a plugin built against this header: same major, minor at
 * least ours, and a table at least as large as ours. Returns LAM_OK or sets the error.
 */
static inline lam_status lam_plugin_check_host(const lam_host_api *host) {
    if (host == NULL || host->struct_size < 24) {
        return LAM_ERR_ABI;
    }
    if (LAM_VERSION_MAJOR(host->abi_version) != LAM_ABI_VERSION_MAJOR ||
        host->abi_version < LAM_ABI_VERSION || /* same major, older minor */
        host->struct_size < sizeof(lam_host_api)) {
        return host->set_error(LAM_ERR_ABI,
                               "plugin: ABI mismatch, plugin built for %u.%u, host provides %u.%u",
                               (unsigned)LAM_ABI_VERSION_MAJOR, (unsigned)LAM_ABI_VERSION_MINOR,
                               (unsigned)LAM_VERSION_MAJOR(host->abi_version),
                               (unsigned)LAM_VERSION_MINOR(host->abi_version));
    }
    return LAM_OK;
}

/*
 * Designated initializers for the header fields of a descriptor built against this SDK:
 *   static const lam_layer_desc desc = {LAM_LAYER_DESC_HEADER, .name = "MyDense", ...};
 */
#define LAM_BACKEND_DESC_HEADER                                                                    \
    .struct_size = (uint32_t)sizeof(lam_backend_desc), .abi_version = LAM_ABI_VERSION,             \
    .abi_fingerprint = LAM_ABI_FINGERPRINT
#define LAM_LAYER_DESC_HEADER                                                                      \
    .struct_size = (uint32_t)sizeof(lam_layer_desc), .abi_version = LAM_ABI_VERSION,               \
    .abi_fingerprint = LAM_ABI_FINGERPRINT

#ifdef __cplusplus
}
#endif

#endif /* LAMINA_PLUGIN_H */
