/*
 * cpu_ops.c - elementwise ops (fill, copy, arithmetic, unary math, maximum/minimum, step,
 * comparisons, axpby, clamp).
 *
 * One driver walks any strided N-d layout: it first drops size-1 dims and merges dims that are
 * contiguous in every operand, so a dense tensor becomes one long row and a bias broadcast
 * becomes rows of the bias. Each kernel then handles one innermost row and has a dense path
 * the compiler vectorizes, a path for one operand broadcast along the row, and a strided one.
 * No -ffast-math: NaN and infinity must come out as IEEE 754 says.
 */
#include "cpu_internal.h"

#include <math.h>

/* One innermost row: n elements; o/x/y advance by os/xs/ys elements. */
typedef void (*ew_kernel)(ptrdiff_t n, float *o, ptrdiff_t os, const float *x, ptrdiff_t xs,
                          const float *y, ptrdiff_t ys, float s, float t);

static inline float sigmoid1(float a) {
    if (a >= 0.0f) {
        return 1.0f / (1.0f + expf(-a));
    }
    const float e = expf(a); /* exp of a negative number cannot overflow */
    return e / (1.0f + e);
}

static inline float softrelu1(float a) {
    return a > 20.0f ? a : log1pf(expf(a)); /* log1p(exp(a)) == a in float above 20 */
}

static inline float relu1(float a) {
    return (a > 0.0f || isnan(a)) ? a : 0.0f;
}

static inline float maximum1(float a, float b) {
    return isnan(a) ? a : isnan(b) ? b : a >= b ? a : b;
}

static inline float minimum1(float a, float b) {
    return isnan(a) ? a : isnan(b) ? b : a <= b ? a : b;
}

/* Comparisons are false for NaN, which gives 0 as the ops require. */
static inline float step1(float a) {
    return a > 0.0f ? 1.0f : 0.0f;
}

static inline float greater_equal1(float a, float b) {
    return a >= b ? 1.0f : 0.0f;
}

/* min(max(x, lo), hi) with NaN kept (fmaxf/fminf would drop it). */
static inline float clamp1(float a, float lo, float hi) {
    if (isnan(a)) {
        return a;
    }
    const float m = a > lo ? a : lo;
    return m < hi ? m : hi;
}

#define DEFINE_UNARY(name, EXPR)                                                                   \
    static void name(ptrdiff_t n, float *o, ptrdiff_t os, const float *x, ptrdiff_t xs,            \
                     const float *y, ptrdiff_t ys, float s, float t) {                             \
        (void)t;                                                                                   \
        (void)y;                                                                                   \
        (void)ys;                                                                                  \
        (void)s;                                                                                   \
        if (os == 1 && xs == 1) {                                                                  \
            for (ptrdiff_t i = 0; i < n; i++) {                                                    \
                const float a = x[i];                                                              \
                o[i] = (EXPR);                                                                     \
            }                                                                                      \
        } else {                                                                                   \
            for (ptrdiff_t i = 0; i < n; i++) {                                                    \
                const float a = x[i * xs];                                                         \
                o[i * os] = (EXPR);                                                                \
            }                                                                                      \
        }                                                                                          \
    }

#define DEFINE_BINARY(name, EXPR)                                                                  \
    static void name(ptrdiff_t n, float *o, ptrdiff_t os, const float *x, ptrdiff_t xs,            \
                     const float *y, ptrdiff_t ys, float s, float t) {                             \
        (void)t;                                                                                   \
        (void)s;                                                                                   \
        if (os == 1 && xs == 1 && ys == 1) {                                                       \
            for (ptrdiff_t i = 0; i < n; i++) {                                                    \
                const float a = x[i];                                                              \
                const float b = y[i];                                                              \
                o[i] = (EXPR);                                                                     \
            }                                                                                      \
        } else if (os == 1 && xs == 1 && ys == 0) {                                                \
            const float b = y[0];                                                                  \
            for (ptrdiff_t i = 0; i < n; i++) {                                                    \
                const float a = x[i];                                                              \
                o[i] = (EXPR);                                                                     \
            }                                                                                      \
        } else if (os == 1 && xs == 0 && ys == 1) {                                                \
            const float a = x[0];                                                                  \
            for (ptrdiff_t i = 0; i < n; i++) {                                                    \
                const float b = y[i];                                                              \
                o[i] = (EXPR);                                                                     \
            }                                                                                      \
        } else {                                                                                   \
            for (ptrdiff_t i = 0; i < n; i++) {                                                    \
                const float a = x[i * xs];                                                         \
                const float b = y[i * ys];                                                         \
                o[i * os] = (EXPR);                                                                \
            }                                                                                      \
        }                                                                                          \
    }

static void k_fill(ptrdiff_t n, float *o, ptrdiff_t os, const float *x, ptrdiff_t xs,
                   const float *y, ptrdiff_t ys, float s, float t) {
    (void)t;
    (void)x;
    (void)xs;
    (void)y;
    (void)ys;
    if (os == 1) {
        for (ptrdiff_t i = 0; i < n; i++) {
            o[i] = s;
        }
    } else {
        for (ptrdiff_t i = 0; i < n; i++) {
            o[i * os] = s;
        }
    }
}

DEFINE_UNARY(k_copy, a)
DEFINE_BINARY(k_add, a + b)
DEFINE_BINARY(k_sub, a - b)
DEFINE_BINARY(k_mul, a *b)
DEFINE_BINARY(k_div, a / b)
DEFINE_UNARY(k_add_scalar, a + s)
DEFINE_UNARY(k_mul_scalar, a *s)
DEFINE_UNARY(k_rsub_scalar, s - a)
DEFINE_UNARY(k_div_scalar, a / s)
DEFINE_UNARY(k_rdiv_scalar, s / a)
DEFINE_UNARY(k_pow_scalar, powf(a, s))
DEFINE_UNARY(k_neg, -a)
DEFINE_UNARY(k_abs, fabsf(a))
DEFINE_UNARY(k_square, a *a)
DEFINE_UNARY(k_sqrt, sqrtf(a))
DEFINE_UNARY(k_exp, expf(a))
DEFINE_UNARY(k_log, logf(a))
DEFINE_UNARY(k_relu, relu1(a))
DEFINE_UNARY(k_sigmoid, sigmoid1(a))
DEFINE_UNARY(k_tanh, tanhf(a))
DEFINE_UNARY(k_softrelu, softrelu1(a))
DEFINE_BINARY(k_maximum, maximum1(a, b))
DEFINE_BINARY(k_minimum, minimum1(a, b))
DEFINE_UNARY(k_step, step1(a))
DEFINE_BINARY(k_greater_equal, greater_equal1(a, b))
DEFINE_BINARY(k_axpby, s *a + t * b)
DEFINE_BINARY(k_greater, a > b ? 1.0f : 0.0f)
DEFINE_BINARY(k_less, a < b ? 1.0f : 0.0f)
DEFINE_BINARY(k_equal, a == b ? 1.0f : 0.0f)
DEFINE_UNARY(k_clamp, clamp1(a, s, t))

static ew_kernel kernel_for(lam_op op) {
    switch (op) {
    case LAM_OP_FILL:
        return k_fill;
    case LAM_OP_COPY:
        return k_copy;
    case LAM_OP_ADD:
        return k_add;
    case LAM_OP_SUB:
        return k_sub;
    case LAM_OP_MUL:
        return k_mul;
    case LAM_OP_DIV:
        return k_div;
    case LAM_OP_ADD_SCALAR:
        return k_add_scalar;
    case LAM_OP_MUL_SCALAR:
        return k_mul_scalar;
    case LAM_OP_RSUB_SCALAR:
        return k_rsub_scalar;
    case LAM_OP_DIV_SCALAR:
        return k_div_scalar;
    case LAM_OP_RDIV_SCALAR:
        return k_rdiv_scalar;
    case LAM_OP_POW_SCALAR:
        return k_pow_scalar;
    case LAM_OP_NEG:
        return k_neg;
    case LAM_OP_ABS:
        return k_abs;
    case LAM_OP_SQUARE:
        return k_square;
    case LAM_OP_SQRT:
        return k_sqrt;
    case LAM_OP_EXP:
        return k_exp;
    case LAM_OP_LOG:
        return k_log;
    case LAM_OP_RELU:
        return k_relu;
    case LAM_OP_SIGMOID:
        return k_sigmoid;
    case LAM_OP_TANH:
        return k_tanh;
    case LAM_OP_SOFTRELU:
        return k_softrelu;
    case LAM_OP_MAXIMUM:
        return k_maximum;
    case LAM_OP_MINIMUM:
        return k_minimum;
    case LAM_OP_STEP:
        return k_step;
    case LAM_OP_GREATER_EQUAL:
        return k_greater_equal;
    case LAM_OP_AXPBY:
        return k_axpby;
    case LAM_OP_GREATER:
        return k_greater;
    case LAM_OP_LESS:
        return k_less;
    case LAM_OP_EQUAL:
        return k_equal;
    case LAM_OP_CLAMP:
        return k_clamp;
    default:
        return NULL;
    }
}

/* Operand 0 is the output, 1 is x, 2 is y. */
#define EW_OPERANDS 3

/* A layout reduced to the fewest dims: size-1 dims dropped, jointly contiguous dims merged. */
typedef struct ew_plan {
    int nd;
    int64_t dims[LAM_MAX_DIMS];
    int64_t st[EW_OPERANDS][LAM_MAX_DIMS];
} ew_plan;

/* Returns 0 when the output has no elements. */
static int plan_make(ew_plan *p, uint32_t ndim, const int64_t *dims, const int64_t *const st[]) {
    int nd = 0;
    for (uint32_t d = 0; d < ndim; d++) {
        if (dims[d] == 0) {
            return 0;
        }
        if (dims[d] == 1) {
            continue;
        }
        if (nd > 0) {
            int merge = 1;
            for (int k = 0; k < EW_OPERANDS; k++) {
                merge = merge && p->st[k][nd - 1] == st[k][d] * dims[d];
            }
            if (merge) {
                p->dims[nd - 1] *= dims[d];
                for (int k = 0; k < EW_OPERANDS; k++) {
                    p->st[k][nd - 1] = st[k][d];
                }
                continue;
            }
        }
        p->dims[nd] = dims[d];
        for (int k = 0; k < EW_OPERANDS; k++) {
            p->st[k][nd] = st[k][d];
        }
        nd++;
    }
    if (nd == 0) { /* a single element */
        p->dims[0] = 1;
        for (int k = 0; k < EW_OPERANDS; k++) {
            p->st[k][0] = 1;
        }
        nd = 1;
    }
    p->nd = nd;
    return 1;
}

/* One row of a copy of any dtype (element size es), strides in elements. */
static void copy_row(ptrdiff_t n, char *o, ptrdiff_t os, const char *x, ptrdiff_t xs, size_t es) {
    switch (es) {
    case 1:
        for (ptrdiff_t i = 0; i < n; i++) {
            o[i * os] = x[i * xs];
        }
        break;
    case 2:
        for (ptrdiff_t i = 0; i < n; i++) {
            ((uint16_t *)(void *)o)[i * os] = ((const uint16_t *)(const void *)x)[i * xs];
        }
        break;
    case 4:
        for (ptrdiff_t i = 0; i < n; i++) {
            ((uint32_t *)(void *)o)[i * os] = ((const uint32_t *)(const void *)x)[i * xs];
        }
        break;
    default:
        for (ptrdiff_t i = 0; i < n; i++) {
            ((uint64_t *)(void *)o)[i * os] = ((const uint64_t *)(const void *)x)[i * xs];
        }
        break;
    }
}

/* Walks the rows of a plan, calling kernel (float ops) or copy_row (a copy of another dtype). */
static void walk(const ew_plan *p, ew_kernel kernel, char *const base[EW_OPERANDS], size_t es,
                 float s, float t) {
    const int inner = p->nd - 1;
    const ptrdiff_t n = p->dims[inner];
    /* Offsets (elements) rather than moving pointers: they may step outside a row while
     * carrying. */
    int64_t off[EW_OPERANDS] = {0, 0, 0};
    int64_t idx[LAM_MAX_DIMS] = {0};
    for (;;) {
        if (kernel != NULL) {
            kernel(n, (float *)(void *)base[0] + off[0], p->st[0][inner],
                   (const float *)(const void *)base[1] + off[1], p->st[1][inner],
                   (const float *)(const void *)base[2] + off[2], p->st[2][inner], s, t);
        } else {
            copy_row(n, base[0] + (size_t)off[0] * es, p->st[0][inner],
                     base[1] + (size_t)off[1] * es, p->st[1][inner], es);
        }
        int d = inner - 1;
        for (; d >= 0; d--) {
            for (int k = 0; k < EW_OPERANDS; k++) {
                off[k] += p->st[k][d];
            }
            if (++idx[d] < p->dims[d]) {
                break;
            }
            for (int k = 0; k < EW_OPERANDS; k++) {
                off[k] -= p->st[k][d] * p->dims[d];
            }
            idx[d] = 0;
        }
        if (d < 0) {
            return;
        }
    }
}

lam_status cpu_elementwise(const cpu_call *call) {
    /* Strides of an operand the op does not have: zero, over a dummy element. */
    static const int64_t zero_strides[LAM_MAX_DIMS];
    static const uint64_t dummy;
    const cpu_view *out = &call->out[0];
    char *base[EW_OPERANDS] = {out->data, (char *)(uintptr_t)&dummy, (char *)(uintptr_t)&dummy};
    const int64_t *st[EW_OPERANDS] = {out->st, zero_strides, zero_strides};
    for (uint32_t i = 0; i < call->n_in && i < 2; i++) {
        base[i + 1] = call->in[i].data;
        st[i + 1] = call->in[i].st;
    }
    const int typed_copy = call->op == LAM_OP_COPY && out->dtype != LAM_DTYPE_F32;
    ew_kernel kernel = typed_copy ? NULL : kernel_for(call->op);
    if (kernel == NULL && !typed_copy) {
        return cpu_error(LAM_ERR_INTERNAL, "cpu: Internal error, op %d is not elementwise",
                         (int)call->op);
    }
    ew_plan p;
    if (!plan_make(&p, out->ndim, out->dims, st)) {
        return LAM_OK;
    }
    const lam_scalar_params *sp = lam_op_params(call, lam_scalar_params);
    const float s = sp != NULL ? (float)sp->a : 0.0f;
    const float t = sp != NULL ? (float)sp->b : 0.0f;
    walk(&p, kernel, base, out->esize, s, t);
    return LAM_OK;
}

/* LINEAR after its GEMM: out = act(out + bias), row by row. */
lam_status cpu_linear_epilogue(const cpu_call *call, lam_op act) {
    const cpu_view *out = &call->out[0];
    const int64_t m = out->dims[0], n = out->dims[1];
    float *c = cpu_f32(out);
    const float *bias = NULL;
    int64_t bs = 0;
    if (call->n_in == 3) {
        bias = cpu_f32(&call->in[2]);
        bs = call->in[2].st[0];
    }
    for (int64_t i = 0; i < m; i++) {
        float *row = c + i * out->st[0];
        const int64_t cs = out->st[1];
        if (bias != NULL) {
            for (int64_t j = 0; j < n; j++) {
                row[j * cs] += bias[j * bs];
            }
        }
        switch (act) {
        case LAM_OP_RELU:
            for (int64_t j = 0; j < n; j++) {
                row[j * cs] = relu1(row[j * cs]);
            }
            break;
        case LAM_OP_SIGMOID:
            for (int64_t j = 0; j < n; j++) {
                row[j * cs] = sigmoid1(row[j * cs]);
            }
            break;
        case LAM_OP_TANH:
            for (int64_t j = 0; j < n; j++) {
                row[j * cs] = tanhf(row[j * cs]);
            }
            break;
        case LAM_OP_SOFTRELU:
            for (int64_t j = 0; j < n; j++) {
                row[j * cs] = softrelu1(row[j * cs]);
            }
            break;
        default:
            break;
        }
    }
    return LAM_OK;
}
