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
 * A buffer handle. The header occupies the first CPU_ALIGN bytes of one aligned block and the
 * data follows, so the data is aligned too and one free() releases both.
 */
typedef struct cpu_buffer {
    uint64_t magic;
    size_t bytes;
} cpu_buffer;

/* Instruction sets the small-GEMM loops are compiled for (cpu_gemm.c). */
typedef enum cpu_isa { CPU_ISA_BASE = 0, CPU_ISA_AVX2 = 1, CPU_ISA_AVX512 = 2 } cpu_isa;

/* The one device (index 0). device_open hands out the address of a static instance. */
typedef struct cpu_device {
    uint64_t magic;
    cpu_isa isa; /* set once, before device_open first returns */
} cpu_device;

static inline float *cpu_buffer_data(const cpu_buffer *b) {
    return (float *)(void *)((char *)(uintptr_t)b + CPU_ALIGN);
}

/* ---- cpu_diag.c (the bottom level: calls no other file of the plugin) ---- */

/* The host table handed to lamina_plugin_entry; valid from the entry call until unload. */
extern const lam_host_api *cpu_host;

/* Sets the host's error message for this thread and returns `status`. */
lam_status cpu_error(lam_status status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

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

/* Unloads OpenBLAS; a later cpu_blas_load loads it again. Only when no device is in use. */
void cpu_blas_unload(void);

/* Fills "OpenBLAS 0.3.21" and the kernel/threads description. Requires a successful load. */
void cpu_blas_describe(char *driver, size_t driver_cap, char *details, size_t details_cap);

/*
 * Row-major C = alpha * op(A) * op(B) + beta * C through cblas_sgemm. lda/ldb/ldc are leading
 * dimensions in elements and must satisfy BLAS's rules; the caller checked them.
 * Errors: LAM_ERR_OUT_OF_MEMORY when an address-space limit leaves no room for a buffer
 * OpenBLAS would have to allocate for this call (it would wait for it for ever; cpu_blas.c).
 */
lam_status cpu_blas_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha,
                          const float *a, int lda, const float *b, int ldb, float beta, float *c,
                          int ldc);

/* ---- cpu_gemm.c ---- */

/* GEMMs up to this many multiply-adds (and wide enough) run in cpu_gemm.c's own loops. */
#define CPU_SMALL_GEMM_MACS 32768

/* LAM_OP_GEMM on a call that cpu_execute validated (shapes consistent, views in bounds). */
lam_status cpu_gemm(const cpu_device *dev, const lam_op_call *call);

/*
 * The best instruction set of this CPU (cpu_features()) for the small-GEMM loops, lowered by
 * LAMINA_CPU_ISA
 * ("base", "avx2", "avx512") when set, so tests can run every variant on one machine.
 */
cpu_isa cpu_gemm_pick_isa(void);

/* "AVX-512", "AVX2" or "baseline". */
const char *cpu_isa_name(cpu_isa isa);

/* ---- cpu_ops.c / cpu_reduce.c ---- */

/* Elementwise ops (FILL .. SOFTRELU, MAXIMUM .. GREATER_EQUAL) on a validated call. */
lam_status cpu_elementwise(const lam_op_call *call);

/* Reductions, ARGMAX, SOFTMAX and LOG_SOFTMAX on a validated call. */
lam_status cpu_reduce(const lam_op_call *call);

/* ---- cpu_exec.c ---- */

int32_t cpu_supports_op(void *dev, lam_op op, const lam_op_call *call);
lam_status cpu_execute(void *dev, const lam_op_call *call);

/* The bias and activation part of LAM_OP_LINEAR, after its GEMM wrote the output. */
lam_status cpu_linear_epilogue(const lam_op_call *call);

#endif /* LAMINA_CPU_INTERNAL_H */
