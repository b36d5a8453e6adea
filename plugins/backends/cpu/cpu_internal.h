/*
 * cpu_internal.h - what the files of the CPU backend plugin share. Nothing here is exported:
 * the plugin's only public symbol is lamina_plugin_entry (see cpu_backend.c).
 */
#ifndef LAMINA_CPU_INTERNAL_H
#define LAMINA_CPU_INTERNAL_H

#include "lamina/plugin.h"

#include <stddef.h>
#include <stdint.h>

/* Alignment of buffer data; one cache line and one AVX-512 register. */
#define CPU_ALIGN 64

/* Marks a live buffer handle so a stale or foreign pointer is caught before use. */
#define CPU_BUFFER_MAGIC 0x4c616d4350554275ULL
#define CPU_DEVICE_MAGIC 0x4c616d4350554465ULL

/*
 * A buffer handle. An allocated buffer keeps this header in the first CPU_ALIGN bytes of one
 * aligned block with the data after it, so the data is aligned too and one free() releases
 * both; a buffer over caller memory (buffer_from_host_ptr) is a header alone, pointing at it.
 */
typedef struct cpu_buffer {
    uint64_t magic;
    size_t bytes;
    char *data;
    int32_t read_only; /* wraps read-only host memory: never written */
    int32_t reserved;
} cpu_buffer;

/* Host memory buffer_from_host_ptr wraps must be aligned to this (every dtype's size). */
#define CPU_HOST_PTR_ALIGN 8

/* Instruction sets the small-GEMM loops are compiled for (cpu_gemm.c). */
typedef enum cpu_isa { CPU_ISA_BASE = 0, CPU_ISA_AVX2 = 1, CPU_ISA_AVX512 = 2 } cpu_isa;

/*
 * The one device (index 0). device_open hands out the address of one of two static instances:
 * the default one, or, when LAMINA_VALIDATION is set (not "0") at the time of the open, the
 * validating one, on which execute checks every view completely (cpu_exec.c).
 */
typedef struct cpu_device {
    uint64_t magic;
    cpu_isa isa;      /* set once, before device_open first returns */
    int32_t validate; /* fixed per instance: full checks of every call's views */
} cpu_device;

/*
 * A checked operand (cpu_exec.c made it from a lam_tensor_view): strides in ELEMENTS, never
 * negative, data the address of the first element (NULL in a dry check without memory).
 */
typedef struct cpu_view {
    lam_dtype dtype;
    uint32_t ndim;
    size_t esize; /* bytes of one element */
    char *data;
    int64_t dims[LAM_MAX_DIMS];
    int64_t st[LAM_MAX_DIMS];
} cpu_view;

#define CPU_MAX_IN  5 /* LAYER_NORM_BACKWARD */
#define CPU_MAX_OUT 3 /* LAYER_NORM with its statistics */

/* One op call with its operands checked against their buffers. */
typedef struct cpu_call {
    lam_op op;
    uint32_t flags;
    const char *name; /* lam_op_name(op) */
    uint32_t n_in;
    uint32_t n_out;
    int dry; /* supports(): check dtypes, shapes and parameters only; data may be NULL */
    const void *params;
    cpu_view in[CPU_MAX_IN];
    cpu_view out[CPU_MAX_OUT];
} cpu_call;

static inline float *cpu_f32(const cpu_view *v) {
    return (float *)(void *)v->data;
}

/* Number of elements of a checked view (cannot overflow: cpu_exec.c checked it). */
static inline int64_t cpu_count(const cpu_view *v) {
    int64_t n = 1;
    for (uint32_t d = 0; d < v->ndim; d++) {
        n *= v->dims[d];
    }
    return n;
}

/*
 * Steps idx to the next element of dims in row-major order, moving each of the n operands'
 * element offsets off[k] by its strides st[k]; returns 0 after the last element.
 */
static inline int cpu_next(uint32_t ndim, const int64_t *dims, int64_t *idx, int n, int64_t *off,
                           const int64_t *const *st) {
    for (int d = (int)ndim - 1; d >= 0; d--) {
        for (int k = 0; k < n; k++) {
            off[k] += st[k][d];
        }
        if (++idx[d] < dims[d]) {
            return 1;
        }
        for (int k = 0; k < n; k++) {
            off[k] -= st[k][d] * dims[d];
        }
        idx[d] = 0;
    }
    return 0;
}

/* ---- cpu_diag.c (the bottom level: calls no other file of the plugin) ---- */

/* The host table handed to lamina_plugin_entry; valid from the entry call until unload. */
extern const lam_host_api *cpu_host;

/* Sets the host's error message for this thread and returns `status`. */
lam_status cpu_error(lam_status status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * While nonzero on this thread, cpu_error sets no message (supports() runs the checks of
 * execute to answer, and must leave the thread's message alone). Returns the previous value.
 */
int cpu_quiet(int quiet);
/* Frees what cpu_quiet created (at the backend's shutdown). */
void cpu_diag_fini(void);

/* Logs through the host when it has a log callback. */
void cpu_log(lam_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- cpu_features.c ---- */

/* CPU features that decide which kernels may run (bit numbers of cpu_features()). */
typedef enum cpu_feature {
    CPU_F_SSE3 = 0,
    CPU_F_SSSE3 = 1,
    CPU_F_SSE41 = 2,
    CPU_F_SSE42 = 3,
    CPU_F_AVX = 4,
    CPU_F_AVX2 = 5,
    CPU_F_FMA = 6,
    CPU_F_FMA4 = 7,
    CPU_F_3DNOW = 8,
    CPU_F_AVX512F = 9,
    CPU_F_AVX512CD = 10,
    CPU_F_AVX512BW = 11,
    CPU_F_AVX512DQ = 12,
    CPU_F_AVX512VL = 13,
    CPU_F_AVX512BF16 = 14,
    CPU_F_AVX512FP16 = 15,
    CPU_F_COUNT = 16
} cpu_feature;

#define CPU_FEAT(f) (1u << (unsigned)(f))
/* What OpenBLAS's SkylakeX kernels and the AVX-512 small-GEMM loops use. */
#define CPU_FEATS_AVX512                                                                           \
    (CPU_FEAT(CPU_F_AVX512F) | CPU_FEAT(CPU_F_AVX512CD) | CPU_FEAT(CPU_F_AVX512BW) |               \
     CPU_FEAT(CPU_F_AVX512DQ) | CPU_FEAT(CPU_F_AVX512VL) | CPU_FEAT(CPU_F_AVX2) |                  \
     CPU_FEAT(CPU_F_FMA))
#define CPU_FEATS_AVX2 (CPU_FEAT(CPU_F_AVX2) | CPU_FEAT(CPU_F_FMA) | CPU_FEAT(CPU_F_AVX))

/*
 * The features of this CPU (and OS) as a mask of CPU_FEAT bits, less those LAMINA_TEST_CPU_HIDE
 * hides. Thread safety: any thread; detected once.
 */
uint32_t cpu_features(void);

/* The features LAMINA_TEST_CPU_HIDE hid (a subset of what the CPU has). */
uint32_t cpu_features_hidden(void);

/* Writes the /proc/cpuinfo names of the features in mask, comma-separated, into buf. */
void cpu_features_describe(uint32_t mask, char *buf, size_t cap);

/* ---- cpu_blas.c ---- */

/*
 * Loads OpenBLAS once (choosing its kernel first, see cpu_blas.c). Returns LAM_OK, or
 * LAM_ERR_DEVICE_UNAVAILABLE with the reason ("no OpenBLAS: ...") copied into why.
 * Thread safety: may be called from any thread; the first call does the work.
 */
lam_status cpu_blas_load(char *why, size_t why_cap);

/*
 * The device probe's check: decides without loading OpenBLAS where it can (a user's
 * OPENBLAS_CORETYPE this CPU cannot run is refused; a libopenblas.so.0 where dlopen will find it
 * is left to the first GEMM) and loads it where it cannot (see cpu_blas.c). Returns LAM_OK, or
 * LAM_ERR_DEVICE_UNAVAILABLE with the reason copied into why, as cpu_blas_load.
 * Thread safety: as cpu_blas_load.
 */
lam_status cpu_blas_check(char *why, size_t why_cap);

/* Unloads OpenBLAS; a later cpu_blas_load loads it again. Only when no device is in use. */
void cpu_blas_unload(void);

/* Fills "OpenBLAS 0.3.21" and the kernel/threads description. Requires a successful load. */
void cpu_blas_describe(char *driver, size_t driver_cap, char *details, size_t details_cap);

/*
 * Row-major C = alpha * op(A) * op(B) + beta * C through cblas_sgemm. lda/ldb/ldc are leading
 * dimensions in elements and must satisfy BLAS's rules; the caller checked them.
 * Loads OpenBLAS first when the probe left that to the first GEMM (cpu_blas_check).
 * Errors: LAM_ERR_DEVICE_UNAVAILABLE ("cpu: Device unavailable, <why>") when OpenBLAS cannot be
 * loaded; LAM_ERR_OUT_OF_MEMORY when an address-space limit leaves no room for a buffer
 * OpenBLAS would have to allocate for this call (it would wait for it for ever; cpu_blas.c).
 */
lam_status cpu_blas_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha,
                          const float *a, int lda, const float *b, int ldb, float beta, float *c,
                          int ldc);

/* ---- cpu_buffer.c: the buffer callbacks of lam_backend_desc ---- */

/* The machine's memory (MemTotal), or 0 when unknown. */
uint64_t cpu_memory_bytes(void);
/* LAM_OK when dev is the cpu device, else an error naming the problem. */
lam_status cpu_check_dev(const void *dev);
lam_status cpu_buffer_alloc(void *dev, size_t bytes, void **buffer);
lam_status cpu_buffer_from_host_ptr(void *dev, void *ptr, size_t bytes, int32_t read_only,
                                    void **buffer);
void cpu_buffer_free(void *dev, void *buffer);
void *cpu_buffer_host_ptr(void *dev, void *buffer);
lam_status cpu_buffer_write(void *dev, void *buffer, size_t offset, const void *src, size_t bytes);
lam_status cpu_buffer_read(void *dev, const void *buffer, size_t offset, void *dst, size_t bytes);
lam_status cpu_buffer_copy(void *dev, void *dst, size_t dst_offset, const void *src,
                           size_t src_offset, size_t bytes);

/* ---- cpu_gemm.c ---- */

/* GEMMs up to this many multiply-adds (and wide enough) run in cpu_gemm.c's own loops. */
#define CPU_SMALL_GEMM_MACS 32768

/*
 * c = alpha * op(a) op(b) + beta * c on 2-D F32 views whose dims cpu_exec.c checked (op
 * transposes with trans_a / trans_b). With beta == 0 c is not read.
 * Errors: those of cpu_blas_sgemm.
 */
lam_status cpu_gemm(const cpu_device *dev, int trans_a, int trans_b, float alpha, float beta,
                    const cpu_view *a, const cpu_view *b, const cpu_view *c);

/*
 * The best instruction set of this CPU (cpu_features()) for the small-GEMM loops, lowered by
 * LAMINA_CPU_ISA
 * ("base", "avx2", "avx512") when set, so tests can run every variant on one machine.
 */
cpu_isa cpu_gemm_pick_isa(void);

/* "AVX-512", "AVX2" or "baseline". */
const char *cpu_isa_name(cpu_isa isa);

/* ---- cpu_pool.c: the threads of the backend's own loops ---- */

/* Work (elements, or element-sized steps) below which a loop runs on its caller alone. */
#define CPU_PAR_MIN_WORK 65536

/* One range [begin, end) of a parallel loop's items. */
typedef void (*cpu_task_fn)(void *arg, int64_t begin, int64_t end);

/*
 * Runs fn over the items [0, n), split into contiguous ranges across the pool's threads (the
 * caller runs one) when `work` is at least CPU_PAR_MIN_WORK; otherwise, or while another
 * thread's op has the pool, fn(arg, 0, n) on the caller. Returns when every range is done.
 * fn must write only what its range owns. Thread safety: any thread.
 */
void cpu_parallel_for(int64_t n, int64_t work, cpu_task_fn fn, void *arg);

/* LAMINA_NUM_THREADS, else the online cores (1..64). */
int cpu_threads(void);

/* Joins the workers (backend shutdown); a later parallel loop starts them again. */
void cpu_pool_fini(void);
/* ---- cpu_env.c: variables set for the length of a dlopen() ---- */

typedef struct cpu_env_patch {
    const char *name;
    int set; /* the variable was set here: cpu_env_restore undoes it */
    int had_prev;
    char prev[96];
} cpu_env_patch;

/* Sets `name` to `value` (nothing when value is NULL), remembering what it was. */
void cpu_env_set(cpu_env_patch *p, const char *name, const char *value);
/* The same, unless the user set `name` or `unless` (may be NULL) to a non-empty value. */
void cpu_env_default(cpu_env_patch *p, const char *name, const char *value, const char *unless);
/* Restores what cpu_env_set or cpu_env_default changed. */
void cpu_env_restore(const cpu_env_patch *p);

/* Before work that other threads share (OpenBLAS's, oneDNN's): the pool's workers stop
 * spinning for the next op and sleep, leaving the cores to those threads. */
void cpu_pool_quiet(void);

/* ---- cpu_kern_*.c: the loops compiled per instruction set (cpu_kern_impl.h) ---- */

/* One innermost row: n elements; o/x/y advance by os/xs/ys elements. */
typedef void (*cpu_ew_row)(ptrdiff_t n, float *o, ptrdiff_t os, const float *x, ptrdiff_t xs,
                           const float *y, ptrdiff_t ys, float s, float t);

/* Inner positions a blocked reduction task covers. */
#define CPU_RED_BLOCK 512

/* The operands of LAYER_NORM (x, gamma, beta -> y, mean, rstd) and LAYER_NORM_BACKWARD (dy, x,
 * mean_in, rstd_in, gamma -> y = dx) with element strides: x (m, n) has xs0, xs1, and so on. */
typedef struct cpu_ln_args {
    int64_t m, n;
    float eps;
    const float *x, *dy, *gamma, *beta, *mean_in, *rstd_in;
    float *y, *mean, *rstd; /* mean and rstd NULL: not wanted */
    int64_t xs0, xs1, dys0, dys1, ys0, ys1, gs, bs, ms, rs;
} cpu_ln_args;

typedef struct cpu_kern {
    /* The row kernel of an elementwise float op, NULL for another op. */
    cpu_ew_row (*ew_row)(lam_op op);
    /* The row kernel of out = act(x + y) (act LAM_OP_INVALID: none; RELU, SIGMOID, TANH,
     * SOFTRELU), the bits of the add and the activation one after the other; NULL else. */
    cpu_ew_row (*bias_act)(lam_op act);
    /* Tasks [t0, t1) of a reduction (cpu_reduce.c says what a task is). */
    void (*reduce_tasks)(const cpu_call *call, int blocked, int64_t t0, int64_t t1);
    /* LAYER_NORM rows [r0, r1) (cpu_ln_impl.h). */
    void (*ln_forward)(const cpu_ln_args *a, int64_t r0, int64_t r1);
    /* LAYER_NORM_BACKWARD rows [r0, r1): dx, and with pg non-NULL the rows' dgamma and dbeta
     * terms added into pg and pb (n each, dense). */
    void (*ln_backward)(const cpu_ln_args *a, int64_t r0, int64_t r1, float *pg, float *pb);
} cpu_kern;

extern const cpu_kern cpu_kern_base;
extern const cpu_kern cpu_kern_avx2;
extern const cpu_kern cpu_kern_avx512;

/* The table of the device's instruction set (cpu_gemm_pick_isa, picked once). */
const cpu_kern *cpu_kern_pick(void);

/*
 * The op families. Each checks what cpu_exec.c leaves to it (the op's own shape, dtype and
 * parameter rules) and, unless call->dry, runs the op. Checks in a dry call set no message
 * (cpu_diag.c's quiet mode).
 */

/* cpu_ops.c: FILL .. SOFTRELU, MAXIMUM .. AXPBY, GREATER, LESS, EQUAL, CLAMP (dims checked). */
lam_status cpu_elementwise(const cpu_call *call);

/* cpu_ops.c: the bias and activation part of LAM_OP_LINEAR, after its GEMM wrote out[0]. */
lam_status cpu_linear_epilogue(const cpu_call *call, lam_op act);

/* cpu_reduce.c: reductions, ARGMAX, SOFTMAX, LOG_SOFTMAX, MOMENTS (dims checked). */
lam_status cpu_reduce(const cpu_call *call);

/* cpu_nn.c: IM2COL, COL2IM, MAX_POOL(_BACKWARD), AVG_POOL(_BACKWARD). */
lam_status cpu_window(const cpu_call *call);

/* CONV and its gradients on oneDNN (cpu_dnnl.c); LAM_ERR_UNSUPPORTED where oneDNN cannot run
 * the call (missing, LAMINA_CPU_DNNL=0, non-dense views), so the host falls back. */
lam_status cpu_conv(const cpu_call *call);
/* 1 when libdnnl.so.2 is loaded and usable (loads it on the first call). */
int cpu_dnnl_available(void);
/* Frees the kept convolution primitives (backend shutdown). */
void cpu_dnnl_fini(void);
/* fn(arg), or -1 when it throws a C++ exception (cpu_dnnl_try.cpp; oneDNN throws on failed
 * allocations). */
int cpu_dnnl_try(int (*fn)(void *), void *arg);

/* cpu_index.c: GATHER_ROWS, SCATTER_ADD_ROWS, WHERE, PAD, CAST. */
lam_status cpu_index(const cpu_call *call);

/* cpu_layernorm.c: LAYER_NORM, LAYER_NORM_BACKWARD (arity checked). */
lam_status cpu_layer_norm(const cpu_call *call);

/* cpu_random.c: RANDOM. */
lam_status cpu_random(const cpu_call *call);

/* One Philox-4x32-10 block (Random123's constants, as core/rng.c). */
void cpu_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* ---- cpu_exec.c ---- */

int32_t cpu_supports(void *dev, const lam_op_call *call);
lam_status cpu_execute(void *dev, const lam_op_call *call);
lam_status cpu_run_kernel(void *dev, const struct lam_kernel_impl *impl, void *user,
                          const void *params, const lam_kernel_args *args);

#endif /* LAMINA_CPU_INTERNAL_H */
