/*
 * test_util.h - helpers shared by the core tests: tensors from reference arrays, comparisons
 * with a relative + absolute tolerance, and error-message checks.
 *
 * Every helper asserts (and so ends the test) on failure. Tensors live on the default context.
 */
#ifndef LAMINA_TESTS_CORE_TEST_UTIL_H
#define LAMINA_TESTS_CORE_TEST_UTIL_H

#include <criterion/criterion.h>

#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "lamina/lamina.h"
#include "ref/op_refs.h"

/* Tolerances |got - want| <= atol + rtol * |want|. */
#define TU_RTOL 1e-5
#define TU_ATOL 1e-5
/* exp, softmax and GEMMs with a longer inner dimension. */
#define TU_RTOL_LOOSE 1e-4
#define TU_ATOL_LOOSE 1e-4

/* Large enough for every output the tests read back. */
#define TU_MAX_ELEMS 8192

static float tu_buf[TU_MAX_ELEMS] REF_UNUSED;

/* A non-NULL pointer never returned by the library: an `out` preset to TU_POISON must come back
 * NULL from a failing call ("*out = NULL on failure"). Never dereferenced. */
static char tu_poison_byte REF_UNUSED;
#define TU_POISON ((lam_tensor *)(void *)&tu_poison_byte)

/* Suite teardown: ends the runtime so every test starts afresh and nothing is left to leak. */
static inline void tu_fini(void) {
    lam_shutdown();
}

/* The default context; the test fails if there is none. */
static inline lam_ctx *tu_ctx(void) {
    lam_ctx *ctx = NULL;
    lam_status st = lam_ctx_default(&ctx);
    cr_assert_eq(st, LAM_OK, "lam_ctx_default failed: %s (%s)", lam_status_string(st),
                 lam_last_error());
    cr_assert_not_null(ctx);
    return ctx;
}

/* A shape built by hand (independent of lam_shape_init). */
static inline lam_shape tu_shape(uint32_t ndim, const int64_t *dims) {
    lam_shape s;
    memset(&s, 0, sizeof s);
    s.ndim = ndim;
    for (uint32_t i = 0; i < ndim && i < LAM_MAX_DIMS; i++) {
        s.dims[i] = dims[i];
    }
    return s;
}

/* TU_SHAPE(2, 3) is the shape (2, 3); TU_SCALAR_SHAPE() is (). */
#define TU_NDIMS(...)     ((uint32_t)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)))
#define TU_SHAPE(...)     tu_shape(TU_NDIMS(__VA_ARGS__), (const int64_t[]){__VA_ARGS__})
#define TU_SCALAR_SHAPE() tu_shape(0, NULL)

/* A new tensor on the default context holding `count` floats. */
static inline lam_tensor *tu_tensor(lam_shape shape, const float *data, size_t count) {
    lam_tensor *t = NULL;
    lam_status st = lam_tensor_from_data(tu_ctx(), &shape, data, count, &t);
    cr_assert_eq(st, LAM_OK, "lam_tensor_from_data failed: %s (%s)", lam_status_string(st),
                 lam_last_error());
    cr_assert_not_null(t);
    return t;
}

static inline lam_tensor *tu_from_ref(const ref_array *r) {
    return tu_tensor(tu_shape(r->ndim, r->dims), r->data, r->count);
}

/* Reads t into a static buffer (valid until the next tu_read). */
static inline const float *tu_read(const lam_tensor *t) {
    int64_t n = lam_tensor_numel(t);
    cr_assert(n >= 0 && n <= TU_MAX_ELEMS, "tensor too large for the test buffer: %lld",
              (long long)n);
    lam_status st = lam_tensor_read(t, tu_buf, (size_t)n);
    cr_assert_eq(st, LAM_OK, "lam_tensor_read failed: %s (%s)", lam_status_string(st),
                 lam_last_error());
    return tu_buf;
}

static inline void tu_assert_shape(const lam_tensor *t, uint32_t ndim, const int64_t *dims,
                                   const char *what) {
    const lam_shape *s = lam_tensor_shape(t);
    char got[160];
    lam_shape want = tu_shape(ndim, dims);
    char wb[160];
    cr_assert_not_null(s, "%s: no shape", what);
    cr_assert(s->ndim == ndim && lam_shape_equal(s, &want), "%s: shape %s, expected %s", what,
              lam_shape_format(s, got, sizeof got), lam_shape_format(&want, wb, sizeof wb));
    int64_t numel = 1;
    for (uint32_t i = 0; i < ndim; i++) {
        numel *= dims[i];
    }
    cr_assert_eq(lam_tensor_numel(t), numel, "%s: numel %lld, expected %lld", what,
                 (long long)lam_tensor_numel(t), (long long)numel);
}

/* |got - want| <= atol + rtol * |want|; NaN never passes. */
static inline int tu_close(float got, float want, double rtol, double atol) {
    double g = (double)got, w = (double)want;
    return fabs(g - w) <= atol + rtol * fabs(w);
}

/* Asserts that t has want's shape and values within the tolerance. */
static inline void tu_assert_close(const lam_tensor *t, const ref_array *want, double rtol,
                                   double atol, const char *what) {
    cr_assert_not_null(t, "%s: no tensor", what);
    tu_assert_shape(t, want->ndim, want->dims, what);
    const float *got = tu_read(t);
    for (size_t i = 0; i < want->count; i++) {
        cr_assert(tu_close(got[i], want->data[i], rtol, atol),
                  "%s: element %zu is %.9g, expected %.9g (rtol %g, atol %g)", what, i,
                  (double)got[i], (double)want->data[i], rtol, atol);
    }
}

/* Asserts exact equality of shape and values (copies, fills, reshapes). */
static inline void tu_assert_exact(const lam_tensor *t, const ref_array *want, const char *what) {
    cr_assert_not_null(t, "%s: no tensor", what);
    tu_assert_shape(t, want->ndim, want->dims, what);
    const float *got = tu_read(t);
    for (size_t i = 0; i < want->count; i++) {
        cr_assert(got[i] == want->data[i], "%s: element %zu is %.9g, expected exactly %.9g", what,
                  i, (double)got[i], (double)want->data[i]);
    }
}

/* Asserts every element of t equals value exactly. */
static inline void tu_assert_all(const lam_tensor *t, float value, const char *what) {
    int64_t n = lam_tensor_numel(t);
    const float *got = tu_read(t);
    for (int64_t i = 0; i < n; i++) {
        cr_assert(got[i] == value, "%s: element %lld is %.9g, expected %.9g", what, (long long)i,
                  (double)got[i], (double)value);
    }
}

/* An op succeeded and gave a tensor on the default context with want's values. */
static inline void tu_assert_result(lam_status st, const lam_tensor *out, const ref_array *want,
                                    double rtol, double atol, const char *what) {
    cr_assert_eq(st, LAM_OK, "%s failed: %s (%s)", what, lam_status_string(st), lam_last_error());
    cr_assert_not_null(out, "%s: no output", what);
    cr_assert(lam_tensor_ctx(out) == tu_ctx(), "%s: output on another context", what);
    cr_assert_eq(lam_tensor_dtype(out), LAM_DTYPE_F32, "%s: dtype", what);
    tu_assert_close(out, want, rtol, atol, what);
}

/* Case-insensitive substring search. */
static inline int tu_contains(const char *hay, const char *needle) {
    if (hay == NULL || needle == NULL) {
        return 0;
    }
    size_t n = strlen(needle);
    for (const char *p = hay; *p != '\0'; p++) {
        size_t i = 0;
        while (i < n && p[i] != '\0' &&
               tolower((unsigned char)p[i]) == tolower((unsigned char)needle[i])) {
            i++;
        }
        if (i == n) {
            return 1;
        }
    }
    return n == 0;
}

/* A call failed with `want` and left a non-empty message. */
static inline void tu_assert_status(lam_status got, lam_status want, const char *what) {
    cr_assert_eq(got, want, "%s: status %d (%s), expected %d (%s); message: %s", what, (int)got,
                 lam_status_string(got), (int)want, lam_status_string(want), lam_last_error());
    cr_assert(lam_last_error() != NULL && lam_last_error()[0] != '\0', "%s: empty message", what);
}

/* The last error message contains `needle` (case-insensitive). */
static inline void tu_assert_msg(const char *needle, const char *what) {
    const char *m = lam_last_error();
    cr_assert(tu_contains(m, needle), "%s: message \"%s\" does not contain \"%s\"", what, m,
              needle);
}

/* Every tensor the test made has been released. */
static inline void tu_assert_released(void) {
    cr_assert_eq(lam_tensor_live_count(), 0, "%zu tensors still alive at the end of the test",
                 lam_tensor_live_count());
}

#endif /* LAMINA_TESTS_CORE_TEST_UTIL_H */
