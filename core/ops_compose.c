/*
 * Everyday ops made of the basic ones (lamina.h): the L2 norm (square, sum, sqrt; when recorded
 * the square root is guarded by where so that its gradient at 0 is 0), take (a reshape and
 * gather_rows), one_hot (a gather and a comparison on the indices' device) and arange
 * (computed on the host, uploaded). Every backend runs them as it runs their parts, and the
 * differentiable ones get their gradients from their parts' rules.
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

/*
 * The gather refused an index (a synchronous backend): only on this error path are the indices
 * read, to name the first one outside [0, depth) as "one_hot: Invalid index, element i is v,
 * outside [0, depth)". Another error, or one the read cannot explain, is returned prefixed.
 */
static lam_status index_error(lam_status st, const lam_tensor *idx, int64_t depth) {
    if (st != LAM_ERR_INVALID_ARGUMENT) {
        return lam__error_prefix(st, "one_hot");
    }
    int64_t n = lam_tensor_numel(idx);
    bool wide = lam_tensor_dtype(idx) == LAM_DTYPE_I64;
    size_t es = wide ? sizeof(int64_t) : sizeof(int32_t);
    void *raw = malloc((size_t)(n > 0 ? n : 1) * es);
    int64_t *v = malloc((size_t)(n > 0 ? n : 1) * sizeof *v);
    lam_status rs = raw == NULL || v == NULL ? LAM_ERR_OUT_OF_MEMORY
                                             : lam_tensor_read_bytes(idx, raw, (size_t)n * es);
    for (int64_t i = 0; rs == LAM_OK && i < n; i++) {
        v[i] = wide ? ((const int64_t *)raw)[i] : ((const int32_t *)raw)[i];
    }
    free(raw);
    for (int64_t i = 0; rs == LAM_OK && i < n; i++) {
        if (v[i] < 0 || v[i] >= depth) {
            long long bad = (long long)v[i];
            free(v);
            return lam__error(LAM_ERR_INVALID_ARGUMENT,
                              "one_hot: Invalid index, element %lld is %lld, outside [0, %lld)",
                              (long long)i, bad, (long long)depth);
        }
    }
    free(v);
    return lam__error_prefix(st, "one_hot");
}

/* The largest depth whose classes 0..depth-1 float32 holds exactly (they are compared as
 * floats). */
#define ONE_HOT_MAX_DEPTH (1LL << 24)

/*
 * On the indices' device, nothing read back: a gather of the (integer) indices from the column
 * 0..depth-1 gives each index as a float, shape S + (1,), and checks that it is in [0, depth)
 * (the gather names the position and the value; an asynchronous backend reports it when a
 * result is read). That column minus the row 0..depth-1, broadcast to S + (depth,), is 0
 * exactly at the index: equal to zeros is the one-hot row.
 */
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
    if (depth > ONE_HOT_MAX_DEPTH) {
        return lam__error(
            LAM_ERR_INVALID_ARGUMENT,
            "one_hot: Invalid depth, depth %lld is above %lld (2^24, the most classes "
            "float32 counts exactly)",
            (long long)depth, ONE_HOT_MAX_DEPTH);
    }
    lam_shape os = *is, col_shape = {.ndim = 2, .dims = {depth, 1}};
    os.dims[os.ndim++] = depth;
    int64_t total;
    st = lam__shape_numel("one_hot", &os, &total);
    if (st != LAM_OK) {
        return st;
    }
    lam_ctx *ctx = lam_tensor_ctx(indices);
    lam_tensor *idx = NULL, *row = NULL, *col = NULL, *picked = NULL, *diff = NULL, *zero = NULL;
    int was = lam_autograd_record_begin(0); /* not differentiable */
    if (d == LAM_DTYPE_F32) {               /* truncated toward zero, as Gluon's cast to int */
        st = lam_op_cast(indices, LAM_DTYPE_I32, &idx);
    } else {
        idx = lam_tensor_retain((lam_tensor *)indices);
    }
    if (st == LAM_OK) {
        st = lam_op_arange(ctx, 0, (double)depth, 1, &row);
    }
    if (st == LAM_OK) {
        st = lam_tensor_reshape(row, &col_shape, &col);
    }
    if (st == LAM_OK && (st = lam_op_gather_rows(col, idx, &picked)) != LAM_OK) {
        st = index_error(st, idx, depth);
    }
    if (st == LAM_OK) {
        st = lam_op_sub(picked, row, &diff);
    }
    if (st == LAM_OK) {
        st = lam_tensor_full(ctx, &os, 0.0f, &zero);
    }
    if (st == LAM_OK) {
        st = lam_op_equal(diff, zero, out);
    }
    lam_autograd_record_end(was);
    lam_tensor *all[] = {idx, row, col, picked, diff, zero};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        lam_tensor_release(all[i]);
    }
    return st == LAM_OK || strncmp(lam_last_error(), "one_hot", 7) == 0
               ? st
               : lam__error_prefix(st, "one_hot");
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
