/*
 * Initializers and their random streams (core/init.c, core/rng.c).
 *
 * This test is built from those sources (with error.c, log.c and util.c) instead of linking
 * liblamina: the Philox block function and lam__init_fill are internal, and fills are otherwise
 * reachable only through parameters. Philox is checked against Random123's known answers;
 * exact stream values come from tests/core/ref/init_refs.h, written by an independent Python
 * implementation (gen_init_refs.py); statistical properties are checked against the
 * distributions' formulas.
 */
#include <criterion/criterion.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "init.h"
#include "rng.h"

#include "ref/init_refs.h"

TestSuite(rng);
TestSuite(init);

/* ---- helpers ------------------------------------------------------------------------------ */

static lam_shape shape_of(uint32_t ndim, const int64_t *dims) {
    lam_shape s;
    memset(&s, 0, sizeof s);
    s.ndim = ndim;
    for (uint32_t i = 0; i < ndim; i++) {
        s.dims[i] = dims[i];
    }
    return s;
}

#define SHAPE(...)                                                                                 \
    shape_of((uint32_t)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)),                       \
             (const int64_t[]){__VA_ARGS__})

static const lam_shape scalar_shape = {0, 0, {0}};

static void assert_status(lam_status got, lam_status want, const char *what) {
    cr_assert_eq(got, want, "%s: status %d (%s), expected %d (%s); message: %s", what, (int)got,
                 lam_status_string(got), (int)want, lam_status_string(want), lam_last_error());
}

static void assert_error(lam_status got, lam_status want, const char *msg, const char *what) {
    assert_status(got, want, what);
    cr_assert_str_eq(lam_last_error(), msg, "%s: wrong message", what);
}

static lam_initializer *parse_ok(const char *text) {
    lam_initializer *init = NULL;
    assert_status(lam_init_parse(text, &init), LAM_OK, text);
    cr_assert_not_null(init);
    return init;
}

/* Fills a fresh buffer; the caller frees it. */
static float *fill(const lam_initializer *init, const char *key, const lam_shape *shape,
                   size_t count) {
    float *data = malloc(count * sizeof *data);
    cr_assert_not_null(data);
    for (size_t i = 0; i < count; i++) {
        data[i] = 12345.0f; /* something no initializer writes */
    }
    assert_status(lam__init_fill(init, key, key, shape, data, count), LAM_OK, key);
    return data;
}

typedef struct stats {
    double mean, std, min, max;
} stats;

static stats stats_of(const float *x, size_t n) {
    stats s = {0.0, 0.0, INFINITY, -INFINITY};
    for (size_t i = 0; i < n; i++) {
        s.mean += x[i];
        s.min = fmin(s.min, x[i]);
        s.max = fmax(s.max, x[i]);
    }
    s.mean /= (double)n;
    for (size_t i = 0; i < n; i++) {
        s.std += (x[i] - s.mean) * (x[i] - s.mean);
    }
    s.std = sqrt(s.std / (double)n);
    return s;
}

static void assert_within(double got, double want, double tol, const char *what) {
    cr_assert(fabs(got - want) <= tol, "%s: %.9g, expected %.9g +- %.3g", what, got, want, tol);
}

/* ---- Philox and streams ------------------------------------------------------------------- */

Test(rng, philox_matches_random123_known_answers) {
    for (size_t k = 0; k < sizeof ref_philox_kats / sizeof ref_philox_kats[0]; k++) {
        uint32_t out[4];
        lam__philox4x32_10(ref_philox_kats[k].ctr, ref_philox_kats[k].key, out);
        for (int i = 0; i < 4; i++) {
            cr_assert_eq(out[i], ref_philox_kats[k].out[i], "vector %zu word %d: %08x, want %08x",
                         k, i, out[i], ref_philox_kats[k].out[i]);
        }
    }
}

Test(rng, stream_key_matches_reference) {
    for (size_t k = 0; k < sizeof ref_stream_keys / sizeof ref_stream_keys[0]; k++) {
        uint64_t h = lam__rng_stream_key(ref_stream_keys[k].seed, ref_stream_keys[k].key);
        cr_assert_eq(h, ref_stream_keys[k].hash, "key '%s'", ref_stream_keys[k].key);
    }
    /* NULL counts as "". */
    cr_assert_eq(lam__rng_stream_key(0, NULL), lam__rng_stream_key(0, ""));
}

Test(rng, stream_outputs_match_reference_in_order) {
    lam_rng r;
    lam__rng_init(&r, 0, "0.weight");
    for (int i = 0; i < 10; i++) {
        uint32_t x = lam__rng_next_u32(&r);
        cr_assert_eq(x, ref_raw_0_weight[i], "output %d: %08x, want %08x", i, x,
                     ref_raw_0_weight[i]);
    }
}

Test(rng, uniform_clamps_below_hi_when_rounding_reaches_it) {
    lam_rng r;
    lam__rng_init(&r, 0, "");
    /* The largest output gives u = 1 - 2^-24; 1 + u rounds to 2.0f (a tie, to even). */
    r.buf[0] = 0xFFFFFFFFu;
    r.buf[1] = 0x00000000u;
    r.buf[2] = 0xFFFFFFFFu;
    r.pos = 0;
    cr_assert_eq(lam_rng_uniform(&r, 1.0f, 2.0f), nextafterf(2.0f, 0.0f));
    cr_assert_eq(lam_rng_uniform(&r, 1.0f, 2.0f), 1.0f);
    /* In [0, 1) every u is representable: no clamp needed, none applied. */
    cr_assert_eq(lam_rng_uniform(&r, 0.0f, 1.0f), 1.0f - 0x1p-24f);
}

Test(rng, normal_survives_zero_outputs_and_uses_the_pair) {
    lam_rng r;
    lam__rng_init(&r, 0, "");
    r.buf[0] = 0; /* u1 = 2^-32, the smallest: r = sqrt(64 ln 2) */
    r.buf[1] = 0; /* u2 = 0: cos = 1, sin = 0 */
    r.pos = 0;
    float z0 = lam_rng_normal(&r, 0.0f, 1.0f);
    cr_assert_float_eq(z0, (float)sqrt(64.0 * log(2.0)), 1e-6f);
    cr_assert_eq(r.pos, 2, "a pair draws two outputs");
    cr_assert_eq(lam_rng_normal(&r, 5.0f, 2.0f), 5.0f, "the spare is r*sin(0) = 0");
    cr_assert_eq(r.pos, 2, "the spare draws nothing");
}

Test(rng, seed_defaults_to_zero_and_is_kept) {
    cr_assert_eq(lam_seed_get(), 0);
    lam_seed(0xDEADBEEFCAFEull);
    cr_assert_eq(lam_seed_get(), 0xDEADBEEFCAFEull);
}

/* ---- constant initializers ---------------------------------------------------------------- */

Test(init, zero_one_constant_fill_exactly) {
    lam_shape s = SHAPE(3, 4);
    lam_initializer *z = NULL, *o = NULL, *c = NULL;
    assert_status(lam_init_zero(&z), LAM_OK, "zero");
    assert_status(lam_init_one(&o), LAM_OK, "one");
    assert_status(lam_init_constant(-0.25f, &c), LAM_OK, "constant");
    float *dz = fill(z, "a", &s, 12), *d1 = fill(o, "b", &s, 12), *dc = fill(c, "c", &s, 12);
    for (size_t i = 0; i < 12; i++) {
        cr_assert_eq(dz[i], 0.0f);
        cr_assert_eq(d1[i], 1.0f);
        cr_assert_eq(dc[i], -0.25f);
    }
    /* A scalar shape has one element. */
    float one = 7.0f;
    assert_status(lam__init_fill(o, "s", "s", &scalar_shape, &one, 1), LAM_OK, "scalar");
    cr_assert_eq(one, 1.0f);
    free(dz);
    free(d1);
    free(dc);
    lam_initializer_release(z);
    lam_initializer_release(o);
    lam_initializer_release(c);
}

/* ---- random initializers ------------------------------------------------------------------ */

Test(init, uniform_matches_reference_stream) {
    lam_initializer *u = NULL;
    assert_status(lam_init_uniform(0.07f, &u), LAM_OK, "uniform");
    lam_shape s = SHAPE(12);
    float *d = fill(u, "0.weight", &s, 12);
    for (int i = 0; i < 12; i++) {
        cr_assert_eq(d[i], ref_uniform_0_weight[i], "element %d: %.9g, want %.9g", i, d[i],
                     ref_uniform_0_weight[i]);
    }
    free(d);
    lam_initializer_release(u);
}

Test(init, uniform_statistics_on_100k) {
    lam_initializer *u = NULL;
    assert_status(lam_init_uniform(0.07f, &u), LAM_OK, "uniform");
    lam_shape s = SHAPE(100, 1000);
    size_t n = 100000;
    float *d = fill(u, "0.weight", &s, n);
    for (size_t i = 0; i < n; i++) {
        cr_assert(d[i] >= -0.07f && d[i] < 0.07f, "element %zu = %.9g", i, d[i]);
    }
    stats st = stats_of(d, n);
    assert_within(st.mean, 0.0, 0.002, "mean");
    double want = 0.07 / sqrt(3.0);
    assert_within(st.std, want, 0.02 * want, "std");
    free(d);
    lam_initializer_release(u);
}

Test(init, normal_matches_reference_stream) {
    lam_initializer *nrm = NULL;
    assert_status(lam_init_normal(0.01f, &nrm), LAM_OK, "normal");
    lam_seed(7);
    lam_shape s = SHAPE(3, 3);
    float *d = fill(nrm, "1.weight", &s, 9);
    /* log/cos/sin may differ in the last bit between C libraries. */
    for (int i = 0; i < 9; i++) {
        float want = ref_normal_1_weight[i];
        cr_assert(fabsf(d[i] - want) <= 1e-6f * fabsf(want) + 1e-9f, "element %d: %.9g, want %.9g",
                  i, d[i], want);
    }
    free(d);
    lam_initializer_release(nrm);
}

Test(init, normal_statistics_on_100k) {
    lam_initializer *nrm = NULL;
    assert_status(lam_init_normal(0.01f, &nrm), LAM_OK, "normal");
    lam_shape s = SHAPE(100000);
    size_t n = 100000;
    float *d = fill(nrm, "0.weight", &s, n);
    stats st = stats_of(d, n);
    assert_within(st.mean, 0.0, 3e-4, "mean");
    assert_within(st.std, 0.01, 0.02 * 0.01, "std");
    cr_assert(st.max < 0.0667 && st.min > -0.0667, "beyond the Box-Muller limit");
    free(d);
    lam_initializer_release(nrm);
}

Test(init, xavier_uniform_avg_bound_and_std) {
    lam_initializer *x = parse_ok("xavier");
    lam_seed(3);
    lam_shape s = SHAPE(256, 20);
    size_t n = 256 * 20;
    float *d = fill(x, "dense0_weight", &s, n);
    /* fan_in 20, fan_out 256: factor (20 + 256) / 2 = 138. */
    double bound = sqrt(3.0 / 138.0);
    cr_assert_float_eq(REF_XAVIER_256_20_BOUND, (float)bound, 1e-7f);
    for (int i = 0; i < 6; i++) {
        cr_assert_eq(d[i], ref_xavier_dense0_weight[i], "element %d", i);
    }
    for (size_t i = 0; i < n; i++) {
        cr_assert(d[i] >= -(float)bound && d[i] < (float)bound, "element %zu = %.9g", i, d[i]);
    }
    stats st = stats_of(d, n);
    cr_assert(st.max > 0.99 * bound && st.min < -0.99 * bound, "the whole interval is used");
    assert_within(st.std, bound / sqrt(3.0), 0.03 * bound / sqrt(3.0), "std");
    free(d);
    lam_initializer_release(x);
}

/* A conv-like shape: fan_in = 32*3*3 = 288, fan_out = 64*3*3 = 576. */
static void check_xavier_gaussian(lam_xavier_factor factor, double fan) {
    lam_initializer *x = NULL;
    assert_status(lam_init_xavier(LAM_XAVIER_GAUSSIAN, factor, 2.0f, &x), LAM_OK, "xavier");
    lam_shape s = SHAPE(64, 32, 3, 3);
    size_t n = 64 * 32 * 3 * 3;
    float *d = fill(x, "conv0_weight", &s, n);
    stats st = stats_of(d, n);
    double want = sqrt(2.0 / fan);
    assert_within(st.mean, 0.0, 0.03 * want, "mean");
    assert_within(st.std, want, 0.03 * want, "std");
    free(d);
    lam_initializer_release(x);
}

Test(init, xavier_gaussian_in_uses_fan_in) {
    check_xavier_gaussian(LAM_XAVIER_IN, 288.0);
}

Test(init, xavier_gaussian_out_uses_fan_out) {
    check_xavier_gaussian(LAM_XAVIER_OUT, 576.0);
}

Test(init, xavier_rejects_fewer_than_two_dims) {
    lam_initializer *x = parse_ok("xavier");
    float data[8];
    lam_shape s = SHAPE(8);
    assert_error(lam__init_fill(x, "dense0_bias", "0.bias", &s, data, 8), LAM_ERR_SHAPE,
                 "dense0_bias: Cannot initialize, Xavier needs at least 2 dims, shape is (8,)",
                 "1-D");
    assert_error(lam__init_fill(x, "scale", "scale", &scalar_shape, data, 1), LAM_ERR_SHAPE,
                 "scale: Cannot initialize, Xavier needs at least 2 dims, shape is ()", "0-D");
    lam_initializer_release(x);
}

/* ---- determinism -------------------------------------------------------------------------- */

Test(init, same_seed_and_key_give_identical_bits) {
    const char *texts[] = {"uniform", "normal", "xavier(gaussian, avg, 2)"};
    lam_shape s = SHAPE(33, 7); /* odd count: a normal spare is left over */
    size_t n = 33 * 7;
    for (size_t k = 0; k < 3; k++) {
        lam_initializer *init = parse_ok(texts[k]);
        lam_seed(11);
        float *a = fill(init, "0.weight", &s, n);
        float *other = fill(init, "1.weight", &s, n); /* drawing elsewhere changes nothing */
        float *b = fill(init, "0.weight", &s, n);
        cr_assert(memcmp(a, b, n * sizeof *a) == 0, "%s: not bit-identical", texts[k]);
        free(other);
        free(b);
        free(a);
        lam_initializer_release(init);
    }
}

Test(init, another_key_or_seed_gives_other_values) {
    lam_initializer *u = parse_ok("uniform");
    lam_shape s = SHAPE(64);
    float *a = fill(u, "0.weight", &s, 64);
    float *b = fill(u, "0.bias", &s, 64);
    float *c = fill(u, "0.weighs", &s, 64); /* one character apart */
    lam_seed(1);
    float *d = fill(u, "0.weight", &s, 64);
    size_t same_b = 0, same_c = 0, same_d = 0;
    for (size_t i = 0; i < 64; i++) {
        same_b += a[i] == b[i];
        same_c += a[i] == c[i];
        same_d += a[i] == d[i];
    }
    cr_assert(same_b <= 1 && same_c <= 1 && same_d <= 1, "equal elements: %zu, %zu, %zu", same_b,
              same_c, same_d);
    free(a);
    free(b);
    free(c);
    free(d);
    lam_initializer_release(u);
}

Test(init, parsed_text_fills_like_the_original) {
    lam_initializer *orig = NULL;
    assert_status(lam_init_uniform(0.123456789f, &orig), LAM_OK, "uniform");
    lam_initializer *back = parse_ok(lam_initializer_describe(orig));
    cr_assert_str_eq(lam_initializer_describe(back), lam_initializer_describe(orig));
    lam_shape s = SHAPE(50);
    float *a = fill(orig, "w", &s, 50), *b = fill(back, "w", &s, 50);
    cr_assert(memcmp(a, b, sizeof(float) * 50) == 0);
    free(a);
    free(b);
    lam_initializer_release(orig);
    lam_initializer_release(back);
}

/* ---- custom initializers ------------------------------------------------------------------ */

/* The chapter's MyInit: uniform in [-10, 10], then every |x| < 5 set to zero. It records what
 * it was called with instead of printing "Init <name> <shape>". */
typedef struct my_init_seen {
    int calls;
    char name[64];
    lam_shape shape;
    size_t count;
} my_init_seen;

static lam_status my_init(const char *name, const lam_shape *shape, float *data, size_t count,
                          lam_rng *rng, void *user) {
    my_init_seen *seen = user;
    seen->calls++;
    snprintf(seen->name, sizeof seen->name, "%s", name);
    seen->shape = *shape;
    seen->count = count;
    for (size_t i = 0; i < count; i++) {
        float x = lam_rng_uniform(rng, -10.0f, 10.0f);
        data[i] = fabsf(x) < 5.0f ? 0.0f : x;
    }
    return LAM_OK;
}

Test(init, custom_my_init_zeroes_small_values) {
    my_init_seen seen = {0};
    lam_initializer *mi = NULL;
    assert_status(lam_init_custom("MyInit", my_init, &seen, &mi), LAM_OK, "custom");
    cr_assert_str_eq(lam_initializer_describe(mi), "MyInit");
    lam_shape s = SHAPE(100, 100);
    size_t n = 10000;
    float *d = malloc(n * sizeof *d);
    cr_assert_not_null(d);
    assert_status(lam__init_fill(mi, "dense0_weight", "0.weight", &s, d, n), LAM_OK, "fill");
    cr_assert_eq(seen.calls, 1);
    cr_assert_str_eq(seen.name, "dense0_weight");
    cr_assert_eq(seen.shape.ndim, 2);
    cr_assert_eq(seen.shape.dims[0], 100);
    cr_assert_eq(seen.shape.dims[1], 100);
    cr_assert_eq(seen.count, n);
    size_t zeros = 0;
    for (size_t i = 0; i < n; i++) {
        float a = fabsf(d[i]);
        cr_assert(d[i] == 0.0f || (a >= 5.0f && a <= 10.0f), "element %zu = %.9g", i, d[i]);
        zeros += d[i] == 0.0f;
    }
    /* P(|x| < 5) = 1/2: 5000 +- 50 (one sigma); allow six sigma. */
    cr_assert(zeros > 4700 && zeros < 5300, "%zu zeros of %zu", zeros, n);

    /* The callback's stream is the parameter's: the same call gives the same values. */
    float *again = malloc(n * sizeof *again);
    cr_assert_not_null(again);
    assert_status(lam__init_fill(mi, "dense0_weight", "0.weight", &s, again, n), LAM_OK, "again");
    cr_assert(memcmp(d, again, n * sizeof *d) == 0);
    free(again);
    free(d);
    lam_initializer_release(mi);
}

static lam_status failing_init(const char *name, const lam_shape *shape, float *data, size_t count,
                               lam_rng *rng, void *user) {
    (void)name, (void)shape, (void)data, (void)count, (void)rng;
    if (user != NULL) {
        /* Fail through a public call, which leaves its own message. */
        lam_initializer *bad = NULL;
        return lam_init_uniform(-1.0f, &bad);
    }
    return LAM_ERR_INVALID_ARGUMENT; /* no message at all */
}

Test(init, custom_failure_is_prefixed_with_name_and_label) {
    lam_initializer *quiet = NULL, *loud = NULL;
    int flag = 1;
    assert_status(lam_init_custom("Quiet", failing_init, NULL, &quiet), LAM_OK, "quiet");
    assert_status(lam_init_custom("MyInit", failing_init, &flag, &loud), LAM_OK, "loud");
    float d[4];
    lam_shape s = SHAPE(2, 2);
    lam__error(LAM_ERR_IO, "an old message that must not be blamed");
    assert_error(lam__init_fill(quiet, "w", "0.w", &s, d, 4), LAM_ERR_INVALID_ARGUMENT,
                 "w: Initializer 'Quiet' failed, invalid argument", "quiet");
    assert_error(lam__init_fill(loud, "dense0_weight", "0.weight", &s, d, 4),
                 LAM_ERR_INVALID_ARGUMENT,
                 "dense0_weight: Initializer 'MyInit' failed, lam_init_uniform: Invalid scale -1, "
                 "must be positive and finite",
                 "loud");
    lam_initializer_release(quiet);
    lam_initializer_release(loud);
}

Test(init, custom_without_label_is_named_custom) {
    lam_initializer *c = NULL;
    assert_status(lam_init_custom(NULL, my_init, NULL, &c), LAM_OK, "custom");
    cr_assert_str_eq(lam_initializer_describe(c), "Custom");
    lam_initializer_release(c);
}

/* ---- fill errors -------------------------------------------------------------------------- */

Test(init, fill_rejects_bad_buffers_and_unknown_shapes) {
    lam_initializer *z = parse_ok("zeros");
    float d[6];
    lam_shape s = SHAPE(2, 3);
    assert_error(lam__init_fill(z, "dense0_weight", "0.weight", &s, d, 5), LAM_ERR_SHAPE,
                 "dense0_weight: Cannot initialize, shape (2, 3) does not match a buffer of 5 "
                 "floats",
                 "count");
    lam_shape unknown = SHAPE(LAM_DIM_UNKNOWN, 3);
    assert_error(lam__init_fill(z, "dense0_weight", "0.weight", &unknown, d, 6),
                 LAM_ERR_DEFERRED_INIT,
                 "dense0_weight: Cannot initialize, shape (None, 3) is not fully known", "unknown");
    assert_error(lam__init_fill(NULL, "w", "w", &s, d, 6), LAM_ERR_INVALID_ARGUMENT,
                 "w: Cannot initialize, initializer is NULL", "NULL init");
    assert_error(lam__init_fill(z, "w", "w", &s, NULL, 6), LAM_ERR_INVALID_ARGUMENT,
                 "w: Cannot initialize, data is NULL", "NULL data");
    /* Dims whose product overflows are not mistaken for a small count. */
    lam_shape huge = SHAPE(INT64_C(1) << 32, INT64_C(1) << 32, 2);
    assert_status(lam__init_fill(z, "w", "w", &huge, d, 0), LAM_ERR_SHAPE, "overflow");
    /* Nothing to fill is fine, even without a buffer. */
    lam_shape empty = SHAPE(0, 3);
    assert_status(lam__init_fill(z, "w", "w", &empty, NULL, 0), LAM_OK, "empty");
    lam_initializer_release(z);
}

/* ---- constructors ------------------------------------------------------------------------- */

Test(init, constructors_reject_bad_arguments_and_clear_out) {
    static char poison;
    lam_initializer *out = (lam_initializer *)(void *)&poison;
    assert_error(lam_init_uniform(0.0f, &out), LAM_ERR_INVALID_ARGUMENT,
                 "lam_init_uniform: Invalid scale 0, must be positive and finite", "scale 0");
    cr_assert_null(out);
    out = (lam_initializer *)(void *)&poison;
    assert_error(lam_init_uniform(INFINITY, &out), LAM_ERR_INVALID_ARGUMENT,
                 "lam_init_uniform: Invalid scale inf, must be positive and finite", "scale inf");
    cr_assert_null(out);
    assert_error(lam_init_normal(-0.5f, &out), LAM_ERR_INVALID_ARGUMENT,
                 "lam_init_normal: Invalid sigma -0.5, must be positive and finite", "sigma");
    assert_error(lam_init_normal(NAN, &out), LAM_ERR_INVALID_ARGUMENT,
                 "lam_init_normal: Invalid sigma nan, must be positive and finite", "sigma nan");
    assert_error(lam_init_xavier(LAM_XAVIER_UNIFORM, LAM_XAVIER_AVG, 0.0f, &out),
                 LAM_ERR_INVALID_ARGUMENT,
                 "lam_init_xavier: Invalid magnitude 0, must be positive and finite", "magnitude");
    assert_error(lam_init_xavier(LAM_XAVIER_RND_INVALID, LAM_XAVIER_AVG, 3.0f, &out),
                 LAM_ERR_INVALID_ARGUMENT,
                 "lam_init_xavier: Invalid rnd_type 0, expected LAM_XAVIER_UNIFORM or "
                 "LAM_XAVIER_GAUSSIAN",
                 "rnd");
    assert_error(lam_init_xavier(LAM_XAVIER_UNIFORM, (lam_xavier_factor)4, 3.0f, &out),
                 LAM_ERR_INVALID_ARGUMENT,
                 "lam_init_xavier: Invalid factor_type 4, expected LAM_XAVIER_AVG, LAM_XAVIER_IN "
                 "or LAM_XAVIER_OUT",
                 "factor");
    assert_error(lam_init_custom("X", NULL, NULL, &out), LAM_ERR_INVALID_ARGUMENT,
                 "lam_init_custom: Invalid argument, fn is NULL", "fn");
    assert_error(lam_init_zero(NULL), LAM_ERR_INVALID_ARGUMENT,
                 "lam_init_zero: Invalid argument, out is NULL", "out");
    assert_error(lam_init_constant(1.0f, NULL), LAM_ERR_INVALID_ARGUMENT,
                 "lam_init_constant: Invalid argument, out is NULL", "out");
    cr_assert_null(out);
}

Test(init, describe_names_kind_and_arguments) {
    lam_initializer *i = NULL;
    assert_status(lam_init_constant(0.5f, &i), LAM_OK, "constant");
    cr_assert_str_eq(lam_initializer_describe(i), "Constant(value=0.5)");
    lam_initializer_release(i);
    assert_status(lam_init_normal(0.01f, &i), LAM_OK, "normal");
    cr_assert_str_eq(lam_initializer_describe(i), "Normal(sigma=0.01)");
    lam_initializer_release(i);
    assert_status(lam_init_xavier(LAM_XAVIER_GAUSSIAN, LAM_XAVIER_OUT, 2.0f, &i), LAM_OK, "x");
    cr_assert_str_eq(lam_initializer_describe(i),
                     "Xavier(rnd_type=gaussian, factor_type=out, magnitude=2)");
    lam_initializer_release(i);
    cr_assert_str_eq(lam_initializer_describe(NULL), "");
}

/* ---- parsing ------------------------------------------------------------------------------ */

Test(init, parse_then_describe_round_trips) {
    static const struct {
        const char *text, *desc;
    } cases[] = {
        {"zeros", "Zero()"},
        {"ZERO", "Zero()"},
        {"  ones  ", "One()"},
        {"one()", "One()"},
        {"constant(0.5)", "Constant(value=0.5)"},
        {" Constant ( -2 ) ", "Constant(value=-2)"},
        {"constant(value=1e-3)", "Constant(value=0.001)"},
        {"uniform", "Uniform(scale=0.07)"},
        {"uniform()", "Uniform(scale=0.07)"},
        {"uniform(0.1)", "Uniform(scale=0.1)"},
        {"uniform(0.1,)", "Uniform(scale=0.1)"}, /* one trailing comma, as in every kv list */
        {"Uniform(scale = 0.2)", "Uniform(scale=0.2)"},
        {"normal", "Normal(sigma=0.01)"},
        {"normal(0.02)", "Normal(sigma=0.02)"},
        {"xavier", "Xavier(rnd_type=uniform, factor_type=avg, magnitude=3)"},
        {"xavier(gaussian, in, 2)", "Xavier(rnd_type=gaussian, factor_type=in, magnitude=2)"},
        {"\tXAVIER( Gaussian ,OUT, 2.5 )\n",
         "Xavier(rnd_type=gaussian, factor_type=out, magnitude=2.5)"},
        {"xavier(gaussian)", "Xavier(rnd_type=gaussian, factor_type=avg, magnitude=3)"},
        {"xavier(magnitude=6)", "Xavier(rnd_type=uniform, factor_type=avg, magnitude=6)"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        lam_initializer *i = parse_ok(cases[k].text);
        cr_assert_str_eq(lam_initializer_describe(i), cases[k].desc, "parsing '%s'", cases[k].text);
        /* describe's text parses back to the same initializer. */
        lam_initializer *j = parse_ok(cases[k].desc);
        cr_assert_str_eq(lam_initializer_describe(j), cases[k].desc);
        lam_initializer_release(j);
        lam_initializer_release(i);
    }
}

Test(init, parse_errors_say_what_is_wrong) {
    static const struct {
        const char *text, *msg;
    } cases[] = {
        {"foo", "lam_init_parse: Unknown initializer 'foo', expected zeros, ones, constant(v), "
                "uniform[(scale)], normal[(sigma)] or xavier[(rnd, factor, magnitude)]"},
        {"foo(1)", "lam_init_parse: Unknown initializer 'foo', expected zeros, ones, constant(v), "
                   "uniform[(scale)], normal[(sigma)] or xavier[(rnd, factor, magnitude)]"},
        {"", "lam_init_parse: Unknown initializer '', expected zeros, ones, constant(v), "
             "uniform[(scale)], normal[(sigma)] or xavier[(rnd, factor, magnitude)]"},
        {"uniform(0.1", "lam_init_parse: Syntax error in 'uniform(0.1', expected one ')' at the "
                        "end"},
        {"uniform(0.1))", "lam_init_parse: Syntax error in 'uniform(0.1))', expected one ')' at "
                          "the end"},
        {"uniform 0.1", "lam_init_parse: Syntax error in 'uniform 0.1', expected '('"},
        {"uniform(,)", "lam_init_parse: Empty argument in 'uniform(,)', nothing before the "
                       "first ','"},
        {"uniform(abc)", "lam_init_parse: Bad value 'abc' for scale in 'uniform(abc)', expected "
                         "a number"},
        {"uniform(1, 2)", "lam_init_parse: Too many arguments in 'uniform(1, 2)', at most 1 "
                          "allowed"},
        {"zeros(1)", "lam_init_parse: Too many arguments in 'zeros(1)', none allowed"},
        {"constant", "lam_init_parse: Missing argument in 'constant', constant needs a value"},
        {"constant()", "lam_init_parse: Missing argument in 'constant()', constant needs a value"},
        {"uniform(size=1)", "lam_init_parse: Unknown argument 'size' in 'uniform(size=1)', "
                            "valid arguments: scale"},
        {"normal(-1)", "lam_init_parse: Invalid sigma -1 in 'normal(-1)', must be positive and "
                       "finite"},
        {"uniform(0)", "lam_init_parse: Invalid scale 0 in 'uniform(0)', must be positive and "
                       "finite"},
        {"xavier(foo)", "lam_init_parse: Bad rnd_type 'foo' in 'xavier(foo)', expected uniform "
                        "or gaussian"},
        {"xavier(uniform, sideways)", "lam_init_parse: Bad factor_type 'sideways' in "
                                      "'xavier(uniform, sideways)', expected avg, in or out"},
        {"xavier(uniform, avg, 0)", "lam_init_parse: Invalid magnitude 0 in 'xavier(uniform, "
                                    "avg, 0)', must be positive and finite"},
        {"xavier(gaussian, rnd_type=uniform)", "lam_init_parse: Repeated argument 'rnd_type' in "
                                               "'xavier(gaussian, rnd_type=uniform)'"},
        {"xavier(1, 2, 3, 4)", "lam_init_parse: Too many arguments in 'xavier(1, 2, 3, 4)', "
                               "at most 3 allowed"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        static char poison;
        lam_initializer *out = (lam_initializer *)(void *)&poison;
        assert_error(lam_init_parse(cases[k].text, &out), LAM_ERR_INVALID_ARGUMENT, cases[k].msg,
                     cases[k].text);
        cr_assert_null(out, "'%s': out not cleared", cases[k].text);
    }
    lam_initializer *out = NULL;
    assert_error(lam_init_parse(NULL, &out), LAM_ERR_INVALID_ARGUMENT,
                 "lam_init_parse: Invalid argument, text is NULL", "NULL text");
    assert_error(lam_init_parse("zeros", NULL), LAM_ERR_INVALID_ARGUMENT,
                 "lam_init_parse: Invalid argument, out is NULL", "NULL out");
}

/* The argument list goes through the key=value parser that layer attributes and optimizer
 * options use (core/kv.c): the same message grammar ("Repeated <what> 'x'", "Empty <what>",
 * "Missing value for <what> 'x'") with "argument" as the word and the whole text as context, and
 * the same rules (named arguments after positional ones, keys case-sensitive). The layer and
 * trainer tests check the same wording for their attributes and options. */
Test(init, parse_shares_the_key_value_grammar) {
    static const struct {
        const char *text, *msg;
    } cases[] = {
        {"normal(sigma=1, sigma=2)", "lam_init_parse: Repeated argument 'sigma' in "
                                     "'normal(sigma=1, sigma=2)'"},
        {"uniform(0.1,,)", "lam_init_parse: Empty argument in 'uniform(0.1,,)', nothing after "
                           "'0.1,'"},
        {"normal(sigma=)", "lam_init_parse: Missing value for argument 'sigma' in "
                           "'normal(sigma=)', expected a number"},
        {"xavier(=2)", "lam_init_parse: Missing argument name in '=2' in 'xavier(=2)', expected "
                       "name=value"},
        {"xavier(rnd_type=gaussian, in)", "lam_init_parse: Positional argument 'in' in "
                                          "'xavier(rnd_type=gaussian, in)', positional ones "
                                          "come before named ones"},
        {"normal(SIGMA=1)", "lam_init_parse: Unknown argument 'SIGMA' in 'normal(SIGMA=1)', valid "
                            "arguments: sigma"},
        {"xavier(gaussian, [in)", "lam_init_parse: Syntax error in 'xavier(gaussian, [in)', "
                                  "expected one ')' at the end"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        static char poison;
        lam_initializer *out = (lam_initializer *)(void *)&poison;
        assert_error(lam_init_parse(cases[k].text, &out), LAM_ERR_INVALID_ARGUMENT, cases[k].msg,
                     cases[k].text);
        cr_assert_null(out, "'%s': out not cleared", cases[k].text);
    }
}

/* ---- reference counting ------------------------------------------------------------------- */

Test(init, retain_and_destroy_count_references) {
    lam_initializer *i = parse_ok("normal(0.5)");
    cr_assert_eq(lam_initializer_retain(i), i);
    cr_assert_eq(lam_initializer_retain(i), i);
    lam_initializer_release(i);
    lam_initializer_release(i);
    /* One reference left: still usable (ASan would see a use after free otherwise). */
    cr_assert_str_eq(lam_initializer_describe(i), "Normal(sigma=0.5)");
    lam_initializer_release(i); /* freed here; LeakSanitizer checks nothing is left */
    cr_assert_null(lam_initializer_retain(NULL));
    lam_initializer_release(NULL);
}

/* ---- constant values a float cannot hold ------------------------------------------------- */

Test(init, constant_rejects_non_finite_and_out_of_range_values) {
    static const struct {
        const char *text, *msg;
    } cases[] = {
        {"constant(1e99)", "lam_init_parse: Invalid value '1e99' in 'constant(1e99)', must be "
                           "finite and at most 3.40282e+38 in magnitude (float range)"},
        {"constant(-1e39)", "lam_init_parse: Invalid value '-1e39' in 'constant(-1e39)', must be "
                            "finite and at most 3.40282e+38 in magnitude (float range)"},
        {"constant(inf)", "lam_init_parse: Invalid value 'inf' in 'constant(inf)', must be "
                          "finite and at most 3.40282e+38 in magnitude (float range)"},
        {"constant(value=nan)", "lam_init_parse: Invalid value 'nan' in 'constant(value=nan)', "
                                "must be finite and at most 3.40282e+38 in magnitude (float "
                                "range)"},
        {"uniform(1e40)", "lam_init_parse: Invalid scale '1e40' in 'uniform(1e40)', must be "
                          "finite and at most 3.40282e+38 in magnitude (float range)"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        static char poison;
        lam_initializer *out = (lam_initializer *)(void *)&poison;
        assert_error(lam_init_parse(cases[k].text, &out), LAM_ERR_INVALID_ARGUMENT, cases[k].msg,
                     cases[k].text);
        cr_assert_null(out, "'%s': out not cleared", cases[k].text);
    }
    lam_initializer *out = NULL;
    assert_error(lam_init_constant(INFINITY, &out), LAM_ERR_INVALID_ARGUMENT,
                 "lam_init_constant: Invalid value inf, must be finite", "constant inf");
    cr_assert_null(out);
    assert_error(lam_init_constant(-INFINITY, &out), LAM_ERR_INVALID_ARGUMENT,
                 "lam_init_constant: Invalid value -inf, must be finite", "constant -inf");
    assert_error(lam_init_constant(NAN, &out), LAM_ERR_INVALID_ARGUMENT,
                 "lam_init_constant: Invalid value nan, must be finite", "constant nan");
    /* The largest float is fine and fills exactly. */
    lam_initializer *big = parse_ok("constant(3.4e38)");
    float d[2] = {0, 0};
    lam_shape s = SHAPE(2);
    cr_assert_eq(lam__init_fill(big, "c", "c", &s, d, 2), LAM_OK);
    cr_assert(d[0] == 3.4e38f && d[1] == 3.4e38f, "got %g %g", (double)d[0], (double)d[1]);
    lam_initializer_release(big);
}
