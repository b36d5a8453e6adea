/*
 * Index, random, selection and conversion ops of ABI 2.0 (lamina.h): gather / scatter-add of
 * rows by int32 or int64 indices, counter-based random tensors, where, comparisons, clamp and
 * cast. Each runs through lam__run_op (the tensors' backend, or the CPU with staging); the
 * differentiable ones record a tape closure.
 */
#include "ops_index.h"
#include "backward.h"
#include "error.h"
#include "op_run.h"
#include "rng.h"
#include "shape.h"
#include "tape.h"
#include "tensor.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static lam_status bad(const char *fn, const char *what) {
    return lam__error(LAM_ERR_INVALID_ARGUMENT, "%s: Invalid argument, %s", fn, what);
}

static bool is_index(lam_dtype d) {
    return d == LAM_DTYPE_I32 || d == LAM_DTYPE_I64;
}

static lam_status f32(const char *fn, const lam_tensor *t, const char *which) {
    if (t->dtype != LAM_DTYPE_F32) {
        return lam__error(LAM_ERR_DTYPE, "%s: Dtype mismatch, %s is %s, expected float32", fn,
                          which, lam__dtype_name(t->dtype));
    }
    return LAM_OK;
}

static void release_ctx(void *p) {
    lam_tensor_release(p);
}

/* ---- gather / scatter-add rows ---- */

/* Gradient of a gather to the table: zeros, plus each gradient row added at its index. */
static lam_status gather_backward(void *ctx, const lam__node *n, lam_tensor *g) {
    lam_tensor *idx = ctx, *table = n->in[0], *z = NULL, *g2 = NULL;
    const lam_shape *ts = lam_tensor_shape(table);
    lam_shape gs = {.ndim = 2, .dims = {lam_tensor_numel(idx), ts->dims[1]}};
    lam_status st = lam_tensor_create(lam_tensor_ctx(g), ts, &z);
    if (st == LAM_OK) {
        st = lam__tensor_reshape_view(g, &gs, &g2);
    }
    if (st == LAM_OK && gs.dims[0] > 0 && gs.dims[1] > 0) {
        lam_tensor *in[2] = {g2, idx}, *out[1] = {z};
        st = lam__run_op(LAM_OP_SCATTER_ADD_ROWS, lam_tensor_ctx(g), in, 2, out, 1, NULL);
    }
    if (st == LAM_OK) {
        st = lam__grad_accumulate(table, z);
    }
    lam_tensor_release(g2);
    lam_tensor_release(z);
    return st;
}

static lam_status check_rows(const char *fn, const lam_tensor *table, const lam_tensor *idx) {
    if (table->shape.ndim != 2) {
        char b[160];
        return lam__error(LAM_ERR_SHAPE, "%s: Shape mismatch, the table is %s, expected 2-D", fn,
                          lam_shape_format(&table->shape, b, sizeof b));
    }
    if (!is_index(idx->dtype)) {
        return lam__error(LAM_ERR_DTYPE,
                          "%s: Dtype mismatch, indices are %s, expected int32 or "
                          "int64",
                          fn, lam__dtype_name(idx->dtype));
    }
    if (idx->shape.ndim >= LAM_MAX_DIMS) {
        return lam__error(LAM_ERR_SHAPE, "%s: Too many dims, indices have %u (at most %d)", fn,
                          (unsigned)idx->shape.ndim, LAM_MAX_DIMS - 1);
    }
    return lam__same_ctx(fn, table, idx);
}

lam_status lam_op_gather_rows(const lam_tensor *table, const lam_tensor *indices,
                              lam_tensor **out) {
    const char *fn = "lam_op_gather_rows";
    if (out == NULL || table == NULL || indices == NULL) {
        if (out != NULL) {
            *out = NULL;
        }
        return bad(fn, "NULL table, indices or out");
    }
    *out = NULL;
    lam_status st = f32(fn, table, "the table");
    if (st == LAM_OK) {
        st = check_rows(fn, table, indices);
    }
    if (st != LAM_OK) {
        return st;
    }
    int64_t m = indices->numel, d = table->shape.dims[1];
    lam_shape flat = {.ndim = 1, .dims = {m}}, rows = {.ndim = 2, .dims = {m, d}};
    lam_shape os = indices->shape;
    os.dims[os.ndim++] = d;
    lam_tensor *idx = NULL, *o = NULL, *shaped = NULL;
    st = lam__tensor_reshape_view((lam_tensor *)indices, &flat, &idx);
    if (st == LAM_OK) {
        st = lam__tensor_alloc(table->storage->ctx, &rows, &o);
    }
    if (st == LAM_OK && m > 0 && d > 0) {
        lam_tensor *in[2] = {(lam_tensor *)table, idx}, *res[1] = {o};
        st = lam__run_op(LAM_OP_GATHER_ROWS, table->storage->ctx, in, 2, res, 1, NULL);
    }
    if (st == LAM_OK) {
        st = lam__tensor_reshape_view(o, &os, &shaped);
    }
    lam_tensor_release(o);
    if (st == LAM_OK && lam__recording() && lam__needs_grad(table)) {
        lam_tensor *in[1] = {(lam_tensor *)table};
        st = lam__record_closure(
            in, 1, &shaped, (lam__closure){gather_backward, lam_tensor_retain(idx), release_ctx});
    }
    lam_tensor_release(idx);
    if (st != LAM_OK) {
        lam_tensor_release(shaped);
        return lam__error_prefix(st, "%s", fn);
    }
    *out = shaped;
    return LAM_OK;
}

lam_status lam_op_scatter_add_rows(const lam_tensor *target, const lam_tensor *values,
                                   const lam_tensor *indices, lam_tensor **out) {
    const char *fn = "lam_op_scatter_add_rows";
    if (out == NULL || target == NULL || values == NULL || indices == NULL) {
        if (out != NULL) {
            *out = NULL;
        }
        return bad(fn, "NULL target, values, indices or out");
    }
    *out = NULL;
    lam_status st = f32(fn, target, "the target");
    if (st == LAM_OK) {
        st = f32(fn, values, "values");
    }
    if (st == LAM_OK) {
        st = check_rows(fn, target, indices);
    }
    if (st == LAM_OK && (values->shape.ndim != 2 || indices->shape.ndim != 1 ||
                         values->shape.dims[0] != indices->shape.dims[0] ||
                         values->shape.dims[1] != target->shape.dims[1])) {
        char b1[160], b2[160], b3[160];
        st = lam__error(LAM_ERR_SHAPE,
                        "%s: Shape mismatch, target %s, values %s, indices %s (expected (V, D), "
                        "(M, D), (M,))",
                        fn, lam_shape_format(&target->shape, b1, sizeof b1),
                        lam_shape_format(&values->shape, b2, sizeof b2),
                        lam_shape_format(&indices->shape, b3, sizeof b3));
    }
    if (st == LAM_OK) {
        st = lam__same_ctx(fn, target, values);
    }
    if (st != LAM_OK) {
        return st;
    }
    /* Not differentiated: it is the gradient of a gather (recording it is refused). */
    if (lam__recording() && (lam__needs_grad(target) || lam__needs_grad(values))) {
        return lam__error(LAM_ERR_UNSUPPORTED,
                          "%s: Cannot differentiate, scatter-add is not recorded (detach its "
                          "operands or stop recording)",
                          fn);
    }
    lam_tensor *o = NULL;
    st = lam_op_copy(target, &o);
    if (st == LAM_OK && values->numel > 0) {
        lam_tensor *in[2] = {(lam_tensor *)values, (lam_tensor *)indices}, *res[1] = {o};
        st = lam__run_op(LAM_OP_SCATTER_ADD_ROWS, target->storage->ctx, in, 2, res, 1, NULL);
    }
    if (st != LAM_OK) {
        lam_tensor_release(o);
        return lam__error_prefix(st, "%s", fn);
    }
    *out = o;
    return LAM_OK;
}

/* ---- random ---- */

/* Elements drawn by lam_op_random_* since the last lam_seed (per process). */
static _Atomic uint64_t random_offset;
static _Atomic uint64_t random_generation;

lam_status lam__random_key(uint64_t count, lam_random_params *p) {
    uint64_t gen = lam__seed_generation();
    if (atomic_exchange_explicit(&random_generation, gen, memory_order_relaxed) != gen) {
        atomic_store_explicit(&random_offset, 0, memory_order_relaxed);
    }
    p->seed = lam_seed_get();
    p->key = lam__rng_stream_key(0, "lam_op_random");
    p->offset = atomic_fetch_add_explicit(&random_offset, count, memory_order_relaxed);
    return LAM_OK;
}

lam_status lam__random(lam_ctx *ctx, const lam_shape *shape, lam_dtype dtype,
                       const lam_random_params *p, lam_tensor **out) {
    const char *fn = "lam_op_random";
    *out = NULL;
    if (p->kind <= LAM_RANDOM_INVALID || p->kind >= LAM_RANDOM_KIND_COUNT) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "%s: Invalid argument, unknown kind %d", fn,
                          (int)p->kind);
    }
    if (dtype != LAM_DTYPE_F32) {
        return lam__error(LAM_ERR_DTYPE, "%s: Unsupported dtype %s, random tensors are float32", fn,
                          lam__dtype_name(dtype));
    }
    lam_ctx *c = ctx;
    lam_status st = c == NULL ? lam_ctx_get(NULL, &c) : LAM_OK;
    lam_tensor *o = NULL;
    if (st == LAM_OK) {
        st = lam__tensor_alloc(c, shape, &o);
    }
    if (st == LAM_OK && o->numel > 0) {
        lam_tensor *res[1] = {o};
        st = lam__run_op(LAM_OP_RANDOM, c, NULL, 0, res, 1, p);
    }
    if (st != LAM_OK) {
        lam_tensor_release(o);
        return st;
    }
    *out = o;
    return LAM_OK;
}

/*
 * Whether low + (high - low) * f can round up to high at the largest f, 1 - 2^-24, as a backend
 * computes it: a float multiply then add, one fused multiply-add, or in double rounded once
 * (rounding is monotone, so no smaller f gives more). It can: uniform(1000, 1001) does for
 * about 2^-15 of its elements.
 */
static bool uniform_may_reach_high(float low, float high) {
    const float f = 1.0f - 0x1p-24f;
    volatile float width = high - low, prod = width * f; /* volatile: no contraction */
    float top_mul = low + prod;
    float top_fma = fmaf(width, f, low);
    float top_dbl = (float)((double)low + ((double)high - (double)low) * (double)f);
    return top_mul >= high || top_fma >= high || top_dbl >= high;
}

/* Keeps a uniform tensor inside [low, high): values rounded up to high become the float below
 * it (as rng.c's initializers do); exact, so backends stay bit-identical. */
static lam_status uniform_below_high(float low, float high, lam_tensor **t) {
    lam_scalar_params p = LAM_SCALAR_PARAMS_INIT;
    p.a = low;
    p.b = nextafterf(high, low);
    lam_tensor *o = NULL;
    lam_status st = lam__tensor_alloc((*t)->storage->ctx, &(*t)->shape, &o);
    if (st == LAM_OK) {
        lam_tensor *in[1] = {*t}, *res[1] = {o};
        st = lam__run_op(LAM_OP_CLAMP, (*t)->storage->ctx, in, 1, res, 1, &p);
    }
    if (st != LAM_OK) {
        lam_tensor_release(o);
        return st;
    }
    lam_tensor_release(*t);
    *t = o;
    return LAM_OK;
}

static lam_status random_op(lam_ctx *ctx, const lam_shape *shape, lam_random_kind kind, double a,
                            double b, lam_tensor **out) {
    if (out == NULL || shape == NULL) {
        if (out != NULL) {
            *out = NULL;
        }
        return bad("lam_op_random", "NULL shape or out");
    }
    int64_t n;
    lam_status st = lam__shape_numel("lam_op_random", shape, &n);
    if (st != LAM_OK) {
        *out = NULL;
        return st;
    }
    lam_random_params p = {.struct_size = (uint32_t)sizeof p, .kind = kind, .a = a, .b = b};
    lam__random_key((uint64_t)n, &p);
    st = lam__random(ctx, shape, LAM_DTYPE_F32, &p, out);
    if (st == LAM_OK && kind == LAM_RANDOM_UNIFORM && n > 0 && a < b &&
        uniform_may_reach_high((float)a, (float)b)) {
        st = uniform_below_high((float)a, (float)b, out);
        if (st != LAM_OK) {
            lam_tensor_release(*out);
            *out = NULL;
        }
    }
    return st;
}

lam_status lam_op_random_uniform(lam_ctx *ctx, const lam_shape *shape, float low, float high,
                                 lam_tensor **out) {
    return random_op(ctx, shape, LAM_RANDOM_UNIFORM, low, high, out);
}

lam_status lam_op_random_normal(lam_ctx *ctx, const lam_shape *shape, float mean, float std,
                                lam_tensor **out) {
    return random_op(ctx, shape, LAM_RANDOM_NORMAL, mean, std, out);
}

lam_status lam_op_random_bernoulli(lam_ctx *ctx, const lam_shape *shape, float p,
                                   lam_tensor **out) {
    return random_op(ctx, shape, LAM_RANDOM_BERNOULLI, p, 0.0, out);
}

/* ---- where, comparisons, clamp, cast ---- */

static lam_status same_shapes(const char *fn, const lam_tensor *const *t, uint32_t n) {
    for (uint32_t i = 1; i < n; i++) {
        lam_status st = lam__same_ctx(fn, t[0], t[i]);
        if (st != LAM_OK) {
            return st;
        }
        if (!lam_shape_equal(&t[0]->shape, &t[i]->shape)) {
            char b1[160], b2[160];
            return lam__error(LAM_ERR_SHAPE, "%s: Shape mismatch, %s and %s (equal shapes only)",
                              fn, lam_shape_format(&t[0]->shape, b1, sizeof b1),
                              lam_shape_format(&t[i]->shape, b2, sizeof b2));
        }
    }
    return LAM_OK;
}

/* One op of equal-shaped operands to a new tensor of `dtype` (not recorded). */
static lam_status elementwise(const char *fn, lam_op op, lam_tensor *const *in, uint32_t n,
                              lam_dtype dtype, const void *params, lam_tensor **out) {
    lam_tensor *o = NULL;
    lam_status st = lam__tensor_alloc_dtype(in[0]->storage->ctx, dtype, &in[0]->shape, &o);
    if (st == LAM_OK && o->numel > 0) {
        lam_tensor *res[1] = {o};
        st = lam__run_op(op, in[0]->storage->ctx, in, n, res, 1, params);
    }
    if (st != LAM_OK) {
        lam_tensor_release(o);
        return lam__error_prefix(st, "%s", fn);
    }
    *out = o;
    return LAM_OK;
}

static lam_status where_backward(void *ctx, const lam__node *n, lam_tensor *g) {
    (void)ctx;
    lam_tensor *cond = n->in[0], *z = NULL, *gx = NULL, *gy = NULL;
    lam_status st = lam_tensor_create(lam_tensor_ctx(g), lam_tensor_shape(g), &z);
    if (st == LAM_OK && lam__needs_grad(n->in[1])) {
        lam_tensor *in[3] = {cond, g, z};
        st = elementwise("where", LAM_OP_WHERE, in, 3, LAM_DTYPE_F32, NULL, &gx);
        if (st == LAM_OK) {
            st = lam__grad_accumulate(n->in[1], gx);
        }
    }
    if (st == LAM_OK && lam__needs_grad(n->in[2])) {
        lam_tensor *in[3] = {cond, z, g};
        st = elementwise("where", LAM_OP_WHERE, in, 3, LAM_DTYPE_F32, NULL, &gy);
        if (st == LAM_OK) {
            st = lam__grad_accumulate(n->in[2], gy);
        }
    }
    lam_tensor_release(z);
    lam_tensor_release(gx);
    lam_tensor_release(gy);
    return st;
}

lam_status lam_op_where(const lam_tensor *cond, const lam_tensor *x, const lam_tensor *y,
                        lam_tensor **out) {
    const char *fn = "lam_op_where";
    if (out == NULL || cond == NULL || x == NULL || y == NULL) {
        if (out != NULL) {
            *out = NULL;
        }
        return bad(fn, "NULL cond, x, y or out");
    }
    *out = NULL;
    lam_tensor *in[3] = {(lam_tensor *)cond, (lam_tensor *)x, (lam_tensor *)y};
    lam_status st = same_shapes(fn, (const lam_tensor *const *)in, 3);
    if (st == LAM_OK && cond->dtype != LAM_DTYPE_F32 && cond->dtype != LAM_DTYPE_U8) {
        st = lam__error(LAM_ERR_DTYPE, "%s: Dtype mismatch, cond is %s, expected float32 or uint8",
                        fn, lam__dtype_name(cond->dtype));
    }
    if (st == LAM_OK) {
        st = f32(fn, x, "x");
    }
    if (st == LAM_OK) {
        st = f32(fn, y, "y");
    }
    lam_tensor *o = NULL;
    if (st == LAM_OK) {
        st = elementwise(fn, LAM_OP_WHERE, in, 3, LAM_DTYPE_F32, NULL, &o);
    }
    if (st == LAM_OK && lam__recording() && (lam__needs_grad(x) || lam__needs_grad(y))) {
        st = lam__record_closure(in, 3, &o, (lam__closure){where_backward, NULL, NULL});
        if (st != LAM_OK) {
            lam_tensor_release(o);
            o = NULL;
        }
    }
    *out = o;
    return st;
}

static lam_status compare(lam_op op, const char *fn, const lam_tensor *a, const lam_tensor *b,
                          lam_tensor **out) {
    if (out == NULL || a == NULL || b == NULL) {
        if (out != NULL) {
            *out = NULL;
        }
        return bad(fn, "NULL tensor or out");
    }
    *out = NULL;
    lam_tensor *in[2] = {(lam_tensor *)a, (lam_tensor *)b};
    lam_status st = same_shapes(fn, (const lam_tensor *const *)in, 2);
    if (st == LAM_OK) {
        st = f32(fn, a, "the first operand");
    }
    if (st == LAM_OK) {
        st = f32(fn, b, "the second operand");
    }
    return st == LAM_OK ? elementwise(fn, op, in, 2, LAM_DTYPE_F32, NULL, out) : st;
}

lam_status lam_op_greater(const lam_tensor *a, const lam_tensor *b, lam_tensor **out) {
    return compare(LAM_OP_GREATER, "lam_op_greater", a, b, out);
}

lam_status lam_op_less(const lam_tensor *a, const lam_tensor *b, lam_tensor **out) {
    return compare(LAM_OP_LESS, "lam_op_less", a, b, out);
}

lam_status lam_op_equal(const lam_tensor *a, const lam_tensor *b, lam_tensor **out) {
    return compare(LAM_OP_EQUAL, "lam_op_equal", a, b, out);
}

typedef struct clamp_ctx {
    float low, high;
} clamp_ctx;

/* Gradient 1 where low <= x <= high, else 0: g * (x >= low) * (high >= x). */
static lam_status clamp_backward(void *ctx, const lam__node *n, lam_tensor *g) {
    const clamp_ctx *c = ctx;
    lam_tensor *x = n->in[0], *lo = NULL, *hi = NULL, *m1 = NULL, *m2 = NULL, *gm = NULL,
               *gx = NULL;
    lam_status st = lam_tensor_full(lam_tensor_ctx(x), lam_tensor_shape(x), c->low, &lo);
    if (st == LAM_OK) {
        st = lam_tensor_full(lam_tensor_ctx(x), lam_tensor_shape(x), c->high, &hi);
    }
    if (st == LAM_OK) {
        st = lam_op_greater_equal(x, lo, &m1);
    }
    if (st == LAM_OK) {
        st = lam_op_greater_equal(hi, x, &m2);
    }
    if (st == LAM_OK) {
        st = lam_op_mul(g, m1, &gm);
    }
    if (st == LAM_OK) {
        st = lam_op_mul(gm, m2, &gx);
    }
    if (st == LAM_OK) {
        st = lam__grad_accumulate(x, gx);
    }
    lam_tensor *all[] = {lo, hi, m1, m2, gm, gx};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        lam_tensor_release(all[i]);
    }
    return st;
}

lam_status lam_op_clamp(const lam_tensor *x, float low, float high, lam_tensor **out) {
    const char *fn = "lam_op_clamp";
    if (out == NULL || x == NULL) {
        if (out != NULL) {
            *out = NULL;
        }
        return bad(fn, "NULL tensor or out");
    }
    *out = NULL;
    if (!(low <= high)) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "%s: Invalid argument, low %g > high %g", fn,
                          (double)low, (double)high);
    }
    lam_status st = f32(fn, x, "x");
    lam_scalar_params p = LAM_SCALAR_PARAMS_INIT;
    p.a = low;
    p.b = high;
    lam_tensor *in[1] = {(lam_tensor *)x}, *o = NULL;
    if (st == LAM_OK) {
        st = elementwise(fn, LAM_OP_CLAMP, in, 1, LAM_DTYPE_F32, &p, &o);
    }
    if (st == LAM_OK && lam__recording() && lam__needs_grad(x)) {
        clamp_ctx *c = malloc(sizeof *c);
        if (c == NULL) {
            st = lam__error(LAM_ERR_OUT_OF_MEMORY, "%s: Out of memory recording the op", fn);
        } else {
            *c = (clamp_ctx){low, high};
            st = lam__record_closure(in, 1, &o, (lam__closure){clamp_backward, c, free});
        }
        if (st != LAM_OK) {
            lam_tensor_release(o);
            o = NULL;
        }
    }
    *out = o;
    return st;
}

lam_status lam_op_cast(const lam_tensor *x, lam_dtype dtype, lam_tensor **out) {
    const char *fn = "lam_op_cast";
    if (out == NULL || x == NULL) {
        if (out != NULL) {
            *out = NULL;
        }
        return bad(fn, "NULL tensor or out");
    }
    *out = NULL;
    if (dtype != LAM_DTYPE_F32 && dtype != LAM_DTYPE_I32 && dtype != LAM_DTYPE_I64 &&
        dtype != LAM_DTYPE_U8) {
        return lam__error(LAM_ERR_DTYPE,
                          "%s: Unsupported dtype %s, casts go between float32, "
                          "int32, int64 and uint8",
                          fn, lam__dtype_name(dtype));
    }
    if (x->dtype == dtype) {
        return lam_op_copy(x, out);
    }
    lam_tensor *in[1] = {(lam_tensor *)x};
    return elementwise(fn, LAM_OP_CAST, in, 1, dtype, NULL, out);
}
