/*
 * cpu_blas.c - loading OpenBLAS at run time and choosing its kernel.
 *
 * Why the plugin does not simply link libopenblas: OpenBLAS picks its compute kernel once, in
 * its library constructor, from the CPU model or the OPENBLAS_CORETYPE variable. Debian's
 * OpenBLAS 0.3.21 does not know recent AVX-512 Xeons (Sapphire Rapids) and falls back to its
 * generic "Prescott" kernels, about five times slower than its SkylakeX kernels on the same
 * core. Linked as a dependency, the constructor would run before the plugin could say anything.
 * So the plugin dlopen()s libopenblas.so.0 itself on first use, after setting
 * OPENBLAS_CORETYPE from the CPU features it detects (unless the user set the variable, or
 * OpenBLAS is already loaded in the process), and restores the environment right after.
 */
#define _GNU_SOURCE /* RTLD_NOLOAD, setenv */

#include "cpu_internal.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef LAMINA_CPU_HAVE_CBLAS_H
#include <cblas.h>
#else
/* The standard CBLAS values, for builds without OpenBLAS's development headers. */
enum CBLAS_ORDER { CblasRowMajor = 101, CblasColMajor = 102 };
enum CBLAS_TRANSPOSE { CblasNoTrans = 111, CblasTrans = 112 };
typedef int blasint;
#endif

#define OPENBLAS_SONAME "libopenblas.so.0"

typedef void (*sgemm_fn)(enum CBLAS_ORDER, enum CBLAS_TRANSPOSE, enum CBLAS_TRANSPOSE, blasint,
                         blasint, blasint, float, const float *, blasint, const float *, blasint,
                         float, float *, blasint);
typedef char *(*str_fn)(void);
typedef int (*get_int_fn)(void);
typedef void (*set_int_fn)(int);

#ifdef LAMINA_CPU_HAVE_CBLAS_H
/* The pointer types must match OpenBLAS's prototypes (unevaluated: creates no reference). */
_Static_assert(_Generic(&cblas_sgemm, sgemm_fn : 1, default : 0), "cblas_sgemm type");
_Static_assert(_Generic(&openblas_get_corename, str_fn : 1, default : 0), "corename type");
_Static_assert(_Generic(&openblas_get_num_threads, get_int_fn : 1, default : 0), "threads type");
_Static_assert(_Generic(&openblas_set_num_threads, set_int_fn : 1, default : 0), "threads type");
#endif

/* Who chose the kernel OpenBLAS runs. */
typedef enum kernel_choice {
    CHOICE_OPENBLAS,       /* OpenBLAS's own detection; Lamina had no better guess */
    CHOICE_ALREADY_LOADED, /* OpenBLAS was in the process before us; too late to choose */
    CHOICE_USER,           /* OPENBLAS_CORETYPE was set by the user */
    CHOICE_LAMINA          /* Lamina set OPENBLAS_CORETYPE from the CPU features */
} kernel_choice;

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static int g_state; /* 0: not tried, 1: loaded, -1: failed (g_why says why) */
static char g_why[512];
static void *g_lib;
static sgemm_fn g_sgemm;
static str_fn g_corename;
static str_fn g_config;
static get_int_fn g_get_threads;
static set_int_fn g_set_threads;
static kernel_choice g_choice;
static char g_choice_arg[96]; /* the user's OPENBLAS_CORETYPE, or the CPU features we saw */

/* ISO C has no conversion from void * to a function pointer; copying the bits is POSIX's way. */
#define LOAD_SYM(lib, name, var)                                                                   \
    do {                                                                                           \
        void *sym_ = dlsym((lib), (name));                                                         \
        memcpy(&(var), &sym_, sizeof(var));                                                        \
    } while (0)

/* The OPENBLAS_CORETYPE that suits this CPU, or NULL to leave the choice to OpenBLAS. */
static const char *pick_coretype(const char **features) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vl")) {
        *features = "AVX-512";
        return "SkylakeX";
    }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        *features = "AVX2 and FMA";
        return "Haswell";
    }
#endif
    *features = NULL;
    return NULL;
}

/* dlopen()s OpenBLAS with OPENBLAS_CORETYPE set to `core` for the duration of the call. */
static void *open_with_coretype(const char *core) {
    const char *prev_env = getenv("OPENBLAS_CORETYPE");
    char prev[96];
    int had_prev = prev_env != NULL;
    if (had_prev) {
        snprintf(prev, sizeof prev, "%s", prev_env);
    }
    int set = core != NULL && setenv("OPENBLAS_CORETYPE", core, 1) == 0;
    void *lib = dlopen(OPENBLAS_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (set) {
        if (had_prev) {
            setenv("OPENBLAS_CORETYPE", prev, 1);
        } else {
            unsetenv("OPENBLAS_CORETYPE");
        }
    }
    return lib;
}

/* LAMINA_NUM_THREADS, when set to a positive integer, fixes OpenBLAS's thread count. */
static void apply_thread_count(void) {
    const char *s = getenv("LAMINA_NUM_THREADS");
    if (s == NULL || *s == '\0') {
        return;
    }
    char *end = NULL;
    errno = 0;
    long n = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || n < 1 || n > 4096) {
        cpu_log(LAM_LOG_WARN,
                "cpu: Invalid LAMINA_NUM_THREADS, '%s' is not a thread count from 1 to 4096; "
                "keeping OpenBLAS's default",
                s);
        return;
    }
    if (g_set_threads != NULL) {
        g_set_threads((int)n);
    }
}

/* Runs with g_lock held. */
static void load_locked(void) {
    dlerror(); /* clear a stale message */
    void *lib = dlopen(OPENBLAS_SONAME, RTLD_NOW | RTLD_NOLOAD);
    g_choice_arg[0] = '\0';
    if (lib != NULL) {
        g_choice = CHOICE_ALREADY_LOADED;
    } else {
        const char *user = getenv("OPENBLAS_CORETYPE");
        if (user != NULL && *user != '\0') {
            g_choice = CHOICE_USER;
            snprintf(g_choice_arg, sizeof g_choice_arg, "%s", user);
            lib = open_with_coretype(NULL);
        } else {
            const char *features = NULL;
            const char *core = pick_coretype(&features);
            g_choice = core != NULL ? CHOICE_LAMINA : CHOICE_OPENBLAS;
            if (features != NULL) {
                snprintf(g_choice_arg, sizeof g_choice_arg, "%s", features);
            }
            lib = open_with_coretype(core);
        }
    }
    if (lib == NULL) {
        const char *err = dlerror();
        snprintf(g_why, sizeof g_why, "no OpenBLAS: %s", err != NULL ? err : "dlopen failed");
        g_state = -1;
        return;
    }
    LOAD_SYM(lib, "cblas_sgemm", g_sgemm);
    if (g_sgemm == NULL) {
        snprintf(g_why, sizeof g_why, "no OpenBLAS: %s has no cblas_sgemm", OPENBLAS_SONAME);
        dlclose(lib);
        g_state = -1;
        return;
    }
    /* The openblas_* extras only describe and tune; a stand-in library may lack them. */
    LOAD_SYM(lib, "openblas_get_corename", g_corename);
    LOAD_SYM(lib, "openblas_get_config", g_config);
    LOAD_SYM(lib, "openblas_get_num_threads", g_get_threads);
    LOAD_SYM(lib, "openblas_set_num_threads", g_set_threads);
    g_lib = lib;
    g_state = 1;
    apply_thread_count();
}

lam_status cpu_blas_load(char *why, size_t why_cap) {
    char reason[sizeof g_why];
    pthread_mutex_lock(&g_lock);
    int fresh = g_state == 0;
    if (fresh) {
        load_locked();
    }
    int state = g_state;
    snprintf(reason, sizeof reason, "%s", state < 0 ? g_why : "");
    pthread_mutex_unlock(&g_lock);
    if (state < 0 && why != NULL && why_cap > 0) {
        snprintf(why, why_cap, "%s", reason);
    }
    /* Logged outside the lock: the host's log callback may take its own locks. */
    if (fresh && state > 0) {
        char driver[128];
        char details[512];
        cpu_blas_describe(driver, sizeof driver, details, sizeof details);
        cpu_log(LAM_LOG_INFO, "cpu: loaded %s", details);
    } else if (fresh) {
        cpu_log(LAM_LOG_INFO, "cpu: no device, %s", reason);
    }
    return state > 0 ? LAM_OK : LAM_ERR_DEVICE_UNAVAILABLE;
}

void cpu_blas_unload(void) {
    pthread_mutex_lock(&g_lock);
    if (g_state > 0) {
        dlclose(g_lib);
    }
    g_lib = NULL;
    g_sgemm = NULL;
    g_corename = NULL;
    g_config = NULL;
    g_get_threads = NULL;
    g_set_threads = NULL;
    g_state = 0;
    pthread_mutex_unlock(&g_lock);
}

void cpu_blas_describe(char *driver, size_t driver_cap, char *details, size_t details_cap) {
    pthread_mutex_lock(&g_lock);
    char version[64] = "OpenBLAS";
    const char *config = g_config != NULL ? g_config() : NULL;
    if (config != NULL) {
        /* "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY SkylakeX MAX_THREADS=64": first two words */
        size_t n = strcspn(config, " ");
        if (config[n] == ' ') {
            n += 1 + strcspn(config + n + 1, " ");
        }
        snprintf(version, sizeof version, "%.*s", (int)n, config);
    }
    const char *core = g_corename != NULL ? g_corename() : NULL;
    if (core == NULL) {
        core = "unknown";
    }
    char why[256];
    switch (g_choice) {
    case CHOICE_LAMINA:
        snprintf(why, sizeof why,
                 "set by Lamina: this CPU has %s, which %s may not recognise; "
                 "OPENBLAS_CORETYPE overrides",
                 g_choice_arg, version);
        break;
    case CHOICE_USER:
        snprintf(why, sizeof why, "OPENBLAS_CORETYPE=%s set by the user", g_choice_arg);
        break;
    case CHOICE_ALREADY_LOADED:
        snprintf(why, sizeof why,
                 "chosen by OpenBLAS: it was already loaded in this process, too late for "
                 "Lamina to set OPENBLAS_CORETYPE");
        break;
    case CHOICE_OPENBLAS:
    default:
        snprintf(why, sizeof why, "chosen by OpenBLAS");
        break;
    }
    int threads = g_get_threads != NULL ? g_get_threads() : 0;
    char thread_text[48] = "";
    if (threads > 0) {
        snprintf(thread_text, sizeof thread_text, ", %d thread%s", threads,
                 threads == 1 ? "" : "s");
    }
    if (driver_cap > 0) {
        snprintf(driver, driver_cap, "%s", version);
    }
    if (details_cap > 0) {
        snprintf(details, details_cap, "%s, kernel %s (%s)%s", version, core, why, thread_text);
    }
    pthread_mutex_unlock(&g_lock);
}

void cpu_blas_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
                    int lda, const float *b, int ldb, float beta, float *c, int ldc) {
    g_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
            m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
