/*
 * New tensors with their values set: lam_tensor_full (a FILL op on the backend),
 * lam_tensor_create (zeros) and lam_tensor_create_dtype. Above tensor.c, which knows nothing of
 * ops, and execute.c.
 */
#include "tensor_new.h"
#include "error.h"
#include "execute.h"
#include "tensor.h"

#include <stdlib.h>

lam_status lam_tensor_full(lam_ctx *ctx, const lam_shape *shape, float value, lam_tensor **out) {
    if (out == NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "lam_tensor_full: Invalid argument, out is NULL");
    }
    *out = NULL;
    lam_status st = (ctx == NULL ? lam_ctx_default(&ctx) : LAM_OK);
    if (st != LAM_OK) {
        return st;
    }
    lam_tensor *t;
    st = lam__tensor_alloc(ctx, shape, &t);
    if (st != LAM_OK) {
        return st;
    }
    if (t->numel > 0) {
        lam_tensor_view v;
        lam__tensor_view(t, &v);
        double s[4] = {value, 0, 0, 0};
        st = lam__execute(ctx, LAM_OP_FILL, NULL, 0, &v, s, NULL);
        if (st != LAM_OK) {
            lam_tensor_release(t);
            return st;
        }
    }
    *out = t;
    return LAM_OK;
}

lam_status lam_tensor_create(lam_ctx *ctx, const lam_shape *shape, lam_tensor **out) {
    return lam_tensor_full(ctx, shape, 0.0f, out);
}

lam_status lam_tensor_create_dtype(lam_ctx *ctx, lam_dtype dtype, const lam_shape *shape,
                                   lam_tensor **out) {
    if (dtype == LAM_DTYPE_F32) {
        return lam_tensor_create(ctx, shape, out);
    }
    if (out == NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "lam_tensor_create_dtype: Invalid argument, out is NULL");
    }
    *out = NULL;
    lam_status st = (ctx == NULL ? lam_ctx_default(&ctx) : LAM_OK);
    if (st != LAM_OK) {
        return st;
    }
    lam_tensor *t;
    st = lam__tensor_alloc_dtype(ctx, dtype, shape, &t);
    if (st != LAM_OK) {
        return st;
    }
    size_t bytes = (size_t)t->numel * lam_dtype_size(dtype);
    if (bytes > 0) { /* zeros of any dtype are zero bytes */
        void *zero = calloc(1, bytes);
        st = zero ? lam_tensor_write_bytes(t, zero, bytes)
                  : lam__error(LAM_ERR_OUT_OF_MEMORY,
                               "lam_tensor_create_dtype: Out of memory, %zu bytes", bytes);
        free(zero);
        if (st != LAM_OK) {
            lam_tensor_release(t);
            return st;
        }
    }
    *out = t;
    return LAM_OK;
}
