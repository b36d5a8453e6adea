/*
 * ag_util.h - helpers shared by the autograd and training tests: checked calls, tensors from
 * float arrays, exact error checks, a seeded random stream, and the finite-difference gradient
 * harness.
 *
 * The harness (ag_check_grad) runs a function twice: once through Lamina in float32 with
 * autograd (inputs attached with lam_tensor_attach_grad, parameters set with
 * lam_param_set_data, a random head gradient passed to lam_autograd_backward), and once as an
 * independent float64 C implementation written in the test. The analytic gradients are
 * compared with central differences of f(v) = sum(head_grad * ref(v)) in float64, so every
 * output element matters and nothing on the reference side goes through Lamina.
 *
 * Every helper asserts (and so ends the test) on failure. Tensors live on the default context.
 */
#ifndef LAMINA_TESTS_AUTOGRAD_AG_UTIL_H
#define LAMINA_TESTS_AUTOGRAD_AG_UTIL_H

#include <criterion/criterion.h>

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lamina/lamina.h"

#if defined(__GNUC__)
#define AG_UNUSED __attribute__((unused))
#else
#define AG_UNUSED
#endif

/* Analytic (float32) against finite differences (float64): |got - want| <= atol + rtol |want|. */
#define AG_GRAD_RTOL 1e-3
#define AG_GRAD_ATOL 1e-4
/* The float32 forward against the float64 reference. */
#define AG_FWD_RTOL 1e-4
#define AG_FWD_ATOL 1e-5
/* Central-difference step (float64). */
#define AG_FD_STEP 1e-6

#define AG_MAX_VARS 6

/* Suite teardown: ends the runtime so nothing is left to leak. */
static inline void ag_fini(void) {
    lam_shutdown();
}

/* Asserts that a call returned LAM_OK, showing the message otherwise. */
#define AG_OK(call)                                                                                \
    do {                                                                                           \
        lam_status ag_st_ = (call);                                                                \
        cr_assert_eq(ag_st_, LAM_OK, "%s failed: %s (%s)", #call, lam_status_string(ag_st_),       \
                     lam_last_error());                                                            \
    } while (0)

/* A call failed with `want` and exactly the message `msg`. */
static inline void ag_assert_error(lam_status got, lam_status want, const char *msg,
                                   const char *what) {
    cr_assert_eq(got, want, "%s: status %d (%s), expected %d (%s); message: %s", what, (int)got,
                 lam_status_string(got), (int)want, lam_status_string(want), lam_last_error());
    cr_assert_str_eq(lam_last_error(), msg, "%s: message\n  got:      %s\n  expected: %s", what,
                     lam_last_error(), msg);
}

/* printf into a static buffer, for expected messages that contain a display name. */
static inline const char *ag_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline const char *ag_fmt(const char *fmt, ...) {
    static char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return buf;
}

/* A shape built by hand. AG_SHAPE(2, 3) is (2, 3); AG_SCALAR_SHAPE() is (). */
static inline lam_shape ag_shape(uint32_t ndim, const int64_t *dims) {
    lam_shape s;
    memset(&s, 0, sizeof s);
    s.ndim = ndim;
    for (uint32_t i = 0; i < ndim && i < LAM_MAX_DIMS; i++) {
        s.dims[i] = dims[i];
    }
    return s;
}
#define AG_NDIMS(...)     ((uint32_t)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)))
#define AG_SHAPE(...)     ag_shape(AG_NDIMS(__VA_ARGS__), (const int64_t[]){__VA_ARGS__})
#define AG_SCALAR_SHAPE() ag_shape(0, NULL)

static inline size_t ag_numel(const lam_shape *s) {
    size_t n = 1;
    for (uint32_t i = 0; i < s->ndim; i++) {
        n *= (size_t)s->dims[i];
    }
    return n;
}

/* A new tensor on the default context holding `count` floats. */
static inline lam_tensor *ag_tensor(lam_shape shape, const float *data, size_t count) {
    lam_tensor *t = NULL;
    AG_OK(lam_tensor_from_data(NULL, &shape, data, count, &t));
    cr_assert_not_null(t);
    return t;
}

/* Reads all of t into a new malloc'ed array the caller frees. */
static inline float *ag_read(const lam_tensor *t) {
    size_t n = (size_t)lam_tensor_numel(t);
    float *buf = malloc((n ? n : 1) * sizeof *buf);
    cr_assert_not_null(buf);
    AG_OK(lam_tensor_read(t, buf, n));
    return buf;
}

/* |got - want| <= atol + rtol |want|; NaN never passes. */
static inline int ag_close(double got, double want, double rtol, double atol) {
    return fabs(got - want) <= atol + rtol * fabs(want);
}

/* Asserts t has `shape` and the values `want` (count of them) within the tolerance. */
static inline void ag_assert_values(const lam_tensor *t, const lam_shape *shape, const float *want,
                                    size_t count, double rtol, double atol, const char *what) {
    char b1[160], b2[160];
    cr_assert_not_null(t, "%s: no tensor", what);
    cr_assert(lam_shape_equal(lam_tensor_shape(t), shape), "%s: shape %s, expected %s", what,
              lam_shape_format(lam_tensor_shape(t), b1, sizeof b1),
              lam_shape_format(shape, b2, sizeof b2));
    cr_assert_eq((size_t)lam_tensor_numel(t), count, "%s: %lld elements, expected %zu", what,
                 (long long)lam_tensor_numel(t), count);
    float *got = ag_read(t);
    for (size_t i = 0; i < count; i++) {
        int ok = ag_close(got[i], want[i], rtol, atol);
        float g = got[i];
        if (!ok) {
            free(got);
        }
        cr_assert(ok, "%s: element %zu is %.9g, expected %.9g (rtol %g, atol %g)", what, i,
                  (double)g, (double)want[i], rtol, atol);
    }
    free(got);
}

/* Every tensor the test made has been released. */
static inline void ag_assert_released(void) {
    cr_assert_eq(lam_tensor_live_count(), 0, "%zu tensors still alive at the end of the test",
                 lam_tensor_live_count());
}

/* ---- random numbers: splitmix64, a fixed seed per test ------------------------------------- */

typedef struct ag_rng {
    uint64_t s;
} ag_rng;

static inline uint64_t ag_next(ag_rng *r) {
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [lo, hi), rounded to float32. */
static inline float ag_uniform(ag_rng *r, double lo, double hi) {
    double u = (double)(ag_next(r) >> 11) * (1.0 / 9007199254740992.0);
    return (float)(lo + (hi - lo) * u);
}

/* ---- the finite-difference harness --------------------------------------------------------- */

/* One variable of the checked function: an input tensor (param NULL) that gets attach_grad, or
 * a parameter whose data is set with lam_param_set_data and whose gradient is lam_param_grad. */
typedef struct ag_var {
    const char *name;
    lam_shape shape;
    double lo, hi; /* values uniform in [lo, hi) ... */
    int away;      /* ... or, when nonzero, a magnitude in [lo, hi) with a random sign */
    lam_param *param;
} ag_var;

typedef struct ag_problem ag_problem;
struct ag_problem {
    const char *what;
    uint32_t n_vars;
    ag_var vars[AG_MAX_VARS];
    lam_shape out_shape;
    /* Lamina's forward; inputs[i] is var i's tensor (NULL for a parameter). */
    lam_status (*forward)(const ag_problem *p, lam_tensor *const *inputs, lam_tensor **out);
    /* The float64 reference of the same function; out holds numel(out_shape) values. */
    void (*ref)(const ag_problem *p, const double *const *vars, double *out);
    /* Optional: nonzero when drawn values keep away from kinks and ties (else they are
     * redrawn from the same stream). */
    int (*valid)(const ag_problem *p, const double *const *vars);
    const void *user;
};

/* The reference output of p at vars (a malloc'ed array). */
static inline double *ag_ref_eval(const ag_problem *p, const double *const *vars) {
    size_t n = ag_numel(&p->out_shape);
    double *out = calloc(n ? n : 1, sizeof *out);
    cr_assert_not_null(out);
    p->ref(p, vars, out);
    return out;
}

static inline double ag_ref_weighted(const ag_problem *p, const double *const *vars,
                                     const float *hg) {
    size_t n = ag_numel(&p->out_shape);
    double *out = ag_ref_eval(p, vars);
    double f = 0.0;
    for (size_t i = 0; i < n; i++) {
        f += (double)hg[i] * out[i];
    }
    free(out);
    return f;
}

/*
 * Checks p's gradients with values drawn from `seed`: forward values against the reference,
 * then every element of every variable's gradient against central differences. When grads is
 * not NULL, grads[i] receives a malloc'ed copy of var i's analytic gradient (the caller frees).
 * Leaves no tensor alive that it made.
 */
static inline void ag_check_grad(const ag_problem *p, uint64_t seed, float **grads) {
    ag_rng rng = {seed};
    float *vals[AG_MAX_VARS] = {0};
    double *dv[AG_MAX_VARS] = {0};
    size_t counts[AG_MAX_VARS] = {0};
    cr_assert(p->n_vars >= 1 && p->n_vars <= AG_MAX_VARS, "%s: bad n_vars", p->what);
    for (uint32_t i = 0; i < p->n_vars; i++) {
        counts[i] = ag_numel(&p->vars[i].shape);
        vals[i] = malloc((counts[i] ? counts[i] : 1) * sizeof *vals[i]);
        dv[i] = malloc((counts[i] ? counts[i] : 1) * sizeof *dv[i]);
        cr_assert(vals[i] && dv[i]);
    }
    int tries = 0;
    for (;;) {
        for (uint32_t i = 0; i < p->n_vars; i++) {
            const ag_var *v = &p->vars[i];
            for (size_t j = 0; j < counts[i]; j++) {
                float x = ag_uniform(&rng, v->lo, v->hi);
                if (v->away && (ag_next(&rng) & 1u)) {
                    x = -x;
                }
                vals[i][j] = x;
                dv[i][j] = (double)x;
            }
        }
        if (p->valid == NULL || p->valid(p, (const double *const *)dv)) {
            break;
        }
        cr_assert(++tries < 1000, "%s: no draw of the inputs met the problem's constraints",
                  p->what);
    }

    /* Lamina, float32. */
    lam_tensor *inputs[AG_MAX_VARS] = {0};
    for (uint32_t i = 0; i < p->n_vars; i++) {
        lam_tensor *t = ag_tensor(p->vars[i].shape, vals[i], counts[i]);
        if (p->vars[i].param == NULL) {
            AG_OK(lam_tensor_attach_grad(t));
            inputs[i] = t;
        } else {
            AG_OK(lam_param_set_data(p->vars[i].param, t));
            lam_tensor_release(t);
        }
    }
    lam_tensor *out = NULL;
    int was = lam_autograd_set_recording(1);
    lam_status st = p->forward(p, inputs, &out);
    lam_autograd_set_recording(was);
    cr_assert_eq(st, LAM_OK, "%s: forward failed: %s (%s)", p->what, lam_status_string(st),
                 lam_last_error());
    size_t n_out = ag_numel(&p->out_shape);
    double *want_out = ag_ref_eval(p, (const double *const *)dv);
    float *want_f = malloc((n_out ? n_out : 1) * sizeof *want_f);
    cr_assert_not_null(want_f);
    for (size_t k = 0; k < n_out; k++) {
        want_f[k] = (float)want_out[k];
    }
    free(want_out);
    ag_assert_values(out, &p->out_shape, want_f, n_out, AG_FWD_RTOL, AG_FWD_ATOL,
                     ag_fmt("%s: forward", p->what));
    free(want_f);

    float *hg = malloc((n_out ? n_out : 1) * sizeof *hg);
    cr_assert_not_null(hg);
    for (size_t k = 0; k < n_out; k++) {
        hg[k] = ag_uniform(&rng, -1.0, 1.0);
    }
    lam_tensor *hgt = ag_tensor(p->out_shape, hg, n_out);
    st = lam_autograd_backward(out, hgt);
    cr_assert_eq(st, LAM_OK, "%s: backward failed: %s (%s)", p->what, lam_status_string(st),
                 lam_last_error());
    lam_tensor_release(hgt);
    lam_tensor_release(out);

    for (uint32_t i = 0; i < p->n_vars; i++) {
        const ag_var *v = &p->vars[i];
        lam_tensor *g = NULL;
        if (v->param == NULL) {
            AG_OK(lam_tensor_grad(inputs[i], &g));
        } else {
            AG_OK(lam_param_grad(v->param, &g));
        }
        char b1[160], b2[160];
        cr_assert(lam_shape_equal(lam_tensor_shape(g), &v->shape),
                  "%s: gradient of %s has shape %s, expected %s", p->what, v->name,
                  lam_shape_format(lam_tensor_shape(g), b1, sizeof b1),
                  lam_shape_format(&v->shape, b2, sizeof b2));
        float *got = ag_read(g);
        lam_tensor_release(g);
        for (size_t j = 0; j < counts[i]; j++) {
            double x = dv[i][j];
            double h = AG_FD_STEP * (fabs(x) > 1.0 ? fabs(x) : 1.0);
            dv[i][j] = x + h;
            double fp = ag_ref_weighted(p, (const double *const *)dv, hg);
            dv[i][j] = x - h;
            double fm = ag_ref_weighted(p, (const double *const *)dv, hg);
            dv[i][j] = x;
            double fd = (fp - fm) / (2.0 * h);
            cr_assert(ag_close(got[j], fd, AG_GRAD_RTOL, AG_GRAD_ATOL),
                      "%s: d/d%s[%zu] (value %.9g) is %.9g, finite differences give %.9g", p->what,
                      v->name, j, x, (double)got[j], fd);
        }
        if (grads != NULL) {
            grads[i] = got;
        } else {
            free(got);
        }
    }
    for (uint32_t i = 0; i < p->n_vars; i++) {
        lam_tensor_release(inputs[i]);
        free(vals[i]);
        free(dv[i]);
    }
    free(hg);
}

/* ---- index helpers for the float64 references ---------------------------------------------- */

/* Multi-index of flat element `flat` of shape s. */
static inline void ag_unravel(const lam_shape *s, size_t flat, int64_t *idx) {
    for (uint32_t d = s->ndim; d-- > 0;) {
        idx[d] = (int64_t)(flat % (size_t)s->dims[d]);
        flat /= (size_t)s->dims[d];
    }
}

/* Flat index into s of the element broadcast to output multi-index idx (out_nd dims). */
static inline size_t ag_bcast_index(const lam_shape *s, const int64_t *idx, uint32_t out_nd) {
    size_t flat = 0;
    uint32_t off = out_nd - s->ndim;
    for (uint32_t d = 0; d < s->ndim; d++) {
        int64_t i = s->dims[d] == 1 ? 0 : idx[off + d];
        flat = flat * (size_t)s->dims[d] + (size_t)i;
    }
    return flat;
}

#endif /* LAMINA_TESTS_AUTOGRAD_AG_UTIL_H */
