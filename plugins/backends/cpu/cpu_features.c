/*
 * cpu_features.c - what this CPU can run, asked once.
 *
 * Both the choice of OpenBLAS kernel (cpu_blas.c) and the small-GEMM loops (cpu_gemm.c) depend
 * on it. LAMINA_TEST_CPU_HIDE hides features from both, so that a test on an AVX-512 machine can
 * check what happens on a CPU without AVX-512 (an AMD Zen, say): it can only hide what the CPU
 * has, never claim what it lacks, so it cannot make Lamina run an instruction the CPU does not
 * have. Each comma-separated entry hides every feature whose name starts with it ("avx512"
 * hides all the AVX-512 subsets).
 */
#include "cpu_internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

/* Names as /proc/cpuinfo spells them, in enum order. */
static const char *const g_names[CPU_F_COUNT] = {
    "sse3",     "ssse3",    "sse4_1",      "sse4_2",      "avx",      "avx2",
    "fma",      "fma4",     "3dnow",       "avx512f",     "avx512cd", "avx512bw",
    "avx512dq", "avx512vl", "avx512_bf16", "avx512_fp16",
};

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static uint32_t g_features;
static uint32_t g_hidden;

static uint32_t detect(void) {
    uint32_t f = 0;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    /* __builtin_cpu_supports also asks the OS (XGETBV) whether it saves the wide registers. */
#define HAS(name, bit)                                                                             \
    if (__builtin_cpu_supports(name)) {                                                            \
        f |= CPU_FEAT(bit);                                                                        \
    }
    HAS("sse3", CPU_F_SSE3)
    HAS("ssse3", CPU_F_SSSE3)
    HAS("sse4.1", CPU_F_SSE41)
    HAS("sse4.2", CPU_F_SSE42)
    HAS("avx", CPU_F_AVX)
    HAS("avx2", CPU_F_AVX2)
    HAS("fma", CPU_F_FMA)
    HAS("fma4", CPU_F_FMA4)
    HAS("avx512f", CPU_F_AVX512F)
    HAS("avx512cd", CPU_F_AVX512CD)
    HAS("avx512bw", CPU_F_AVX512BW)
    HAS("avx512dq", CPU_F_AVX512DQ)
    HAS("avx512vl", CPU_F_AVX512VL)
    HAS("avx512bf16", CPU_F_AVX512BF16)
    HAS("avx512fp16", CPU_F_AVX512FP16)
#undef HAS
    /* 3DNow! (AMD before 2011) has no __builtin_cpu_supports name: CPUID 0x80000001 EDX[31]. */
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (__get_cpuid(0x80000001u, &eax, &ebx, &ecx, &edx) && (edx & (1u << 31)) != 0) {
        f |= CPU_FEAT(CPU_F_3DNOW);
    }
#endif
    return f;
}

static void init_features(void) {
    uint32_t f = detect();
    const char *hide = getenv("LAMINA_TEST_CPU_HIDE");
    if (hide != NULL) {
        char entry[32];
        const char *p = hide;
        while (*p != '\0') {
            size_t len = strcspn(p, ", ");
            if (len > 0 && len < sizeof entry) {
                memcpy(entry, p, len);
                entry[len] = '\0';
                int matched = 0;
                for (int i = 0; i < CPU_F_COUNT; i++) {
                    if (strncmp(g_names[i], entry, len) == 0) {
                        g_hidden |= CPU_FEAT(i) & f;
                        matched = 1;
                    }
                }
                if (!matched) {
                    cpu_log(LAM_LOG_WARN,
                            "cpu: Invalid LAMINA_TEST_CPU_HIDE, '%s' starts no feature name "
                            "(sse3 .. avx512_fp16, as in /proc/cpuinfo)",
                            entry);
                }
            }
            p += len;
            p += strspn(p, ", ");
        }
    }
    g_features = f & ~g_hidden;
}

uint32_t cpu_features(void) {
    pthread_once(&g_once, init_features);
    return g_features;
}

uint32_t cpu_features_hidden(void) {
    pthread_once(&g_once, init_features);
    return g_hidden;
}

void cpu_features_describe(uint32_t mask, char *buf, size_t cap) {
    if (cap == 0) {
        return;
    }
    buf[0] = '\0';
    size_t len = 0;
    for (int i = 0; i < CPU_F_COUNT && len < cap; i++) {
        if ((mask & CPU_FEAT(i)) != 0) {
            int n = snprintf(buf + len, cap - len, "%s%s", len > 0 ? ", " : "", g_names[i]);
            if (n < 0) {
                break;
            }
            len += (size_t)n;
        }
    }
}
