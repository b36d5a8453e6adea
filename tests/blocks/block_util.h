/*
 * block_util.h - helpers shared by the block and parameter tests: checked calls, layers and
 * tensors from reference arrays, parameter read-back, comparisons, exact error checks and a
 * log-message capture.
 *
 * Every helper asserts (and so ends the test) on failure. Tensors live on the default context.
 */
#ifndef LAMINA_TESTS_BLOCKS_BLOCK_UTIL_H
#define LAMINA_TESTS_BLOCKS_BLOCK_UTIL_H

#include <criterion/criterion.h>

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lamina/lamina.h"
#include "ref/block_refs.h"

/* |got - want| <= atol + rtol * |want|: products with a short inner dimension ... */
#define BU_RTOL 1e-5
#define BU_ATOL 1e-5
/* ... and dot products over K = 20..256. */
#define BU_RTOL_DOT 1e-4
#define BU_ATOL_DOT 1e-5

/* Suite teardown: ends the runtime so nothing is left to leak. */
static inline void bu_fini(void) {
    lam_shutdown();
}

/* Asserts that a call returned LAM_OK, showing the message otherwise. */
#define BU_OK(call)                                                                                \
    do {                                                                                           \
        lam_status bu_st_ = (call);                                                                \
        cr_assert_eq(bu_st_, LAM_OK, "%s failed: %s (%s)", #call, lam_status_string(bu_st_),       \
                     lam_last_error());                                                            \
    } while (0)

/* A call failed with `want` and exactly the message `msg`. */
static inline void bu_assert_error(lam_status got, lam_status want, const char *msg,
                                   const char *what) {
    cr_assert_eq(got, want, "%s: status %d (%s), expected %d (%s); message: %s", what, (int)got,
                 lam_status_string(got), (int)want, lam_status_string(want), lam_last_error());
    cr_assert_str_eq(lam_last_error(), msg, "%s: message\n  got:      %s\n  expected: %s", what,
                     lam_last_error(), msg);
}

/* A call failed with `want` and a message that starts with `prefix` and is longer. */
static inline void bu_assert_error_prefix(lam_status got, lam_status want, const char *prefix,
                                          const char *what) {
    cr_assert_eq(got, want, "%s: status %d (%s), expected %d (%s); message: %s", what, (int)got,
                 lam_status_string(got), (int)want, lam_status_string(want), lam_last_error());
    const char *m = lam_last_error();
    cr_assert(strncmp(m, prefix, strlen(prefix)) == 0 && strlen(m) > strlen(prefix),
              "%s: message \"%s\" does not start with \"%s\"", what, m, prefix);
}

/* printf into a static buffer, for expected messages that contain a display name. */
static inline const char *bu_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline const char *bu_fmt(const char *fmt, ...) {
    static char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return buf;
}

/* The number after `prefix` in a display name ("dense12" -> 12); asserts the form. */
static inline unsigned long bu_name_index(const char *name, const char *prefix) {
    size_t n = strlen(prefix);
    cr_assert(strncmp(name, prefix, n) == 0, "name \"%s\" does not start with \"%s\"", name,
              prefix);
    char *end = NULL;
    unsigned long v = strtoul(name + n, &end, 10);
    cr_assert(end != name + n, "name \"%s\" has no number after \"%s\"", name, prefix);
    return v;
}

/* ---- blocks ------------------------------------------------------------------------------- */

static inline lam_block *bu_layer(const char *type, const char *attrs) {
    lam_block *b = NULL;
    lam_status st = lam_layer_create(type, attrs, &b);
    cr_assert_eq(st, LAM_OK, "lam_layer_create(%s, \"%s\") failed: %s (%s)", type,
                 attrs ? attrs : "(null)", lam_status_string(st), lam_last_error());
    cr_assert_not_null(b);
    return b;
}

static inline lam_block *bu_sequential(void) {
    lam_block *b = NULL;
    BU_OK(lam_sequential_create(&b));
    cr_assert_not_null(b);
    return b;
}

/* Appends a new layer to seq; returns it (borrowed: seq holds the only reference). */
static inline lam_block *bu_add_layer(lam_block *seq, const char *type, const char *attrs) {
    lam_block *b = bu_layer(type, attrs);
    BU_OK(lam_sequential_add(seq, b));
    lam_block_release(b);
    return b;
}

/* The block's own parameter `name`; asserts it exists. */
static inline lam_param *bu_param(const lam_block *b, const char *name) {
    lam_param *p = lam_block_param(b, name);
    cr_assert_not_null(p, "%s has no parameter '%s'", lam_block_name(b), name);
    return p;
}

/* ---- tensors ------------------------------------------------------------------------------ */

static inline lam_shape bu_shape(uint32_t ndim, const int64_t *dims) {
    lam_shape s;
    memset(&s, 0, sizeof s);
    s.ndim = ndim;
    for (uint32_t i = 0; i < ndim && i < LAM_MAX_DIMS; i++) {
        s.dims[i] = dims[i];
    }
    return s;
}

#define BU_NDIMS(...) ((uint32_t)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)))
#define BU_SHAPE(...) bu_shape(BU_NDIMS(__VA_ARGS__), (const int64_t[]){__VA_ARGS__})

static inline lam_tensor *bu_tensor(lam_shape shape, const float *data, size_t count) {
    lam_tensor *t = NULL;
    lam_status st = lam_tensor_from_data(NULL, &shape, data, count, &t);
    cr_assert_eq(st, LAM_OK, "lam_tensor_from_data failed: %s (%s)", lam_status_string(st),
                 lam_last_error());
    return t;
}

static inline lam_tensor *bu_from_ref(const br_array *r) {
    return bu_tensor(bu_shape(r->ndim, r->dims), r->data, r->count);
}

/* A tensor of `shape` with values lo + (hi - lo) * ((i * 37) % 101) / 100: varied, no RNG. */
static inline lam_tensor *bu_ramp(lam_shape shape, float lo, float hi) {
    int64_t n = 1;
    for (uint32_t i = 0; i < shape.ndim; i++) {
        n *= shape.dims[i];
    }
    float *v = malloc((size_t)n * sizeof *v);
    cr_assert_not_null(v);
    for (int64_t i = 0; i < n; i++) {
        v[i] = lo + (hi - lo) * (float)((i * 37) % 101) / 100.0f;
    }
    lam_tensor *t = bu_tensor(shape, v, (size_t)n);
    free(v);
    return t;
}

/* The tensor's values in a new malloc'ed buffer (caller frees); *n gets the count. */
static inline float *bu_values(const lam_tensor *t, size_t *n) {
    size_t count = (size_t)lam_tensor_numel(t);
    float *v = malloc((count ? count : 1) * sizeof *v);
    cr_assert_not_null(v);
    BU_OK(lam_tensor_read(t, v, count));
    if (n) {
        *n = count;
    }
    return v;
}

/* A parameter's data as a new malloc'ed buffer (caller frees); asserts it is initialized. */
static inline float *bu_param_values(lam_param *p, size_t *n) {
    lam_tensor *t = NULL;
    lam_status st = lam_param_data(p, &t);
    cr_assert_eq(st, LAM_OK, "lam_param_data(%s) failed: %s (%s)", lam_param_name(p),
                 lam_status_string(st), lam_last_error());
    float *v = bu_values(t, n);
    lam_tensor_release(t);
    return v;
}

/* Sets a parameter from a reference array. */
static inline void bu_set_param(lam_param *p, const br_array *r) {
    lam_tensor *t = bu_from_ref(r);
    lam_status st = lam_param_set_data(p, t);
    cr_assert_eq(st, LAM_OK, "lam_param_set_data(%s) failed: %s (%s)", lam_param_name(p),
                 lam_status_string(st), lam_last_error());
    lam_tensor_release(t);
}

static inline void bu_assert_shape(const lam_shape *s, const lam_shape *want, const char *what) {
    char g[160], w[160];
    cr_assert(lam_shape_equal(s, want), "%s: shape %s, expected %s", what,
              lam_shape_format(s, g, sizeof g), lam_shape_format(want, w, sizeof w));
}

/* |got - want| <= atol + rtol * |want|; NaN never passes. */
static inline int bu_close(float got, float want, double rtol, double atol) {
    return fabs((double)got - (double)want) <= atol + rtol * fabs((double)want);
}

/* t has want's shape and values within the tolerance (rtol 0, atol 0: bit-exact values). */
static inline void bu_assert_close(const lam_tensor *t, const br_array *want, double rtol,
                                   double atol, const char *what) {
    cr_assert_not_null(t, "%s: no tensor", what);
    lam_shape ws = bu_shape(want->ndim, want->dims);
    bu_assert_shape(lam_tensor_shape(t), &ws, what);
    size_t n;
    float *got = bu_values(t, &n);
    cr_assert_eq(n, want->count, "%s: %zu elements, expected %zu", what, n, want->count);
    for (size_t i = 0; i < n; i++) {
        int ok = (rtol == 0.0 && atol == 0.0) ? got[i] == want->data[i]
                                              : bu_close(got[i], want->data[i], rtol, atol);
        if (!ok) {
            float g = got[i];
            free(got);
            cr_assert_fail("%s: element %zu is %.9g, expected %.9g (rtol %g, atol %g)", what, i,
                           (double)g, (double)want->data[i], rtol, atol);
        }
    }
    free(got);
}

/* Every element of t equals value exactly. */
static inline void bu_assert_all(const lam_tensor *t, float value, const char *what) {
    size_t n;
    float *got = bu_values(t, &n);
    for (size_t i = 0; i < n; i++) {
        if (got[i] != value) {
            float g = got[i];
            free(got);
            cr_assert_fail("%s: element %zu is %.9g, expected %.9g", what, i, (double)g,
                           (double)value);
        }
    }
    free(got);
}

/* Every element of the parameter's data equals value exactly. */
static inline void bu_assert_param_all(lam_param *p, float value) {
    lam_tensor *t = NULL;
    BU_OK(lam_param_data(p, &t));
    bu_assert_all(t, value, lam_param_name(p));
    lam_tensor_release(t);
}

/* Every tensor the test made has been released. */
static inline void bu_assert_released(void) {
    cr_assert_eq(lam_tensor_live_count(), 0, "%zu tensors still alive at the end of the test",
                 lam_tensor_live_count());
}

/* ---- log capture -------------------------------------------------------------------------- */

#define BU_LOG_MAX 16

typedef struct bu_log {
    int count;
    lam_log_level level[BU_LOG_MAX];
    char text[BU_LOG_MAX][512];
} bu_log;

static inline void bu_log_fn(lam_log_level level, const char *message, void *user) {
    bu_log *log = user;
    if (log->count < BU_LOG_MAX) {
        log->level[log->count] = level;
        snprintf(log->text[log->count], sizeof log->text[0], "%s", message);
    }
    log->count++;
}

/* Starts capturing messages up to `max_level` into *log (cleared). */
static inline void bu_log_capture(bu_log *log, lam_log_level max_level) {
    memset(log, 0, sizeof *log);
    lam_log_set_callback(bu_log_fn, log, max_level);
}

static inline void bu_log_stop(void) {
    lam_log_set_callback(NULL, NULL, LAM_LOG_WARN);
}

#endif /* LAMINA_TESTS_BLOCKS_BLOCK_UTIL_H */
