/*
 * Everyday ops made of the basic ones (lamina.h): the L2 norm (square, sum, sqrt, guarded by
 * where when recorded so that its gradient at 0 is 0), take (a
 * reshape and gather_rows), and the index-free constructors one_hot and arange (computed on the
 * host, uploaded). Every backend runs them as it runs their parts, and the differentiable ones
 * get their gradients from their parts' rules.
 */
#include "error.h"
#include "ops.h"
#include "shape.h"
#include "tape.h"
#include "tensor.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static lam_status null_out(const char *fn, lam_tensor **out) {
    if (out == NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "%s: Invalid argument, out is NULL", fn);
    }
    *out = NULL;
    return LAM_OK;
}

/*
 * sqrt(s) for a recorded norm, with gradient 0 where s is 0 (PyTorch's norm gradient there)
 * instead of sqrt's 1 / (2 sqrt(0)) times square's 2x = 0, which is NaN:
 * where(s > 0, sqrt(where(s > 0, s, 1)), 0). The inner where gives sqrt a finite operand, the
 * outer one passes no gradient to it where s is 0.
 */
static lam_status sqrt_zero_grad_at_zero(lam_tensor *s, lam_tensor **out) {
    lam_ctx *ctx = lam_tensor_ctx(s);
    const lam_shape *shape = lam_tensor_shape(s);
    lam_tensor *zero = NULL, *one = NULL, *pos = NULL, *safe = NULL, *root = NULL;
    lam_status st = lam_tensor_full(ctx, shape, 0.0f, &zero);
    if (st == LAM_OK) {
        st = lam_tensor_full(ctx, shape, 1.0f, &one);
    }
    if (st == LAM_OK) {
        st = lam_op_greater(s, zero, &pos);
    }
    if (st == LAM_OK) {
        st = lam_op_where(pos, s, one, &safe);
    }
    if (st == LAM_OK) {
        st = lam_op_sqrt(safe, &root);
    }
    if (st == LAM_OK) {
        st = lam_op_where(pos, root, zero, out);
    }
    lam_tensor *all[] = {zero, one, pos, safe, root};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        lam_tensor_release(all[i]);
    }
    return st;
}

lam_status lam_op_norm(const lam_tensor *x, const int32_t *axes, uint32_t n_axes, int32_t keepdims,
                       lam_tensor **out) {
    lam_status st = null_out("norm", out);
    if (st != LAM_OK) {
        return st;
    }
    lam_tensor *sq = NULL, *sum = NULL;
    st = lam_op_square(x, &sq);
    if (st == LAM_OK) {
        st = lam_op_sum(sq, axes, n_axes, keepdims, &sum);
    }
    /* The guarded square root only when a gradient will flow; the value is the same. */
    if (st == LAM_OK && lam__recording() && lam__needs_grad(sum)) {
        st = sqrt_zero_grad_at_zero(sum, out);
    } else if (st == LAM_OK) {
        st = lam_op_sqrt(sum, out);
    }
    lam_tensor_release(sq);
    lam_tensor_release(sum);
    return st == LAM_OK ? st : lam__error_prefix(st, "norm");
}

static bool is_index(lam_dtype d) {
    return d == LAM_DTYPE_I32 || d == LAM_DTYPE_I64;
}

lam_status lam_op_take(const lam_tensor *x, const lam_tensor *indices, lam_tensor **out) {
    lam_status st = null_out("take", out);
    if (st != LAM_OK) {
        return st;
    }
    if (x == NULL || indices == NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "take: Invalid argument, a tensor is NULL");
    }
    const lam_shape *xs = lam_tensor_shape(x), *is = lam_tensor_shape(indices);
    if (xs->ndim == 0) {
        return lam__error(LAM_ERR_SHAPE, "take: Shape (), expected at least one dimension");
    }
    if (is->ndim + xs->ndim - 1 > LAM_MAX_DIMS) {
        return lam__error(LAM_ERR_SHAPE,
                          "take: Shape too large, %u index dims and %u taken dims exceed %d",
                          (unsigned)is->ndim, (unsigned)(xs->ndim - 1), LAM_MAX_DIMS);
    }
    int64_t rest = 1;
    for (uint32_t i = 1; i < xs->ndim; i++) {
        rest *= xs->dims[i];
    }
    lam_shape table = {.ndim = 2, .dims = {xs->dims[0], rest}}, os = *is;
    for (uint32_t i = 1; i < xs->ndim; i++) {
        os.dims[os.ndim++] = xs->dims[i];
    }
    lam_tensor *t = NULL, *rows = NULL;
    st = lam_tensor_reshape((lam_tensor *)x, &table, &t);
    if (st == LAM_OK) {
        st = lam_op_gather_rows(t, indices, &rows);
    }
    if (st == LAM_OK) {
        st = lam_tensor_reshape(rows, &os, out);
    }
    lam_tensor_release(t);
    lam_tensor_release(rows);
    return st;
}

/* The indices as int64 on the host (*out: a new array of numel entries). */
static lam_status host_indices(const char *fn, const lam_tensor *indices, int64_t **out) {
    int64_t n = lam_tensor_numel(indices);
    lam_dtype d = lam_tensor_dtype(indices);
    size_t es = d == LAM_DTYPE_I64 ? 8 : 4;
    int64_t *v = malloc((size_t)(n > 0 ? n : 1) * sizeof *v);
    void *raw = malloc((size_t)(n > 0 ? n : 1) * es);
    lam_status st = v == NULL || raw == NULL
                        ? lam__error(LAM_ERR_OUT_OF_MEMORY, "%s: Out of memory", fn)
                        : lam_tensor_read_bytes(indices, raw, (size_t)n * es);
    for (int64_t i = 0; st == LAM_OK && i < n; i++) {
        if (d == LAM_DTYPE_I64) {
            v[i] = ((const int64_t *)raw)[i];
        } else if (d == LAM_DTYPE_I32) {
            v[i] = ((const int32_t *)raw)[i];
        } else {
            float f = ((const float *)raw)[i];
            if (!(f == floorf(f) && fabsf(f) < 9.0e15f)) {
                st = lam__error(LAM_ERR_INVALID_ARGUMENT,
                                "%s: Invalid index, element %lld is %g, not an integer", fn,
                                (long long)i, (double)f);
            }
            v[i] = (int64_t)f;
        }
    }
    free(raw);
    if (st != LAM_OK) {
        free(v);
        return st;
    }
    *out = v;
    return LAM_OK;
}

lam_status lam_op_one_hot(const lam_tensor *indices, int64_t depth, lam_tensor **out) {
    lam_status st = null_out("one_hot", out);
    if (st != LAM_OK) {
        return st;
    }
    if (indices == NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "one_hot: Invalid argument, indices is NULL");
    }
    lam_dtype d = lam_tensor_dtype(indices);
    if (!is_index(d) && d != LAM_DTYPE_F32) {
        return lam__error(LAM_ERR_DTYPE,
                          "one_hot: Dtype mismatch, indices are %s, expected int32, int64 or "
                          "float32",
                          lam__dtype_name(d));
    }
    const lam_shape *is = lam_tensor_shape(indices);
    if (depth <= 0 || is->ndim >= LAM_MAX_DIMS) {
        return lam__error(depth <= 0 ? LAM_ERR_INVALID_ARGUMENT : LAM_ERR_SHAPE,
                          "one_hot: Invalid %s, depth %lld with %u index dims",
                          depth <= 0 ? "depth" : "shape", (long long)depth, (unsigned)is->ndim);
    }
    lam_shape os = *is;
    os.dims[os.ndim++] = depth;
    int64_t total;
    st = lam__shape_numel("one_hot", &os, &total);
    if (st != LAM_OK) {
        return st;
    }
    int64_t n = lam_tensor_numel(indices);
    int64_t *idx = NULL;
    st = host_indices("one_hot", indices, &idx);
    if (st != LAM_OK) {
        return st;
    }
    float *h = calloc((size_t)(total > 0 ? total : 1), sizeof *h);
    if (h == NULL) {
        free(idx);
        return lam__error(LAM_ERR_OUT_OF_MEMORY, "one_hot: Out of memory, %lld elements",
                          (long long)total);
    }
    for (int64_t i = 0; st == LAM_OK && i < n; i++) {
        if (idx[i] < 0 || idx[i] >= depth) {
            st = lam__error(LAM_ERR_INVALID_ARGUMENT,
                            "one_hot: Invalid index, element %lld is %lld, outside [0, %lld)",
                            (long long)i, (long long)idx[i], (long long)depth);
        } else {
            h[i * depth + idx[i]] = 1.0f;
        }
    }
    if (st == LAM_OK) {
        st = lam_tensor_from_data(lam_tensor_ctx(indices), &os, h, (size_t)total, out);
    }
    free(h);
    free(idx);
    return st;
}

lam_status lam_op_arange(lam_ctx *ctx, double start, double stop, double step, lam_tensor **out) {
    lam_status st = null_out("arange", out);
    if (st != LAM_OK) {
        return st;
    }
    if (step == 0 || !isfinite(start) || !isfinite(stop) || !isfinite(step)) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "arange: Invalid argument, start %g, stop %g, step %g (finite, step "
                          "not 0)",
                          start, stop, step);
    }
    double count = ceil((stop - start) / step);
    if (count > 1e9) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "arange: Invalid argument, %g elements (at most 1e9)", count);
    }
    int64_t n = count > 0 ? (int64_t)count : 0;
    float *h = malloc((size_t)(n > 0 ? n : 1) * sizeof *h);
    if (h == NULL) {
        return lam__error(LAM_ERR_OUT_OF_MEMORY, "arange: Out of memory, %lld elements",
                          (long long)n);
    }
    for (int64_t i = 0; i < n; i++) {
        h[i] = (float)(start + (double)i * step);
    }
    lam_shape s = {.ndim = 1, .dims = {n}};
    st = lam_tensor_from_data(ctx, &s, h, (size_t)n, out);
    free(h);
    return st;
}
