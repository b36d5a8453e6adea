/*
 * lamina/plugin.h - the plugin ABI 2.2: what a layer, kernel, backend or communicator plugin sees
 * of the host (2.1 appended communicators to the frozen 2.0; see "since ABI 2.1" below; 2.2
 * appended the convolution and layer-normalization ops 55-59 and lam_conv_params).
 *
 * A plugin is a shared object that exports exactly one symbol, lamina_plugin_entry. The host
 * dlopen()s it, calls the entry with a table of host functions (lam_host_api), and the plugin
 * registers layer types, kernels and/or backends by passing descriptors (lam_layer_desc,
 * lam_kernel_desc, lam_backend_desc) to the host's register entries.
 *
 * Plugins never link against liblamina: everything they need from the host comes through the
 * host table, so one plugin binary works with every host of the same ABI major version whose
 * minor is at least the plugin's (a plugin built for 2.x loads into a 2.y host, y >= x). ABI
 * 2.0 is frozen: later minors only append (enum values, struct fields at the end, host entries
 * at the end of the table), and CI builds a plugin against a copy of these headers
 * (tests/abi/v2.0/) to prove a newer host still loads it. Plugins of ABI 1.x are refused with a
 * message naming both versions.
 *
 * How ABI 2.0 grows (the rules every boundary struct keeps; see STYLE.md):
 *  - it starts with `uint32_t struct_size` (and, where the reader needs it, abi_version), grows
 *    only at the end, and the reader uses a field only if it lies inside struct_size; arrays of
 *    boundary structs are passed as arrays of pointers, so each element can grow;
 *  - only fixed-width integers, size_t, float/double, pointers and pinned enums inside;
 *  - the descriptors carry abi_fingerprint, a hash of every boundary struct's size and field
 *    offsets and of every enum's count at the descriptor's version; the host refuses a
 *    descriptor whose fingerprint is not the one it knows for that version (layout rows are
 *    written as literal numbers in core/abi.c), so an accidental layout change without a
 *    version change is an ABI error instead of a crash;
 *  - every host entry is reachable by name as well (get_proc_address), and every op, present
 *    and future, through the one generic entry `op`, so the table does not grow per op.
 *
 * Descriptor memory (Ownership): register_* copy every string, array and attribute of the
 * descriptor before they return, so a descriptor and its strings may live on the entry's stack;
 * `lamina conform` nevertheless fails a plugin whose strings change or are freed once its entry
 * returns (keep them static: the norm). Kept as given: callbacks, `user`, kernel SPIR-V code
 * and the example inputs (valid while the plugin is loaded). The host reads at most 4096 bytes
 * of each string (names: 63): a longer one, or one without its NUL, refuses the plugin.
 *
 * What the host checks (Errors): a callback returns LAM_OK or a negative lam_status after
 * host->set_error. Any other value reaches the caller as LAM_ERR_INTERNAL with a message naming
 * the callback, the layer, kernel or backend and the plugin file; an error returned with no
 * message keeps its status and gets "<subject>: <status string> (the plugin set no message)".
 * Text a plugin writes into host buffers is cut at the buffer's end if it has no NUL.
 */
#ifndef LAMINA_PLUGIN_H
#define LAMINA_PLUGIN_H

#include "lamina/common.h"

#include <stdarg.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Hash of the ABI layout for LAM_ABI_VERSION (FNV-1a 64 over sizes, offsets and enum counts).
 * Generated: `build/bin/lamina abi` prints the value the current headers produce, and a test
 * fails when this constant and the layout disagree.
 */
#define LAM_ABI_FINGERPRINT 0x8c3995a7c705b3adULL

/* Opaque host objects a plugin handles only through the host table. */
typedef struct lam_tensor lam_tensor;
typedef struct lam_ctx lam_ctx;
typedef struct lam_plugin lam_plugin; /* the plugin being loaded, passed to register calls */
typedef struct lam_layer lam_layer;   /* one instance of a plugin layer, owned by the host */
typedef struct lam_attrs lam_attrs;   /* validated attributes of a layer instance */

/* Bytes of one element of `dtype`; 0 for INVALID and values this header does not know. */
static inline size_t lam_dtype_size(lam_dtype dtype) {
    switch (dtype) {
    case LAM_DTYPE_F32:
    case LAM_DTYPE_I32:
        return 4;
    case LAM_DTYPE_F16:
    case LAM_DTYPE_BF16:
        return 2;
    case LAM_DTYPE_F64:
    case LAM_DTYPE_I64:
        return 8;
    case LAM_DTYPE_U8:
        return 1;
    default:
        return 0;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Ops                                                                                        */
/* ------------------------------------------------------------------------------------------ */

/*
 * Primitive ops. Numbering is append-only and never reused; a backend answers ops it does not
 * know (appended after it was built) with supports 0 and LAM_ERR_UNSUPPORTED from execute, and
 * never sizes a table by LAM_OP_COUNT of its header and indexes it with a newer host's op.
 *
 * Operands are lam_tensor_view values (byte strides, so broadcasting is a zero stride). Unless
 * noted: every operand is F32 (the one dtype every backend supports for every op; others where
 * `supports` says yes), there is one output, every input has the output's ndim and dims, and
 * inputs never overlap the output unless the call's flags say so. "x" is inputs[0], "y"
 * inputs[1], "out" outputs[0]; parameters come from the op's parameter struct (call->params),
 * named in brackets. Ops from 37 on are new in 2.0; for each, the host has a fallback (composed
 * of older ops, or the CPU backend's implementation with staging) used when a backend says no,
 * so a backend can start with the 1.0 set. Ops from 55 on are new in 2.2: the host asks only a
 * backend built for 2.2 or later about them, and falls back likewise.
 */
typedef enum lam_op {
    LAM_OP_INVALID = 0,
    LAM_OP_FILL = 1,         /* out = a [lam_scalar_params]; no inputs */
    LAM_OP_COPY = 2,         /* out = x (x may broadcast through zero strides; any dtype, same) */
    LAM_OP_ADD = 3,          /* out = x + y */
    LAM_OP_SUB = 4,          /* out = x - y */
    LAM_OP_MUL = 5,          /* out = x * y */
    LAM_OP_DIV = 6,          /* out = x / y */
    LAM_OP_ADD_SCALAR = 7,   /* out = x + a [lam_scalar_params] */
    LAM_OP_MUL_SCALAR = 8,   /* out = x * a */
    LAM_OP_RSUB_SCALAR = 9,  /* out = a - x */
    LAM_OP_DIV_SCALAR = 10,  /* out = x / a */
    LAM_OP_RDIV_SCALAR = 11, /* out = a / x */
    LAM_OP_POW_SCALAR = 12,  /* out = powf(x, a) */
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
     * out[M,N] = alpha * op(A) * op(B) + beta * out [lam_gemm_params], A = x, B = y, all 2-D.
     * op(A) is A, or A transposed with LAM_GEMM_TRANS_A; op(B) likewise with LAM_GEMM_TRANS_B.
     * With beta == 0 out is not read (NaN in out does not propagate). Operands have a unit
     * last-dimension stride (one element).
     */
    LAM_OP_GEMM = 23,
    /*
     * Reductions over the middle axis of a 3-D view: x has dims (outer, n, inner), out has
     * dims (outer, 1, inner). For n == 0: SUM is 0, MEAN NaN, MAX -inf, MIN +inf, and ARGMAX
     * an error (LAM_ERR_SHAPE, as NumPy). NaN propagates.
     */
    LAM_OP_REDUCE_SUM = 24,
    LAM_OP_REDUCE_MEAN = 25,
    LAM_OP_REDUCE_MAX = 26,
    LAM_OP_REDUCE_MIN = 27,
    /* Like REDUCE_MAX; out holds the first index of the maximum: F32 (exact up to 2^24), or I32
     * / I64 where `supports` says yes. The first NaN counts as the maximum. */
    LAM_OP_ARGMAX = 28,
    /* Along the middle axis of a 3-D view, x and out both (outer, n, inner); numerically stable. */
    LAM_OP_SOFTMAX = 29,
    LAM_OP_LOG_SOFTMAX = 30,
    LAM_OP_MAXIMUM = 31,       /* out = max(x, y); NaN in either operand gives NaN */
    LAM_OP_MINIMUM = 32,       /* out = min(x, y); NaN in either operand gives NaN */
    LAM_OP_STEP = 33,          /* out = x > 0 ? 1 : 0 (NaN gives 0) */
    LAM_OP_GREATER_EQUAL = 34, /* out = x >= y ? 1 : 0 (NaN gives 0) */
    /* out = a * x + b * y [lam_scalar_params]. The output may be the very same view as x or y
     * (an in-place update, as optimizers use it; the call carries LAM_CALL_IN_PLACE). */
    LAM_OP_AXPBY = 35,
    /*
     * A dense layer in one op: out[M,N] = act(op(A) op(B) + bias) [lam_gemm_params: trans
     * flags, act]. A = inputs[0], B = inputs[1] (2-D), bias = inputs[2], 1-D of N elements,
     * optional (n_inputs 2 or 3); act is LAM_OP_INVALID (none), LAM_OP_RELU, LAM_OP_SIGMOID,
     * LAM_OP_TANH or LAM_OP_SOFTRELU, with those ops' semantics. alpha/beta are not used.
     */
    LAM_OP_LINEAR = 36,
    /* ---- new in 2.0 ---- */
    /*
     * Batched GEMM [lam_gemm_params]: A (batch, M, K) or (batch, K, M) transposed, B likewise,
     * out (batch, M, N); per batch as GEMM. An operand's batch stride of 0 shares it across
     * the batch. Batches never mix: a NaN in one batch element reaches no other.
     */
    LAM_OP_GEMM_BATCHED = 37,
    /*
     * im2col [lam_window_params, 2 spatial dims]: x (N, C, H, W) -> out (N, C*KH*KW, OH*OW),
     * row (c*KH + i)*KW + j, column oh*OW + ow holds x[n, c, oh*SH - PH + i*DH, ow*SW - PW +
     * j*DW], or 0 where that lies in the padding. OH = (H + PH + PH_after - DH*(KH-1) - 1) / SH
     * + 1 (floor; see LAM_WINDOW_CEIL_MODE), OW likewise. Samples never mix.
     * With LAM_WINDOW_CEIL_MODE the division rounds up, and OH is one less when window OH-1
     * would then start at or after H + PH (PyTorch's rule: a window starts inside the input or
     * its leading padding). These sizes hold for every window op below.
     */
    LAM_OP_IM2COL = 38,
    /* col2im, IM2COL's adjoint [lam_window_params]: x (N, C*KH*KW, OH*OW) -> out (N, C, H, W)
     * (out's dims give H and W); every out element is the sum, in increasing column-row order,
     * of the x elements IM2COL would have read from it (0 if none). */
    LAM_OP_COL2IM = 39,
    /*
     * Max pooling [lam_window_params]: x (N, C, H, W) -> outputs[0] (N, C, OH, OW) values and
     * outputs[1] (N, C, OH, OW) I32 indices h*W + w of the chosen element within its plane.
     * Padding never wins. Ties: the first in row-major window order (PyTorch's rule); a NaN
     * wins (the first NaN). A window lying wholly in the padding is an error of the caller
     * (the host checks the parameters so it cannot happen).
     */
    LAM_OP_MAX_POOL = 40,
    /* MAX_POOL's gradient: x = grad of values (N, C, OH, OW), y = indices (I32, as MAX_POOL
     * wrote them), out = grad of the input (N, C, H, W): zero, plus each x element added at
     * its index (in increasing output order). */
    LAM_OP_MAX_POOL_BACKWARD = 41,
    /* Average pooling [lam_window_params]: x (N, C, H, W) -> out (N, C, OH, OW); the divisor
     * is the window's element count inside the input, or the whole window (padding included,
     * clipped to the padded input as PyTorch) with LAM_WINDOW_COUNT_INCLUDE_PAD. Exactly: the
     * number of taps (oh*SH - PH + i*DH, ow*SW - PW + j*DW) inside [0, H) x [0, W), or with
     * COUNT_INCLUDE_PAD inside [-PH, H + PH_after) x [-PW, W + PW_after); a window with no
     * such tap gives 0. */
    LAM_OP_AVG_POOL = 42,
    /* AVG_POOL's gradient: x = grad of the output (N, C, OH, OW), out = grad of the input. */
    LAM_OP_AVG_POOL_BACKWARD = 43,
    /*
     * Gather rows: x = table (V, D), y = indices (M) of dtype I32 or I64 (contiguous), out
     * (M, D) with out[m] = table[y[m]]. An index outside [0, V) is LAM_ERR_INVALID_ARGUMENT
     * naming the position and value; out is then unspecified. A backend may report it at the
     * next synchronize or buffer_read (asynchronous), never ignore it.
     */
    LAM_OP_GATHER_ROWS = 44,
    /* Scatter-add rows: x = values (M, D), y = indices (M) as GATHER_ROWS, out (V, D) is READ
     * and updated: out[y[m]] += x[m], in increasing m (deterministic). Bad indices as above. */
    LAM_OP_SCATTER_ADD_ROWS = 45,
    /*
     * Counter-based random numbers [lam_random_params], no inputs. Element i (row-major index
     * of out) takes the Philox-4x32-10 block keyed (seed, key) at counter (offset + i) / 4,
     * word (offset + i) % 4, as u (32 bits): UNIFORM gives a + (b - a) * f with f = (u >> 8) *
     * 2^-24 in [0, 1) (F32); BERNOULLI gives 1 where f < (float)a, else 0 (F32, or U8 where
     * supported). Both are bit-identical on every backend (integer arithmetic and one exact
     * float product); for UNIFORM with (a, b) other than (0, 1) the last step rounds as the
     * backend's float multiply-add. NORMAL gives a + b * z, z by Box-Muller from two
     * consecutive words (elements 2k and 2k+1 share a pair): equal across backends to the
     * precision of their logf/cosf/sinf (a few ulp), not bitwise.
     * Exactly (cuRAND's layout; Philox-4x32-10 with Random123's constants as core/rng.c): with
     * n = (offset + i) / 4 in 64-bit unsigned arithmetic, the block is Philox(counter {lo(n),
     * hi(n), lo(key), hi(key)}, key {lo(seed), hi(seed)}), lo/hi the low/high 32 bits, and u
     * is its word (offset + i) % 4. NORMAL, pair k of words u1 (element 2k's) and u2 (element
     * 2k+1's), in float: f1 = ((u1 >> 8) + 1) * 2^-24 in (0, 1], f2 = (u2 >> 8) * 2^-24, r =
     * sqrtf(-2 * logf(f1)), z = r * cosf(2pi * f2) for element 2k and r * sinf(2pi * f2) for
     * element 2k+1 (an odd last element still uses its pair's u2).
     */
    LAM_OP_RANDOM = 46,
    /* out = cond != 0 ? x : y, cond = inputs[0] (F32 or U8), x = inputs[1], y = inputs[2]. A
     * NaN in the branch not taken does not reach out. */
    LAM_OP_WHERE = 47,
    LAM_OP_GREATER = 48, /* out = x > y ? 1 : 0 (NaN gives 0) */
    LAM_OP_LESS = 49,    /* out = x < y ? 1 : 0 (NaN gives 0) */
    LAM_OP_EQUAL = 50,   /* out = x == y ? 1 : 0 (NaN gives 0) */
    /* Constant padding [lam_pad_params]: out dims = x dims + before + after per axis;
     * out = value where outside x, else x. */
    LAM_OP_PAD = 51,
    /* out = min(max(x, a), b) [lam_scalar_params]; NaN stays NaN. */
    LAM_OP_CLAMP = 52,
    /* Converts x to out's dtype: float -> integer truncates toward zero and is an error
     * (LAM_ERR_INVALID_ARGUMENT) for NaN or out of range; integer -> float rounds to nearest. */
    LAM_OP_CAST = 53,
    /*
     * Mean and (biased) variance over the middle axis of a 3-D view, as LayerNorm and
     * BatchNorm need: x (outer, n, inner) -> outputs[0] mean and outputs[1] variance, both
     * (outer, 1, inner). Computed in two passes (or Welford) in at least float32 accuracy;
     * n == 0 gives NaN.
     */
    LAM_OP_MOMENTS = 54,
    /* ---- new in 2.2 (a backend built for 2.0/2.1 never sees them: the host falls back) ---- */
    /*
     * Convolution (cross-correlation, as PyTorch's conv2d) [lam_conv_params, 2 spatial dims]:
     * x = inputs[0] (N, C, H, W), w = inputs[1] (O, C/G, KH, KW), optional bias = inputs[2] (O)
     * (n_inputs 2 or 3), out (N, O, OH, OW) with G = groups, OH and OW as IM2COL's:
     *   out[n, o, oh, ow] = bias[o] + sum over c < C/G, i < KH, j < KW of
     *       w[o, c, i, j] * x[n, (o / (O/G)) * (C/G) + c, oh*SH - PH + i*DH, ow*SW - PW + j*DW],
     * a tap in the padding reading 0. The order of the sum is the backend's (float32
     * accuracy); samples never mix. The host's fallback is IM2COL and GEMM_BATCHED.
     */
    LAM_OP_CONV = 55,
    /* CONV's gradient for its input [lam_conv_params]: x = grad of the output (N, O, OH, OW),
     * y = w (O, C/G, KH, KW), out = grad of the input (N, C, H, W) (out's dims give C, H, W):
     * every element the sum of the w * grad products of the output taps that read it. */
    LAM_OP_CONV_BACKWARD_DATA = 56,
    /* CONV's gradient for its weight and bias [lam_conv_params]: x = the input (N, C, H, W),
     * y = grad of the output (N, O, OH, OW); outputs[0] = grad of w (O, C/G, KH, KW) and, with
     * n_outputs 2, outputs[1] = grad of the bias (O), the sum of y over N, OH and OW. Both are
     * written, not accumulated. */
    LAM_OP_CONV_BACKWARD_WEIGHT = 57,
    /*
     * Layer normalization over the last axis of a 2-D view [lam_scalar_params: a = eps]:
     * x = inputs[0] (M, N), gamma = inputs[1] (N), beta = inputs[2] (N);
     * outputs[0] = y (M, N) = (x - mean) * rstd * gamma + beta per row, and with n_outputs 3
     * outputs[1] = mean (M) and outputs[2] = rstd (M) = 1 / sqrtf(var + eps), var the biased
     * variance of the row, both in at least float32 accuracy (two passes or Welford). A NaN
     * stays in its row; N == 0 gives NaN statistics and an empty y.
     */
    LAM_OP_LAYER_NORM = 58,
    /*
     * LAYER_NORM's gradient [lam_scalar_params, unused]: inputs dy (M, N), x (M, N), mean (M),
     * rstd (M) as LAYER_NORM wrote them, gamma (N); with xhat = (x - mean) * rstd and
     * g = dy * gamma, outputs[0] = dx (M, N) = rstd * (g - mean_N(g) - xhat * mean_N(g * xhat))
     * per row, and with n_outputs 3 outputs[1] = dgamma (N) = sum over rows of dy * xhat and
     * outputs[2] = dbeta (N) = sum over rows of dy (written, not accumulated).
     */
    LAM_OP_LAYER_NORM_BACKWARD = 59,
    LAM_OP_MAX_ENUM = 0x7FFFFFFF
} lam_op;

/* Number of lam_op values including INVALID; part of the ABI fingerprint. */
#define LAM_OP_COUNT 60

/* Flags of an op call (lam_op_call.flags, lam_host_op.flags). */
#define LAM_CALL_IN_PLACE                                                                          \
    1u /* outputs[0] may be the very same view as an input (AXPBY, unary,                          \
        * binary ops): read an element before writing it */

/*
 * A strided view of a backend buffer as handed to a backend op. Offset and strides count
 * BYTES; both are multiples of the element size. A zero stride repeats an element
 * (broadcasting). Strides are never negative.
 */
typedef struct lam_tensor_view {
    uint32_t struct_size; /* sizeof(lam_tensor_view) of the host that wrote it */
    lam_dtype dtype;
    void *buffer;    /* the backend's buffer handle from buffer_alloc */
    uint64_t offset; /* bytes from the start of the buffer to the first element */
    uint32_t ndim;
    uint32_t reserved; /* zero */
    int64_t dims[LAM_MAX_DIMS];
    int64_t strides[LAM_MAX_DIMS]; /* bytes */
} lam_tensor_view;

/* ---- parameter structs of ops; each starts with its size (set by the _INIT macro) ---- */

/* Scalars of FILL (a), the *_SCALAR ops (a), AXPBY (a, b), CLAMP (a = low, b = high). */
typedef struct lam_scalar_params {
    uint32_t struct_size;
    uint32_t reserved;
    double a;
    double b;
} lam_scalar_params;
#define LAM_SCALAR_PARAMS_INIT                                                                     \
    { (uint32_t)sizeof(lam_scalar_params), 0, 0.0, 0.0 }

#define LAM_GEMM_TRANS_A 1u
#define LAM_GEMM_TRANS_B 2u
/* GEMM, GEMM_BATCHED and LINEAR. */
typedef struct lam_gemm_params {
    uint32_t struct_size;
    uint32_t flags; /* LAM_GEMM_TRANS_A | LAM_GEMM_TRANS_B */
    double alpha;   /* GEMM, GEMM_BATCHED */
    double beta;    /* GEMM, GEMM_BATCHED */
    lam_op act;     /* LINEAR: LAM_OP_INVALID or an activation op */
    uint32_t reserved;
} lam_gemm_params;
#define LAM_GEMM_PARAMS_INIT                                                                       \
    { (uint32_t)sizeof(lam_gemm_params), 0, 1.0, 0.0, LAM_OP_INVALID, 0 }

#define LAM_WINDOW_CEIL_MODE         1u /* output size rounds up (a window may start in padding) */
#define LAM_WINDOW_COUNT_INCLUDE_PAD 2u /* AVG_POOL divides by the (clipped) window size */
/* Sliding windows: IM2COL, COL2IM, MAX_POOL(_BACKWARD), AVG_POOL(_BACKWARD). Index 0 is the
 * first spatial axis (H), 1 the second (W). 2.0 ops use n_spatial == 2. */
typedef struct lam_window_params {
    uint32_t struct_size;
    uint32_t n_spatial;
    int64_t kernel[3];
    int64_t stride[3];
    int64_t pad_before[3];
    int64_t pad_after[3];
    int64_t dilation[3];
    uint32_t flags; /* LAM_WINDOW_* */
    uint32_t reserved;
} lam_window_params;
/* Two spatial axes, every size 0 but stride and dilation 1: set kernel, padding, flags. */
#define LAM_WINDOW_PARAMS_INIT                                                                     \
    {                                                                                              \
        (uint32_t)sizeof(lam_window_params), 2, {0, 0, 0}, {1, 1, 1}, {0, 0, 0}, {0, 0, 0},        \
            {1, 1, 1}, 0, 0                                                                        \
    }

/* CONV, CONV_BACKWARD_DATA, CONV_BACKWARD_WEIGHT (since 2.2). window.kernel equals w's spatial
 * dims; window.flags is 0 (no ceil mode); groups divides C and O. */
typedef struct lam_conv_params {
    uint32_t struct_size;
    uint32_t groups;
    lam_window_params window;
} lam_conv_params;
#define LAM_CONV_PARAMS_INIT                                                                       \
    { (uint32_t)sizeof(lam_conv_params), 1, LAM_WINDOW_PARAMS_INIT }

/* PAD: constant padding per axis. */
typedef struct lam_pad_params {
    uint32_t struct_size;
    uint32_t reserved;
    double value;
    int64_t before[LAM_MAX_DIMS];
    int64_t after[LAM_MAX_DIMS];
} lam_pad_params;
#define LAM_PAD_PARAMS_INIT                                                                        \
    {                                                                                              \
        (uint32_t)sizeof(lam_pad_params), 0, 0.0, {0}, {                                           \
            0                                                                                      \
        }                                                                                          \
    }

typedef enum lam_random_kind {
    LAM_RANDOM_INVALID = 0,
    LAM_RANDOM_UNIFORM = 1,   /* in [a, b) */
    LAM_RANDOM_NORMAL = 2,    /* mean a, standard deviation b */
    LAM_RANDOM_BERNOULLI = 3, /* 1 with probability a */
    LAM_RANDOM_KIND_MAX_ENUM = 0x7FFFFFFF
} lam_random_kind;
#define LAM_RANDOM_KIND_COUNT 4

/* RANDOM: the stream is (seed, key); `offset` is the first element's counter. */
typedef struct lam_random_params {
    uint32_t struct_size;
    lam_random_kind kind;
    uint64_t seed;
    uint64_t key;
    uint64_t offset;
    double a;
    double b;
} lam_random_params;
#define LAM_RANDOM_PARAMS_INIT                                                                     \
    { (uint32_t)sizeof(lam_random_params), LAM_RANDOM_INVALID, 0, 0, 0, 0.0, 0.0 }

/*
 * Axes of a host op (lam_host_op) that reduces or normalizes: REDUCE_*, ARGMAX (one axis),
 * SOFTMAX / LOG_SOFTMAX (one axis), MOMENTS (n_axes axes, e.g. (0, 2, 3) for batch norm over
 * NCHW). Negative axes count from the end; n_axes 0 means every axis (reductions, MOMENTS).
 * Backends never see it: the host brings their calls to the 3-D (outer, n, inner) form.
 */
typedef struct lam_reduce_params {
    uint32_t struct_size;
    uint32_t n_axes;
    int32_t axes[LAM_MAX_DIMS];
    int32_t keepdims; /* nonzero: reduced axes stay with size 1 */
    uint32_t reserved;
} lam_reduce_params;
#define LAM_REDUCE_PARAMS_INIT                                                                     \
    { (uint32_t)sizeof(lam_reduce_params), 0, {0}, 0, 0 }

/* CAST (host op only): the dtype of the result. The host reads lam_host_op.out_dtype; a call
 * that also passes this struct gives the same dtype in both. */
typedef struct lam_cast_params {
    uint32_t struct_size;
    lam_dtype dtype;
} lam_cast_params;
#define LAM_CAST_PARAMS_INIT                                                                       \
    { (uint32_t)sizeof(lam_cast_params), LAM_DTYPE_INVALID }

/* The op's name as backends report it ("gemm", "reduce_sum"); "unknown" past this header's
 * ops (a newer host's), so it is safe to call with any value. */
static inline const char *lam_op_name(lam_op op) {
    static const char *const names[LAM_OP_COUNT] = {
        "invalid",
        "fill",
        "copy",
        "add",
        "sub",
        "mul",
        "div",
        "add_scalar",
        "mul_scalar",
        "rsub_scalar",
        "div_scalar",
        "rdiv_scalar",
        "pow_scalar",
        "neg",
        "abs",
        "square",
        "sqrt",
        "exp",
        "log",
        "relu",
        "sigmoid",
        "tanh",
        "softrelu",
        "gemm",
        "reduce_sum",
        "reduce_mean",
        "reduce_max",
        "reduce_min",
        "argmax",
        "softmax",
        "log_softmax",
        "maximum",
        "minimum",
        "step",
        "greater_equal",
        "axpby",
        "linear",
        "gemm_batched",
        "im2col",
        "col2im",
        "max_pool",
        "max_pool_backward",
        "avg_pool",
        "avg_pool_backward",
        "gather_rows",
        "scatter_add_rows",
        "random",
        "where",
        "greater",
        "less",
        "equal",
        "pad",
        "clamp",
        "cast",
        "moments",
        "conv",
        "conv_backward_data",
        "conv_backward_weight",
        "layer_norm",
        "layer_norm_backward",
    };
    int64_t n = (int64_t)(int32_t)op;
    return (n >= 0 && n < LAM_OP_COUNT && names[n] != NULL) ? names[n] : "unknown";
}

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
    LAM_OP_FORM_OWN = 8,     /* its own operand rules (the op's comment above) */
    LAM_OP_FORM_MAX_ENUM = 0x7FFFFFFF
} lam_op_form;

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
    case LAM_OP_CLAMP:
        return LAM_OP_FORM_UNARY;
    case LAM_OP_ADD:
    case LAM_OP_SUB:
    case LAM_OP_MUL:
    case LAM_OP_DIV:
    case LAM_OP_MAXIMUM:
    case LAM_OP_MINIMUM:
    case LAM_OP_GREATER_EQUAL:
    case LAM_OP_GREATER:
    case LAM_OP_LESS:
    case LAM_OP_EQUAL:
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
    case LAM_OP_GEMM_BATCHED:
    case LAM_OP_IM2COL:
    case LAM_OP_COL2IM:
    case LAM_OP_MAX_POOL:
    case LAM_OP_MAX_POOL_BACKWARD:
    case LAM_OP_AVG_POOL:
    case LAM_OP_AVG_POOL_BACKWARD:
    case LAM_OP_GATHER_ROWS:
    case LAM_OP_SCATTER_ADD_ROWS:
    case LAM_OP_RANDOM:
    case LAM_OP_WHERE:
    case LAM_OP_PAD:
    case LAM_OP_CAST:
    case LAM_OP_MOMENTS:
    case LAM_OP_CONV:
    case LAM_OP_CONV_BACKWARD_DATA:
    case LAM_OP_CONV_BACKWARD_WEIGHT:
    case LAM_OP_LAYER_NORM:
    case LAM_OP_LAYER_NORM_BACKWARD:
        return LAM_OP_FORM_OWN;
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

/* One op invocation, built by the host and passed to lam_backend_desc.execute / supports. */
typedef struct lam_op_call {
    uint32_t struct_size;
    uint32_t abi_version;
    lam_op op;
    uint32_t flags; /* LAM_CALL_* */
    uint32_t n_inputs;
    uint32_t n_outputs;
    const lam_tensor_view *const *inputs;
    const lam_tensor_view *const *outputs; /* the views are read-only; their memory is written */
    const void *params;                    /* the op's parameter struct, NULL for ops without one */
} lam_op_call;

/* The op's parameters as `type` when the call carries them and they are at least `size`
 * bytes (size-first structs), else NULL: `lam_op_params(call, lam_gemm_params)`. */
#define lam_op_params(call, type)                                                                  \
    ((call)->params != NULL && *(const uint32_t *)(call)->params >= sizeof(type)                   \
         ? (const type *)(call)->params                                                            \
         : (const type *)NULL)

/* ------------------------------------------------------------------------------------------ */
/* Backend descriptor                                                                         */
/* ------------------------------------------------------------------------------------------ */

#define LAM_BACKEND_ASYNC        1u /* execute may return before the work is done */
#define LAM_BACKEND_HOST_VISIBLE 2u /* buffers are host memory (buffer_host_ptr works) */
#define LAM_BACKEND_HOST_PTR     4u /* buffer_from_host_ptr wraps host memory without a copy */

/* What a device can do, filled by device_caps (the caller sets struct_size; the backend
 * writes only fields inside it). Per-op dtypes: `supports` answers for a whole call. */
typedef struct lam_backend_caps {
    uint32_t struct_size;
    uint32_t abi_version;
    uint64_t flags;            /* LAM_BACKEND_* */
    uint64_t max_buffer_bytes; /* largest buffer_alloc / one view's span; 0 = no limit */
    uint64_t memory_budget;    /* bytes the host should plan with; 0 = unknown */
    uint32_t buffer_alignment; /* bytes buffer offsets of host_ptr buffers need; 0 = any */
    uint32_t dtypes;           /* bit (1u << dtype) per dtype some op supports (F32 always) */
} lam_backend_caps;

struct lam_kernel_impl;
typedef struct lam_kernel_args lam_kernel_args;

/*
 * A compute backend. `user` is passed back to the backend-level callbacks; `dev` is what
 * device_open returned. Callbacks marked optional may be NULL; the host checks the required
 * ones at load and refuses the plugin naming the first one that is NULL.
 * Callbacks report failures by returning a negative status after calling host->set_error.
 * A backend may run ops asynchronously: buffer_read and synchronize wait for all earlier work
 * and report an error raised by it.
 * Thread safety: the host calls the device callbacks (buffer_*, execute, ...) from any thread,
 * also on one `dev` from several threads at once (threads share a context); a backend
 * serializes what it must. probe, device_info, device_open, device_close and shutdown are
 * called one at a time.
 */
typedef struct lam_backend_desc {
    uint32_t struct_size; /* sizeof(lam_backend_desc) */
    uint32_t abi_version; /* LAM_ABI_VERSION the plugin was built for */
    uint64_t abi_fingerprint;
    const char *name;    /* e.g. "cpu"; [a-z0-9_]+, unique among backends */
    const char *version; /* the plugin's own version, e.g. "2.0.0" */
    const char *doc;     /* one line */
    void *user;
    /* Required. How many devices there are; 0 with a reason in `why` when there are none. */
    lam_status (*probe)(void *user, uint32_t *n_devices, char *why, size_t why_cap);
    /* Required. Describes device `index`; info->struct_size says which fields to fill. */
    lam_status (*device_info)(void *user, uint32_t index, lam_device_info *info);
    /* Required. Opens device `index` for use; closed by device_close at host shutdown. */
    lam_status (*device_open)(void *user, uint32_t index, void **dev);
    void (*device_close)(void *dev); /* required */
    /* Required. What the open device can do (see lam_backend_caps). */
    lam_status (*device_caps)(void *dev, lam_backend_caps *caps);
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
    /* Required. Nonzero when the call (op, dtypes, shapes, params) is implemented. */
    int32_t (*supports)(void *dev, const lam_op_call *call);
    /* Required. Runs (or enqueues) one op. */
    lam_status (*execute)(void *dev, const lam_op_call *call);
    /* Required. Waits for all enqueued work; reports the first asynchronous error. */
    lam_status (*synchronize)(void *dev);
    /* Optional. Called once at host shutdown after every device is closed. */
    void (*shutdown)(void *user);
    /* Optional (LAM_BACKEND_HOST_VISIBLE). The host address of a buffer's first byte, valid
     * while the buffer lives; callers synchronize first on an asynchronous backend. */
    void *(*buffer_host_ptr)(void *dev, void *buffer);
    /* Optional (LAM_BACKEND_HOST_PTR). A buffer over `bytes` bytes of host memory at `ptr`
     * (kept by the caller until buffer_free); `read_only` nonzero when it must not be written.
     * LAM_ERR_UNSUPPORTED when this memory cannot be wrapped (alignment); the host copies. */
    lam_status (*buffer_from_host_ptr)(void *dev, void *ptr, size_t bytes, int32_t read_only,
                                       void **buffer);
    /* Optional. Backend-native handles by name for extensions and kernels, e.g. the Vulkan
     * backend's "VkInstance", "VkPhysicalDevice", "VkDevice", "VkQueue" (buffer NULL) or
     * "VkBuffer" / "VkDeviceMemory" of `buffer`, which may be shared by several buffers:
     * "VkBufferOffset" is then the byte offset of `buffer` in them (a uintptr_t in *handle).
     * LAM_ERR_NOT_FOUND for an unknown name. */
    lam_status (*native_handle)(void *dev, void *buffer, const char *name, void **handle);
    /*
     * Optional. Runs a kernel implementation registered for this backend (impl->backend names
     * it): the CPU backend calls impl->run(user, params, args) with host pointers; the Vulkan
     * backend dispatches impl->spirv (see lam_kernel_impl). `user` is the kernel descriptor's
     * (lam_kernel_desc.user), which impl->run takes and the backend has no other way to know.
     * `args` views are contiguous. Without this callback the host runs the kernel's reference
     * on host memory (staging).
     */
    lam_status (*run_kernel)(void *dev, const struct lam_kernel_impl *impl, void *user,
                             const void *params, const lam_kernel_args *args);
} lam_backend_desc;

/* ------------------------------------------------------------------------------------------ */
/* Tensors as layers and kernels see their shapes                                             */
/* ------------------------------------------------------------------------------------------ */

/* A dtype and shape (dims may be LAM_DIM_UNKNOWN only where a function says so). */
typedef struct lam_tensor_info {
    uint32_t struct_size;
    lam_dtype dtype;
    uint32_t ndim;
    uint32_t reserved;
    int64_t dims[LAM_MAX_DIMS];
} lam_tensor_info;
#define LAM_TENSOR_INFO_INIT                                                                       \
    {                                                                                              \
        (uint32_t)sizeof(lam_tensor_info), LAM_DTYPE_F32, 0, 0, {                                  \
            0                                                                                      \
        }                                                                                          \
    }

/* What values an input takes, for `lamina conform` (and documentation). */
typedef enum lam_domain_kind {
    LAM_DOMAIN_INVALID = 0,
    LAM_DOMAIN_REAL = 1,     /* any finite value (the kit draws from [low, high], default -1..1) */
    LAM_DOMAIN_POSITIVE = 2, /* > 0 */
    LAM_DOMAIN_INDEX = 3,    /* integers in [0, n), n = the attribute `bound_attr` or `high` */
    LAM_DOMAIN_KIND_MAX_ENUM = 0x7FFFFFFF
} lam_domain_kind;
#define LAM_DOMAIN_KIND_COUNT 4

/* One example input of a layer: its dtype, shape and domain. */
typedef struct lam_example_input {
    uint32_t struct_size;
    lam_domain_kind domain;
    const lam_tensor_info *info;
    double low, high;
    const char *bound_attr; /* LAM_DOMAIN_INDEX: the attribute bounding the indices, or NULL */
} lam_example_input;

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
    /* A tuple of integers, "(3, 3)" or "3" (one element); `count` says how many: a single
     * value is repeated to `count` (Gluon's kernel_size=3 for (3, 3)); count 0: any length. */
    LAM_ATTR_INTS = 6,
    LAM_ATTR_TYPE_MAX_ENUM = 0x7FFFFFFF
} lam_attr_type;

#define LAM_ATTR_TYPE_COUNT 7

/*
 * One attribute of a layer's schema. default_value NULL means the attribute is required.
 * `lamina conform` (attrs.effect) requires every attribute to matter: another valid value must
 * change the layer's parameters or its output. An attribute that by design changes neither says
 * so by starting its doc with "(cosmetic)"; the kit then reports it as not judged.
 */
typedef struct lam_attr_desc {
    uint32_t struct_size;
    lam_attr_type type;
    const char *name;
    const char *default_value;
    const char *choices; /* LAM_ATTR_ENUM only, e.g. "none|relu|sigmoid" */
    const char *doc;
    uint32_t count; /* LAM_ATTR_INTS: number of elements (0: any) */
    uint32_t reserved;
} lam_attr_desc;

/* Flags of a declared parameter. */
#define LAM_PARAM_CONSTANT 1u /* never trained, gets no gradient (Gluon's get_constant) */
/* Non-trained state (Gluon's grad_req='null' auxiliary parameters, e.g. batch-norm running
 * statistics): no gradient, saved and loaded with the model, updated by the layer's forward in
 * training with host->layer_param_assign. */
#define LAM_PARAM_STATE 2u

/* Flags of a layer type. */
#define LAM_LAYER_STOCHASTIC                                                                       \
    1u /* forward draws random numbers in training (Dropout); the kit                              \
        * compares outputs at equal RNG keys only */

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
    void *user;     /* passed to create */
    uint32_t flags; /* LAM_LAYER_* */
    uint32_t n_attrs;
    const lam_attr_desc *const *attrs;
    uint32_t min_inputs; /* arity: min_inputs to max_inputs inputs; min 0 means 1, max 0 means */
    uint32_t max_inputs; /* min (0 and 0: exactly one); max below min refuses the descriptor */
    uint32_t n_outputs;  /* 0 means 1 */
    uint32_t n_examples;
    /* Example inputs for `lamina conform`, one per input (min_inputs of them), instantiated with
     * `example_attrs`; NULL: the kit uses F32 inputs of shape (2, 3, ...) it guesses. */
    const lam_example_input *const *examples;
    const char *example_attrs;
    /*
     * Required. Makes per-instance state from validated attributes (defaults applied) and
     * declares the parameters with host->layer_declare_param.
     */
    lam_status (*create)(void *user, lam_layer *layer, const lam_attrs *attrs, void **state);
    void (*destroy)(void *state); /* required; NULL state is a no-op */
    /*
     * Required. Given the inputs' dtypes and shapes, sets every parameter dimension still
     * unknown (with host->layer_param_infer_shape) and writes each output's dtype and shape.
     */
    lam_status (*infer_shape)(void *state, lam_layer *layer, uint32_t n_inputs,
                              const lam_tensor_info *const *inputs, uint32_t n_outputs,
                              lam_tensor_info *const *outputs);
    /*
     * Required. Computes the outputs from the inputs with host ops; each outputs[i] is set to a
     * new reference. host->is_training says whether this is a training forward.
     * Thread safety: the host may call forward (and infer_shape) on one instance from several
     * threads at once (inference on a shared model); they must only read `state` after create.
     * The host serializes the calls that may set parameter shapes (an instance's first
     * forwards); backward runs one call at a time per model.
     */
    lam_status (*forward)(void *state, lam_layer *layer, uint32_t n_inputs,
                          lam_tensor *const *inputs, uint32_t n_outputs, lam_tensor **outputs);
    /*
     * Optional fused backward: given the outputs' gradients (NULL for an output that received
     * none), writes a new reference per input gradient (NULL where none is needed:
     * host->layer_input_needs_grad says which) and adds parameter gradients with
     * host->layer_param_add_grad. Must equal differentiating forward.
     */
    lam_status (*backward)(void *state, lam_layer *layer, uint32_t n_inputs,
                           lam_tensor *const *inputs, uint32_t n_outputs,
                           lam_tensor *const *outputs, const lam_tensor *const *grad_outputs,
                           lam_tensor **grad_inputs);
    /* Optional. One-line summary such as "Dense(20 -> 256, Activation(relu))". */
    lam_status (*describe)(void *state, lam_layer *layer, char *buf, size_t cap);
} lam_layer_desc;

/* ------------------------------------------------------------------------------------------ */
/* Kernels: a plugin's own compute, with a reference and per-backend implementations          */
/* ------------------------------------------------------------------------------------------ */

/* A kernel operand: a contiguous view, plus its host address where the memory is host memory
 * (the reference, and backends with LAM_BACKEND_HOST_VISIBLE); NULL otherwise. */
typedef struct lam_kernel_operand {
    uint32_t struct_size;
    uint32_t reserved;
    const lam_tensor_view *view;
    void *data;
} lam_kernel_operand;

/* The operands of one kernel run: inputs then outputs (outputs are written whole). */
struct lam_kernel_args {
    uint32_t struct_size;
    uint32_t n_inputs;
    uint32_t n_outputs;
    /* Bytes at `params` (the kernel's params_size): run_kernel is not given the kernel
     * descriptor, and a backend that copies the parameters (Vulkan's push constants) must not
     * read past them. */
    uint32_t params_size;
    const lam_kernel_operand *const *inputs;
    const lam_kernel_operand *const *outputs;
};

/*
 * One backend's implementation of a kernel. `backend` names the backend ("cpu", "vulkan").
 *  - run: for backends whose buffers are host memory (the CPU backend): called with every
 *    operand's `data` set. May use any instruction set the machine has (check at run time).
 *  - spirv (Vulkan): a compute shader module, entry `spirv_entry` ("main"), dispatched with the
 *    inputs then the outputs bound as storage buffers 0, 1, ... of set 0 (each bound from its
 *    view's first element), and push constants { uint32 n (elements of outputs[0]), uint32
 *    pad[3], then the kernel's params, args->params_size bytes }, ceil(n / local_size_x)
 *    invocation groups spread over x and y (at most 65535 each; gl_WorkGroupID.y *
 *    gl_NumWorkGroups.x + gl_WorkGroupID.x is the group index).
 * supports (optional): nonzero when this implementation handles these operands (dtypes,
 * sizes); when it says no the host runs the reference instead.
 */
typedef struct lam_kernel_impl {
    uint32_t struct_size;
    uint32_t abi_version;
    const char *backend;
    lam_status (*run)(void *user, const void *params, const lam_kernel_args *args);
    const uint32_t *spirv;
    size_t spirv_size; /* bytes */
    const char *spirv_entry;
    uint32_t local_size_x;
    uint32_t reserved;
    int32_t (*supports)(void *user, const void *params, const lam_kernel_args *args);
} lam_kernel_impl;

/*
 * A kernel: the host runs it through host->kernel_call, on the tensors' backend implementation
 * when one exists and says yes, else `reference` on host memory (the host stages device
 * memory), and records one autograd node either way whose gradient is `backward`.
 * `lamina conform` checks each implementation against the reference and the backward against
 * finite differences of the reference.
 */
typedef struct lam_kernel_desc {
    uint32_t struct_size;
    uint32_t abi_version;
    uint64_t abi_fingerprint;
    const char *name; /* [a-z0-9_.]+, unique among kernels, e.g. "gelu.tanh" */
    const char *doc;
    void *user;
    uint32_t n_inputs;
    uint32_t n_outputs;
    uint32_t params_size; /* bytes of the parameter block passed through (<= 96), 0 for none */
    uint32_t n_impls;
    const lam_kernel_impl *const *impls;
    /* Required. Outputs' dtypes and shapes from the inputs'. */
    lam_status (*shape)(void *user, const void *params, uint32_t n_inputs,
                        const lam_tensor_info *const *inputs, uint32_t n_outputs,
                        lam_tensor_info *const *outputs);
    /* Required. The reference implementation on host memory (every operand's data set). */
    lam_status (*reference)(void *user, const void *params, const lam_kernel_args *args);
    /* Optional. Gradients of the inputs (new references, NULL where not needed) from the
     * outputs' gradients, written with host ops (or other kernels). Without it the kernel's
     * inputs get no gradient, and recording a kernel call whose input needs one is an error. */
    lam_status (*backward)(void *user, const void *params, uint32_t n_inputs,
                           lam_tensor *const *inputs, uint32_t n_outputs,
                           lam_tensor *const *outputs, const lam_tensor *const *grad_outputs,
                           lam_tensor **grad_inputs);
} lam_kernel_desc;

/* ------------------------------------------------------------------------------------------ */
/* Host table                                                                                 */
/* ------------------------------------------------------------------------------------------ */

/*
 * A host op call, the generic entry for every op (lam_host_api.op): the host checks the
 * operands, picks the backend of the inputs' context, computes the outputs' shapes by the op's
 * semantics (broadcasting the elementwise ops as lamina.h's ops do), records autograd, and sets
 * outputs[i] to new references. Ops without inputs (FILL, RANDOM) take ctx, out_dtype and
 * out_shape; CAST takes out_dtype. COL2IM, MAX_POOL_BACKWARD and AVG_POOL_BACKWARD take
 * out_shape, the image's (N, C, H, W) (H and W do not follow from their inputs). Ops that
 * read their output (SCATTER_ADD_ROWS) take the tensor to update as inputs[2] and return a
 * new reference to the result.
 */
typedef struct lam_host_op {
    uint32_t struct_size;
    uint32_t abi_version;
    lam_op op;
    uint32_t flags;
    uint32_t n_inputs;
    uint32_t n_outputs;
    lam_tensor *const *inputs;
    lam_tensor **outputs;
    const void *params;
    lam_ctx *ctx;
    const lam_shape *out_shape;
    lam_dtype out_dtype;
    uint32_t reserved;
} lam_host_op;
#define LAM_HOST_OP_INIT(op_)                                                                      \
    {                                                                                              \
        (uint32_t)sizeof(lam_host_op), LAM_ABI_VERSION, (op_), 0, 0, 0, NULL, NULL, NULL, NULL,    \
            NULL, LAM_DTYPE_F32, 0                                                                 \
    }

/* A layer's random stream for one forward: RANDOM params with these seed/key/offset give the
 * same numbers on every backend; the host advances `offset` by what each call reserves. */
typedef struct lam_rng_key {
    uint32_t struct_size;
    uint32_t reserved;
    uint64_t seed;
    uint64_t key;
    uint64_t offset;
} lam_rng_key;

/*
 * The host's functions, handed to lamina_plugin_entry. The first four fields are frozen for
 * every ABI major version, so a plugin of another major can still report why it refuses.
 * Fields are only ever appended; a plugin built for 2.x uses only fields inside struct_size.
 * Tensors returned through `**out` are new references the caller releases; on failure *out is
 * NULL. Every fallible entry returns a lam_status and sets the thread's message.
 */
struct lam_comm_desc; /* since ABI 2.1; defined at the end */

typedef struct lam_host_api {
    uint32_t struct_size;
    uint32_t abi_version; /* the host's LAM_ABI_VERSION */
    uint64_t abi_fingerprint;
    /* Sets the calling thread's error message (printf format) and returns `status`. Kept for
     * plugins of every major to report a version mismatch; 2.x plugins use set_error (or the
     * lam_plugin_error helper below). */
    lam_status (*set_error_fmt)(lam_status status, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
    /* ---- frozen above ---- */

    /* Sets the calling thread's error message (text, copied) and returns `status`. */
    lam_status (*set_error)(lam_status status, const char *message);
    /* Logs one line through the application's log callback. */
    void (*log)(lam_log_level level, const char *message);
    /* A host entry by name ("tensor_create", any field name of this table, and extensions
     * appended later), NULL when this host has none: for a plugin that wants an entry newer
     * than its header. */
    void (*(*get_proc_address)(const char *name))(void);

    /* Registration; valid only during lamina_plugin_entry (see the top for what is copied). */
    lam_status (*register_backend)(lam_plugin *plugin, const lam_backend_desc *desc);
    lam_status (*register_layer)(lam_plugin *plugin, const lam_layer_desc *desc);
    lam_status (*register_kernel)(lam_plugin *plugin, const lam_kernel_desc *desc);

    /* The host's allocator (the application's hook, if it set one); free(NULL) is a no-op. */
    void *(*alloc)(size_t bytes);
    void (*free)(void *ptr);

    /* Tensors (see lamina.h for the contracts). read/write move the tensor's elements in its
     * own dtype; `bytes` must equal its element count times the dtype's size. */
    lam_status (*tensor_create)(lam_ctx *ctx, lam_dtype dtype, const lam_shape *shape,
                                lam_tensor **out);
    lam_tensor *(*tensor_retain)(lam_tensor *t);
    void (*tensor_release)(lam_tensor *t);
    const lam_shape *(*tensor_shape)(const lam_tensor *t);
    lam_dtype (*tensor_dtype)(const lam_tensor *t);
    lam_ctx *(*tensor_ctx)(const lam_tensor *t);
    lam_status (*tensor_read)(const lam_tensor *t, void *dst, size_t bytes);
    lam_status (*tensor_write)(lam_tensor *t, const void *src, size_t bytes);
    /* Views, differentiated (their gradient flows to the base). reshape shares storage with t;
     * slices and permutations are contiguous
     * copies (as torch.reshape, a plugin must not rely on either: it never writes into them). */
    lam_status (*tensor_reshape)(lam_tensor *t, const lam_shape *shape, lam_tensor **out);
    /* Elements start, start + step, ... below stop along `axis` (step >= 1). */
    lam_status (*tensor_slice)(lam_tensor *t, uint32_t axis, int64_t start, int64_t stop,
                               int64_t step, lam_tensor **out);
    /* out's axis i is t's axis perm[i]. */
    lam_status (*tensor_permute)(lam_tensor *t, const uint32_t *perm, uint32_t n, lam_tensor **out);
    /* A contiguous copy (a view of one otherwise); recorded as the identity. */
    lam_status (*tensor_contiguous)(lam_tensor *t, lam_tensor **out);
    /* The same data, cut from the tape (no gradient flows through). */
    lam_status (*tensor_detach)(lam_tensor *t, lam_tensor **out);

    /* Every op (lam_op) through one entry; see lam_host_op. */
    lam_status (*op)(const lam_host_op *call);
    /* Runs a registered kernel by name on the inputs (see lam_kernel_desc). */
    lam_status (*kernel_call)(const char *name, const void *params, uint32_t n_inputs,
                              lam_tensor *const *inputs, uint32_t n_outputs, lam_tensor **outputs);

    /* Recording and mode of the calling thread: nonzero while autograd records / while the
     * forward is a training one (Gluon's train_mode; on by default while recording). */
    int32_t (*is_recording)(void);
    int32_t (*is_training)(void);

    /* Layers: attributes (defaults applied) of the instance being created. */
    lam_status (*attr_int)(const lam_attrs *attrs, const char *name, int64_t *value);
    lam_status (*attr_float)(const lam_attrs *attrs, const char *name, double *value);
    lam_status (*attr_bool)(const lam_attrs *attrs, const char *name, int32_t *value);
    /* Text of a STRING or ENUM attribute; valid for the lifetime of the layer instance. */
    lam_status (*attr_string)(const lam_attrs *attrs, const char *name, const char **value);
    /* Elements of an INTS attribute into values[0..cap); *count gets how many there are. */
    lam_status (*attr_ints)(const lam_attrs *attrs, const char *name, int64_t *values, uint32_t cap,
                            uint32_t *count);
    /* Declares a parameter during create; shape dims may be LAM_DIM_UNKNOWN. `init` names a
     * default initializer ("zeros", "ones", ...) or is NULL for the block's initializer.
     * flags: LAM_PARAM_*. */
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
    /* Replaces a LAM_PARAM_STATE parameter's values with `value` (same shape; not recorded),
     * on every context it lives on. */
    lam_status (*layer_param_assign)(lam_layer *layer, const char *name, const lam_tensor *value);
    /* The instance's display name ("dense0"), the subject of its error messages. Borrowed. */
    const char *(*layer_name)(const lam_layer *layer);
    /* In a fused backward: nonzero when input `index` needs a gradient. */
    int32_t (*layer_input_needs_grad)(const lam_layer *layer, uint32_t index);
    /* A random stream for this forward of the instance: seed (lam_seed), a key from the
     * instance's name, and an offset advanced by `count` elements per call, so consecutive
     * calls draw fresh numbers and a re-seeded run repeats them. */
    lam_status (*layer_rng)(lam_layer *layer, uint64_t count, lam_rng_key *key);

    /* ---- since ABI 2.1 (a 2.0 plugin's table ends above; check struct_size or use
     * get_proc_address before calling these) ---- */

    /* Registers a communicator (see lam_comm_desc below); valid only during the entry. */
    lam_status (*register_comm)(lam_plugin *plugin, const struct lam_comm_desc *desc);
} lam_host_api;

/* printf-style helpers over the host's text-only entries (formatted into a stack buffer). */
static inline lam_status lam_plugin_error(const lam_host_api *host, lam_status status,
                                          const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static inline lam_status lam_plugin_error(const lam_host_api *host, lam_status status,
                                          const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return host->set_error(status, buf);
}

static inline void lam_plugin_log(const lam_host_api *host, lam_log_level level, const char *fmt,
                                  ...) __attribute__((format(printf, 3, 4)));
static inline void lam_plugin_log(const lam_host_api *host, lam_log_level level, const char *fmt,
                                  ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    host->log(level, buf);
}

/*
 * The one symbol a plugin exports. Called once after dlopen; registers everything the plugin
 * provides and returns LAM_OK, or returns an error after host->set_error. If any registration
 * is refused or the entry fails, the host rolls back every registration of this plugin and
 * unloads it.
 */
typedef lam_status (*lam_plugin_entry_fn)(const lam_host_api *host, lam_plugin *plugin);

#define LAM_PLUGIN_ENTRY_NAME "lamina_plugin_entry"

#define LAM_PLUGIN_ENTRY                                                                           \
    LAM_EXPORT lam_status lamina_plugin_entry(const lam_host_api *host, lam_plugin *plugin);       \
    LAM_EXPORT lam_status lamina_plugin_entry(const lam_host_api *host, lam_plugin *plugin)

/*
 * Checks that the host can serve a plugin built against this header: same major, minor at
 * least ours, and a table at least as large as ours. Returns LAM_OK or sets the error (through
 * the frozen set_error_fmt, so hosts of every major show it).
 */
static inline lam_status lam_plugin_check_host(const lam_host_api *host) {
    if (host == NULL || host->struct_size < 24) {
        return LAM_ERR_ABI;
    }
    if (LAM_VERSION_MAJOR(host->abi_version) != LAM_ABI_VERSION_MAJOR ||
        host->abi_version < LAM_ABI_VERSION || /* same major, older minor */
        host->struct_size < sizeof(lam_host_api)) {
        return host->set_error_fmt(
            LAM_ERR_ABI, "plugin: ABI mismatch, plugin built for %u.%u, host provides %u.%u",
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
#define LAM_KERNEL_DESC_HEADER                                                                     \
    .struct_size = (uint32_t)sizeof(lam_kernel_desc), .abi_version = LAM_ABI_VERSION,              \
    .abi_fingerprint = LAM_ABI_FINGERPRINT
#define LAM_KERNEL_IMPL_HEADER                                                                     \
    .struct_size = (uint32_t)sizeof(lam_kernel_impl), .abi_version = LAM_ABI_VERSION
#define LAM_ATTR_DESC_HEADER .struct_size = (uint32_t)sizeof(lam_attr_desc)

/* ------------------------------------------------------------------------------------------ */
/* Communicators (since ABI 2.1)                                                              */
/* ------------------------------------------------------------------------------------------ */

/*
 * The reduction of an allreduce (since 2.1). lam_comm_allreduce (lamina.h) sums; the others
 * serve checks such as "do all ranks hold the same value" (MAX and MIN of a checksum).
 */
typedef enum lam_comm_reduce {
    LAM_COMM_REDUCE_INVALID = 0,
    LAM_COMM_SUM = 1,
    LAM_COMM_MAX = 2,
    LAM_COMM_MIN = 3,
    LAM_COMM_REDUCE_MAX_ENUM = 0x7FFFFFFF
} lam_comm_reduce;

/* Number of lam_comm_reduce values including INVALID; part of the ABI fingerprint. */
#define LAM_COMM_REDUCE_COUNT 4

/*
 * A communicator (since 2.1): collective operations among the processes of one job, the third
 * plugin kind (`lamina_comm_<name>.so`, e.g. lamina_comm_mpi.so on Open MPI), registered with
 * host->register_comm during lamina_plugin_entry and checked as layers and backends are
 * (header, name, required callbacks; a refusal is in `lamina plugins`). The host opens one
 * (lam_comm_open in lamina.h) when the application asks for it or, automatically, when detect
 * says this process was started by the communicator's launcher.
 *
 * Data: the host passes host memory (`data`, `send`, `recv`: count elements of dtype,
 * contiguous). For a tensor on a backend the communicator does not name in supports_backend,
 * the host stages through host memory (reads the tensor, runs the operation, writes it back);
 * on a backend whose buffers are host memory (the CPU) it passes the buffer's own address, no
 * copy. A communicator that reduces device buffers itself (NCCL) implements supports_backend
 * and allreduce_device. dtypes: every dtype for broadcast and allgather (bytes move
 * unchanged); the allreduce entries may answer LAM_ERR_DTYPE for a dtype they cannot reduce
 * (F32 must work).
 *
 * Every collective must be called by every rank of the communicator in the same order with
 * the same count, dtype and root (as MPI requires); a rank that dies makes the job end, never
 * hang for ever (the launcher's business: mpirun and srun kill the job; see README).
 * Thread safety: the host serializes nothing; the application calls the communicators of one
 * process from one thread at a time (lamina.h). `user` is passed to detect, open and
 * shutdown; `comm` is what open returned.
 */
typedef struct lam_comm_desc {
    uint32_t struct_size; /* sizeof(lam_comm_desc) */
    uint32_t abi_version; /* LAM_ABI_VERSION the plugin was built for (2.1 or later) */
    uint64_t abi_fingerprint;
    const char *name;    /* e.g. "mpi"; [a-z0-9_]+, unique among communicators, not "self" */
    const char *version; /* the plugin's own version */
    const char *doc;     /* one line */
    void *user;
    /* Optional. Nonzero when this process was started by this communicator's launcher (for
     * MPI: mpirun, srun), with the evidence in `why` ("OMPI_COMM_WORLD_SIZE=2"); 0 with why
     * not. Looks at the environment only: must not start the transport. NULL: never chosen
     * automatically, only by name. */
    int32_t (*detect)(void *user, char *why, size_t why_cap);
    /* Required. Joins the job: a communicator over all its processes (*comm). */
    lam_status (*open)(void *user, void **comm);
    /* Required. Frees a communicator (no request of it is outstanding). */
    lam_status (*close)(void *comm);
    /* Required. This process's rank (0 .. size-1) and the number of ranks. */
    int32_t (*rank)(const void *comm);
    int32_t (*size)(const void *comm);
    /* Required. Returns once every rank has entered it. */
    lam_status (*barrier)(void *comm);
    /* Required. Root's `count` elements at `data` to every rank's `data`. */
    lam_status (*broadcast)(void *comm, void *data, size_t count, lam_dtype dtype, int32_t root);
    /* Required. In place: every rank's `data` becomes the reduction over all ranks. */
    lam_status (*allreduce)(void *comm, void *data, size_t count, lam_dtype dtype,
                            lam_comm_reduce op);
    /* Required. `recv` (size * count elements) gets every rank's `send`, in rank order. */
    lam_status (*allgather)(void *comm, const void *send, void *recv, size_t count,
                            lam_dtype dtype);
    /* Required. Starts allreduce on `data` and returns at once with a request (*request);
     * `data` is the communicator's until wait returns. Several requests may be outstanding;
     * every rank starts them in the same order. */
    lam_status (*allreduce_start)(void *comm, void *data, size_t count, lam_dtype dtype,
                                  lam_comm_reduce op, void **request);
    /* Required. Waits for a request and frees it (on failure too). */
    lam_status (*wait)(void *comm, void *request);
    /* Optional. Drives progress: *done nonzero when the request has completed (it stays to be
     * waited for). NULL: the host answers "not done" until wait. */
    lam_status (*test)(void *comm, void *request, int32_t *done);
    /* Optional. Called once at host shutdown after every communicator is closed (MPI_Finalize
     * when the plugin started MPI). */
    void (*shutdown)(void *user);
    /* Optional. Nonzero when allreduce_device reduces buffers of backend `backend` ("cuda")
     * in place without staging. */
    int32_t (*supports_backend)(void *comm, const char *backend);
    /* Optional (with supports_backend). Starts an in-place allreduce of a contiguous view of a
     * buffer of that backend; `dev` is the backend's device (what its device_open returned).
     * Completed by wait. */
    lam_status (*allreduce_device)(void *comm, const char *backend, void *dev,
                                   const lam_tensor_view *view, lam_comm_reduce op, void **request);
} lam_comm_desc;

/* The header fields of a communicator descriptor built against this SDK (since 2.1). */
#define LAM_COMM_DESC_HEADER                                                                       \
    .struct_size = (uint32_t)sizeof(lam_comm_desc), .abi_version = LAM_ABI_VERSION,                \
    .abi_fingerprint = LAM_ABI_FINGERPRINT

#ifdef __cplusplus
}
#endif

#endif /* LAMINA_PLUGIN_H */
