/*
 * lamina_bench.c - Lamina's side of the benchmarks in bench/ (driven by bench/run).
 *
 * One program, one subcommand per case. Each call measures ONE sample and prints it as one JSON
 * line: {"ok":true,"case":...,"iters":N,"metrics":{"<name>":seconds per operation,...},...}.
 *
 *   lamina_bench <case> [key=value ...]   one sample, then exit (also handy under perf/callgrind)
 *   lamina_bench serve                    reads "<case> key=value ..." lines from stdin and answers
 *                                         each with one JSON line, so that bench/run can alternate
 *                                         samples of Lamina and of the peer without paying the
 *                                         process start for each of them
 *
 * Common keys: iters=N fixes the iterations of the timed sample (0: calibrate so that a sample
 * lasts at least min_time seconds, default 0.05, after a warm-up of the same length).
 *
 * The timed region always ends with lam_waitall(), so an asynchronous backend is measured
 * for the work it did, not for the work it queued. The clock is CLOCK_MONOTONIC.
 *
 * Raw cblas_sgemm is taken from libopenblas.so.0 opened with RTLD_NOLOAD AFTER Lamina's CPU
 * backend has loaded it: the very library and kernel Lamina uses, with the thread count Lamina
 * gave it (LAMINA_NUM_THREADS).
 */
#define _GNU_SOURCE /* RTLD_DEFAULT, RTLD_NOLOAD */

#include <lamina/lamina.h>

#include <dlfcn.h>
#include <stdarg.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

/* ------------------------------------------------------------------------------------------ */
/* Small helpers                                                                              */
/* ------------------------------------------------------------------------------------------ */

#define MAX_KV      16
#define MAX_METRICS 8

typedef struct kv {
    char key[32];
    char value[256];
} kv;

typedef struct request {
    char name[64];
    kv kvs[MAX_KV];
    int n;
} request;

/* One sample's answer: named seconds-per-operation figures plus free-form info strings. */
typedef struct result {
    int ok;
    int64_t iters;
    const char *metric_names[MAX_METRICS];
    double metric_values[MAX_METRICS];
    int n_metrics;
    char info[1024]; /* already JSON members ("\"a\":1,\"b\":\"x\""), may be empty */
    char error[1024];
} result;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static const char *req_get(const request *r, const char *key, const char *def) {
    for (int i = 0; i < r->n; i++) {
        if (strcmp(r->kvs[i].key, key) == 0) {
            return r->kvs[i].value;
        }
    }
    return def;
}

static int64_t req_int(const request *r, const char *key, int64_t def) {
    const char *s = req_get(r, key, NULL);
    return s != NULL ? strtoll(s, NULL, 10) : def;
}

static double req_double(const request *r, const char *key, double def) {
    const char *s = req_get(r, key, NULL);
    return s != NULL ? strtod(s, NULL) : def;
}

static void add_metric(result *res, const char *name, double value) {
    if (res->n_metrics < MAX_METRICS) {
        res->metric_names[res->n_metrics] = name;
        res->metric_values[res->n_metrics] = value;
        res->n_metrics++;
    }
}

static void add_info(result *res, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void add_info(result *res, const char *fmt, ...) {
    size_t len = strlen(res->info);
    if (len + 2 >= sizeof res->info) {
        return;
    }
    if (len > 0) {
        res->info[len++] = ',';
        res->info[len] = '\0';
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->info + len, sizeof res->info - len, fmt, ap);
    va_end(ap);
}

/* Writes s as a JSON string body (quotes and control characters escaped). */
static void json_escape(FILE *f, const char *s) {
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            fprintf(f, "\\%c", c);
        } else if (c < 0x20) {
            fprintf(f, "\\u%04x", c);
        } else {
            fputc(c, f);
        }
    }
}

static void print_result(const char *name, const result *res) {
    printf("{\"ok\":%s,\"case\":\"", res->ok ? "true" : "false");
    json_escape(stdout, name);
    printf("\",\"iters\":%lld,\"metrics\":{", (long long)res->iters);
    for (int i = 0; i < res->n_metrics; i++) {
        printf("%s\"%s\":%.9g", i ? "," : "", res->metric_names[i], res->metric_values[i]);
    }
    printf("}");
    if (res->info[0] != '\0') {
        printf(",%s", res->info);
    }
    if (!res->ok) {
        printf(",\"error\":\"");
        json_escape(stdout, res->error);
        printf("\"");
    }
    printf("}\n");
    fflush(stdout);
}

/* Records a Lamina failure in res; returns the status so callers can `return fail(...)`. */
static lam_status fail(result *res, lam_status st, const char *what) {
    res->ok = 0;
    snprintf(res->error, sizeof res->error, "%s: %s (%s)", what, lam_last_error(),
             lam_status_string(st));
    return st;
}

#define TRY(call)                                                                                  \
    do {                                                                                           \
        lam_status st_ = (call);                                                                   \
        if (st_ != LAM_OK) {                                                                       \
            fail(res, st_, #call);                                                                 \
            goto done;                                                                             \
        }                                                                                          \
    } while (0)

/* Uniform floats in [lo, hi) from a fixed xorshift stream (the data's values do not matter,
 * only that they are finite, the same on every run, and not all zero). */
static void fill_random(float *p, size_t n, float lo, float hi, uint64_t seed) {
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        p[i] = lo + (hi - lo) * (float)((double)(s >> 40) / (double)(1ull << 24));
    }
}

static lam_status random_tensor(lam_ctx *ctx, int64_t rows, int64_t cols, uint64_t seed,
                                lam_tensor **out) {
    *out = NULL;
    size_t n = (size_t)(rows * cols);
    float *buf = malloc(n * sizeof *buf);
    if (buf == NULL) {
        return lam_set_error(LAM_ERR_OUT_OF_MEMORY, "bench: Out of memory");
    }
    fill_random(buf, n, -1.0f, 1.0f, seed);
    int64_t dims[2] = {rows, cols};
    lam_shape shape;
    lam_shape_init(&shape, cols > 0 ? 2 : 1, dims);
    lam_status st = lam_tensor_from_data(ctx, &shape, buf, n, out);
    free(buf);
    return st;
}

static lam_status label_tensor(lam_ctx *ctx, int64_t batch, int64_t classes, lam_tensor **out) {
    float *buf = malloc((size_t)batch * sizeof *buf);
    if (buf == NULL) {
        return lam_set_error(LAM_ERR_OUT_OF_MEMORY, "bench: Out of memory");
    }
    for (int64_t i = 0; i < batch; i++) {
        buf[i] = (float)((i * 7 + 3) % classes);
    }
    lam_shape shape;
    lam_shape_init(&shape, 1, &batch);
    lam_status st = lam_tensor_from_data(ctx, &shape, buf, (size_t)batch, out);
    free(buf);
    return st;
}

/* ------------------------------------------------------------------------------------------ */
/* The timing harness                                                                         */
/* ------------------------------------------------------------------------------------------ */

/* Runs `iters` iterations of a case; must leave no work queued it did not wait for. */
typedef lam_status (*run_fn)(void *state, int64_t iters);

/*
 * One sample: warm up and calibrate (iterations doubled until a run lasts min_time), then one
 * timed run of enough iterations for min_time. With fixed_iters > 0: one warm-up iteration,
 * then exactly fixed_iters. *seconds is per iteration.
 */
static lam_status measure(run_fn fn, void *state, double min_time, int64_t fixed_iters,
                          double *seconds, int64_t *iters_out) {
    lam_status st;
    int64_t iters = 1;
    if (fixed_iters > 0) {
        if ((st = fn(state, 1)) != LAM_OK || (st = lam_waitall()) != LAM_OK) {
            return st;
        }
        iters = fixed_iters;
    } else {
        for (;;) {
            double t0 = now();
            if ((st = fn(state, iters)) != LAM_OK || (st = lam_waitall()) != LAM_OK) {
                return st;
            }
            double dt = now() - t0;
            if (dt >= min_time) {
                /* aim a bit above min_time so that a quicker timed run still reaches it */
                double want = (double)iters * min_time * 1.2 / dt;
                iters = want < 1.0 ? 1 : (int64_t)ceil(want);
                break;
            }
            iters *= dt < min_time / 16 ? 8 : 2;
        }
    }
    double t0 = now();
    if ((st = fn(state, iters)) != LAM_OK || (st = lam_waitall()) != LAM_OK) {
        return st;
    }
    *seconds = (now() - t0) / (double)iters;
    *iters_out = iters;
    return LAM_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Raw OpenBLAS, the same library the CPU backend loaded                                      */
/* ------------------------------------------------------------------------------------------ */

enum { ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112 };
typedef void (*sgemm_fn)(int, int, int, int, int, int, float, const float *, int, const float *,
                         int, float, float *, int);
typedef char *(*str_fn)(void);
typedef int (*int_fn)(void);

static sgemm_fn g_sgemm;
static str_fn g_corename;
static int_fn g_threads;

/* Makes sure the CPU backend loaded OpenBLAS (a first product does it), then finds it. */
static lam_status load_raw_blas(lam_ctx *cpu) {
    if (g_sgemm != NULL) {
        return LAM_OK;
    }
    lam_tensor *a = NULL, *c = NULL;
    lam_status st = random_tensor(cpu, 64, 64, 1, &a);
    if (st == LAM_OK) {
        st = lam_op_matmul(a, a, 0, 0, &c);
    }
    lam_tensor_release(a);
    lam_tensor_release(c);
    if (st != LAM_OK) {
        return st;
    }
    void *lib = dlopen("libopenblas.so.0", RTLD_NOW | RTLD_NOLOAD);
    if (lib == NULL) {
        return lam_set_error(LAM_ERR_STATE,
                             "bench: libopenblas.so.0 is not loaded after a CPU product; is the "
                             "CPU backend using another BLAS? (%s)",
                             dlerror());
    }
    void *sym = dlsym(lib, "cblas_sgemm");
    memcpy(&g_sgemm, &sym, sizeof g_sgemm);
    sym = dlsym(lib, "openblas_get_corename");
    memcpy(&g_corename, &sym, sizeof g_corename);
    sym = dlsym(lib, "openblas_get_num_threads");
    memcpy(&g_threads, &sym, sizeof g_threads);
    /* the backend keeps its own reference; ours only pins the symbols for the process */
    if (g_sgemm == NULL) {
        return lam_set_error(LAM_ERR_STATE, "bench: libopenblas.so.0 has no cblas_sgemm");
    }
    return LAM_OK;
}

static void raw_blas_info(result *res) {
    add_info(res, "\"raw_kernel\":\"%s\",\"raw_threads\":%d",
             g_corename != NULL ? g_corename() : "unknown", g_threads != NULL ? g_threads() : 0);
}

/* ------------------------------------------------------------------------------------------ */
/* Models                                                                                     */
/* ------------------------------------------------------------------------------------------ */

/* Appends a new layer to seq (created shared with `share` when not NULL); returns the layer,
 * borrowed from seq. */
static lam_status seq_add(lam_block *seq, const char *attrs, lam_block *share, lam_block **added) {
    lam_block *l = NULL;
    lam_status st = share != NULL ? lam_layer_create_shared("Dense", attrs, share, &l)
                                  : lam_layer_create("Dense", attrs, &l);
    if (st == LAM_OK) {
        st = lam_sequential_add(seq, l);
    }
    if (added != NULL) {
        *added = l;
    }
    lam_block_release(l); /* the Sequential holds it */
    return st;
}

/* The chapter's MLP: Dense(hidden, relu) -> Dense(out). */
/* Dense(hidden, relu) [-> Dense(hidden2, relu) when hidden2 > 0] -> Dense(out). */
static lam_status build_mlp(int64_t hidden, int64_t hidden2, int64_t out, lam_block **net) {
    char attrs[96];
    lam_status st = lam_sequential_create(net);
    if (st != LAM_OK) {
        return st;
    }
    snprintf(attrs, sizeof attrs, "units=%lld, activation=relu", (long long)hidden);
    if ((st = seq_add(*net, attrs, NULL, NULL)) == LAM_OK && hidden2 > 0) {
        snprintf(attrs, sizeof attrs, "units=%lld, activation=relu", (long long)hidden2);
        st = seq_add(*net, attrs, NULL, NULL);
    }
    if (st == LAM_OK) {
        snprintf(attrs, sizeof attrs, "units=%lld", (long long)out);
        st = seq_add(*net, attrs, NULL, NULL);
    }
    return st;
}

/* The chapter's shared-parameter MLP: Dense(h, relu) -> shared Dense(h, relu) -> the same
 * shared layer again -> Dense(out). */
static lam_status build_shared(int64_t hidden, int64_t out, lam_block **net) {
    char attrs[96];
    lam_block *shared = NULL;
    lam_status st = lam_sequential_create(net);
    if (st != LAM_OK) {
        return st;
    }
    snprintf(attrs, sizeof attrs, "units=%lld, activation=relu", (long long)hidden);
    if ((st = seq_add(*net, attrs, NULL, NULL)) == LAM_OK &&
        (st = seq_add(*net, attrs, NULL, &shared)) == LAM_OK &&
        (st = seq_add(*net, attrs, shared, NULL)) == LAM_OK) {
        snprintf(attrs, sizeof attrs, "units=%lld", (long long)out);
        st = seq_add(*net, attrs, NULL, NULL);
    }
    return st;
}

static float *alloc_random(size_t n, uint64_t seed);

/* ------------------------------------------------------------------------------------------ */
/* The floor under the MLP forward: the same math by hand, in intrinsics                      */
/* ------------------------------------------------------------------------------------------ */

/*
 * y = relu(x W1^T + b1) W2^T + b2 for x (B, I), W1 (H, I), W2 (O, H), written as a person
 * would by hand for this one shape: the weights stored transposed ahead of time (W1^T (I, H),
 * W2^T (H, O) padded to a register's width), each row of x broadcast one element at a time
 * against rows of W^T, accumulators in registers, no horizontal sums, no checks, no
 * allocation. Widest instruction set of this CPU (lowered by LAMINA_CPU_ISA, as the backend's
 * loops are). What `mlp_forward` is measured against (issue 17: <= 1.5x this floor).
 */
typedef struct floor_state {
    int64_t b, in, hid, out, out_pad;
    float *x, *w1t, *b1, *h, *w2t, *b2, *y;
    int isa; /* 2: AVX-512, 1: AVX2+FMA, 0: plain C */
} floor_state;

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx512f,fma"))) static void floor_avx512(floor_state *s) {
    for (int64_t i = 0; i < s->b; i++) {
        const float *xr = s->x + i * s->in;
        float *hr = s->h + i * s->hid;
        for (int64_t j = 0; j < s->hid; j += 64) {
            __m512 a0 = _mm512_loadu_ps(s->b1 + j), a1 = _mm512_loadu_ps(s->b1 + j + 16);
            __m512 a2 = _mm512_loadu_ps(s->b1 + j + 32), a3 = _mm512_loadu_ps(s->b1 + j + 48);
            for (int64_t k = 0; k < s->in; k++) {
                const __m512 xv = _mm512_set1_ps(xr[k]);
                const float *w = s->w1t + k * s->hid + j;
                a0 = _mm512_fmadd_ps(xv, _mm512_loadu_ps(w), a0);
                a1 = _mm512_fmadd_ps(xv, _mm512_loadu_ps(w + 16), a1);
                a2 = _mm512_fmadd_ps(xv, _mm512_loadu_ps(w + 32), a2);
                a3 = _mm512_fmadd_ps(xv, _mm512_loadu_ps(w + 48), a3);
            }
            const __m512 z = _mm512_setzero_ps();
            _mm512_storeu_ps(hr + j, _mm512_max_ps(a0, z));
            _mm512_storeu_ps(hr + j + 16, _mm512_max_ps(a1, z));
            _mm512_storeu_ps(hr + j + 32, _mm512_max_ps(a2, z));
            _mm512_storeu_ps(hr + j + 48, _mm512_max_ps(a3, z));
        }
        __m512 acc = _mm512_loadu_ps(s->b2);
        for (int64_t k = 0; k < s->hid; k++) {
            acc = _mm512_fmadd_ps(_mm512_set1_ps(hr[k]), _mm512_loadu_ps(s->w2t + k * s->out_pad),
                                  acc);
        }
        _mm512_mask_storeu_ps(s->y + i * s->out, (__mmask16)((1u << s->out) - 1u), acc);
    }
}

__attribute__((target("avx2,fma"))) static void floor_avx2(floor_state *s) {
    for (int64_t i = 0; i < s->b; i++) {
        const float *xr = s->x + i * s->in;
        float *hr = s->h + i * s->hid;
        for (int64_t j = 0; j < s->hid; j += 64) {
            __m256 a[8];
            for (int v = 0; v < 8; v++) {
                a[v] = _mm256_loadu_ps(s->b1 + j + 8 * v);
            }
            for (int64_t k = 0; k < s->in; k++) {
                const __m256 xv = _mm256_set1_ps(xr[k]);
                const float *w = s->w1t + k * s->hid + j;
                for (int v = 0; v < 8; v++) {
                    a[v] = _mm256_fmadd_ps(xv, _mm256_loadu_ps(w + 8 * v), a[v]);
                }
            }
            for (int v = 0; v < 8; v++) {
                _mm256_storeu_ps(hr + j + 8 * v, _mm256_max_ps(a[v], _mm256_setzero_ps()));
            }
        }
        __m256 lo = _mm256_loadu_ps(s->b2), hi = _mm256_loadu_ps(s->b2 + 8);
        for (int64_t k = 0; k < s->hid; k++) {
            const __m256 hv = _mm256_set1_ps(hr[k]);
            lo = _mm256_fmadd_ps(hv, _mm256_loadu_ps(s->w2t + k * s->out_pad), lo);
            hi = _mm256_fmadd_ps(hv, _mm256_loadu_ps(s->w2t + k * s->out_pad + 8), hi);
        }
        float yv[16];
        _mm256_storeu_ps(yv, lo);
        _mm256_storeu_ps(yv + 8, hi);
        memcpy(s->y + i * s->out, yv, (size_t)s->out * sizeof(float));
    }
}
#endif

static void floor_plain(floor_state *s) {
    for (int64_t i = 0; i < s->b; i++) {
        float *hr = s->h + i * s->hid;
        for (int64_t j = 0; j < s->hid; j++) {
            hr[j] = s->b1[j];
        }
        for (int64_t k = 0; k < s->in; k++) {
            const float xv = s->x[i * s->in + k];
            for (int64_t j = 0; j < s->hid; j++) {
                hr[j] += xv * s->w1t[k * s->hid + j];
            }
        }
        for (int64_t j = 0; j < s->hid; j++) {
            hr[j] = hr[j] > 0.0f ? hr[j] : 0.0f;
        }
        for (int64_t o = 0; o < s->out; o++) {
            float acc = s->b2[o];
            for (int64_t k = 0; k < s->hid; k++) {
                acc += hr[k] * s->w2t[k * s->out_pad + o];
            }
            s->y[i * s->out + o] = acc;
        }
    }
}

static lam_status floor_run(void *p, int64_t iters) {
    floor_state *s = p;
    for (int64_t it = 0; it < iters; it++) {
#if defined(__x86_64__) && defined(__GNUC__)
        if (s->isa == 2) {
            floor_avx512(s);
        } else if (s->isa == 1) {
            floor_avx2(s);
        } else
#endif
        {
            floor_plain(s);
        }
        __asm__ volatile("" : : "r"(s->y) : "memory"); /* the result is used */
    }
    return LAM_OK;
}

/* Times the floor for (b, in) -> hid relu -> out; 0 seconds (and no metric) when the shape is
 * not the one the loops are written for (hid a multiple of 64, out <= 16). */
static lam_status measure_floor(int64_t b, int64_t in, int64_t hid, int64_t out, double min_time,
                                int64_t fixed, double *sec, const char **isa_name) {
    *sec = 0;
    if (hid % 64 != 0 || out > 16 || b <= 0 || in <= 0) {
        return LAM_OK;
    }
    floor_state s = {b, in, hid, out, 16, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0};
    const char *cap = getenv("LAMINA_CPU_ISA");
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma") &&
        (cap == NULL || *cap == '\0' || strcmp(cap, "avx512") == 0)) {
        s.isa = 2;
    } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
               (cap == NULL || *cap == '\0' || strcmp(cap, "base") != 0)) {
        s.isa = 1;
    }
#else
    (void)cap;
#endif
    *isa_name = s.isa == 2 ? "AVX-512" : s.isa == 1 ? "AVX2+FMA" : "plain C";
    s.x = alloc_random((size_t)(b * in), 11);
    s.w1t = alloc_random((size_t)(in * hid), 12);
    s.b1 = alloc_random((size_t)hid, 13);
    s.h = calloc((size_t)(b * hid), sizeof(float));
    s.w2t = calloc((size_t)(hid * 16), sizeof(float));
    s.b2 = calloc(16, sizeof(float));
    s.y = calloc((size_t)(b * out), sizeof(float));
    lam_status st = LAM_ERR_OUT_OF_MEMORY;
    if (s.x && s.w1t && s.b1 && s.h && s.w2t && s.b2 && s.y) {
        fill_random(s.w2t, (size_t)(hid * 16), -1.0f, 1.0f, 14);
        for (int64_t k = 0; k < hid; k++) {
            for (int64_t o = out; o < 16; o++) {
                s.w2t[k * 16 + o] = 0.0f; /* padding */
            }
        }
        fill_random(s.b2, (size_t)out, -1.0f, 1.0f, 15);
        int64_t iters = 0;
        st = measure(floor_run, &s, min_time, fixed, sec, &iters);
    }
    free(s.x);
    free(s.w1t);
    free(s.b1);
    free(s.h);
    free(s.w2t);
    free(s.b2);
    free(s.y);
    return st;
}

/* ------------------------------------------------------------------------------------------ */
/* The floor under the shared-parameter step: forward, backward and update by hand            */
/* ------------------------------------------------------------------------------------------ */

/*
 * One SGD step of the chapter's shared-parameter MLP, x (B, I) -> Dense(8, relu) -> shared
 * Dense(8, relu) -> the same shared layer -> Dense(O <= 16), softmax cross-entropy summed over
 * the batch, w -= lr / B * grad: written as a person would by hand for hidden = 8, one AVX2
 * register per hidden row. Forward weights are stored transposed (W^T: a row of x or h is
 * broadcast one element at a time against rows of W^T, no horizontal sums); the backward
 * pass's dh = dz W uses the same weights in their own layout (rows of W), so the shared and
 * the last layer keep both copies and the update writes both. Gradients accumulate in
 * registers' width arrays zeroed per step; exp from libm (ten per sample). What `shared_step`
 * is measured against (issue 17: the step <= 2x this floor).
 */
#define SF_H 8
#define SF_O 16 /* the last layer padded to two registers */
typedef struct step_floor {
    int64_t b, in, out;
    float lr;
    const float *x;
    const int *label;
    float *w1t, *b1;      /* (I, 8), (8) */
    float *wst, *ws, *bs; /* shared: W^T (8, 8), W (8, 8), (8) */
    float *w4t, *w4, *b4; /* last: W^T (8, 16), W (16, 8) (rows >= O zero), (16) */
    float *g1t, *gb1, *gst, *gbs, *g4t, *gb4; /* gradients, the layouts of w1t, b1, wst, ... */
    float *h;                                 /* per sample: h1, h2, h3 (3 x 8) */
} step_floor;

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx2,fma"))) static void step_floor_avx2(step_floor *s) {
    const __m256 z = _mm256_setzero_ps();
    memset(s->g1t, 0, (size_t)s->in * SF_H * sizeof(float));
    memset(s->gb1, 0, SF_H * sizeof(float));
    memset(s->gst, 0, SF_H * SF_H * sizeof(float));
    memset(s->gbs, 0, SF_H * sizeof(float));
    memset(s->g4t, 0, SF_H * SF_O * sizeof(float));
    memset(s->gb4, 0, SF_O * sizeof(float));
    for (int64_t i = 0; i < s->b; i++) {
        const float *xr = s->x + i * s->in;
        float *h1 = s->h, *h2 = s->h + SF_H, *h3 = s->h + 2 * SF_H;
        /* forward */
        __m256 a = _mm256_loadu_ps(s->b1);
        for (int64_t k = 0; k < s->in; k++) {
            a = _mm256_fmadd_ps(_mm256_set1_ps(xr[k]), _mm256_loadu_ps(s->w1t + k * SF_H), a);
        }
        _mm256_storeu_ps(h1, _mm256_max_ps(a, z));
        a = _mm256_loadu_ps(s->bs);
        for (int k = 0; k < SF_H; k++) {
            a = _mm256_fmadd_ps(_mm256_set1_ps(h1[k]), _mm256_loadu_ps(s->wst + k * SF_H), a);
        }
        _mm256_storeu_ps(h2, _mm256_max_ps(a, z));
        a = _mm256_loadu_ps(s->bs);
        for (int k = 0; k < SF_H; k++) {
            a = _mm256_fmadd_ps(_mm256_set1_ps(h2[k]), _mm256_loadu_ps(s->wst + k * SF_H), a);
        }
        _mm256_storeu_ps(h3, _mm256_max_ps(a, z));
        __m256 lo = _mm256_loadu_ps(s->b4), hi = _mm256_loadu_ps(s->b4 + 8);
        for (int k = 0; k < SF_H; k++) {
            const __m256 hv = _mm256_set1_ps(h3[k]);
            lo = _mm256_fmadd_ps(hv, _mm256_loadu_ps(s->w4t + k * SF_O), lo);
            hi = _mm256_fmadd_ps(hv, _mm256_loadu_ps(s->w4t + k * SF_O + 8), hi);
        }
        /* softmax cross-entropy: dy = softmax(y) - onehot(label) */
        float y[SF_O], dy[SF_O] = {0};
        _mm256_storeu_ps(y, lo);
        _mm256_storeu_ps(y + 8, hi);
        float m = y[0], sum = 0;
        for (int64_t o = 1; o < s->out; o++) {
            m = y[o] > m ? y[o] : m;
        }
        for (int64_t o = 0; o < s->out; o++) {
            dy[o] = expf(y[o] - m);
            sum += dy[o];
        }
        const float inv = 1.0f / sum;
        for (int64_t o = 0; o < s->out; o++) {
            dy[o] *= inv;
        }
        dy[s->label[i]] -= 1.0f;
        /* backward: last layer */
        const __m256 dlo = _mm256_loadu_ps(dy), dhi = _mm256_loadu_ps(dy + 8);
        _mm256_storeu_ps(s->gb4, _mm256_add_ps(_mm256_loadu_ps(s->gb4), dlo));
        _mm256_storeu_ps(s->gb4 + 8, _mm256_add_ps(_mm256_loadu_ps(s->gb4 + 8), dhi));
        __m256 dh = z;
        for (int k = 0; k < SF_H; k++) {
            const __m256 hv = _mm256_set1_ps(h3[k]);
            float *g = s->g4t + k * SF_O;
            _mm256_storeu_ps(g, _mm256_fmadd_ps(hv, dlo, _mm256_loadu_ps(g)));
            _mm256_storeu_ps(g + 8, _mm256_fmadd_ps(hv, dhi, _mm256_loadu_ps(g + 8)));
        }
        for (int64_t o = 0; o < s->out; o++) {
            dh = _mm256_fmadd_ps(_mm256_set1_ps(dy[o]), _mm256_loadu_ps(s->w4 + o * SF_H), dh);
        }
        /* the shared layer, twice: dz = dh * (h > 0) */
        const float *hin[2] = {h2, h1}, *hout[2] = {h3, h2};
        for (int u = 0; u < 2; u++) {
            const __m256 mask = _mm256_cmp_ps(_mm256_loadu_ps(hout[u]), z, _CMP_GT_OQ);
            const __m256 dz = _mm256_and_ps(dh, mask);
            _mm256_storeu_ps(s->gbs, _mm256_add_ps(_mm256_loadu_ps(s->gbs), dz));
            float dzv[SF_H];
            _mm256_storeu_ps(dzv, dz);
            dh = z;
            for (int k = 0; k < SF_H; k++) {
                float *g = s->gst + k * SF_H;
                _mm256_storeu_ps(
                    g, _mm256_fmadd_ps(_mm256_set1_ps(hin[u][k]), dz, _mm256_loadu_ps(g)));
                dh = _mm256_fmadd_ps(_mm256_set1_ps(dzv[k]), _mm256_loadu_ps(s->ws + k * SF_H), dh);
            }
        }
        /* the first layer (x needs no gradient) */
        const __m256 dz1 = _mm256_and_ps(dh, _mm256_cmp_ps(_mm256_loadu_ps(h1), z, _CMP_GT_OQ));
        _mm256_storeu_ps(s->gb1, _mm256_add_ps(_mm256_loadu_ps(s->gb1), dz1));
        for (int64_t k = 0; k < s->in; k++) {
            float *g = s->g1t + k * SF_H;
            _mm256_storeu_ps(g, _mm256_fmadd_ps(_mm256_set1_ps(xr[k]), dz1, _mm256_loadu_ps(g)));
        }
    }
    /* update: w -= lr / B * grad, both copies of the shared and the last layer */
    const __m256 sc = _mm256_set1_ps(-s->lr / (float)s->b);
    for (int64_t k = 0; k < s->in; k++) {
        float *w = s->w1t + k * SF_H;
        _mm256_storeu_ps(
            w, _mm256_fmadd_ps(sc, _mm256_loadu_ps(s->g1t + k * SF_H), _mm256_loadu_ps(w)));
    }
    _mm256_storeu_ps(s->b1, _mm256_fmadd_ps(sc, _mm256_loadu_ps(s->gb1), _mm256_loadu_ps(s->b1)));
    _mm256_storeu_ps(s->bs, _mm256_fmadd_ps(sc, _mm256_loadu_ps(s->gbs), _mm256_loadu_ps(s->bs)));
    for (int k = 0; k < SF_H; k++) {
        float *w = s->wst + k * SF_H;
        _mm256_storeu_ps(
            w, _mm256_fmadd_ps(sc, _mm256_loadu_ps(s->gst + k * SF_H), _mm256_loadu_ps(w)));
        for (int j = 0; j < SF_H; j++) {
            s->ws[j * SF_H + k] = w[j];
        }
        float *w4 = s->w4t + k * SF_O;
        _mm256_storeu_ps(
            w4, _mm256_fmadd_ps(sc, _mm256_loadu_ps(s->g4t + k * SF_O), _mm256_loadu_ps(w4)));
        _mm256_storeu_ps(w4 + 8, _mm256_fmadd_ps(sc, _mm256_loadu_ps(s->g4t + k * SF_O + 8),
                                                 _mm256_loadu_ps(w4 + 8)));
        for (int64_t o = 0; o < s->out; o++) {
            s->w4[o * SF_H + k] = w4[o];
        }
    }
    for (int o = 0; o < SF_O; o += 8) {
        _mm256_storeu_ps(s->b4 + o, _mm256_fmadd_ps(sc, _mm256_loadu_ps(s->gb4 + o),
                                                    _mm256_loadu_ps(s->b4 + o)));
    }
}
#endif

static lam_status step_floor_run(void *p, int64_t iters) {
#if defined(__x86_64__) && defined(__GNUC__)
    step_floor *s = p;
    for (int64_t it = 0; it < iters; it++) {
        step_floor_avx2(s);
        __asm__ volatile("" : : "r"(s->w1t) : "memory"); /* the result is used */
    }
    return LAM_OK;
#else
    (void)p;
    (void)iters;
    return LAM_ERR_UNSUPPORTED;
#endif
}

/* Times the step floor for batch b, (b, in) -> 8 -> 8 -> 8 -> out; 0 seconds (no metric) where
 * the loops do not apply (another hidden width, out > 16, no AVX2+FMA, LAMINA_CPU_ISA=base). */
static lam_status measure_step_floor(int64_t b, int64_t in, int64_t hidden, int64_t out,
                                     double min_time, int64_t fixed, double *sec) {
    *sec = 0;
    const char *cap = getenv("LAMINA_CPU_ISA");
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (hidden != SF_H || out > SF_O || out < 1 || b < 1 || in < 1 ||
        !__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma") ||
        (cap != NULL && strcmp(cap, "base") == 0)) {
        return LAM_OK;
    }
#else
    (void)cap;
    (void)b;
    (void)in;
    (void)hidden;
    (void)out;
    (void)min_time;
    (void)fixed;
    return LAM_OK;
#endif
    step_floor s = {b,    in,   out,  0.01f, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
                    NULL, NULL, NULL, NULL,  NULL, NULL, NULL, NULL, NULL, NULL};
    size_t n1 = (size_t)(in * SF_H), nw = 2 * n1 + 2 * SF_H + 3 * SF_H * SF_H + 3 * SF_H * SF_O +
                                          2 * SF_O + 2 * SF_H + 3 * SF_H;
    float *mem = calloc(nw, sizeof(float)), *x = alloc_random((size_t)(b * in), 21);
    int *label = malloc((size_t)b * sizeof *label);
    lam_status st = LAM_ERR_OUT_OF_MEMORY;
    if (mem != NULL && x != NULL && label != NULL) {
        float *p = mem;
        s.w1t = p, p += n1;
        s.g1t = p, p += n1;
        s.b1 = p, p += SF_H;
        s.gb1 = p, p += SF_H;
        s.wst = p, p += SF_H * SF_H;
        s.ws = p, p += SF_H * SF_H;
        s.gst = p, p += SF_H * SF_H;
        s.bs = p, p += SF_H;
        s.gbs = p, p += SF_H;
        s.w4t = p, p += SF_H * SF_O;
        s.w4 = p, p += SF_H * SF_O;
        s.g4t = p, p += SF_H * SF_O;
        s.b4 = p, p += SF_O;
        s.gb4 = p, p += SF_O;
        s.h = p;
        fill_random(s.w1t, n1, -0.3f, 0.3f, 22);
        fill_random(s.wst, SF_H * SF_H, -0.5f, 0.5f, 23);
        fill_random(s.w4t, SF_H * SF_O, -0.5f, 0.5f, 24);
        for (int k = 0; k < SF_H; k++) {
            for (int j = 0; j < SF_H; j++) {
                s.ws[j * SF_H + k] = s.wst[k * SF_H + j];
            }
            for (int o = 0; o < SF_O; o++) {
                if (o >= out) {
                    s.w4t[k * SF_O + o] = 0.0f; /* padding */
                } else {
                    s.w4[o * SF_H + k] = s.w4t[k * SF_O + o];
                }
            }
        }
        for (int64_t i = 0; i < b; i++) {
            label[i] = (int)((i * 7 + 3) % out); /* label_tensor's labels */
        }
        s.x = x;
        s.label = label;
        int64_t iters = 0;
        st = measure(step_floor_run, &s, min_time, fixed, sec, &iters);
    }
    free(mem);
    free(x);
    free(label);
    return st;
}

/* ------------------------------------------------------------------------------------------ */
/* Case: forward of the chapter's MLP                                                         */
/* ------------------------------------------------------------------------------------------ */

typedef struct forward_state {
    lam_block *net;
    lam_tensor *x;
} forward_state;

static lam_status forward_run(void *p, int64_t iters) {
    forward_state *s = p;
    for (int64_t i = 0; i < iters; i++) {
        lam_tensor *y = NULL;
        lam_status st = lam_block_call(s->net, s->x, &y);
        lam_tensor_release(y);
        if (st != LAM_OK) {
            return st;
        }
    }
    return LAM_OK;
}

static void case_mlp_forward(const request *rq, result *res) {
    int64_t batch = req_int(rq, "batch", 2), in = req_int(rq, "in", 20);
    int64_t hidden = req_int(rq, "hidden", 256), out = req_int(rq, "out", 10);
    forward_state s = {NULL, NULL};
    lam_ctx *ctx = NULL;
    double sec = 0;
    TRY(lam_ctx_default(&ctx));
    TRY(build_mlp(hidden, 0, out, &s.net));
    TRY(lam_block_initialize(s.net, NULL, ctx, 0));
    TRY(random_tensor(ctx, batch, in, 2, &s.x));
    TRY(forward_run(&s, 1)); /* completes deferred initialization */
    TRY(measure(forward_run, &s, req_double(rq, "min_time", 0.05), req_int(rq, "iters", 0), &sec,
                &res->iters));
    add_metric(res, "forward", sec);
    /* the same math by hand, in the same run (floor=0 skips it) */
    const char *floor_isa = NULL;
    double floor_sec = 0;
    if (req_int(rq, "floor", 1) != 0) {
        TRY(measure_floor(batch, in, hidden, out, req_double(rq, "min_time", 0.05),
                          req_int(rq, "iters", 0), &floor_sec, &floor_isa));
    }
    if (floor_sec > 0) {
        add_metric(res, "floor", floor_sec);
        add_info(res, "\"ctx\":\"%s\",\"floor_isa\":\"%s\"", lam_ctx_name(ctx), floor_isa);
    } else {
        add_info(res, "\"ctx\":\"%s\"", lam_ctx_name(ctx));
    }
done:
    lam_tensor_release(s.x);
    lam_block_release(s.net);
}

/* ------------------------------------------------------------------------------------------ */
/* Case: forward + backward of one ABI 2.0 test layer (tests/plugins2, the GELU example)       */
/* ------------------------------------------------------------------------------------------ */

typedef struct layer_state {
    lam_block *layer;
    lam_tensor *x;
} layer_state;

/* Recorded forward, sum, backward: what a training step costs the layer (no optimizer). */
static lam_status layer_run(void *p, int64_t iters) {
    layer_state *s = p;
    for (int64_t i = 0; i < iters; i++) {
        lam_tensor *y = NULL, *loss = NULL;
        int was = lam_autograd_record_begin(1);
        lam_status st = lam_block_forward(s->layer, 1, &s->x, &y);
        if (st == LAM_OK) {
            st = lam_op_sum(y, NULL, 0, 0, &loss);
        }
        lam_autograd_record_end(was);
        if (st == LAM_OK) {
            st = lam_autograd_backward(loss, NULL);
        }
        lam_tensor_release(y);
        lam_tensor_release(loss);
        if (st != LAM_OK) {
            return st;
        }
    }
    return LAM_OK;
}

/* kind=layernorm|conv|maxpool|embedding|dropout|gelu at issue 14's sizes (smaller with small=1). */
static void case_layer2(const request *rq, result *res) {
    const char *kind = req_get(rq, "kind", "layernorm");
    int small = req_int(rq, "small", 0) != 0;
    layer_state s = {NULL, NULL};
    lam_ctx *ctx = NULL;
    double sec = 0;
    float *data = NULL;
    TRY(lam_ctx_default(&ctx));
    lam_shape shape = {.ndim = 2, .dims = {small ? 8 : 256, small ? 16 : 512}};
    const char *type = "TLayerNorm", *attrs = NULL;
    if (strcmp(kind, "conv") == 0) {
        shape = (lam_shape){
            .ndim = 4, .dims = {small ? 2 : 32, small ? 4 : 16, small ? 8 : 28, small ? 8 : 28}};
        type = "TConv3x3";
        attrs = small ? "channels=4" : "channels=32";
    } else if (strcmp(kind, "maxpool") == 0) {
        shape = (lam_shape){
            .ndim = 4, .dims = {small ? 2 : 32, small ? 4 : 32, small ? 8 : 28, small ? 8 : 28}};
        type = "TMaxPool";
        attrs = "pool_size=2, strides=2";
    } else if (strcmp(kind, "embedding") == 0) {
        shape = (lam_shape){.ndim = 1, .dims = {small ? 16 : 1024}};
        type = "TEmbedding";
        attrs = small ? "input_dim=100, output_dim=8" : "input_dim=10000, output_dim=128";
    } else if (strcmp(kind, "dropout") == 0) {
        type = "TDropout";
        attrs = "rate=0.5";
    } else if (strcmp(kind, "gelu") == 0) {
        type = "GELU";
    } else if (strcmp(kind, "layernorm") != 0) {
        snprintf(res->error, sizeof res->error, "layer2: unknown kind '%s'", kind);
        return;
    }
    TRY(lam_layer_create(type, attrs, &s.layer));
    TRY(lam_block_initialize(s.layer, NULL, ctx, 0));
    int64_t n = 1;
    for (uint32_t i = 0; i < shape.ndim; i++) {
        n *= shape.dims[i];
    }
    if (strcmp(kind, "embedding") == 0) {
        int32_t *idx = malloc((size_t)n * sizeof *idx);
        TRY(idx ? LAM_OK : LAM_ERR_OUT_OF_MEMORY);
        for (int64_t i = 0; i < n; i++) {
            idx[i] = (int32_t)((i * 7919) % (small ? 100 : 10000));
        }
        lam_status st = lam_tensor_create_dtype(ctx, LAM_DTYPE_I32, &shape, &s.x);
        if (st == LAM_OK) {
            st = lam_tensor_write_bytes(s.x, idx, (size_t)n * sizeof *idx);
        }
        free(idx);
        TRY(st);
    } else {
        data = malloc((size_t)n * sizeof *data);
        TRY(data ? LAM_OK : LAM_ERR_OUT_OF_MEMORY);
        for (int64_t i = 0; i < n; i++) {
            data[i] = (float)sin(0.37 * (double)i);
        }
        TRY(lam_tensor_from_data(ctx, &shape, data, (size_t)n, &s.x));
        TRY(lam_tensor_attach_grad(s.x));
    }
    TRY(layer_run(&s, 1)); /* completes deferred initialization */
    TRY(measure(layer_run, &s, req_double(rq, "min_time", 0.05), req_int(rq, "iters", 0), &sec,
                &res->iters));
    add_metric(res, "fwdbwd", sec);
    add_info(res, "\"ctx\":\"%s\",\"layer\":\"%s\"", lam_ctx_name(ctx), type);
done:
    free(data);
    lam_tensor_release(s.x);
    lam_block_release(s.layer);
}

/* ------------------------------------------------------------------------------------------ */
/* Cases: one SGD step (shared-parameter MLP, batch 2; 784-256-10 MLP, batch 256)             */
/* ------------------------------------------------------------------------------------------ */

typedef struct step_state {
    lam_block *net;
    lam_param_list *params;
    lam_trainer *trainer;
    lam_tensor *x;
    lam_tensor *y;
    int64_t batch;
} step_state;

/* Gluon's loop body: record forward and loss, backward, trainer.step(batch). */
static lam_status step_run(void *p, int64_t iters) {
    step_state *s = p;
    for (int64_t i = 0; i < iters; i++) {
        lam_tensor *out = NULL, *loss = NULL;
        lam_autograd_set_recording(1);
        lam_status st = lam_block_call(s->net, s->x, &out);
        if (st == LAM_OK) {
            st = lam_loss_softmax_cross_entropy(out, s->y, &loss);
        }
        lam_autograd_set_recording(0);
        if (st == LAM_OK) {
            st = lam_autograd_backward(loss, NULL);
        }
        if (st == LAM_OK) {
            st = lam_trainer_step(s->trainer, s->batch);
        }
        lam_tensor_release(out);
        lam_tensor_release(loss);
        if (st != LAM_OK) {
            return st;
        }
    }
    return LAM_OK;
}

static void run_step_case(const request *rq, result *res, int shared, int64_t def_batch,
                          int64_t def_in, int64_t def_hidden) {
    step_state s = {NULL, NULL, NULL, NULL, NULL, 0};
    s.batch = req_int(rq, "batch", def_batch);
    int64_t in = req_int(rq, "in", def_in), hidden = req_int(rq, "hidden", def_hidden);
    int64_t out = req_int(rq, "out", 10);
    lam_ctx *ctx = NULL;
    double sec = 0;
    TRY(lam_ctx_default(&ctx));
    TRY(shared ? build_shared(hidden, out, &s.net)
               : build_mlp(hidden, req_int(rq, "hidden2", 0), out, &s.net));
    TRY(lam_block_initialize(s.net, NULL, ctx, 0));
    TRY(random_tensor(ctx, s.batch, in, 3, &s.x));
    TRY(label_tensor(ctx, s.batch, out, &s.y));
    lam_tensor *first = NULL;
    TRY(lam_block_call(s.net, s.x, &first)); /* completes deferred initialization */
    lam_tensor_release(first);
    TRY(lam_block_collect_params(s.net, NULL, &s.params));
    TRY(lam_trainer_create(s.params, "sgd", "learning_rate=0.01", &s.trainer));
    TRY(measure(step_run, &s, req_double(rq, "min_time", 0.05), req_int(rq, "iters", 0), &sec,
                &res->iters));
    add_metric(res, "step", sec);
    add_info(res, "\"ctx\":\"%s\",\"n_params\":%zu", lam_ctx_name(ctx),
             lam_param_list_count(s.params));
done:
    lam_trainer_destroy(s.trainer);
    lam_param_list_destroy(s.params);
    lam_tensor_release(s.x);
    lam_tensor_release(s.y);
    lam_block_release(s.net);
}

static void case_shared_step(const request *rq, result *res) {
    run_step_case(rq, res, 1, 2, 20, 8);
    /* forward, backward and update by hand, in the same run (floor=0 skips it) */
    double floor_sec = 0;
    if (res->error[0] == '\0' && req_int(rq, "floor", 1) != 0) {
        TRY(measure_step_floor(req_int(rq, "batch", 2), req_int(rq, "in", 20),
                               req_int(rq, "hidden", 8), req_int(rq, "out", 10),
                               req_double(rq, "min_time", 0.05), req_int(rq, "iters", 0),
                               &floor_sec));
    }
    if (floor_sec > 0) {
        add_metric(res, "floor", floor_sec);
    }
done:
    return;
}

static void case_mlp_step(const request *rq, result *res) {
    run_step_case(rq, res, 0, 256, 784, 256);
}

/* ------------------------------------------------------------------------------------------ */
/* Case: the GEMMs of the 784-256-10 step alone, through raw cblas_sgemm                      */
/* ------------------------------------------------------------------------------------------ */

/*
 * Forward Z = X W1^T (B x H, k = I) and Y = A W2^T (B x O, k = H); backward dW2 = dY^T A
 * (O x H, k = B), dA = dY W2 (B x H, k = O) and dW1 = dZ^T X (H x I, k = B). The gradient of
 * the input is not needed, so a step needs these five products and nothing more. With a
 * second hidden layer (H2 > 0: X -> H -> H2 -> O) the same per layer: 3 forward products,
 * 3 weight gradients and the 2 hidden gradients, eight.
 */
typedef struct gemms_state {
    int b, i, h, h2, o;
    float *x, *w1, *z, *w2, *y, *dw2, *da, *dw1;
    float *w3, *z2, *dw3, *da2; /* the second hidden layer's (H2 > 0) */
} gemms_state;

static lam_status gemms_run(void *p, int64_t iters) {
    gemms_state *s = p;
    int b = s->b, i = s->i, h = s->h, h2 = s->h2, o = s->o;
    for (int64_t it = 0; it < iters; it++) {
        g_sgemm(ROW_MAJOR, NO_TRANS, TRANS, b, h, i, 1.0f, s->x, i, s->w1, i, 0.0f, s->z, h);
        if (h2 > 0) {
            g_sgemm(ROW_MAJOR, NO_TRANS, TRANS, b, h2, h, 1.0f, s->z, h, s->w3, h, 0.0f, s->z2, h2);
            g_sgemm(ROW_MAJOR, NO_TRANS, TRANS, b, o, h2, 1.0f, s->z2, h2, s->w2, h2, 0.0f, s->y,
                    o);
            g_sgemm(ROW_MAJOR, TRANS, NO_TRANS, o, h2, b, 1.0f, s->y, o, s->z2, h2, 0.0f, s->dw2,
                    h2);
            g_sgemm(ROW_MAJOR, NO_TRANS, NO_TRANS, b, h2, o, 1.0f, s->y, o, s->w2, h2, 0.0f, s->da2,
                    h2);
            g_sgemm(ROW_MAJOR, TRANS, NO_TRANS, h2, h, b, 1.0f, s->da2, h2, s->z, h, 0.0f, s->dw3,
                    h);
            g_sgemm(ROW_MAJOR, NO_TRANS, NO_TRANS, b, h, h2, 1.0f, s->da2, h2, s->w3, h, 0.0f,
                    s->da, h);
        } else {
            g_sgemm(ROW_MAJOR, NO_TRANS, TRANS, b, o, h, 1.0f, s->z, h, s->w2, h, 0.0f, s->y, o);
            g_sgemm(ROW_MAJOR, TRANS, NO_TRANS, o, h, b, 1.0f, s->y, o, s->z, h, 0.0f, s->dw2, h);
            g_sgemm(ROW_MAJOR, NO_TRANS, NO_TRANS, b, h, o, 1.0f, s->y, o, s->w2, h, 0.0f, s->da,
                    h);
        }
        g_sgemm(ROW_MAJOR, TRANS, NO_TRANS, h, i, b, 1.0f, s->da, h, s->x, i, 0.0f, s->dw1, i);
    }
    return LAM_OK;
}

static float *alloc_random(size_t n, uint64_t seed) {
    float *p = malloc(n * sizeof *p);
    if (p != NULL) {
        fill_random(p, n, -1.0f, 1.0f, seed);
    }
    return p;
}

static void case_step_gemms(const request *rq, result *res) {
    gemms_state s;
    memset(&s, 0, sizeof s);
    s.b = (int)req_int(rq, "batch", 256);
    s.i = (int)req_int(rq, "in", 784);
    s.h = (int)req_int(rq, "hidden", 256);
    s.o = (int)req_int(rq, "out", 10);
    s.h2 = (int)req_int(rq, "hidden2", 0);
    size_t b = (size_t)s.b, i = (size_t)s.i, h = (size_t)s.h, o = (size_t)s.o;
    size_t h2 = s.h2 > 0 ? (size_t)s.h2 : 0, last = h2 ? h2 : h; /* what the output layer takes */
    lam_ctx *cpu = NULL;
    double sec = 0;
    TRY(lam_ctx_get("cpu", &cpu));
    TRY(load_raw_blas(cpu));
    s.x = alloc_random(b * i, 1);
    s.w1 = alloc_random(h * i, 2);
    s.z = alloc_random(b * h, 3);
    s.w2 = alloc_random(o * last, 4);
    s.y = alloc_random(b * o, 5);
    s.dw2 = alloc_random(o * last, 6);
    s.da = alloc_random(b * h, 7);
    s.dw1 = alloc_random(h * i, 8);
    if (h2) {
        s.w3 = alloc_random(h2 * h, 9);
        s.z2 = alloc_random(b * h2, 10);
        s.dw3 = alloc_random(h2 * h, 11);
        s.da2 = alloc_random(b * h2, 12);
    }
    if (!s.x || !s.w1 || !s.z || !s.w2 || !s.y || !s.dw2 || !s.da || !s.dw1 ||
        (h2 && (!s.w3 || !s.z2 || !s.dw3 || !s.da2))) {
        TRY(lam_set_error(LAM_ERR_OUT_OF_MEMORY, "bench: Out of memory"));
    }
    TRY(measure(gemms_run, &s, req_double(rq, "min_time", 0.05), req_int(rq, "iters", 0), &sec,
                &res->iters));
    add_metric(res, "gemms", sec);
    raw_blas_info(res);
done:
    free(s.x);
    free(s.w1);
    free(s.z);
    free(s.w2);
    free(s.y);
    free(s.dw2);
    free(s.da);
    free(s.dw1);
    free(s.w3);
    free(s.z2);
    free(s.dw3);
    free(s.da2);
}

/* ------------------------------------------------------------------------------------------ */
/* Case: square GEMM through lam_op_matmul and through raw cblas_sgemm                        */
/* ------------------------------------------------------------------------------------------ */

typedef struct gemm_state {
    lam_tensor *a, *b;
    float *ha, *hb, *hc;
    int n;
} gemm_state;

static lam_status gemm_lamina_run(void *p, int64_t iters) {
    gemm_state *s = p;
    for (int64_t i = 0; i < iters; i++) {
        lam_tensor *c = NULL;
        lam_status st = lam_op_matmul(s->a, s->b, 0, 0, &c);
        lam_tensor_release(c);
        if (st != LAM_OK) {
            return st;
        }
    }
    return LAM_OK;
}

static lam_status gemm_raw_run(void *p, int64_t iters) {
    gemm_state *s = p;
    int n = s->n;
    for (int64_t i = 0; i < iters; i++) {
        g_sgemm(ROW_MAJOR, NO_TRANS, NO_TRANS, n, n, n, 1.0f, s->ha, n, s->hb, n, 0.0f, s->hc, n);
    }
    return LAM_OK;
}

/* Largest |lamina - reference| over the largest |reference|. */
static lam_status gemm_check(gemm_state *s, const float *ref, double *rel_err) {
    size_t nn = (size_t)s->n * (size_t)s->n;
    float *got = malloc(nn * sizeof *got);
    lam_tensor *c = NULL;
    lam_status st = got != NULL ? lam_op_matmul(s->a, s->b, 0, 0, &c) : LAM_ERR_OUT_OF_MEMORY;
    if (st == LAM_OK) {
        st = lam_tensor_read(c, got, nn);
    }
    if (st == LAM_OK) {
        double diff = 0, mag = 0;
        for (size_t i = 0; i < nn; i++) {
            diff = fmax(diff, fabs((double)got[i] - (double)ref[i]));
            mag = fmax(mag, fabs((double)ref[i]));
        }
        *rel_err = mag > 0 ? diff / mag : diff;
    }
    lam_tensor_release(c);
    free(got);
    return st;
}

/* Reference product in double on the host, for backends other than the CPU (and the smoke). */
static void naive_gemm(const float *a, const float *b, float *c, int n) {
    for (int r = 0; r < n; r++) {
        for (int col = 0; col < n; col++) {
            double acc = 0;
            for (int k = 0; k < n; k++) {
                acc += (double)a[(size_t)r * (size_t)n + (size_t)k] *
                       (double)b[(size_t)k * (size_t)n + (size_t)col];
            }
            c[(size_t)r * (size_t)n + (size_t)col] = (float)acc;
        }
    }
}

static void case_gemm(const request *rq, result *res) {
    gemm_state s;
    memset(&s, 0, sizeof s);
    s.n = (int)req_int(rq, "n", 256);
    int do_raw = (int)req_int(rq, "raw", 1);
    double min_time = req_double(rq, "min_time", 0.05);
    int64_t fixed = req_int(rq, "iters", 0);
    size_t nn = (size_t)s.n * (size_t)s.n;
    lam_ctx *ctx = NULL, *cpu = NULL;
    double sec = 0, rel = 0;
    int64_t it = 0;
    TRY(lam_ctx_default(&ctx));
    int on_cpu = strcmp(lam_ctx_backend(ctx), "cpu") == 0;
    s.ha = alloc_random(nn, 11);
    s.hb = alloc_random(nn, 12);
    s.hc = calloc(nn, sizeof *s.hc);
    if (!s.ha || !s.hb || !s.hc) {
        TRY(lam_set_error(LAM_ERR_OUT_OF_MEMORY, "bench: Out of memory"));
    }
    int64_t dims[2] = {s.n, s.n};
    lam_shape shape;
    lam_shape_init(&shape, 2, dims);
    TRY(lam_tensor_from_data(ctx, &shape, s.ha, nn, &s.a));
    TRY(lam_tensor_from_data(ctx, &shape, s.hb, nn, &s.b));
    if (do_raw && on_cpu) {
        TRY(lam_ctx_get("cpu", &cpu));
        TRY(load_raw_blas(cpu));
    }
    /* Alternate inside the sample too, each side calibrated on its own; which goes first
     * changes with the round (key round=) so that neither always runs on a warmer cache. */
    int raw_first = do_raw && on_cpu && (req_int(rq, "round", 0) % 2) == 1;
    for (int side = 0; side < 2; side++) {
        int raw = (side == 0) == raw_first;
        if (raw && !(do_raw && on_cpu)) {
            continue;
        }
        TRY(measure(raw ? gemm_raw_run : gemm_lamina_run, &s, min_time, fixed, &sec, &it));
        add_metric(res, raw ? "raw" : "lamina", sec);
        if (!raw) {
            res->iters = it;
        }
    }
    if (do_raw && on_cpu) {
        raw_blas_info(res);
    }
    if (req_int(rq, "check", 0)) {
        if (!(do_raw && on_cpu)) { /* s.hc holds no product yet */
            naive_gemm(s.ha, s.hb, s.hc, s.n);
        }
        TRY(gemm_check(&s, s.hc, &rel));
        add_info(res, "\"check_rel_err\":%.3g", rel);
        if (!(rel < 1e-4)) {
            res->ok = 0;
            snprintf(res->error, sizeof res->error,
                     "gemm n=%d on %s: result differs from the reference, max relative error %g",
                     s.n, lam_ctx_name(ctx), rel);
        }
    }
    add_info(res, "\"ctx\":\"%s\"", lam_ctx_name(ctx));
done:
    lam_tensor_release(s.a);
    lam_tensor_release(s.b);
    free(s.ha);
    free(s.hb);
    free(s.hc);
}

/* ------------------------------------------------------------------------------------------ */
/* Case: save and load a model's parameters                                                   */
/* ------------------------------------------------------------------------------------------ */

/* Looked up at run time so that the bench builds and runs before serialization lands. */
typedef lam_status (*save_fn)(lam_block *, const char *);
typedef lam_status (*load_fn)(lam_block *, const char *, const lam_load_options *);

typedef struct saveload_state {
    lam_block *net;
    const char *path;
    save_fn save;
    load_fn load;
    lam_load_options opts;
    lam_status (*load_mapped)(const char *, lam_ctx *, lam_tensor_dict **);
} saveload_state;

static lam_status save_run(void *p, int64_t iters) {
    saveload_state *s = p;
    for (int64_t i = 0; i < iters; i++) {
        lam_status st = s->save(s->net, s->path);
        if (st != LAM_OK) {
            return st;
        }
    }
    return LAM_OK;
}

static lam_status load_run(void *p, int64_t iters) {
    saveload_state *s = p;
    for (int64_t i = 0; i < iters; i++) {
        lam_status st = s->load(s->net, s->path, &s->opts);
        if (st != LAM_OK) {
            return st;
        }
    }
    return LAM_OK;
}

/* Zero-copy load of the same file (s->load_mapped: lam_load_mapped, header, mapping and
 * tensors over it, no data read; or lam_load_mapped_verified, the same after a CRC32C of every
 * byte over the mapping); the dict and its mapping released again. */
static lam_status load_mapped_run(void *p, int64_t iters) {
    saveload_state *s = p;
    for (int64_t i = 0; i < iters; i++) {
        lam_tensor_dict *d = NULL;
        lam_status st = s->load_mapped(s->path, NULL, &d);
        lam_tensor_dict_destroy(d);
        if (st != LAM_OK) {
            return st;
        }
    }
    return LAM_OK;
}

static void case_saveload(const request *rq, result *res) {
    saveload_state s;
    memset(&s, 0, sizeof s);
    lam_load_options defaults = LAM_LOAD_OPTIONS_INIT;
    s.opts = defaults;
    int64_t layers = req_int(rq, "layers", 4), units = req_int(rq, "units", 2500);
    const char *dir = req_get(rq, "dir", "/tmp");
    char path[512];
    snprintf(path, sizeof path, "%s/lamina_bench_params.safetensors", dir);
    s.path = path;
    void *sym = dlsym(RTLD_DEFAULT, "lam_block_save_parameters");
    memcpy(&s.save, &sym, sizeof s.save);
    sym = dlsym(RTLD_DEFAULT, "lam_block_load_parameters");
    memcpy(&s.load, &sym, sizeof s.load);
    if (s.save == NULL || s.load == NULL) {
        add_info(res, "\"unavailable\":\"not available in this build (liblamina has no "
                      "lam_block_save_parameters/lam_block_load_parameters)\"");
        return;
    }
    lam_ctx *ctx = NULL;
    lam_initializer *init = NULL;
    double sec = 0;
    int64_t it = 0;
    char attrs[128];
    snprintf(attrs, sizeof attrs, "units=%lld, in_units=%lld, use_bias=false", (long long)units,
             (long long)units);
    TRY(lam_ctx_default(&ctx));
    TRY(lam_sequential_create(&s.net));
    for (int64_t i = 0; i < layers; i++) {
        TRY(seq_add(s.net, attrs, NULL, NULL));
    }
    /* a constant start: the values do not change the cost of writing or reading them, and
     * drawing 25 M random numbers would dominate a profile of one phase */
    TRY(lam_init_constant(0.5f, &init));
    TRY(lam_block_initialize(s.net, init, ctx, 0));
    double min_time = req_double(rq, "min_time", 0.05);
    int64_t fixed = req_int(rq, "iters", 0);
    /* phase=save or phase=load times only that one (for profiling); load needs a file */
    const char *phase = req_get(rq, "phase", "both");
    int do_load = strcmp(phase, "save") != 0, do_save = strcmp(phase, "load") != 0;
    if (do_save) {
        TRY(measure(save_run, &s, min_time, fixed, &sec, &it));
        add_metric(res, "save", sec);
        res->iters = it;
    } else {
        TRY(s.save(s.net, s.path));
    }
    if (do_load) {
        TRY(measure(load_run, &s, min_time, fixed, &sec, &it));
        add_metric(res, "load", sec);
        /* the mapped loads, each where this build has it: symbol, then metric */
        static const char *const mapped[][2] = {
            {"lam_load_mapped", "load_mapped"},
            {"lam_load_mapped_verified", "load_mapped_verified"}};
        for (size_t m = 0; m < sizeof mapped / sizeof mapped[0]; m++) {
            sym = dlsym(RTLD_DEFAULT, mapped[m][0]);
            memcpy(&s.load_mapped, &sym, sizeof s.load_mapped);
            if (s.load_mapped != NULL) {
                int64_t mit = 0;
                TRY(measure(load_mapped_run, &s, min_time, fixed, &sec, &mit));
                add_metric(res, mapped[m][1], sec);
            }
        }
    }
    add_info(res, "\"bytes\":%lld,\"load_iters\":%lld",
             (long long)(layers * units * units * (int64_t)sizeof(float)), (long long)it);
done:
    remove(path);
    lam_initializer_release(init);
    lam_block_release(s.net);
}

/* ------------------------------------------------------------------------------------------ */
/* Case: the CPU's clock and FMA peak                                                         */
/* ------------------------------------------------------------------------------------------ */

#if defined(__x86_64__) && defined(__GNUC__)
/*
 * 20 dependent 64-bit imuls per loop trip, 3 cycles each on every Intel core since Nehalem:
 * trips * 60 / seconds is the clock. (A chain of "add $1" would overstate it: Golden Cove
 * folds immediate adds at rename.)
 */
static uint64_t imul_chain(uint64_t trips) {
    uint64_t x = 3, m = 1;
    for (uint64_t t = 0; t < trips; t++) {
        __asm__ volatile(".rept 20\n\timul %1, %0\n\t.endr" : "+r"(x) : "r"(m));
    }
    return x;
}

/*
 * 12 independent FMA chains: enough to hide a 4-cycle latency on two FMA ports. One loop per
 * register width; the CPU's widest (lowered by LAMINA_CPU_ISA, as the backend's loops are) is
 * measured. Nominal peaks: AVX-512 2 x 16 floats x 2 flops = 64 per cycle, AVX2+FMA 2 x 8 x 2 =
 * 32 per cycle (Haswell .. Zen 3); a core with one 512-bit FMA unit measures half of 64.
 */
#define FMA_CHAINS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#define FMA_DECL(j)   VT acc##j = SET1((float)(j + 1));
#define FMA_STEP(j)   acc##j = FMADD(acc##j, m, a);
#define FMA_SUM(j)    sum += REDUCE(acc##j);

#define VT     __m512
#define SET1   _mm512_set1_ps
#define FMADD  _mm512_fmadd_ps
#define REDUCE _mm512_reduce_add_ps
__attribute__((target("avx512f,fma"))) static float fma_loop_avx512(uint64_t trips, float mv) {
    VT m = SET1(mv), a = SET1(1e-7f);
    FMA_CHAINS(FMA_DECL)
    for (uint64_t t = 0; t < trips; t++) {
        FMA_CHAINS(FMA_STEP)
    }
    float sum = 0;
    FMA_CHAINS(FMA_SUM)
    return sum;
}
#undef VT
#undef SET1
#undef FMADD
#undef REDUCE

__attribute__((target("avx2,fma"))) static float hsum256(__m256 v) {
    float l[8];
    _mm256_storeu_ps(l, v);
    return l[0] + l[1] + l[2] + l[3] + l[4] + l[5] + l[6] + l[7];
}

#define VT     __m256
#define SET1   _mm256_set1_ps
#define FMADD  _mm256_fmadd_ps
#define REDUCE hsum256
__attribute__((target("avx2,fma"))) static float fma_loop_avx2(uint64_t trips, float mv) {
    VT m = SET1(mv), a = SET1(1e-7f);
    FMA_CHAINS(FMA_DECL)
    for (uint64_t t = 0; t < trips; t++) {
        FMA_CHAINS(FMA_STEP)
    }
    float sum = 0;
    FMA_CHAINS(FMA_SUM)
    return sum;
}
#undef VT
#undef SET1
#undef FMADD
#undef REDUCE
#endif

static void case_fma_peak(const request *rq, result *res) {
#if defined(__x86_64__) && defined(__GNUC__)
    double min_time = req_double(rq, "min_time", 0.05);
    uint64_t trips = 1000;
    double dt = 0;
    for (;;) {
        double t0 = now();
        volatile uint64_t sink = imul_chain(trips);
        (void)sink;
        dt = now() - t0;
        if (dt >= min_time) {
            break;
        }
        trips *= 2;
    }
    double hz = (double)trips * 60.0 / dt;
    add_metric(res, "clock_hz", hz);
    __builtin_cpu_init();
    const char *cap = getenv("LAMINA_CPU_ISA");
    int avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma") &&
                 (cap == NULL || *cap == '\0' || strcmp(cap, "avx512") == 0);
    int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
               (cap == NULL || strcmp(cap, "base") != 0);
    if (avx512 || avx2) {
        const int lanes = avx512 ? 16 : 8;
        trips = 1000;
        for (;;) {
            double t0 = now();
            volatile float sink =
                avx512 ? fma_loop_avx512(trips, 0.999999f) : fma_loop_avx2(trips, 0.999999f);
            (void)sink;
            dt = now() - t0;
            if (dt >= min_time) {
                break;
            }
            trips *= 2;
        }
        /* 12 FMAs of `lanes` floats, 2 flops each, per trip */
        add_metric(res, "fma_flops", (double)trips * 12.0 * lanes * 2.0 / dt);
        add_info(res, "\"isa\":\"%s\",\"nominal_flops_per_cycle\":%d",
                 avx512 ? "AVX-512" : "AVX2+FMA", 2 * lanes * 2);
    } else {
        add_info(res, "\"isa\":\"SSE\",\"nominal_flops_per_cycle\":0");
    }
    res->iters = 1;
#else
    (void)rq;
    add_info(res, "\"unavailable\":\"not an x86-64 build\"");
#endif
}

/* ------------------------------------------------------------------------------------------ */
/* Case: which backends and devices there are (for the Vulkan case)                           */
/* ------------------------------------------------------------------------------------------ */

static void case_backends(const request *rq, result *res) {
    (void)rq;
    size_t n = lam_backend_count();
    char list[768] = "";
    size_t len = 0;
    for (size_t i = 0; i < n && len + 2 < sizeof list; i++) {
        const char *name = NULL, *why = NULL;
        uint32_t devs = 0;
        if (lam_backend_get(i, &name, &devs, &why) != LAM_OK) {
            continue;
        }
        char dev[160] = "";
        if (devs > 0) {
            lam_device_info info = LAM_DEVICE_INFO_INIT;
            if (lam_backend_device_info(i, 0, &info) == LAM_OK) {
                snprintf(dev, sizeof dev, "%s", info.name);
            }
        }
        /* names, device names and reasons come from plugins: keep quotes out of the JSON */
        for (char *c = dev; *c; c++) {
            *c = (*c == '"' || *c == '\\' || (unsigned char)*c < 0x20) ? ' ' : *c;
        }
        char why_clean[200];
        snprintf(why_clean, sizeof why_clean, "%s", why != NULL ? why : "");
        for (char *c = why_clean; *c; c++) {
            *c = (*c == '"' || *c == '\\' || (unsigned char)*c < 0x20) ? ' ' : *c;
        }
        len +=
            (size_t)snprintf(list + len, sizeof list - len,
                             "%s{\"name\":\"%s\",\"devices\":%u,\"device0\":\"%s\",\"why\":\"%s\"}",
                             i ? "," : "", name, devs, dev, why_clean);
    }
    if (len >= sizeof list) {
        snprintf(list, sizeof list, "{\"name\":\"(list too long)\"}");
    }
    add_info(res, "\"backends\":[%s]", list);
    res->iters = 1;
}

/* ------------------------------------------------------------------------------------------ */
/* Cases: process start (bench/run times the whole process; these are its bodies)             */
/* ------------------------------------------------------------------------------------------ */

/* A CPU-only program: the first call starts the runtime, then one context and one tensor. */
static void case_start(const request *rq, result *res) {
    (void)rq;
    double t0 = now();
    lam_ctx *ctx = NULL;
    lam_tensor *t = NULL;
    int64_t dims[2] = {2, 3};
    lam_shape shape;
    lam_shape_init(&shape, 2, dims);
    TRY(lam_ctx_get("cpu", &ctx));
    TRY(lam_tensor_create(ctx, &shape, &t));
    add_metric(res, "first_calls", now() - t0);
    res->iters = 1;
done:
    lam_tensor_release(t);
}

#if defined(__has_include)
#if __has_include(<vulkan/vulkan.h>)
#define BENCH_HAVE_VULKAN_H 1
#include <vulkan/vulkan.h>
#endif
#endif

/*
 * The floor under Lamina's Vulkan probe: what any Vulkan program pays to learn its devices
 * (dlopen of the loader, vkCreateInstance, which loads every installed driver, one
 * vkEnumeratePhysicalDevices, vkDestroyInstance), without Lamina. The instance asks for the
 * API version the backend asks for.
 */
static void case_vk_probe(const request *rq, result *res) {
    (void)rq;
#ifdef BENCH_HAVE_VULKAN_H
    double t0 = now();
    void *lib = dlopen("libvulkan.so.1", RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        add_info(res, "\"unavailable\":\"no Vulkan loader\"");
        return;
    }
    PFN_vkGetInstanceProcAddr gipa;
    void *sym = dlsym(lib, "vkGetInstanceProcAddr");
    memcpy(&gipa, &sym, sizeof gipa);
    PFN_vkCreateInstance create =
        sym ? (PFN_vkCreateInstance)gipa(VK_NULL_HANDLE, "vkCreateInstance") : NULL;
    VkApplicationInfo app = {.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
                             .apiVersion = VK_API_VERSION_1_2};
    VkInstanceCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
                               .pApplicationInfo = &app};
    VkInstance inst = VK_NULL_HANDLE;
    if (create == NULL || create(&ci, NULL, &inst) != VK_SUCCESS) {
        res->ok = 0;
        snprintf(res->error, sizeof res->error, "vkCreateInstance failed");
        dlclose(lib);
        return;
    }
    PFN_vkEnumeratePhysicalDevices enumerate =
        (PFN_vkEnumeratePhysicalDevices)gipa(inst, "vkEnumeratePhysicalDevices");
    PFN_vkDestroyInstance destroy = (PFN_vkDestroyInstance)gipa(inst, "vkDestroyInstance");
    uint32_t n = 0;
    if (enumerate != NULL) {
        enumerate(inst, &n, NULL);
    }
    if (destroy != NULL) {
        destroy(inst, NULL);
    }
    dlclose(lib);
    add_metric(res, "probe", now() - t0);
    add_info(res, "\"devices\":%u", n);
    res->iters = 1;
#else
    (void)res;
    add_info(res, "\"unavailable\":\"lamina_bench was built without vulkan/vulkan.h\"");
#endif
}

/* ------------------------------------------------------------------------------------------ */
/* Dispatch                                                                                   */
/* ------------------------------------------------------------------------------------------ */

/* ------------------------------------------------------------------------------------------ */
/* Cases of issue 15 / 17: elementwise bandwidth, convolution, its GEMMs, BatchNorm, LeNet    */
/* ------------------------------------------------------------------------------------------ */

/* A float32 tensor of nd dims with values in [-1, 1), optionally with a gradient. */
static lam_status nd_tensor(lam_ctx *ctx, uint32_t nd, const int64_t *dims, uint64_t seed, int grad,
                            lam_tensor **out) {
    *out = NULL;
    size_t n = 1;
    for (uint32_t d = 0; d < nd; d++) {
        n *= (size_t)dims[d];
    }
    float *buf = alloc_random(n, seed);
    if (buf == NULL) {
        return lam_set_error(LAM_ERR_OUT_OF_MEMORY, "bench: Out of memory");
    }
    lam_shape shape;
    lam_shape_init(&shape, nd, dims);
    lam_status st = lam_tensor_from_data(ctx, &shape, buf, n, out);
    free(buf);
    if (st == LAM_OK && grad) {
        st = lam_tensor_attach_grad(*out);
    }
    return st;
}

typedef struct ew_state {
    lam_tensor *x;
    float *src, *dst;
    size_t n;
} ew_state;

static lam_status ew_lamina_run(void *p, int64_t iters) {
    ew_state *s = p;
    for (int64_t i = 0; i < iters; i++) {
        lam_tensor *y = NULL;
        lam_status st = lam_op_mul_scalar(s->x, 1.5f, &y);
        lam_tensor_release(y);
        if (st != LAM_OK) {
            return st;
        }
    }
    return LAM_OK;
}

static lam_status ew_memcpy_run(void *p, int64_t iters) {
    ew_state *s = p;
    for (int64_t i = 0; i < iters; i++) {
        memcpy(s->dst, s->src, s->n * sizeof *s->dst);
        s->src[i % (int64_t)s->n] += 1.0f; /* keep the copy from being elided */
    }
    return LAM_OK;
}

/* y = 1.5 * x over `mb` MB (read mb, write mb) against memcpy of mb MB, in the same process. */
static void case_ew_bandwidth(const request *rq, result *res) {
    ew_state s = {NULL, NULL, NULL, 0};
    s.n = (size_t)req_int(rq, "mb", 64) * ((size_t)1 << 20) / sizeof(float);
    lam_ctx *ctx = NULL;
    double sec = 0;
    int64_t it = 0;
    TRY(lam_ctx_default(&ctx));
    const int64_t dims[1] = {(int64_t)s.n};
    TRY(nd_tensor(ctx, 1, dims, 3, 0, &s.x));
    s.src = alloc_random(s.n, 4);
    s.dst = calloc(s.n, sizeof *s.dst);
    if (s.src == NULL || s.dst == NULL) {
        TRY(lam_set_error(LAM_ERR_OUT_OF_MEMORY, "bench: Out of memory"));
    }
    TRY(ew_lamina_run(&s, 1));
    TRY(ew_memcpy_run(&s, 1));
    const int memcpy_first = req_int(rq, "round", 0) % 2 == 1;
    for (int side = 0; side < 2; side++) {
        const int cp = (side == 0) == memcpy_first;
        TRY(measure(cp ? ew_memcpy_run : ew_lamina_run, &s, req_double(rq, "min_time", 0.05),
                    req_int(rq, "iters", 0), &sec, &it));
        add_metric(res, cp ? "memcpy" : "ew", sec);
        if (!cp) {
            res->iters = it;
        }
    }
    add_info(res, "\"bytes\":%zu,\"ctx\":\"%s\"", s.n * sizeof(float), lam_ctx_name(ctx));
done:
    lam_tensor_release(s.x);
    free(s.src);
    free(s.dst);
}

/* The convolutions of bench/run: kind=big (3x3, 64 -> 64, 56x56, batch 8), lenet1 (5x5, 1 ->
 * 6, 28x28, pad 2, batch 64), lenet2 (5x5, 6 -> 16, 14x14, batch 64); small=1 shrinks them. */
typedef struct conv_shape {
    int64_t n, c, h, o, k, pad;
} conv_shape;

static int conv_shape_of(const request *rq, conv_shape *cs, char *err, size_t cap) {
    const char *kind = req_get(rq, "kind", "big");
    const int small = req_int(rq, "small", 0) != 0;
    if (strcmp(kind, "big") == 0) {
        *cs = small ? (conv_shape){2, 8, 10, 8, 3, 1} : (conv_shape){8, 64, 56, 64, 3, 1};
    } else if (strcmp(kind, "lenet1") == 0) {
        *cs = small ? (conv_shape){4, 1, 12, 6, 5, 2} : (conv_shape){64, 1, 28, 6, 5, 2};
    } else if (strcmp(kind, "lenet2") == 0) {
        *cs = small ? (conv_shape){4, 6, 8, 16, 5, 0} : (conv_shape){64, 6, 14, 16, 5, 0};
    } else {
        snprintf(err, cap, "conv: unknown kind '%s' (big, lenet1, lenet2)", kind);
        return 0;
    }
    return 1;
}

typedef struct conv_state {
    lam_tensor *x, *w, *b;
    lam_conv2d_params p;
} conv_state;

static lam_status conv_fwdbwd_run(void *p, int64_t iters) {
    conv_state *s = p;
    for (int64_t i = 0; i < iters; i++) {
        lam_tensor *y = NULL, *loss = NULL;
        int was = lam_autograd_record_begin(1);
        lam_status st = lam_op_conv2d(s->x, s->w, s->b, &s->p, &y);
        if (st == LAM_OK) {
            st = lam_op_sum(y, NULL, 0, 0, &loss);
        }
        lam_autograd_record_end(was);
        if (st == LAM_OK) {
            st = lam_autograd_backward(loss, NULL);
        }
        lam_tensor_release(y);
        lam_tensor_release(loss);
        if (st != LAM_OK) {
            return st;
        }
    }
    return LAM_OK;
}

static lam_status conv_fwd_run(void *p, int64_t iters) {
    conv_state *s = p;
    for (int64_t i = 0; i < iters; i++) {
        lam_tensor *y = NULL;
        lam_status st = lam_op_conv2d(s->x, s->w, s->b, &s->p, &y);
        lam_tensor_release(y);
        if (st != LAM_OK) {
            return st;
        }
    }
    return LAM_OK;
}

/* Conv2D with bias: forward alone, and forward + sum + backward (x, w and b need gradients). */
static void case_conv(const request *rq, result *res) {
    conv_state s = {NULL, NULL, NULL, LAM_CONV2D_PARAMS_INIT};
    conv_shape cs;
    lam_ctx *ctx = NULL;
    double sec = 0;
    if (!conv_shape_of(rq, &cs, res->error, sizeof res->error)) {
        return;
    }
    s.p.pad[0] = s.p.pad[1] = cs.pad;
    TRY(lam_ctx_default(&ctx));
    const int64_t xd[4] = {cs.n, cs.c, cs.h, cs.h}, wd[4] = {cs.o, cs.c, cs.k, cs.k};
    TRY(nd_tensor(ctx, 4, xd, 21, 1, &s.x));
    TRY(nd_tensor(ctx, 4, wd, 22, 1, &s.w));
    TRY(nd_tensor(ctx, 1, &cs.o, 23, 1, &s.b));
    TRY(conv_fwdbwd_run(&s, 1));
    const double min_time = req_double(rq, "min_time", 0.05);
    TRY(measure(conv_fwd_run, &s, min_time, req_int(rq, "iters", 0), &sec, &res->iters));
    add_metric(res, "fwd", sec);
    TRY(measure(conv_fwdbwd_run, &s, min_time, req_int(rq, "iters", 0), &sec, &res->iters));
    add_metric(res, "fwdbwd", sec);
    add_info(res, "\"ctx\":\"%s\"", lam_ctx_name(ctx));
done:
    lam_tensor_release(s.x);
    lam_tensor_release(s.w);
    lam_tensor_release(s.b);
}

/* The three products of a convolution's forward and backward (lam_op_conv2d composes them as
 * batched products over the im2col columns), through Lamina and as raw per-sample sgemm. */
typedef struct cgemm_state {
    int n, o, ckk, l;
    int which; /* bit 0: forward, bit 1: backward-data, bit 2: backward-weight */
    float *w, *cols, *g, *y, *dcols, *dw; /* host copies for raw sgemm */
    lam_tensor *tw, *tcols, *tg;
} cgemm_state;

static lam_status cgemm_lamina_run(void *p, int64_t iters) {
    cgemm_state *s = p;
    for (int64_t i = 0; i < iters; i++) {
        lam_tensor *y = NULL, *dc = NULL, *dw = NULL;
        lam_status st = LAM_OK;
        if (s->which & 1) {
            st = lam_op_matmul_batched(s->tw, s->tcols, 0, 0, &y);
        }
        if (st == LAM_OK && (s->which & 2)) {
            st = lam_op_matmul_batched(s->tw, s->tg, 1, 0, &dc);
        }
        if (st == LAM_OK && (s->which & 4)) {
            st = lam_op_matmul_batched(s->tg, s->tcols, 0, 1, &dw);
        }
        lam_tensor_release(y);
        lam_tensor_release(dc);
        lam_tensor_release(dw);
        if (st != LAM_OK) {
            return st;
        }
    }
    return LAM_OK;
}

static lam_status cgemm_raw_run(void *p, int64_t iters) {
    cgemm_state *s = p;
    const int o = s->o, k = s->ckk, l = s->l;
    for (int64_t it = 0; it < iters; it++) {
        for (int b = 0; b < s->n; b++) {
            const size_t cb = (size_t)b * (size_t)k * (size_t)l,
                         gb = (size_t)b * (size_t)o * (size_t)l;
            if (s->which & 1) {
                g_sgemm(ROW_MAJOR, NO_TRANS, NO_TRANS, o, l, k, 1.0f, s->w, k, s->cols + cb, l,
                        0.0f, s->y + gb, l);
            }
            if (s->which & 2) {
                g_sgemm(ROW_MAJOR, TRANS, NO_TRANS, k, l, o, 1.0f, s->w, k, s->g + gb, l, 0.0f,
                        s->dcols + cb, l);
            }
            if (s->which & 4)
                g_sgemm(ROW_MAJOR, NO_TRANS, TRANS, o, k, l, 1.0f, s->g + gb, l, s->cols + cb, l,
                        0.0f, s->dw + (size_t)b * (size_t)o * (size_t)k, k);
        }
    }
    return LAM_OK;
}

static void case_conv_gemm(const request *rq, result *res) {
    cgemm_state s;
    memset(&s, 0, sizeof s);
    conv_shape cs;
    lam_ctx *ctx = NULL, *cpu = NULL;
    double sec = 0;
    int64_t it = 0;
    if (!conv_shape_of(rq, &cs, res->error, sizeof res->error)) {
        return;
    }
    const int64_t oh = cs.h + 2 * cs.pad - cs.k + 1;
    s.n = (int)cs.n;
    s.o = (int)cs.o;
    s.ckk = (int)(cs.c * cs.k * cs.k);
    s.l = (int)(oh * oh);
    s.which = (int)req_int(rq, "which", 7);
    const size_t n = (size_t)s.n, o = (size_t)s.o, k = (size_t)s.ckk, l = (size_t)s.l;
    TRY(lam_ctx_default(&ctx));
    TRY(lam_ctx_get("cpu", &cpu));
    TRY(load_raw_blas(cpu));
    s.w = alloc_random(o * k, 31);
    s.cols = alloc_random(n * k * l, 32);
    s.g = alloc_random(n * o * l, 33);
    s.y = calloc(n * o * l, sizeof(float));
    s.dcols = calloc(n * k * l, sizeof(float));
    s.dw = calloc(n * o * k, sizeof(float));
    if (!s.w || !s.cols || !s.g || !s.y || !s.dcols || !s.dw) {
        TRY(lam_set_error(LAM_ERR_OUT_OF_MEMORY, "bench: Out of memory"));
    }
    lam_shape sh;
    lam_shape_init(&sh, 3, (const int64_t[]){1, s.o, s.ckk});
    TRY(lam_tensor_from_data(ctx, &sh, s.w, o * k, &s.tw));
    lam_shape_init(&sh, 3, (const int64_t[]){s.n, s.ckk, s.l});
    TRY(lam_tensor_from_data(ctx, &sh, s.cols, n * k * l, &s.tcols));
    lam_shape_init(&sh, 3, (const int64_t[]){s.n, s.o, s.l});
    TRY(lam_tensor_from_data(ctx, &sh, s.g, n * o * l, &s.tg));
    TRY(cgemm_lamina_run(&s, 1));
    TRY(cgemm_raw_run(&s, 1));
    const int raw_first = req_int(rq, "round", 0) % 2 == 1;
    for (int side = 0; side < 2; side++) {
        const int raw = (side == 0) == raw_first;
        TRY(measure(raw ? cgemm_raw_run : cgemm_lamina_run, &s, req_double(rq, "min_time", 0.05),
                    req_int(rq, "iters", 0), &sec, &it));
        add_metric(res, raw ? "raw" : "lamina", sec);
        if (!raw) {
            res->iters = it;
        }
    }
    raw_blas_info(res);
    add_info(res, "\"m_n_k\":\"%d x %d x %d, batch %d\"", s.o, s.l, s.ckk, s.n);
done:
    lam_tensor_release(s.tw);
    lam_tensor_release(s.tcols);
    lam_tensor_release(s.tg);
    free(s.w);
    free(s.cols);
    free(s.g);
    free(s.y);
    free(s.dcols);
    free(s.dw);
}

/* BatchNorm (the layer plugin) in training mode, (32, 16, 28, 28): forward + sum + backward. */
static void case_batchnorm(const request *rq, result *res) {
    layer_state s = {NULL, NULL};
    lam_ctx *ctx = NULL;
    double sec = 0;
    const int small = req_int(rq, "small", 0) != 0;
    TRY(lam_ctx_default(&ctx));
    TRY(lam_layer_create("BatchNorm", NULL, &s.layer));
    TRY(lam_block_initialize(s.layer, NULL, ctx, 0));
    const int64_t dims[4] = {small ? 4 : 32, small ? 4 : 16, small ? 6 : 28, small ? 6 : 28};
    TRY(nd_tensor(ctx, 4, dims, 41, 1, &s.x));
    TRY(layer_run(&s, 1));
    TRY(measure(layer_run, &s, req_double(rq, "min_time", 0.05), req_int(rq, "iters", 0), &sec,
                &res->iters));
    add_metric(res, "fwdbwd", sec);
    add_info(res, "\"ctx\":\"%s\"", lam_ctx_name(ctx));
done:
    lam_tensor_release(s.x);
    lam_block_release(s.layer);
}

/* A LeNet training step from core ops (conv2d, relu, max pooling, linear, softmax CE), SGD:
 * x (64, 1, 28, 28) -> conv 6@5x5 pad 2 -> relu -> pool 2 -> conv 16@5x5 -> relu -> pool 2 ->
 * dense 120 relu -> dense 84 relu -> dense 10. */
#define LENET_PARAMS 10
typedef struct lenet_state {
    lam_tensor *x, *y;
    lam_tensor *p[LENET_PARAMS]; /* w1 b1 w2 b2 w3 b3 w4 b4 w5 b5 */
    int64_t batch;
} lenet_state;

static lam_status lenet_forward(lenet_state *s, lam_tensor **logits) {
    lam_conv2d_params c1 = LAM_CONV2D_PARAMS_INIT, c2 = LAM_CONV2D_PARAMS_INIT;
    lam_pool2d_params pp = LAM_POOL2D_PARAMS_INIT(2, 2);
    c1.pad[0] = c1.pad[1] = 2;
    lam_tensor *t[10] = {NULL};
    lam_status st = lam_op_conv2d(s->x, s->p[0], s->p[1], &c1, &t[0]);
    if (st == LAM_OK) {
        st = lam_op_relu(t[0], &t[1]);
    }
    if (st == LAM_OK) {
        st = lam_op_max_pool2d(t[1], &pp, &t[2], NULL);
    }
    if (st == LAM_OK) {
        st = lam_op_conv2d(t[2], s->p[2], s->p[3], &c2, &t[3]);
    }
    if (st == LAM_OK) {
        st = lam_op_relu(t[3], &t[4]);
    }
    if (st == LAM_OK) {
        st = lam_op_max_pool2d(t[4], &pp, &t[5], NULL);
    }
    if (st == LAM_OK) {
        const lam_shape *ps = lam_tensor_shape(t[5]);
        lam_shape flat;
        lam_shape_init(&flat, 2,
                       (const int64_t[]){ps->dims[0], ps->dims[1] * ps->dims[2] * ps->dims[3]});
        st = lam_tensor_reshape(t[5], &flat, &t[6]);
    }
    if (st == LAM_OK) {
        st = lam_op_linear(t[6], s->p[4], s->p[5], LAM_OP_RELU, &t[7]);
    }
    if (st == LAM_OK) {
        st = lam_op_linear(t[7], s->p[6], s->p[7], LAM_OP_RELU, &t[8]);
    }
    if (st == LAM_OK) {
        st = lam_op_linear(t[8], s->p[8], s->p[9], LAM_OP_INVALID, logits);
    }
    for (int i = 0; i < 10; i++) {
        lam_tensor_release(t[i]);
    }
    return st;
}

static lam_status lenet_run(void *p, int64_t iters) {
    lenet_state *s = p;
    for (int64_t i = 0; i < iters; i++) {
        lam_tensor *out = NULL, *loss = NULL;
        lam_autograd_set_recording(1);
        lam_status st = lenet_forward(s, &out);
        if (st == LAM_OK) {
            st = lam_loss_softmax_cross_entropy(out, s->y, &loss);
        }
        lam_autograd_set_recording(0);
        if (st == LAM_OK) {
            st = lam_autograd_backward(loss, NULL);
        }
        for (int k = 0; k < LENET_PARAMS && st == LAM_OK; k++) { /* w -= 0.01 / batch * dw */
            lam_tensor *g = NULL, *d = NULL, *w = NULL;
            st = lam_tensor_grad(s->p[k], &g);
            if (st == LAM_OK) {
                st = lam_op_mul_scalar(g, 0.01f / (float)s->batch, &d);
            }
            if (st == LAM_OK) {
                st = lam_op_sub(s->p[k], d, &w);
            }
            if (st == LAM_OK) {
                st = lam_op_assign(s->p[k], w);
            }
            lam_tensor_release(g);
            lam_tensor_release(d);
            lam_tensor_release(w);
        }
        lam_tensor_release(out);
        lam_tensor_release(loss);
        if (st != LAM_OK) {
            return st;
        }
    }
    return LAM_OK;
}

static void case_lenet_step(const request *rq, result *res) {
    lenet_state s;
    memset(&s, 0, sizeof s);
    s.batch = req_int(rq, "batch", 64);
    lam_ctx *ctx = NULL;
    double sec = 0;
    TRY(lam_ctx_default(&ctx));
    const int64_t xd[4] = {s.batch, 1, 28, 28};
    const int64_t shapes[LENET_PARAMS][4] = {
        {6, 1, 5, 5}, {6}, {16, 6, 5, 5}, {16}, {120, 400}, {120}, {84, 120}, {84}, {10, 84}, {10}};
    const uint32_t nds[LENET_PARAMS] = {4, 1, 4, 1, 2, 1, 2, 1, 2, 1};
    TRY(nd_tensor(ctx, 4, xd, 51, 0, &s.x));
    TRY(label_tensor(ctx, s.batch, 10, &s.y));
    for (int k = 0; k < LENET_PARAMS; k++) {
        TRY(nd_tensor(ctx, nds[k], shapes[k], 60 + (uint64_t)k, 1, &s.p[k]));
        lam_tensor *scaled = NULL; /* small weights: keep the activations in range */
        TRY(lam_op_mul_scalar(s.p[k], 0.1f, &scaled));
        lam_status st = lam_op_assign(s.p[k], scaled);
        lam_tensor_release(scaled);
        TRY(st);
    }
    TRY(lenet_run(&s, 1));
    TRY(measure(lenet_run, &s, req_double(rq, "min_time", 0.05), req_int(rq, "iters", 0), &sec,
                &res->iters));
    add_metric(res, "step", sec);
    add_info(res, "\"ctx\":\"%s\"", lam_ctx_name(ctx));
done:
    lam_tensor_release(s.x);
    lam_tensor_release(s.y);
    for (int k = 0; k < LENET_PARAMS; k++) {
        lam_tensor_release(s.p[k]);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Case: the GEMMs of the LeNet step alone, through raw cblas_sgemm                           */
/* ------------------------------------------------------------------------------------------ */

/*
 * The products lenet_step needs in the im2col formulation, with its shapes (batch B = 64,
 * 1 x 28 x 28 images), and nothing else: no im2col/col2im, no bias, activation, pooling, loss
 * or update. A convolution of C -> O channels with a K x K kernel over an H x W input (padding
 * P, stride 1) has OH = H + 2P - K + 1 output rows (OW likewise), L = OH * OW output pixels and
 * a column matrix of CKK = C * K * K rows by L columns per image; per image it needs
 *   forward          Y (O x L)   = W (O x CKK) cols (CKK x L)               k = CKK
 *   data gradient    dcols (CKK x L) = W^T (CKK x O) dY (O x L)             k = O
 *   weight gradient  dW (O x CKK) += dY (O x L) cols^T (L x CKK)            k = L
 * (the weight gradient accumulates over the batch: beta = 0 for the first image, 1 after).
 *   conv1: C = 1, O = 6, K = 5, P = 2, 28 x 28: OH = 28, L = 784, CKK = 25; its input is the
 *          data, so no data gradient: forward and weight gradient only.
 *   pool 2: 28 -> 14.
 *   conv2: C = 6, O = 16, K = 5, P = 0, 14 x 14: OH = 10, L = 100, CKK = 150; all three.
 *   pool 2: 10 -> 5; flattened 16 * 5 * 5 = 400.
 * A dense layer I -> O (weights O x I) over the batch: forward Y (B x O) = X (B x I) W^T,
 * k = I; data gradient dX (B x I) = dY (B x O) W, k = O; weight gradient dW (O x I) =
 * dY^T (O x B) X (B x I), k = B. Dense 400 -> 120, 120 -> 84 and 84 -> 10 each need all
 * three (the first one's data gradient feeds the pooling and conv2's backward).
 * conv=batched (default): each convolution product is B calls of the per-image shape above,
 * the way the host's IM2COL + batched GEMM fallback runs it (and conv_gemm times it).
 * conv=merged: one call per product over the whole batch with the columns laid out
 * CKK x (B * L) (a channel-major layout): O x (B L) x CKK forward, CKK x (B L) x O data
 * gradient, O x CKK x (B L) weight gradient.
 */
typedef struct lenet_conv_dims {
    int o, ckk, l;
    int data_grad;
} lenet_conv_dims;

#define LENET_DENSE 3
typedef struct lgemms_state {
    int b, merged;
    lenet_conv_dims cv[2];
    int dn[LENET_DENSE + 1]; /* dense widths: 400, 120, 84, 10 */
    /* per convolution: weights, columns, output (also its gradient), and their gradients */
    float *cw[2], *ccols[2], *cy[2], *cdw[2], *cdcols[2];
    /* per dense layer: input activations (the previous layer's output), weights, gradients */
    float *dx[LENET_DENSE + 1], *dw[LENET_DENSE], *ddw[LENET_DENSE], *ddx[LENET_DENSE + 1];
} lgemms_state;

static void lgemms_conv(const lgemms_state *s, int c, int pass) {
    const lenet_conv_dims *d = &s->cv[c];
    const int o = d->o, k = d->ckk, l = d->l;
    if (s->merged) {
        const int bl = s->b * l;
        if (pass == 0) {
            g_sgemm(ROW_MAJOR, NO_TRANS, NO_TRANS, o, bl, k, 1.0f, s->cw[c], k, s->ccols[c], bl,
                    0.0f, s->cy[c], bl);
        } else {
            g_sgemm(ROW_MAJOR, NO_TRANS, TRANS, o, k, bl, 1.0f, s->cy[c], bl, s->ccols[c], bl, 0.0f,
                    s->cdw[c], k);
            if (d->data_grad) {
                g_sgemm(ROW_MAJOR, TRANS, NO_TRANS, k, bl, o, 1.0f, s->cw[c], k, s->cy[c], bl, 0.0f,
                        s->cdcols[c], bl);
            }
        }
        return;
    }
    for (int n = 0; n < s->b; n++) {
        const float *cols = s->ccols[c] + (size_t)n * (size_t)k * (size_t)l;
        float *y = s->cy[c] + (size_t)n * (size_t)o * (size_t)l;
        if (pass == 0) {
            g_sgemm(ROW_MAJOR, NO_TRANS, NO_TRANS, o, l, k, 1.0f, s->cw[c], k, cols, l, 0.0f, y, l);
            continue;
        }
        g_sgemm(ROW_MAJOR, NO_TRANS, TRANS, o, k, l, 1.0f, y, l, cols, l, n > 0 ? 1.0f : 0.0f,
                s->cdw[c], k);
        if (d->data_grad) {
            g_sgemm(ROW_MAJOR, TRANS, NO_TRANS, k, l, o, 1.0f, s->cw[c], k, y, l, 0.0f,
                    s->cdcols[c] + (size_t)n * (size_t)k * (size_t)l, l);
        }
    }
}

static lam_status lgemms_run(void *p, int64_t iters) {
    const lgemms_state *s = p;
    const int b = s->b;
    for (int64_t it = 0; it < iters; it++) {
        lgemms_conv(s, 0, 0);
        lgemms_conv(s, 1, 0);
        for (int d = 0; d < LENET_DENSE; d++) { /* X (B x I) W^T (I x O) */
            const int in = s->dn[d], out = s->dn[d + 1];
            g_sgemm(ROW_MAJOR, NO_TRANS, TRANS, b, out, in, 1.0f, s->dx[d], in, s->dw[d], in, 0.0f,
                    s->dx[d + 1], out);
        }
        for (int d = LENET_DENSE - 1; d >= 0; d--) { /* dY^T X, then dY W */
            const int in = s->dn[d], out = s->dn[d + 1];
            g_sgemm(ROW_MAJOR, TRANS, NO_TRANS, out, in, b, 1.0f, s->ddx[d + 1], out, s->dx[d], in,
                    0.0f, s->ddw[d], in);
            g_sgemm(ROW_MAJOR, NO_TRANS, NO_TRANS, b, in, out, 1.0f, s->ddx[d + 1], out, s->dw[d],
                    in, 0.0f, s->ddx[d], in);
        }
        lgemms_conv(s, 1, 1);
        lgemms_conv(s, 0, 1);
    }
    return LAM_OK;
}

static void case_lenet_gemms(const request *rq, result *res) {
    lgemms_state s;
    memset(&s, 0, sizeof s);
    s.b = (int)req_int(rq, "batch", 64);
    const char *conv = req_get(rq, "conv", "batched");
    s.merged = strcmp(conv, "merged") == 0;
    lam_ctx *cpu = NULL;
    double sec = 0;
    if (!s.merged && strcmp(conv, "batched") != 0) {
        snprintf(res->error, sizeof res->error, "lenet_gemms: unknown conv '%s' (batched, merged)",
                 conv);
        return;
    }
    /* the layer sizes of lenet_step, and what follows from them (see above) */
    const int img = 28, k = 5, c1 = 1, o1 = 6, pad1 = 2, c2 = 6, o2 = 16, pool = 2;
    const int oh1 = img + 2 * pad1 - k + 1, in2 = oh1 / pool, oh2 = in2 - k + 1, p2 = oh2 / pool;
    s.cv[0] = (lenet_conv_dims){o1, c1 * k * k, oh1 * oh1, 0};
    s.cv[1] = (lenet_conv_dims){o2, c2 * k * k, oh2 * oh2, 1};
    s.dn[0] = o2 * p2 * p2;
    s.dn[1] = 120;
    s.dn[2] = 84;
    s.dn[3] = 10;
    const size_t b = (size_t)s.b;
    TRY(lam_ctx_get("cpu", &cpu));
    TRY(load_raw_blas(cpu));
    int nomem = 0;
    for (int c = 0; c < 2; c++) {
        const size_t o = (size_t)s.cv[c].o, kk = (size_t)s.cv[c].ckk, l = (size_t)s.cv[c].l;
        s.cw[c] = alloc_random(o * kk, 70 + (uint64_t)c);
        s.cdw[c] = alloc_random(o * kk, 72 + (uint64_t)c);
        s.ccols[c] = alloc_random(b * kk * l, 74 + (uint64_t)c);
        s.cy[c] = alloc_random(b * o * l, 76 + (uint64_t)c);
        s.cdcols[c] = s.cv[c].data_grad ? alloc_random(b * kk * l, 78 + (uint64_t)c) : NULL;
        nomem |=
            !s.cw[c] || !s.cdw[c] || !s.ccols[c] || !s.cy[c] || (s.cv[c].data_grad && !s.cdcols[c]);
    }
    for (int d = 0; d <= LENET_DENSE; d++) {
        const size_t w = (size_t)s.dn[d];
        s.dx[d] = alloc_random(b * w, 80 + (uint64_t)d);
        s.ddx[d] = alloc_random(b * w, 84 + (uint64_t)d);
        nomem |= !s.dx[d] || !s.ddx[d];
        if (d < LENET_DENSE) {
            s.dw[d] = alloc_random((size_t)s.dn[d + 1] * w, 88 + (uint64_t)d);
            s.ddw[d] = alloc_random((size_t)s.dn[d + 1] * w, 92 + (uint64_t)d);
            nomem |= !s.dw[d] || !s.ddw[d];
        }
    }
    if (nomem) {
        TRY(lam_set_error(LAM_ERR_OUT_OF_MEMORY, "bench: Out of memory"));
    }
    TRY(measure(lgemms_run, &s, req_double(rq, "min_time", 0.05), req_int(rq, "iters", 0), &sec,
                &res->iters));
    add_metric(res, "gemms", sec);
    raw_blas_info(res);
    add_info(res,
             "\"batch\":%d,\"conv\":\"%s\",\"conv1_o_l_ckk\":\"%d x %d x "
             "%d\",\"conv2_o_l_ckk\":\"%d x %d x "
             "%d\",\"dense\":\"%d-%d-%d-%d\"",
             s.b, conv, s.cv[0].o, s.cv[0].l, s.cv[0].ckk, s.cv[1].o, s.cv[1].l, s.cv[1].ckk,
             s.dn[0], s.dn[1], s.dn[2], s.dn[3]);
done:
    for (int c = 0; c < 2; c++) {
        free(s.cw[c]);
        free(s.cdw[c]);
        free(s.ccols[c]);
        free(s.cy[c]);
        free(s.cdcols[c]);
    }
    for (int d = 0; d <= LENET_DENSE; d++) {
        free(s.dx[d]);
        free(s.ddx[d]);
        if (d < LENET_DENSE) {
            free(s.dw[d]);
            free(s.ddw[d]);
        }
    }
}

typedef struct bench_case {
    const char *name;
    void (*fn)(const request *rq, result *res);
    const char *doc;
} bench_case;

static const bench_case g_cases[] = {
    {"mlp_forward", case_mlp_forward,
     "forward of Dense(256, relu) -> Dense(10), input (2, 20); metric floor: the same math "
     "hand-written in intrinsics (floor=0 skips it)"},
    {"shared_step", case_shared_step, "SGD step of the shared-parameter MLP, batch 2"},
    {"layer2", case_layer2,
     "forward+backward of an ABI 2.0 test layer (key kind=layernorm|conv|"
     "maxpool|embedding|dropout|gelu)"},
    {"ew_bandwidth", case_ew_bandwidth,
     "y = 1.5 x over 64 MB (key mb=) against memcpy of 64 MB, in the same process"},
    {"conv", case_conv,
     "Conv2D forward, and forward+backward (key kind=big|lenet1|lenet2, small=1)"},
    {"conv_gemm", case_conv_gemm,
     "the three batched products of a conv's fwd+bwd: Lamina, then raw sgemm (key kind=)"},
    {"batchnorm", case_batchnorm, "BatchNorm layer, training, (32, 16, 28, 28), fwd+bwd"},
    {"lenet_step", case_lenet_step, "LeNet SGD step from core ops, batch 64, 28x28"},
    {"lenet_gemms", case_lenet_gemms,
     "the GEMMs of lenet_step (im2col form) through raw cblas_sgemm (conv=batched|merged)"},
    {"mlp_step", case_mlp_step,
     "SGD step 784 -> 256 (relu) -> 10, batch 256, softmax CE (hidden2=N: a second hidden "
     "layer)"},
    {"step_gemms", case_step_gemms,
     "the five GEMMs of mlp_step through raw cblas_sgemm (hidden2=N: the eight of 3 layers)"},
    {"gemm", case_gemm, "n x n GEMM: lam_op_matmul, then raw cblas_sgemm (key n=)"},
    {"saveload", case_saveload, "save/load 4 x 2500 x 2500 float parameters (100 MB)"},
    {"fma_peak", case_fma_peak, "measured clock and FMA throughput (widest ISA) of one core"},
    {"backends", case_backends, "loaded backends and their first device"},
    {"start", case_start, "a CPU-only program: context + one tensor (time it as a process)"},
    {"vk_probe", case_vk_probe, "a bare Vulkan device probe without Lamina (process floor)"},
};

static int parse_request(char *line, request *rq) {
    memset(rq, 0, sizeof *rq);
    char *save = NULL;
    char *tok = strtok_r(line, " \t\r\n", &save);
    if (tok == NULL) {
        return 0;
    }
    snprintf(rq->name, sizeof rq->name, "%s", tok);
    while ((tok = strtok_r(NULL, " \t\r\n", &save)) != NULL && rq->n < MAX_KV) {
        char *eq = strchr(tok, '=');
        if (eq == NULL) {
            continue;
        }
        *eq = '\0';
        snprintf(rq->kvs[rq->n].key, sizeof rq->kvs[rq->n].key, "%s", tok);
        snprintf(rq->kvs[rq->n].value, sizeof rq->kvs[rq->n].value, "%s", eq + 1);
        rq->n++;
    }
    return 1;
}

/* Runs one request and prints its JSON line; returns 0 when the case succeeded. */
static int run_request(const request *rq) {
    result res;
    memset(&res, 0, sizeof res);
    res.ok = 1;
    for (size_t i = 0; i < sizeof g_cases / sizeof g_cases[0]; i++) {
        if (strcmp(g_cases[i].name, rq->name) == 0) {
            g_cases[i].fn(rq, &res);
            print_result(rq->name, &res);
            return res.ok ? 0 : 1;
        }
    }
    res.ok = 0;
    snprintf(res.error, sizeof res.error, "unknown case '%s'", rq->name);
    print_result(rq->name, &res);
    return 1;
}

static void usage(void) {
    fprintf(stderr, "usage: lamina_bench <case> [key=value ...] | lamina_bench serve\ncases:\n");
    for (size_t i = 0; i < sizeof g_cases / sizeof g_cases[0]; i++) {
        fprintf(stderr, "  %-12s %s\n", g_cases[i].name, g_cases[i].doc);
    }
}

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
        usage();
        return argc < 2 ? 2 : 0;
    }
    int rc = 0;
    if (strcmp(argv[1], "serve") == 0) {
        char line[4096];
        while (fgets(line, sizeof line, stdin) != NULL) {
            request rq;
            if (!parse_request(line, &rq)) {
                continue;
            }
            if (strcmp(rq.name, "quit") == 0) {
                break;
            }
            rc |= run_request(&rq);
        }
    } else {
        char line[4096] = "";
        size_t len = 0;
        for (int i = 1; i < argc && len + 2 < sizeof line; i++) {
            len += (size_t)snprintf(line + len, sizeof line - len, "%s ", argv[i]);
        }
        request rq;
        parse_request(line, &rq);
        rc = run_request(&rq);
    }
    lam_shutdown();
    return rc;
}
