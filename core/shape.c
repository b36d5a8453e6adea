/* Shapes: the public helpers, the checked element count, the one formatter ("(3,)" for 1-D,
 * "None" for an unknown dim). */
#include "shape.h"
#include "error.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* Multiplies the running bound by d, zero dims left out (they make the count 0 but not the
 * strides); false beyond LAM__MAX_NUMEL. */
bool lam__shape_bound_mul(int64_t *bound, int64_t d) {
    if (d == 0) {
        return true;
    }
    if (*bound > LAM__MAX_NUMEL / d) {
        return false;
    }
    *bound *= d;
    return true;
}

lam_status lam__shape_numel(const char *subject, const lam_shape *shape, int64_t *out) {
    *out = 0;
    if (shape == NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "%s: Invalid argument, shape is NULL", subject);
    }
    if (shape->ndim > LAM_MAX_DIMS) {
        return lam__error(LAM_ERR_SHAPE, "%s: Too many dims, %u given, at most %d", subject,
                          shape->ndim, LAM_MAX_DIMS);
    }
    int64_t n = 1, bound = 1;
    char b[160];
    for (uint32_t i = 0; i < shape->ndim; i++) {
        if (shape->dims[i] < 0) {
            return lam__error(LAM_ERR_SHAPE, "%s: Unknown dimension, shape %s has dim %u unknown",
                              subject, lam_shape_format(shape, b, sizeof b), i);
        }
        if (!lam__shape_bound_mul(&bound, shape->dims[i])) {
            return lam__error(LAM_ERR_SHAPE, "%s: Shape too large, %s has more than 2^60 elements",
                              subject, lam_shape_format(shape, b, sizeof b));
        }
        n *= shape->dims[i]; /* |n| <= bound: cannot overflow */
    }
    *out = n;
    return LAM_OK;
}

lam_status lam_shape_init(lam_shape *shape, uint32_t ndim, const int64_t *dims) {
    if (shape == NULL || (ndim > 0 && dims == NULL)) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "lam_shape_init: Invalid argument, NULL %s",
                          shape == NULL ? "shape" : "dims");
    }
    if (ndim > LAM_MAX_DIMS) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "lam_shape_init: Too many dims, %u given, at most %d", ndim,
                          LAM_MAX_DIMS);
    }
    memset(shape, 0, sizeof *shape);
    shape->ndim = ndim;
    for (uint32_t i = 0; i < ndim; i++) {
        shape->dims[i] = dims[i];
    }
    return LAM_OK;
}

int64_t lam_shape_numel(const lam_shape *shape) {
    if (shape == NULL) {
        return 0;
    }
    if (shape->ndim > LAM_MAX_DIMS) {
        return -1;
    }
    int64_t n = 1, bound = 1;
    for (uint32_t i = 0; i < shape->ndim; i++) {
        if (shape->dims[i] < 0 || !lam__shape_bound_mul(&bound, shape->dims[i])) {
            return -1;
        }
        n *= shape->dims[i];
    }
    return n;
}

char *lam_shape_format(const lam_shape *shape, char *buf, size_t cap) {
    if (buf == NULL || cap == 0) {
        return buf;
    }
    size_t len = 0;
    buf[0] = '\0';
#define PUT(...)                                                                                   \
    do {                                                                                           \
        if (len < cap) {                                                                           \
            int w_ = snprintf(buf + len, cap - len, __VA_ARGS__);                                  \
            len += w_ > 0 ? (size_t)w_ : 0;                                                        \
        }                                                                                          \
    } while (0)
    PUT("(");
    uint32_t nd = shape ? shape->ndim : 0;
    for (uint32_t i = 0; i < nd && i < LAM_MAX_DIMS; i++) {
        if (shape->dims[i] < 0) {
            PUT("%sNone", i ? ", " : "");
        } else {
            PUT("%s%lld", i ? ", " : "", (long long)shape->dims[i]);
        }
    }
    PUT(nd == 1 ? ",)" : ")");
#undef PUT
    return buf;
}

int lam_shape_equal(const lam_shape *a, const lam_shape *b) {
    if (a == NULL || b == NULL || a->ndim != b->ndim || a->ndim > LAM_MAX_DIMS) {
        return 0;
    }
    for (uint32_t i = 0; i < a->ndim; i++) {
        if (a->dims[i] != b->dims[i]) {
            return 0;
        }
    }
    return 1;
}

bool lam__shape_known(const lam_shape *s) {
    for (uint32_t i = 0; i < s->ndim; i++) {
        if (s->dims[i] < 0) {
            return false;
        }
    }
    return true;
}

const char *lam__dtype_name(lam_dtype dtype) {
    switch (dtype) {
    case LAM_DTYPE_F32:
        return "float32";
    case LAM_DTYPE_F16:
        return "float16";
    case LAM_DTYPE_BF16:
        return "bfloat16";
    case LAM_DTYPE_F64:
        return "float64";
    case LAM_DTYPE_I32:
        return "int32";
    case LAM_DTYPE_I64:
        return "int64";
    case LAM_DTYPE_U8:
        return "uint8";
    default:
        return "invalid dtype";
    }
}
