/*
 * test_cpu_blas.c - the CPU backend's choice of OpenBLAS kernel (plugins/backends/cpu/cpu_blas.c).
 *
 * A user-set OPENBLAS_CORETYPE naming kernels this CPU cannot run must be refused with the
 * missing feature named, never loaded (OpenBLAS would die with SIGILL on the first GEMM). The
 * features are read here with the compiler's own CPU detection, independently of the plugin,
 * so each test is real on an AMD Zen (no AVX-512) as on an AVX-512 Xeon; LAMINA_TEST_CPU_HIDE
 * makes the plugin see a CPU without AVX-512 on a machine that has it.
 *
 * Each Criterion test runs in its own process, so the environment set before the runtime
 * starts is what the plugin reads when it loads OpenBLAS.
 */
#define _GNU_SOURCE /* setenv, MAP_ANONYMOUS */

#include <criterion/criterion.h>

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "lamina/lamina.h"

static void fini(void) {
    lam_shutdown();
}

TestSuite(cpu_blas, .fini = fini);

#if defined(__x86_64__) && defined(__GNUC__)

static int has(const char *feature_for_builtin) {
    __builtin_cpu_init();
    if (strcmp(feature_for_builtin, "fma4") == 0) {
        return __builtin_cpu_supports("fma4") != 0;
    }
    if (strcmp(feature_for_builtin, "avx512f") == 0) {
        return __builtin_cpu_supports("avx512f") != 0;
    }
    if (strcmp(feature_for_builtin, "avx2") == 0) {
        return __builtin_cpu_supports("avx2") != 0 && __builtin_cpu_supports("fma") != 0;
    }
    if (strcmp(feature_for_builtin, "avx") == 0) {
        return __builtin_cpu_supports("avx") != 0;
    }
    return 0;
}

/* Index of the "cpu" backend; fails the test when it is not loaded. */
static size_t cpu_backend(void) {
    for (size_t i = 0; i < lam_backend_count(); i++) {
        const char *name = NULL;
        uint32_t n = 0;
        const char *why = NULL;
        if (lam_backend_get(i, &name, &n, &why) == LAM_OK && strcmp(name, "cpu") == 0) {
            return i;
        }
    }
    cr_assert_fail("no cpu backend loaded");
    return 0;
}

/* Asserts the cpu context is refused with a message containing `expect`. */
static void expect_refused(const char *expect) {
    lam_ctx *ctx = NULL;
    lam_status st = lam_ctx_get("cpu", &ctx);
    cr_assert_eq(st, LAM_ERR_DEVICE_UNAVAILABLE, "got %s (%s)", lam_status_string(st),
                 lam_last_error());
    cr_assert_null(ctx);
    cr_assert(strstr(lam_last_error(), "cpu: Device unavailable, ") == lam_last_error(), "%s",
              lam_last_error());
    cr_assert_not_null(strstr(lam_last_error(), expect), "'%s' lacks '%s'", lam_last_error(),
                       expect);
    const char *name = NULL;
    uint32_t n = 1;
    const char *why = NULL;
    cr_assert_eq(lam_backend_get(cpu_backend(), &name, &n, &why), LAM_OK);
    cr_assert_eq(n, 0u);
    cr_assert_not_null(strstr(why, expect), "why '%s' lacks '%s'", why, expect);
}

/* The cpu device's details line ("OpenBLAS 0.3.21, kernel X (...)..."). */
static void cpu_details(char *buf, size_t cap) {
    lam_device_info info = LAM_DEVICE_INFO_INIT;
    lam_status st = lam_backend_device_info(cpu_backend(), 0, &info);
    cr_assert_eq(st, LAM_OK, "%s", lam_last_error());
    snprintf(buf, cap, "%s", info.details);
}

/* 64x64 ones times 64x64 twos: every element is 64 * 2 = 128 (through OpenBLAS: 64^3
 * multiply-adds is above the small-product path). */
static void expect_gemm_runs(void) {
    lam_ctx *ctx = NULL;
    cr_assert_eq(lam_ctx_get("cpu", &ctx), LAM_OK, "%s", lam_last_error());
    static float ones[64 * 64], twos[64 * 64], out[64 * 64];
    for (int i = 0; i < 64 * 64; i++) {
        ones[i] = 1.0f;
        twos[i] = 2.0f;
    }
    lam_shape s;
    memset(&s, 0, sizeof s);
    s.ndim = 2;
    s.dims[0] = 64;
    s.dims[1] = 64;
    lam_tensor *a = NULL, *b = NULL, *c = NULL;
    cr_assert_eq(lam_tensor_from_data(ctx, &s, ones, 64 * 64, &a), LAM_OK, "%s", lam_last_error());
    cr_assert_eq(lam_tensor_from_data(ctx, &s, twos, 64 * 64, &b), LAM_OK, "%s", lam_last_error());
    cr_assert_eq(lam_op_matmul(a, b, 0, 0, &c), LAM_OK, "%s", lam_last_error());
    cr_assert_eq(lam_tensor_read(c, out, 64 * 64), LAM_OK, "%s", lam_last_error());
    for (int i = 0; i < 64 * 64; i++) {
        cr_assert_eq(out[i], 128.0f, "element %d is %g", i, (double)out[i]);
    }
    lam_tensor_release(a);
    lam_tensor_release(b);
    lam_tensor_release(c);
}

/* Whether a mapping of this process names a file whose path contains `needle`. */
static int mapped(const char *needle) {
    FILE *f = fopen("/proc/self/maps", "r");
    cr_assert_not_null(f, "cannot read /proc/self/maps");
    char line[4096];
    int found = 0;
    while (!found && fgets(line, sizeof line, f) != NULL) {
        found = strstr(line, needle) != NULL;
    }
    fclose(f);
    return found;
}

/*
 * OpenBLAS is loaded by the first GEMM that needs it, not with the cpu context: loading it was
 * most of a CPU-only program's start (issue 17). A context, tensors and an elementwise op leave
 * libopenblas unmapped; a 64x64 product then maps it and gives the right values, and the
 * device's details name its kernel. (Under an address-space limit the probe loads it, to check
 * the room for its buffers: cpu_blas.c.)
 */
Test(cpu_blas, openblas_is_loaded_by_the_first_gemm_not_by_the_context) {
    struct rlimit rl;
    cr_assert_eq(getrlimit(RLIMIT_AS, &rl), 0);
    if (rl.rlim_cur != RLIM_INFINITY) {
        cr_skip("an address-space limit is set: the probe loads OpenBLAS to check its room");
    }
    if (mapped("libopenblas")) {
        cr_skip("libopenblas was in the process before Lamina started (LD_PRELOAD?)");
    }
    lam_ctx *ctx = NULL;
    cr_assert_eq(lam_ctx_get("cpu", &ctx), LAM_OK, "%s", lam_last_error());
    const float a[4] = {1, 2, 3, 4}, b[4] = {0.5f, -2, 8, 1};
    lam_shape s;
    const int64_t dims[1] = {4};
    lam_shape_init(&s, 1, dims);
    lam_tensor *ta = NULL, *tb = NULL, *sum = NULL;
    cr_assert_eq(lam_tensor_from_data(ctx, &s, a, 4, &ta), LAM_OK, "%s", lam_last_error());
    cr_assert_eq(lam_tensor_from_data(ctx, &s, b, 4, &tb), LAM_OK, "%s", lam_last_error());
    cr_assert_eq(lam_op_add(ta, tb, &sum), LAM_OK, "%s", lam_last_error());
    float got[4];
    cr_assert_eq(lam_tensor_read(sum, got, 4), LAM_OK, "%s", lam_last_error());
    const float want[4] = {1.5f, 0, 11, 5}; /* by hand */
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(got[i], want[i], "element %d is %g, want %g", i, (double)got[i],
                     (double)want[i]);
    }
    lam_tensor_release(ta);
    lam_tensor_release(tb);
    lam_tensor_release(sum);
    cr_assert_not(mapped("libopenblas"),
                  "a cpu context, tensors and an add loaded OpenBLAS; no GEMM needed it");
    expect_gemm_runs();
    cr_assert(mapped("libopenblas"), "a 64x64 product ran without loading OpenBLAS");
    char details[512];
    cpu_details(details, sizeof details);
    cr_assert(strncmp(details, "OpenBLAS ", 9) == 0 && strstr(details, ", kernel ") != NULL, "%s",
              details);
}

Test(cpu_blas, coretype_this_cpu_cannot_run_is_refused) {
    /* Bulldozer's kernels use FMA4, which no Intel CPU and no Zen has; SkylakeX for the rest. */
    const char *core = !has("fma4") ? "Bulldozer" : "SkylakeX";
    const char *feature = !has("fma4") ? "fma4" : "avx512f";
    cr_assert(!has(feature), "this CPU has both FMA4 and AVX-512: no core type to test with");
    setenv("OPENBLAS_CORETYPE", core, 1);
    char expect[160];
    snprintf(expect, sizeof expect,
             "OPENBLAS_CORETYPE=%s names kernels this CPU cannot run: they need %s", core, feature);
    expect_refused(expect);
}

Test(cpu_blas, coretype_needing_hidden_avx512_is_refused) {
    setenv("OPENBLAS_CORETYPE", "SkylakeX", 1);
    setenv("LAMINA_TEST_CPU_HIDE", "avx512", 1);
    expect_refused("OPENBLAS_CORETYPE=SkylakeX names kernels this CPU cannot run: they need "
                   "avx512f, avx512cd, avx512bw, avx512dq, avx512vl");
    if (has("avx512f")) { /* the message says the features were hidden, not absent */
        cr_assert_not_null(strstr(lam_last_error(), "(hidden by LAMINA_TEST_CPU_HIDE)"), "%s",
                           lam_last_error());
    }
}

Test(cpu_blas, unknown_coretype_is_refused) {
    setenv("OPENBLAS_CORETYPE", "Bogus", 1);
    expect_refused("OPENBLAS_CORETYPE=Bogus is not an x86-64 core type Lamina knows");
}

Test(cpu_blas, runnable_user_coretype_is_used) {
    if (!has("avx")) {
        cr_skip("this CPU has no AVX: Sandybridge kernels would be refused");
    }
    setenv("OPENBLAS_CORETYPE", "sandybridge", 1); /* OpenBLAS compares without case */
    char details[512];
    cpu_details(details, sizeof details);
    cr_assert_not_null(
        strstr(details, "kernel Sandybridge (OPENBLAS_CORETYPE=sandybridge set by the user"), "%s",
        details);
    expect_gemm_runs();
}

Test(cpu_blas, avx2_machine_gets_an_avx2_kernel) {
    if (!has("avx2")) {
        cr_skip("this CPU has no AVX2 and FMA");
    }
    /* What an AMD Zen looks like to the plugin: AVX2 and FMA, no AVX-512. OpenBLAS's own choice
     * is kept when it is an AVX2 kernel (Zen, Haswell); an AVX-512 one (chosen from the real
     * CPU) is replaced by Haswell. Never SkylakeX. */
    setenv("LAMINA_TEST_CPU_HIDE", "avx512", 1);
    char details[512];
    cpu_details(details, sizeof details);
    int kept =
        strstr(details, "kernel Zen (chosen by OpenBLAS: it recognises this CPU)") != NULL ||
        strstr(details, "kernel Haswell (chosen by OpenBLAS: it recognises this CPU)") != NULL;
    int replaced = strstr(details, "kernel Haswell (set by Lamina: OpenBLAS chose ") != NULL;
    cr_assert(kept || replaced, "%s", details);
    if (has("avx512f")) {
        cr_assert(replaced, "%s", details);
        cr_assert_not_null(strstr(details, ", which needs avx512f"), "%s", details);
    }
    cr_assert_not_null(strstr(details, "in AVX2 loops"), "%s", details);
    expect_gemm_runs();
}

/*
 * The chapter MLP's output layer on a batch of two: x (2x256) . W^T, W (10x256). With
 * LAMINA_CPU_ISA avx2 or base such narrow products (n < 16) run in the backend's own loops
 * (cpu_gemm.c: measured faster there than OpenBLAS's Haswell and Sandybridge kernels). By hand:
 * x[i][k] = i + 1, W[j][k] = j + 1 for k < 128 and 2 after, so
 * out[i][j] = (i + 1) * (128 * (j + 1) + 128 * 2).
 */
static void narrow_product(const char *isa) {
    setenv("LAMINA_CPU_ISA", isa, 1);
    lam_ctx *ctx = NULL;
    cr_assert_eq(lam_ctx_get("cpu", &ctx), LAM_OK, "%s", lam_last_error());
    static float x[2 * 256], w[10 * 256], out[2 * 10];
    for (int k = 0; k < 256; k++) {
        for (int i = 0; i < 2; i++) {
            x[i * 256 + k] = (float)(i + 1);
        }
        for (int j = 0; j < 10; j++) {
            w[j * 256 + k] = k < 128 ? (float)(j + 1) : 2.0f;
        }
    }
    lam_shape sx, sw;
    memset(&sx, 0, sizeof sx);
    memset(&sw, 0, sizeof sw);
    sx.ndim = sw.ndim = 2;
    sx.dims[0] = 2;
    sx.dims[1] = 256;
    sw.dims[0] = 10;
    sw.dims[1] = 256;
    lam_tensor *a = NULL, *b = NULL, *c = NULL;
    cr_assert_eq(lam_tensor_from_data(ctx, &sx, x, 2 * 256, &a), LAM_OK, "%s", lam_last_error());
    cr_assert_eq(lam_tensor_from_data(ctx, &sw, w, 10 * 256, &b), LAM_OK, "%s", lam_last_error());
    cr_assert_eq(lam_op_matmul(a, b, 0, 1, &c), LAM_OK, "%s", lam_last_error());
    cr_assert_eq(lam_tensor_read(c, out, 2 * 10), LAM_OK, "%s", lam_last_error());
    for (int i = 0; i < 2; i++) {
        for (int j = 0; j < 10; j++) {
            const float want = (float)((i + 1) * (128 * (j + 1) + 256));
            cr_assert_eq(out[i * 10 + j], want, "out[%d][%d] = %g, want %g", i, j,
                         (double)out[i * 10 + j], (double)want);
        }
    }
    lam_tensor_release(a);
    lam_tensor_release(b);
    lam_tensor_release(c);
}

Test(cpu_blas, narrow_product_in_avx2_loops) {
    if (!has("avx2")) {
        cr_skip("this CPU has no AVX2 and FMA");
    }
    narrow_product("avx2");
}

Test(cpu_blas, narrow_product_in_baseline_loops) {
    narrow_product("base");
}

/*
 * The Dense layer's product on a small batch, x (m x k) . W^T with W (n x k): the backend's dot
 * loops take eight columns of C at once and read the k tail with masked loads (cpu_gemm.c,
 * dots8_*). Shapes cover k below, at and past a register's width with a tail, and n with and
 * without a remainder below eight. Integer values make every sum exact whatever its order, so
 * the result must equal the product computed here by a plain triple loop.
 */
static void dots_products(const char *isa) {
    setenv("LAMINA_CPU_ISA", isa, 1);
    lam_ctx *ctx = NULL;
    cr_assert_eq(lam_ctx_get("cpu", &ctx), LAM_OK, "%s", lam_last_error());
    static const int64_t ms[] = {1, 2, 3}, ks[] = {3, 8, 16, 20, 37}, ns[] = {8, 13, 24, 256};
    static float x[3 * 37], w[256 * 37], out[3 * 256];
    for (size_t mi = 0; mi < 3; mi++) {
        for (size_t ki = 0; ki < 5; ki++) {
            for (size_t ni = 0; ni < 4; ni++) {
                const int64_t m = ms[mi], k = ks[ki], n = ns[ni];
                for (int64_t i = 0; i < m * k; i++) {
                    x[i] = (float)((i * 7 + 3) % 7 - 3);
                }
                for (int64_t i = 0; i < n * k; i++) {
                    w[i] = (float)((i * 5 + 1) % 9 - 4);
                }
                const int64_t dx[2] = {m, k}, dw[2] = {n, k};
                lam_shape sx, sw;
                lam_shape_init(&sx, 2, dx);
                lam_shape_init(&sw, 2, dw);
                lam_tensor *a = NULL, *b = NULL, *c = NULL;
                cr_assert_eq(lam_tensor_from_data(ctx, &sx, x, (size_t)(m * k), &a), LAM_OK);
                cr_assert_eq(lam_tensor_from_data(ctx, &sw, w, (size_t)(n * k), &b), LAM_OK);
                cr_assert_eq(lam_op_matmul(a, b, 0, 1, &c), LAM_OK, "%s", lam_last_error());
                cr_assert_eq(lam_tensor_read(c, out, (size_t)(m * n)), LAM_OK);
                for (int64_t i = 0; i < m; i++) {
                    for (int64_t j = 0; j < n; j++) {
                        float want = 0.0f;
                        for (int64_t kk = 0; kk < k; kk++) {
                            want += x[i * k + kk] * w[j * k + kk];
                        }
                        cr_assert_eq(out[i * n + j], want,
                                     "%s: m %lld k %lld n %lld: out[%lld][%lld] = %g, want %g", isa,
                                     (long long)m, (long long)k, (long long)n, (long long)i,
                                     (long long)j, (double)out[i * n + j], (double)want);
                    }
                }
                lam_tensor_release(a);
                lam_tensor_release(b);
                lam_tensor_release(c);
            }
        }
    }
}

Test(cpu_blas, dots_products_in_avx512_loops) {
    if (!has("avx512f")) {
        cr_skip("this CPU has no AVX-512");
    }
    dots_products("avx512");
}

Test(cpu_blas, dots_products_in_avx2_loops) {
    if (!has("avx2")) {
        cr_skip("this CPU has no AVX2 and FMA");
    }
    dots_products("avx2");
}

Test(cpu_blas, dots_products_in_baseline_loops) {
    dots_products("base");
}

#if !defined(__SANITIZE_ADDRESS__)
/*
 * Under an address-space limit, a GEMM that needs a new OpenBLAS buffer (128 MiB) when there is
 * no room gets "Out of memory" (before the fix: blas_memory_alloc retried for ever). Which
 * GEMMs need one depends on the OpenBLAS build: with USE_TLS, each calling thread's first GEMM;
 * without (Debian's), callers share a pool, so only more GEMMs at once than ever before. The
 * limit leaves room for the loading thread's buffer; then the test maps away all but 48 MiB.
 */
enum { GEMM_N = 256, ROUNDS = 10 };

typedef struct gemm_job {
    pthread_barrier_t *start;
    int ok;          /* GEMMs that succeeded with the right values */
    int refused;     /* GEMMs refused with the expected message */
    char other[512]; /* anything else that happened, for the assertion message */
} gemm_job;

/* Runs ROUNDS products ones(N,N) x ones(N,N) (every element N), from its own thread. */
static void *gemm_thread(void *arg) {
    gemm_job *job = arg;
    lam_ctx *ctx = NULL;
    lam_shape s;
    memset(&s, 0, sizeof s);
    s.ndim = 2;
    s.dims[0] = GEMM_N; /* above OpenBLAS's small-matrix path: it needs its buffer */
    s.dims[1] = GEMM_N;
    static float ones[GEMM_N * GEMM_N];
    for (int i = 0; i < GEMM_N * GEMM_N; i++) {
        ones[i] = 1.0f;
    }
    lam_tensor *a = NULL;
    float *out = malloc(sizeof(float) * GEMM_N * GEMM_N);
    cr_assert_not_null(out);
    lam_status st = lam_ctx_get("cpu", &ctx);
    if (st == LAM_OK) {
        st = lam_tensor_from_data(ctx, &s, ones, GEMM_N * GEMM_N, &a);
    }
    if (job->start != NULL) {
        pthread_barrier_wait(job->start);
    }
    for (int r = 0; r < ROUNDS && st == LAM_OK; r++) {
        lam_tensor *c = NULL;
        lam_status gs = lam_op_matmul(a, a, 0, 0, &c);
        float corner = 0.0f;
        if (gs == LAM_OK) {
            gs = lam_tensor_read(c, out, GEMM_N * GEMM_N);
            corner = out[GEMM_N * GEMM_N - 1];
        }
        if (gs == LAM_OK && corner == (float)GEMM_N) {
            job->ok++;
        } else if (gs == LAM_ERR_OUT_OF_MEMORY &&
                   strstr(lam_last_error(), "cpu: Out of memory, OpenBLAS needs 128 MiB of "
                                            "address space for another GEMM buffer") != NULL) {
            job->refused++;
        } else {
            snprintf(job->other, sizeof job->other, "%s (%s), corner %g", lam_status_string(gs),
                     lam_last_error(), (double)corner);
        }
        lam_tensor_release(c);
    }
    if (st != LAM_OK) {
        snprintf(job->other, sizeof job->other, "setup: %s", lam_last_error());
    }
    lam_tensor_release(a);
    free(out);
    return NULL;
}

static size_t vm_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long pages = 0;
    cr_assert_not_null(f);
    cr_assert_eq(fscanf(f, "%lu", &pages), 1);
    fclose(f);
    return (size_t)pages * (size_t)sysconf(_SC_PAGESIZE);
}

/* Limits the address space, loads OpenBLAS, leaves 48 MiB free; 1 if it was built USE_TLS. */
static int limit_and_load(void) {
    setenv("LAMINA_NUM_THREADS", "1", 1);
    cr_assert_eq(lam_init(NULL), LAM_OK, "%s", lam_last_error());
    struct rlimit rl = {vm_bytes() + ((size_t)320 << 20), RLIM_INFINITY};
    cr_assert_eq(setrlimit(RLIMIT_AS, &rl), 0);
    lam_ctx *ctx = NULL;
    cr_assert_eq(lam_ctx_get("cpu", &ctx), LAM_OK, "%s", lam_last_error());
    void *lib = dlopen("libopenblas.so.0", RTLD_NOW | RTLD_NOLOAD);
    cr_assert_not_null(lib, "the cpu backend has not loaded libopenblas.so.0");
    char *(*config)(void) = NULL;
    void *sym = dlsym(lib, "openblas_get_config");
    memcpy(&config, &sym, sizeof config);
    cr_assert_not_null(config);
    const int tls = strstr(config(), "USE_TLS") != NULL;
    dlclose(lib);
    enum { CHUNK = 16 << 20, MAX_CHUNKS = 64 };
    void *chunks[MAX_CHUNKS];
    int n = 0;
    while (n < MAX_CHUNKS) {
        void *p = mmap(NULL, CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            break;
        }
        chunks[n++] = p;
    }
    cr_assert(n >= 3 && n < MAX_CHUNKS, "%d chunks of 16 MiB mapped", n);
    for (int i = 0; i < 3; i++) {
        munmap(chunks[--n], CHUNK);
    }
    return tls;
}

Test(cpu_blas, gemm_needing_a_buffer_without_room_fails_cleanly, .timeout = 120) {
    const int tls = limit_and_load();
    /* One thread, alone: with a shared pool it reuses the loading thread's buffer. */
    gemm_job one = {NULL, 0, 0, ""};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, gemm_thread, &one), 0);
    cr_assert_eq(pthread_join(t, NULL), 0);
    cr_assert_str_empty(one.other, "%s", one.other);
    if (tls) {
        cr_assert_eq(one.refused, ROUNDS, "USE_TLS build: %d refused", one.refused);
    } else {
        cr_assert_eq(one.ok, ROUNDS, "shared pool: %d of %d ran", one.ok, ROUNDS);
    }
    /* Two threads at once: a second buffer is needed whenever their GEMMs overlap. Every GEMM
     * either runs correctly or is refused with the message; none may hang (the timeout). */
    pthread_barrier_t start;
    cr_assert_eq(pthread_barrier_init(&start, NULL, 2), 0);
    gemm_job jobs[2] = {{&start, 0, 0, ""}, {&start, 0, 0, ""}};
    pthread_t ts[2];
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(pthread_create(&ts[i], NULL, gemm_thread, &jobs[i]), 0);
    }
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(pthread_join(ts[i], NULL), 0);
        cr_assert_str_empty(jobs[i].other, "thread %d: %s", i, jobs[i].other);
        cr_assert_eq(jobs[i].ok + jobs[i].refused, ROUNDS);
    }
    pthread_barrier_destroy(&start);
    if (!tls) {
        cr_assert(jobs[0].ok + jobs[1].ok > 0, "no GEMM ran");
    }
}
#endif

#else

Test(cpu_blas, x86_only) {
    cr_skip("OpenBLAS core types are checked on x86-64 only");
}

#endif
