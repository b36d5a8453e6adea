/*
 * Layer normalization over the last axis (LAYER_NORM and LAYER_NORM_BACKWARD, ABI 2.2): one
 * backend op each way and one tape node, where the composition of the basic ops (MOMENTS,
 * broadcast elementwise ops, reductions) makes ~7 passes forward and ~15 backward. When the
 * tensors' backend says no to the fused op (a backend built before 2.2, or one without it),
 * the same values are composed of those ops on that backend (no staging through the CPU), still
 * as one node, so every backend runs it. Both ways compute rstd = 1 / sqrtf(var + eps) and
 * y = ((x - mean) * rstd) * gamma + beta in that order.
 */
#include "ops_nn.h"
#include "backward.h"
#include "error.h"
#include "execute.h"
#include "shape.h"
#include "tape.h"
#include "tensor.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* The problem as a matrix: m rows of n elements (x's last axis). */
typedef struct ln_dims {
    int64_t m, n;
} ln_dims;

static void view_2d(const lam_tensor *t, int64_t m, int64_t n, lam_tensor_view *v) {
    lam__tensor_view(t, v);
    memset(v->dims, 0, sizeof v->dims);
    memset(v->strides, 0, sizeof v->strides);
    const int64_t es = (int64_t)lam_dtype_size(t->dtype);
    v->ndim = 2;
    v->dims[0] = m;
    v->dims[1] = n;
    v->strides[0] = n * es;
    v->strides[1] = es;
}

static void view_1d(const lam_tensor *t, int64_t n, lam_tensor_view *v) {
    lam__tensor_view(t, v);
    memset(v->dims, 0, sizeof v->dims);
    memset(v->strides, 0, sizeof v->strides);
    v->ndim = 1;
    v->dims[0] = n;
    v->strides[0] = (int64_t)lam_dtype_size(t->dtype);
}

static lam_status vec_check(const char *fn, const char *what, const lam_tensor *x,
                            const lam_tensor *v, int64_t n) {
    if (v == NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "%s: Invalid argument, %s is NULL", fn, what);
    }
    lam_status st = lam__same_ctx(fn, x, v);
    if (st != LAM_OK) {
        return st;
    }
    if (v->dtype != LAM_DTYPE_F32) {
        return lam__error(LAM_ERR_DTYPE, "%s: Unsupported dtype %s, %s must be float32", fn,
                          lam__dtype_name(v->dtype), what);
    }
    if (v->shape.ndim != 1 || v->shape.dims[0] != n) {
        char b[160];
        return lam__error(LAM_ERR_SHAPE, "%s: Shape mismatch, %s is %s, x's last axis has %lld", fn,
                          what, lam_shape_format(&v->shape, b, sizeof b), (long long)n);
    }
    return LAM_OK;
}

/* x float32 with at least one axis; its (m, n). */
static lam_status x_check(const char *fn, const lam_tensor *x, ln_dims *d) {
    if (x == NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "%s: Invalid argument, x is NULL", fn);
    }
    if (lam_tensor_ctx(x) == NULL) {
        return lam__error(LAM_ERR_STATE, "%s: Runtime shut down, the tensor's data was freed", fn);
    }
    if (x->dtype != LAM_DTYPE_F32) {
        return lam__error(LAM_ERR_DTYPE, "%s: Unsupported dtype %s, x must be float32", fn,
                          lam__dtype_name(x->dtype));
    }
    if (x->shape.ndim < 1) {
        return lam__error(LAM_ERR_SHAPE, "%s: Shape mismatch, x has no axis to normalize over", fn);
    }
    d->n = x->shape.dims[x->shape.ndim - 1];
    d->m = 1;
    for (uint32_t i = 0; i + 1 < x->shape.ndim; i++) {
        d->m *= x->shape.dims[i];
    }
    return LAM_OK;
}

/* ---- the composition of basic ops (a backend without the fused op) ---- */

/* Into new tensors: y (x's shape), mean (m) and rstd (m). Not recorded. */
static lam_status compose_forward(const lam_tensor *x, const lam_tensor *gamma,
                                  const lam_tensor *beta, double eps, ln_dims d, lam_tensor **y,
                                  lam_tensor **mean, lam_tensor **rstd) {
    enum { X2, M, V, VE, SD, R, XC, XH, XG, Y2, COUNT };
    lam_tensor *t[COUNT] = {NULL};
    const lam_shape s2 = {.ndim = 2, .dims = {d.m, d.n}};
    const lam_shape s1 = {.ndim = 1, .dims = {d.m}};
    const int32_t axis = 1;
    lam_status st = lam_tensor_reshape((lam_tensor *)x, &s2, &t[X2]);
    if (st == LAM_OK) {
        st = lam__moments("layer_norm", t[X2], &axis, 1, 1, &t[M], &t[V]);
    }
    if (st == LAM_OK) {
        st = lam_op_add_scalar(t[V], (float)eps, &t[VE]);
    }
    if (st == LAM_OK) {
        st = lam_op_sqrt(t[VE], &t[SD]);
    }
    if (st == LAM_OK) {
        st = lam_op_rdiv_scalar(t[SD], 1.0f, &t[R]);
    }
    if (st == LAM_OK) {
        st = lam_op_sub(t[X2], t[M], &t[XC]);
    }
    if (st == LAM_OK) {
        st = lam_op_mul(t[XC], t[R], &t[XH]);
    }
    if (st == LAM_OK) {
        st = lam_op_mul(t[XH], gamma, &t[XG]);
    }
    if (st == LAM_OK) {
        st = lam_op_add(t[XG], beta, &t[Y2]);
    }
    if (st == LAM_OK) {
        st = lam_tensor_reshape(t[Y2], &x->shape, y);
    }
    if (st == LAM_OK) {
        st = lam_tensor_reshape(t[M], &s1, mean);
    }
    if (st == LAM_OK) {
        st = lam_tensor_reshape(t[R], &s1, rstd);
    }
    for (int i = 0; i < COUNT; i++) {
        lam_tensor_release(t[i]);
    }
    return st;
}

/*
 * dx (x's shape) = rstd * (g - mean_n(g) - xh * mean_n(g * xh)) with g = dy * gamma and
 * xh = (x - mean) * rstd; dgamma = sum over rows of dy * xh, dbeta of dy (when wanted).
 */
static lam_status compose_backward(const lam_tensor *dy, const lam_tensor *x,
                                   const lam_tensor *mean, const lam_tensor *rstd,
                                   const lam_tensor *gamma, ln_dims d, lam_tensor **dx,
                                   lam_tensor **dgamma, lam_tensor **dbeta) {
    enum { DY, X2, M, R, G, XC, XH, A, GX, B, XB, GA, GAB, DX2, DYX, COUNT };
    lam_tensor *t[COUNT] = {NULL};
    const lam_shape s2 = {.ndim = 2, .dims = {d.m, d.n}};
    const lam_shape col = {.ndim = 2, .dims = {d.m, 1}};
    const int32_t axis1 = 1, axis0 = 0;
    lam_status st = lam_tensor_reshape((lam_tensor *)dy, &s2, &t[DY]);
    if (st == LAM_OK) {
        st = lam_tensor_reshape((lam_tensor *)x, &s2, &t[X2]);
    }
    if (st == LAM_OK) {
        st = lam_tensor_reshape((lam_tensor *)mean, &col, &t[M]);
    }
    if (st == LAM_OK) {
        st = lam_tensor_reshape((lam_tensor *)rstd, &col, &t[R]);
    }
    if (st == LAM_OK) {
        st = lam_op_mul(t[DY], gamma, &t[G]);
    }
    if (st == LAM_OK) {
        st = lam_op_sub(t[X2], t[M], &t[XC]);
    }
    if (st == LAM_OK) {
        st = lam_op_mul(t[XC], t[R], &t[XH]);
    }
    if (st == LAM_OK) {
        st = lam_op_mean(t[G], &axis1, 1, 1, &t[A]);
    }
    if (st == LAM_OK) {
        st = lam_op_mul(t[G], t[XH], &t[GX]);
    }
    if (st == LAM_OK) {
        st = lam_op_mean(t[GX], &axis1, 1, 1, &t[B]);
    }
    if (st == LAM_OK) {
        st = lam_op_mul(t[XH], t[B], &t[XB]);
    }
    if (st == LAM_OK) {
        st = lam_op_sub(t[G], t[A], &t[GA]);
    }
    if (st == LAM_OK) {
        st = lam_op_sub(t[GA], t[XB], &t[GAB]);
    }
    if (st == LAM_OK) {
        st = lam_op_mul(t[GAB], t[R], &t[DX2]);
    }
    if (st == LAM_OK) {
        st = lam_tensor_reshape(t[DX2], &x->shape, dx);
    }
    if (st == LAM_OK && dgamma != NULL) {
        st = lam_op_mul(t[DY], t[XH], &t[DYX]);
        if (st == LAM_OK) {
            st = lam_op_sum(t[DYX], &axis0, 1, 0, dgamma);
        }
        if (st == LAM_OK) {
            st = lam_op_sum(t[DY], &axis0, 1, 0, dbeta);
        }
    }
    for (int i = 0; i < COUNT; i++) {
        lam_tensor_release(t[i]);
    }
    return st;
}

/* ---- the fused op, or the composition where the backend says no ---- */

static void release3(lam_tensor **a, lam_tensor **b, lam_tensor **c) {
    lam_tensor_release(*a);
    lam_tensor_release(*b);
    lam_tensor_release(*c);
    *a = *b = *c = NULL;
}

/* y, mean, rstd of x (not recorded); operands checked. */
static lam_status forward_run(const lam_tensor *x, const lam_tensor *gamma, const lam_tensor *beta,
                              double eps, ln_dims d, lam_tensor **y, lam_tensor **mean,
                              lam_tensor **rstd) {
    lam_ctx *ctx = lam_tensor_ctx(x);
    const lam_shape s1 = {.ndim = 1, .dims = {d.m}};
    lam_status st = lam__tensor_alloc(ctx, &x->shape, y);
    if (st == LAM_OK) {
        st = lam__tensor_alloc(ctx, &s1, mean);
    }
    if (st == LAM_OK) {
        st = lam__tensor_alloc(ctx, &s1, rstd);
    }
    if (st != LAM_OK || d.m == 0) {
        if (st != LAM_OK) {
            release3(y, mean, rstd);
        }
        return st;
    }
    if (d.n == 0) { /* no elements per row: NaN statistics, an empty y */
        st = lam_op_fill(*mean, NAN);
        if (st == LAM_OK) {
            st = lam_op_fill(*rstd, NAN);
        }
        if (st != LAM_OK) {
            release3(y, mean, rstd);
        }
        return st;
    }
    lam_tensor_view vi[3], vo[3];
    view_2d(x, d.m, d.n, &vi[0]);
    view_1d(gamma, d.n, &vi[1]);
    view_1d(beta, d.n, &vi[2]);
    view_2d(*y, d.m, d.n, &vo[0]);
    view_1d(*mean, d.m, &vo[1]);
    view_1d(*rstd, d.m, &vo[2]);
    lam_scalar_params p = LAM_SCALAR_PARAMS_INIT;
    p.a = eps;
    if (lam__supports_ops(ctx, LAM_OP_LAYER_NORM, vi, 3, vo, 3, &p, 0)) {
        st = lam__execute_ops(ctx, LAM_OP_LAYER_NORM, vi, 3, vo, 3, &p, 0);
        if (st != LAM_OK) {
            release3(y, mean, rstd);
        }
        return st;
    }
    release3(y, mean, rstd);
    int was = lam_autograd_record_begin(0);
    st = compose_forward(x, gamma, beta, eps, d, y, mean, rstd);
    lam_autograd_record_end(was);
    return st;
}

/* dx and, when dgamma != NULL, dgamma and dbeta (not recorded); operands checked. */
static lam_status backward_run(const lam_tensor *dy, const lam_tensor *x, const lam_tensor *mean,
                               const lam_tensor *rstd, const lam_tensor *gamma, ln_dims d,
                               lam_tensor **dx, lam_tensor **dgamma, lam_tensor **dbeta) {
    lam_ctx *ctx = lam_tensor_ctx(x);
    const lam_shape sn = {.ndim = 1, .dims = {d.n}};
    const uint32_t n_out = dgamma != NULL ? 3 : 1;
    lam_tensor *dummy[2] = {NULL, NULL};
    lam_tensor **dg = dgamma != NULL ? dgamma : &dummy[0];
    lam_tensor **db = dbeta != NULL ? dbeta : &dummy[1];
    lam_status st = lam__tensor_alloc(ctx, &x->shape, dx);
    if (st == LAM_OK && n_out == 3) {
        st = lam__tensor_alloc(ctx, &sn, dg);
        if (st == LAM_OK) {
            st = lam__tensor_alloc(ctx, &sn, db);
        }
    }
    if (st == LAM_OK && (d.m == 0 || d.n == 0)) { /* nothing flows: zeros (dx is empty) */
        if (n_out == 3 && d.n > 0) {
            st = lam_op_fill(*dg, 0.0f);
            if (st == LAM_OK) {
                st = lam_op_fill(*db, 0.0f);
            }
        }
        if (st != LAM_OK) {
            release3(dx, dg, db);
        }
        return st;
    }
    if (st != LAM_OK) {
        release3(dx, dg, db);
        return st;
    }
    lam_tensor_view vi[5], vo[3];
    view_2d(dy, d.m, d.n, &vi[0]);
    view_2d(x, d.m, d.n, &vi[1]);
    view_1d(mean, d.m, &vi[2]);
    view_1d(rstd, d.m, &vi[3]);
    view_1d(gamma, d.n, &vi[4]);
    view_2d(*dx, d.m, d.n, &vo[0]);
    if (n_out == 3) {
        view_1d(*dg, d.n, &vo[1]);
        view_1d(*db, d.n, &vo[2]);
    }
    lam_scalar_params p = LAM_SCALAR_PARAMS_INIT;
    if (lam__supports_ops(ctx, LAM_OP_LAYER_NORM_BACKWARD, vi, 5, vo, n_out, &p, 0)) {
        st = lam__execute_ops(ctx, LAM_OP_LAYER_NORM_BACKWARD, vi, 5, vo, n_out, &p, 0);
        if (st != LAM_OK) {
            release3(dx, dg, db);
        }
        return st;
    }
    release3(dx, dg, db);
    int was = lam_autograd_record_begin(0);
    st = compose_backward(dy, x, mean, rstd, gamma, d, dx, n_out == 3 ? dg : NULL,
                          n_out == 3 ? db : NULL);
    lam_autograd_record_end(was);
    return st;
}

/* ---- autograd: one node with inputs x, gamma, beta ---- */

typedef struct ln_ctx {
    ln_dims d;
    lam_tensor *mean, *rstd; /* retained */
} ln_ctx;

static void ln_free(void *p) {
    ln_ctx *c = p;
    if (c != NULL) {
        lam_tensor_release(c->mean);
        lam_tensor_release(c->rstd);
        free(c);
    }
}

static lam_status ln_backward(void *p, const lam__node *n, lam_tensor *g) {
    const ln_ctx *c = p;
    const bool wx = lam__needs_grad(n->in[0]);
    const bool wp = lam__needs_grad(n->in[1]) || lam__needs_grad(n->in[2]);
    lam_tensor *dx = NULL, *dgamma = NULL, *dbeta = NULL;
    lam_status st = backward_run(g, n->in[0], c->mean, c->rstd, n->in[1], c->d, &dx,
                                 wp ? &dgamma : NULL, wp ? &dbeta : NULL);
    if (st == LAM_OK && wx) {
        st = lam__grad_accumulate(n->in[0], dx);
    }
    if (st == LAM_OK && wp && lam__needs_grad(n->in[1])) {
        st = lam__grad_accumulate(n->in[1], dgamma);
    }
    if (st == LAM_OK && wp && lam__needs_grad(n->in[2])) {
        st = lam__grad_accumulate(n->in[2], dbeta);
    }
    lam_tensor_release(dx);
    lam_tensor_release(dgamma);
    lam_tensor_release(dbeta);
    return st;
}

lam_status lam__layer_norm(const char *fn, const lam_tensor *x, const lam_tensor *gamma,
                           const lam_tensor *beta, double eps, lam_tensor **y, lam_tensor **mean,
                           lam_tensor **rstd) {
    if (y == NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "%s: Invalid argument, NULL output", fn);
    }
    *y = NULL;
    if (mean != NULL) {
        *mean = NULL;
    }
    if (rstd != NULL) {
        *rstd = NULL;
    }
    ln_dims d;
    lam_status st = x_check(fn, x, &d);
    if (st == LAM_OK) {
        st = vec_check(fn, "gamma", x, gamma, d.n);
    }
    if (st == LAM_OK) {
        st = vec_check(fn, "beta", x, beta, d.n);
    }
    if (st == LAM_OK && !(eps >= 0.0 && eps <= 1e30)) {
        st = lam__error(LAM_ERR_INVALID_ARGUMENT,
                        "%s: Invalid argument, eps %g (must be finite and >= 0)", fn, eps);
    }
    if (st != LAM_OK) {
        return st;
    }
    lam_tensor *o = NULL, *m = NULL, *r = NULL;
    st = forward_run(x, gamma, beta, eps, d, &o, &m, &r);
    if (st == LAM_OK && lam__recording() &&
        (lam__needs_grad(x) || lam__needs_grad(gamma) || lam__needs_grad(beta))) {
        ln_ctx *c = calloc(1, sizeof *c);
        if (c == NULL) {
            st = lam__error(LAM_ERR_OUT_OF_MEMORY, "%s: Out of memory", fn);
        } else {
            c->d = d;
            c->mean = lam_tensor_retain(m);
            c->rstd = lam_tensor_retain(r);
            lam_tensor *in[3] = {(lam_tensor *)x, (lam_tensor *)gamma, (lam_tensor *)beta};
            st = lam__record_closure(in, 3, &o, (lam__closure){ln_backward, c, ln_free});
        }
    }
    if (st == LAM_OK && mean != NULL) {
        *mean = lam_tensor_retain(m);
        *rstd = lam_tensor_retain(r);
    }
    lam_tensor_release(m);
    lam_tensor_release(r);
    if (st != LAM_OK) {
        lam_tensor_release(o);
        return st;
    }
    *y = o;
    return LAM_OK;
}

lam_status lam__layer_norm_backward(const char *fn, const lam_tensor *dy, const lam_tensor *x,
                                    const lam_tensor *mean, const lam_tensor *rstd,
                                    const lam_tensor *gamma, lam_tensor **dx, lam_tensor **dgamma,
                                    lam_tensor **dbeta) {
    if (dx == NULL || (dgamma == NULL) != (dbeta == NULL)) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "%s: Invalid argument, dx NULL, or only one of dgamma and dbeta", fn);
    }
    *dx = NULL;
    if (dgamma != NULL) {
        *dgamma = *dbeta = NULL;
    }
    ln_dims d;
    lam_status st = x_check(fn, x, &d);
    if (st == LAM_OK) {
        st = vec_check(fn, "gamma", x, gamma, d.n);
    }
    if (st == LAM_OK) {
        st = vec_check(fn, "mean", x, mean, d.m);
    }
    if (st == LAM_OK) {
        st = vec_check(fn, "rstd", x, rstd, d.m);
    }
    if (st == LAM_OK && dy == NULL) {
        st = lam__error(LAM_ERR_INVALID_ARGUMENT, "%s: Invalid argument, dy is NULL", fn);
    }
    if (st == LAM_OK) {
        st = lam__same_ctx(fn, x, dy);
    }
    if (st == LAM_OK && (dy->dtype != LAM_DTYPE_F32 || !lam_shape_equal(&dy->shape, &x->shape))) {
        char b1[160], b2[160];
        st = lam__error(LAM_ERR_SHAPE, "%s: Shape mismatch, dy is %s %s, x is float32 %s", fn,
                        lam__dtype_name(dy->dtype), lam_shape_format(&dy->shape, b1, sizeof b1),
                        lam_shape_format(&x->shape, b2, sizeof b2));
    }
    if (st == LAM_OK && lam__recording() &&
        (lam__needs_grad(dy) || lam__needs_grad(x) || lam__needs_grad(gamma) ||
         lam__needs_grad(mean) || lam__needs_grad(rstd))) {
        st = lam__error(LAM_ERR_UNSUPPORTED,
                        "%s: Unsupported, the gradient of layer_norm_backward is not "
                        "differentiable (record layer_norm instead)",
                        fn);
    }
    if (st != LAM_OK) {
        return st;
    }
    return backward_run(dy, x, mean, rstd, gamma, d, dx, dgamma, dbeta);
}

lam_status lam_op_layer_norm(const lam_tensor *x, const lam_tensor *gamma, const lam_tensor *beta,
                             float eps, lam_tensor **out) {
    const char *fn = "lam_op_layer_norm";
    if (out == NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "%s: Invalid argument, NULL output", fn);
    }
    *out = NULL;
    ln_dims d;
    lam_status st = x_check(fn, x, &d);
    if (st != LAM_OK) {
        return st;
    }
    /* No gamma: ones; no beta: zeros (constants, no gradient). */
    lam_tensor *g = NULL, *b = NULL;
    const lam_shape sn = {.ndim = 1, .dims = {d.n}};
    if (gamma == NULL) {
        st = lam_tensor_full(lam_tensor_ctx(x), &sn, 1.0f, &g);
    }
    if (st == LAM_OK && beta == NULL) {
        st = lam_tensor_full(lam_tensor_ctx(x), &sn, 0.0f, &b);
    }
    if (st == LAM_OK) {
        st = lam__layer_norm(fn, x, gamma != NULL ? gamma : g, beta != NULL ? beta : b, eps, out,
                             NULL, NULL);
    }
    lam_tensor_release(g);
    lam_tensor_release(b);
    return st;
}
