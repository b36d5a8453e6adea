/*
 * cpu_blas.c - loading OpenBLAS at run time, choosing its kernel, and calling its sgemm.
 *
 * Why the plugin does not simply link libopenblas: OpenBLAS picks its compute kernel once, in
 * its library constructor, from the CPU model or the OPENBLAS_CORETYPE variable, and it runs
 * whatever kernel that variable names, even one this CPU cannot execute (SkylakeX on an AMD Zen
 * dies with SIGILL on the first GEMM). Linked as a dependency, the constructor would run before
 * the plugin could check anything. So the plugin dlopen()s libopenblas.so.0 itself, on the first
 * GEMM that needs it (or when asked to describe its kernel, as `lamina plugins` does):
 *
 * - OPENBLAS_CORETYPE set by the user: checked against the CPU's features (table below) first;
 *   a core type this CPU cannot run, or one Lamina does not know, is refused with the reason.
 * - unset: OpenBLAS chooses. Its choice is kept when it recognises the CPU (Zen on AMD, SkylakeX
 *   or Cooperlake on AVX-512 Xeons). Only when it falls back to a kernel of a lower tier than the
 *   CPU supports (0.3.21 runs its generic Prescott kernels on Intel family-6 CPUs whose extended
 *   model it lacks, about five times slower) is it closed and opened again with OPENBLAS_CORETYPE
 *   set to the best tier's kernel; the environment is restored right after.
 * - already loaded by someone else in the process: too late to choose; its kernel is checked.
 *
 * Loading it takes longer than the rest of a CPU-only program's start (a DYNAMIC_ARCH library:
 * about 12 million instructions of symbol lookups, and a worker thread that spins until it is
 * told to stop), so the device probe does not load it: it checks what it can without loading
 * (a user's OPENBLAS_CORETYPE against the CPU; that libopenblas.so.0 is where dlopen will look
 * for it) and loads it only when it cannot decide without: under an address-space limit (the
 * room for its buffers is checked at load), when OpenBLAS is already in the process (its kernel
 * is checked), or when the library is not found where it looked (dlopen then gives the reason).
 * A library found there that still fails to load is reported by the first GEMM.
 *
 * OpenBLAS also allocates one GEMM buffer (BUFFER_SIZE, 128 MiB on x86-64) per thread that runs
 * a GEMM, and when that allocation fails it retries for ever. Under an address-space limit
 * (ulimit -v, RLIMIT_AS) the plugin therefore checks the room before OpenBLAS needs it: at load
 * (fewer OpenBLAS threads, or no device, when the buffers do not fit) and before a GEMM that
 * needs a new buffer (a clean "Out of memory" instead of a hang).
 */
#define _GNU_SOURCE /* RTLD_NOLOAD */

#include "cpu_internal.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

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
    CHOICE_OPENBLAS,       /* OpenBLAS's own detection, kept */
    CHOICE_ALREADY_LOADED, /* OpenBLAS was in the process before us; too late to choose */
    CHOICE_USER,           /* OPENBLAS_CORETYPE was set by the user (and this CPU runs it) */
    CHOICE_LAMINA          /* OpenBLAS fell back to a generic kernel; Lamina set the core type */
} kernel_choice;

/*
 * OpenBLAS's x86-64 core types (0.3.21, plus later names) and the CPU features their kernels
 * execute. Tiers: 0 SSE, 1 AVX, 2 AVX2+FMA, 3 AVX-512. Checked on this project's machines: the
 * Opteron kernels start with `femms` (3DNow!), the Bulldozer family's sgemm uses 4-operand
 * `vfmaddps` (FMA4, which no Intel CPU and no Zen reports), SkylakeX needs AVX-512; the
 * 32-bit names run the Prescott kernels on x86-64.
 */
typedef struct core_type {
    const char *name;
    int tier;
    uint32_t needs;
} core_type;

#define F(x) CPU_FEAT(CPU_F_##x)
static const core_type g_cores[] = {
    {"Katmai", 0, F(SSE3)},
    {"Coppermine", 0, F(SSE3)},
    {"Northwood", 0, F(SSE3)},
    {"Prescott", 0, F(SSE3)},
    {"Banias", 0, F(SSE3)},
    {"Athlon", 0, F(SSE3)},
    {"Atom", 0, F(SSSE3)},
    {"Core2", 0, F(SSSE3)},
    {"Penryn", 0, F(SSE41)},
    {"Dunnington", 0, F(SSE41)},
    {"Nehalem", 0, F(SSE42)},
    {"Nano", 0, F(SSE3)},
    {"Opteron", 0, F(3DNOW)},
    {"Opteron_SSE3", 0, F(3DNOW) | F(SSE3)},
    {"Barcelona", 0, F(SSE3)},
    {"Bobcat", 0, F(SSE3)},
    {"Sandybridge", 1, F(AVX)},
    {"Bulldozer", 1, F(AVX) | F(FMA4)},
    {"Piledriver", 1, F(AVX) | F(FMA4)},
    {"Steamroller", 1, F(AVX) | F(FMA4)},
    {"Excavator", 1, F(AVX) | F(FMA4)},
    {"Haswell", 2, CPU_FEATS_AVX2},
    {"Zen", 2, CPU_FEATS_AVX2},
    {"SkylakeX", 3, CPU_FEATS_AVX512},
    {"Cooperlake", 3, CPU_FEATS_AVX512 | F(AVX512BF16)},
    {"SapphireRapids", 3, CPU_FEATS_AVX512 | F(AVX512BF16) | F(AVX512FP16)},
};
#undef F

/* The core type named `name` (case-insensitive, as OpenBLAS compares), or NULL. */
static const core_type *find_core(const char *name) {
    for (size_t i = 0; i < sizeof g_cores / sizeof g_cores[0]; i++) {
        if (strcasecmp(g_cores[i].name, name) == 0) {
            return &g_cores[i];
        }
    }
    return NULL;
}

/* The kernel of the best tier this CPU runs (NULL without even SSE3). */
static const core_type *best_core(uint32_t have) {
    if ((have & CPU_FEATS_AVX512) == CPU_FEATS_AVX512) {
        return find_core("SkylakeX"); /* 0.3.21 does not accept "Cooperlake" by name */
    }
    if ((have & CPU_FEATS_AVX2) == CPU_FEATS_AVX2) {
        return find_core("Haswell");
    }
    if ((have & CPU_FEAT(CPU_F_AVX)) != 0) {
        return find_core("Sandybridge");
    }
    if ((have & CPU_FEAT(CPU_F_SSE3)) != 0) {
        return find_core("Prescott");
    }
    return NULL;
}

/*
 * Address space one OpenBLAS GEMM buffer takes: BUFFER_SIZE (32 << 22 bytes in x86-64 builds,
 * Debian's included) and FIXED_PAGESIZE, which Debian's build gets from malloc (a page more).
 * A worker thread adds its stack and, the first time it calls malloc, a 64 MiB glibc arena.
 */
#define OPENBLAS_BUFFER_BYTES ((size_t)(32u << 22) + 2u * 4096u)
#define MALLOC_ARENA_BYTES    ((size_t)64u << 20)

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static int g_state;         /* 0: not tried, 1: loaded, -1: failed (g_why says why) */
static int g_checked;       /* with g_state 0: the probe's checks passed without loading */
static atomic_int g_loaded; /* g_state is 1 (release after the fields below are set) */
static char g_why[512];
static void *g_lib;
static sgemm_fn g_sgemm;
static str_fn g_corename;
static str_fn g_config;
static get_int_fn g_get_threads;
static set_int_fn g_set_threads;
static get_int_fn g_get_procs;
static kernel_choice g_choice;
static char g_choice_arg[400]; /* the user's OPENBLAS_CORETYPE, or why Lamina chose */
static char g_limit_note[160]; /* what the address-space limit changed, or "" */
static int g_as_limited;       /* RLIMIT_AS was finite at load: check before first GEMMs */
/*
 * OpenBLAS built with USE_TLS (its config string says so) gives each calling thread its own
 * buffers; otherwise (Debian's 0.3.21) callers share one pool that keeps every buffer it ever
 * allocated, so a new buffer is needed only when more GEMMs run at once than ever before.
 */
static int g_tls_buffers;
static unsigned g_generation; /* counts loads: a buffer of an unloaded OpenBLAS is gone */
static _Thread_local unsigned t_buffer_generation; /* USE_TLS: load whose buffer we have */
static atomic_int g_inflight;                      /* pool: GEMMs running now */
static atomic_int g_pool_buffers;                  /* pool: caller buffers it holds */

/* ISO C has no conversion from void * to a function pointer; copying the bits is POSIX's way. */
#define LOAD_SYM(lib, name, var)                                                                   \
    do {                                                                                           \
        void *sym_ = dlsym((lib), (name));                                                         \
        memcpy(&(var), &sym_, sizeof(var));                                                        \
    } while (0)

/*
 * How long OpenBLAS's idle threads spin (2^22 cycles, about 1.5 ms) before they sleep, unless
 * the user set OPENBLAS_THREAD_TIMEOUT. OpenBLAS 0.3.21's default, 2^28 cycles (about 0.1 s,
 * yielding the core in a loop), kept its threads busy through the pool's and oneDNN's work
 * after every GEMM: a LeNet step at 2 threads took 3.4 ms in some runs and 8-10 ms in others
 * (perf: sched_yield and libgomp's spin next to each other); 2^22 keeps the GEMMs of a step
 * back to back without waking the threads again.
 */
#define OPENBLAS_IDLE_SPIN "22"

/* dlopen()s OpenBLAS with OPENBLAS_CORETYPE / OPENBLAS_NUM_THREADS set when not NULL. */
static void *open_with(const char *core, const char *threads) {
    cpu_env_patch pc, pt, ps;
    cpu_env_set(&pc, "OPENBLAS_CORETYPE", core);
    cpu_env_set(&pt, "OPENBLAS_NUM_THREADS", threads);
    cpu_env_default(&ps, "OPENBLAS_THREAD_TIMEOUT", OPENBLAS_IDLE_SPIN, NULL);
    void *lib = dlopen(OPENBLAS_SONAME, RTLD_NOW | RTLD_LOCAL);
    cpu_env_restore(&ps);
    cpu_env_restore(&pt);
    cpu_env_restore(&pc);
    return lib;
}

static const char *corename_of(void *lib) {
    str_fn fn = NULL;
    LOAD_SYM(lib, "openblas_get_corename", fn);
    return fn != NULL ? fn() : NULL;
}

/* A positive thread count from the variable `name`, or 0 when unset or not one. */
static long env_threads(const char *name) {
    const char *s = getenv(name);
    if (s == NULL || *s == '\0') {
        return 0;
    }
    char *end = NULL;
    errno = 0;
    long n = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || n < 1 || n > 4096) {
        return -1;
    }
    return n;
}

/* LAMINA_NUM_THREADS as a thread count, 0 when unset; warns about a bad value. */
static long lamina_threads(void) {
    long n = env_threads("LAMINA_NUM_THREADS");
    if (n < 0) {
        cpu_log(LAM_LOG_WARN,
                "cpu: Invalid LAMINA_NUM_THREADS, '%s' is not a thread count from 1 to 4096; "
                "keeping OpenBLAS's default",
                getenv("LAMINA_NUM_THREADS"));
        return 0;
    }
    return n;
}

/* Nonzero when `bytes` of address space can be mapped now (as malloc would map them). */
static int can_map(size_t bytes) {
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        return 0;
    }
    munmap(p, bytes);
    return 1;
}

/* The soft RLIMIT_AS in KiB, or 0 when unlimited. */
static unsigned long long as_limit_kib(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_AS, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) {
        return 0;
    }
    return (unsigned long long)rl.rlim_cur / 1024u;
}

static size_t thread_stack_bytes(void) {
    pthread_attr_t attr;
    size_t bytes = (size_t)8u << 20;
    if (pthread_getattr_default_np(&attr) == 0) {
        pthread_attr_getstacksize(&attr, &bytes);
        pthread_attr_destroy(&attr);
    }
    return bytes;
}

/*
 * Under an address-space limit, OpenBLAS was opened with one thread (so no worker could start
 * and spin on a buffer it cannot get). Allocates this thread's buffer now with a GEMM, then
 * gives OpenBLAS as many threads as wanted and fit. Returns 0 (with g_why set) when not even
 * one buffer fits. Runs with g_lock held.
 */
static int fit_address_space(long wanted) {
    const unsigned long long limit_kib = as_limit_kib();
    if (!can_map(OPENBLAS_BUFFER_BYTES)) {
        snprintf(g_why, sizeof g_why,
                 "OpenBLAS needs %zu MiB of address space for its GEMM buffer, and the "
                 "address-space limit (ulimit -v %llu KiB) leaves less; OpenBLAS would wait for "
                 "it for ever",
                 OPENBLAS_BUFFER_BYTES >> 20, limit_kib);
        return 0;
    }
    /* 128^3 is above OpenBLAS's small-matrix path (100^3 in 0.3.21): the call takes a buffer. */
    enum { N = 128 };
    float *m = calloc(3u * N * N, sizeof *m);
    if (m == NULL) {
        snprintf(g_why, sizeof g_why, "out of memory setting up OpenBLAS");
        return 0;
    }
    g_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, N, N, 1.0f, m, N, m + N * N, N, 0.0f,
            m + 2 * N * N, N);
    free(m);
    t_buffer_generation = g_generation;
    atomic_store(&g_pool_buffers, 1);
    const size_t per_worker = OPENBLAS_BUFFER_BYTES + thread_stack_bytes() + MALLOC_ARENA_BYTES;
    long fit = 1;
    while (fit < wanted && can_map((size_t)fit * per_worker)) {
        fit++;
    }
    if (fit > 1 && g_set_threads != NULL) {
        g_set_threads((int)fit);
    }
    if (fit < wanted) {
        snprintf(g_limit_note, sizeof g_limit_note,
                 "%ld of %ld threads: the address-space limit (ulimit -v %llu KiB) leaves no "
                 "room for more %zu MiB buffers",
                 fit, wanted, limit_kib, OPENBLAS_BUFFER_BYTES >> 20);
        cpu_log(LAM_LOG_WARN, "cpu: OpenBLAS runs %s", g_limit_note);
    }
    return 1;
}

/* Describes the features in `missing` and whether LAMINA_TEST_CPU_HIDE hid them. */
static void describe_missing(uint32_t missing, char *buf, size_t cap) {
    char names[160];
    cpu_features_describe(missing, names, sizeof names);
    snprintf(buf, cap, "%s%s", names,
             (missing & cpu_features_hidden()) != 0 ? " (hidden by LAMINA_TEST_CPU_HIDE)" : "");
}

static void fail_locked(void *lib) {
    if (lib != NULL) {
        dlclose(lib);
    }
    g_state = -1;
}

/*
 * Nonzero (with g_why set) when the user's OPENBLAS_CORETYPE `user` is one this CPU cannot run
 * or one Lamina does not know.
 */
static int user_core_refused(const char *user) {
    const uint32_t have = cpu_features();
    const core_type *best = best_core(have);
    const core_type *ct = find_core(user);
    if (ct == NULL) {
        snprintf(g_why, sizeof g_why,
                 "OPENBLAS_CORETYPE=%.40s is not an x86-64 core type Lamina knows (Prescott, "
                 "Sandybridge, Haswell, Zen, SkylakeX, ...), so it cannot check that this CPU "
                 "runs it; unset it or set it to %s",
                 user, best != NULL ? best->name : "Prescott");
        return 1;
    }
    if ((ct->needs & ~have) != 0) {
        char missing[224];
        describe_missing(ct->needs & ~have, missing, sizeof missing);
        snprintf(g_why, sizeof g_why,
                 "OPENBLAS_CORETYPE=%s names kernels this CPU cannot run: they need %s; unset "
                 "OPENBLAS_CORETYPE to let OpenBLAS choose, or set it to %s",
                 ct->name, missing, best != NULL ? best->name : "Prescott");
        return 1;
    }
    return 0;
}

/* Opens OpenBLAS as the file comment says; the library, or NULL with g_why set. */
static void *open_checked(const char *threads) {
    const uint32_t have = cpu_features();
    const core_type *best = best_core(have);
    char missing[224];
    dlerror(); /* clear a stale message */
    void *lib = dlopen(OPENBLAS_SONAME, RTLD_NOW | RTLD_NOLOAD);
    if (lib != NULL) {
        g_choice = CHOICE_ALREADY_LOADED;
        const char *name = corename_of(lib);
        const core_type *ct = name != NULL ? find_core(name) : NULL;
        if (ct != NULL && (ct->needs & ~have) != 0) {
            describe_missing(ct->needs & ~have, missing, sizeof missing);
            snprintf(g_why, sizeof g_why,
                     "the OpenBLAS already loaded in this process runs kernel %s, which needs "
                     "%s, missing on this CPU",
                     ct->name, missing);
            dlclose(lib);
            return NULL;
        }
        return lib;
    }
    const char *user = getenv("OPENBLAS_CORETYPE");
    if (user != NULL && *user != '\0') {
        snprintf(g_choice_arg, sizeof g_choice_arg, "%s", user);
        if (user_core_refused(user)) {
            return NULL;
        }
        g_choice = CHOICE_USER;
        return open_with(NULL, threads);
    }
    lib = open_with(NULL, threads);
    if (lib == NULL) {
        return NULL;
    }
    const char *name = corename_of(lib);
    const core_type *ct = name != NULL ? find_core(name) : NULL;
    g_choice = CHOICE_OPENBLAS;
    if (ct == NULL) {
        snprintf(g_choice_arg, sizeof g_choice_arg, "a kernel Lamina does not know, not checked");
        return lib;
    }
    if (best == NULL || ((ct->needs & ~have) == 0 && ct->tier >= best->tier)) {
        snprintf(g_choice_arg, sizeof g_choice_arg, "it recognises this CPU");
        return lib;
    }
    /* OpenBLAS fell back below what this CPU runs (or chose what it lacks): choose for it. */
    if ((ct->needs & ~have) != 0) {
        describe_missing(ct->needs & ~have, missing, sizeof missing);
        snprintf(g_choice_arg, sizeof g_choice_arg,
                 "OpenBLAS chose %s, which needs %s, missing on this CPU", ct->name, missing);
    } else {
        snprintf(g_choice_arg, sizeof g_choice_arg,
                 "OpenBLAS chose %s, a generic kernel, on a CPU that runs %s", ct->name,
                 best->name);
    }
    dlclose(lib);
    g_choice = CHOICE_LAMINA;
    return open_with(best->name, threads);
}

/* Runs with g_lock held. */
static void load_locked(void) {
    g_choice_arg[0] = '\0';
    g_limit_note[0] = '\0';
    g_why[0] = '\0';
    g_as_limited = as_limit_kib() != 0;
    g_generation++;
    atomic_store(&g_pool_buffers, 0);
    atomic_store(&g_inflight, 0);
    const long lamina_n = lamina_threads();
    void *lib = open_checked(g_as_limited ? "1" : NULL);
    if (lib == NULL) {
        if (g_why[0] == '\0') {
            const char *err = dlerror();
            snprintf(g_why, sizeof g_why, "no OpenBLAS: %s", err != NULL ? err : "dlopen failed");
        }
        fail_locked(NULL);
        return;
    }
    LOAD_SYM(lib, "cblas_sgemm", g_sgemm);
    if (g_sgemm == NULL) {
        snprintf(g_why, sizeof g_why, "no OpenBLAS: %s has no cblas_sgemm", OPENBLAS_SONAME);
        fail_locked(lib);
        return;
    }
    /* The openblas_* extras only describe and tune; a stand-in library may lack them. */
    LOAD_SYM(lib, "openblas_get_corename", g_corename);
    LOAD_SYM(lib, "openblas_get_config", g_config);
    LOAD_SYM(lib, "openblas_get_num_threads", g_get_threads);
    LOAD_SYM(lib, "openblas_set_num_threads", g_set_threads);
    LOAD_SYM(lib, "openblas_get_num_procs", g_get_procs);
    g_tls_buffers = g_config != NULL && strstr(g_config(), "USE_TLS") != NULL;
    if (g_as_limited && g_choice != CHOICE_ALREADY_LOADED) {
        /* The thread count OpenBLAS would have taken, had it not been opened with one. */
        long wanted = lamina_n;
        const char *vars[] = {"OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS"};
        for (size_t i = 0; i < 3 && wanted <= 0; i++) {
            wanted = env_threads(vars[i]);
        }
        if (wanted <= 0) {
            wanted = g_get_procs != NULL ? g_get_procs() : 1;
        }
        if (!fit_address_space(wanted)) {
            fail_locked(lib);
            return;
        }
    } else if (lamina_n > 0 && g_set_threads != NULL) {
        g_set_threads((int)lamina_n);
    }
    g_lib = lib;
    g_state = 1;
    atomic_store_explicit(&g_loaded, 1, memory_order_release);
}

/*
 * The end of cpu_blas_load and cpu_blas_check, outside the lock (the host's log callback may
 * take its own locks): copies the reason of a failure into why, and logs a fresh outcome.
 */
static lam_status outcome(int fresh, int state, const char *reason, char *why, size_t why_cap) {
    if (state < 0 && why != NULL && why_cap > 0) {
        snprintf(why, why_cap, "%s", reason);
    }
    if (fresh && state > 0) {
        char driver[128];
        char details[512];
        cpu_blas_describe(driver, sizeof driver, details, sizeof details);
        cpu_log(LAM_LOG_INFO, "cpu: loaded %s", details);
    } else if (fresh && state < 0) {
        /* No OpenBLAS installed is a fact of the machine; a refused kernel is worth a warning. */
        cpu_log(strncmp(reason, "no OpenBLAS", 11) == 0 ? LAM_LOG_INFO : LAM_LOG_WARN,
                "cpu: Device unavailable, %s", reason);
    }
    return state >= 0 ? LAM_OK : LAM_ERR_DEVICE_UNAVAILABLE;
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
    return outcome(fresh, state, reason, why, why_cap);
}

/* Nonzero when `dir`/libopenblas.so.0 exists (`len` bytes of dir; 0 means the current one). */
static int in_dir(const char *dir, size_t len) {
    char path[4096];
    if (len == 0) {
        dir = ".";
        len = 1;
    }
    if (len + sizeof "/" OPENBLAS_SONAME > sizeof path) {
        return 0;
    }
    snprintf(path, sizeof path, "%.*s/%s", (int)len, dir, OPENBLAS_SONAME);
    return access(path, F_OK) == 0;
}

/*
 * Nonzero when dlopen(OPENBLAS_SONAME) will find a file: in a directory of LD_LIBRARY_PATH
 * (which dlopen ignores in set-user-ID programs, as secure_getenv does), or under a path the
 * loader's cache (/etc/ld.so.cache, made by ldconfig) lists, which names every library of the
 * system directories. The cache's string table holds each library's full path, NUL-ended; the
 * file the entry names must still exist. Zero means "not seen": the caller then loads.
 */
static int blas_findable(void) {
    const char *llp = secure_getenv("LD_LIBRARY_PATH");
    for (const char *p = llp; p != NULL && *p != '\0';) {
        size_t len = strcspn(p, ":;");
        if (in_dir(p, len)) {
            return 1;
        }
        p += len;
        p += *p != '\0';
    }
    int fd = open("/etc/ld.so.cache", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return 0;
    }
    struct stat st;
    int found = 0;
    if (fstat(fd, &st) == 0 && st.st_size > 0 && (uint64_t)st.st_size < ((uint64_t)64 << 20)) {
        const size_t size = (size_t)st.st_size;
        const char *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map != MAP_FAILED) {
            static const char tail[] = "/" OPENBLAS_SONAME; /* with its NUL */
            const char *at = map;
            const char *end = map + size;
            while (!found && (at = memmem(at, (size_t)(end - at), tail, sizeof tail)) != NULL) {
                const char *start = at;
                while (start > map && start[-1] != '\0' && at - start < 4000) {
                    start--;
                }
                found = *start == '/' && in_dir(start, (size_t)(at - start));
                at += sizeof tail;
            }
            munmap((void *)(uintptr_t)map, size);
        }
    }
    close(fd);
    return found;
}

/* What the probe can decide without loading OpenBLAS (see the file comment). */
typedef enum check_result { CHECK_LAZY, CHECK_REFUSED, CHECK_LOAD } check_result;

/* Runs with g_lock held and g_state 0. */
static check_result check_locked(void) {
    if (as_limit_kib() != 0) {
        return CHECK_LOAD; /* the room for its buffers is checked at load */
    }
    void *lib = dlopen(OPENBLAS_SONAME, RTLD_NOW | RTLD_NOLOAD);
    if (lib != NULL) {
        dlclose(lib); /* already in the process: loading it is cheap, and checks its kernel */
        return CHECK_LOAD;
    }
    const char *user = getenv("OPENBLAS_CORETYPE");
    if (user != NULL && *user != '\0' && user_core_refused(user)) {
        return CHECK_REFUSED;
    }
    return blas_findable() ? CHECK_LAZY : CHECK_LOAD;
}

lam_status cpu_blas_check(char *why, size_t why_cap) {
    char reason[sizeof g_why];
    pthread_mutex_lock(&g_lock);
    int fresh = 0;
    if (g_state == 0 && !g_checked) {
        g_why[0] = '\0';
        switch (check_locked()) {
        case CHECK_LAZY:
            g_checked = 1;
            break;
        case CHECK_REFUSED:
            fail_locked(NULL);
            fresh = 1;
            break;
        case CHECK_LOAD:
            load_locked();
            fresh = 1;
            break;
        }
    }
    int state = g_state;
    snprintf(reason, sizeof reason, "%s", state < 0 ? g_why : "");
    pthread_mutex_unlock(&g_lock);
    return outcome(fresh, state, reason, why, why_cap);
}

/* Loads OpenBLAS for a GEMM when the probe did not; the error names the device's problem. */
static lam_status ensure_loaded(void) {
    char reason[sizeof g_why];
    if (cpu_blas_load(reason, sizeof reason) != LAM_OK) {
        return cpu_error(LAM_ERR_DEVICE_UNAVAILABLE, "cpu: Device unavailable, %s", reason);
    }
    return LAM_OK;
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
    g_get_procs = NULL;
    g_state = 0;
    g_checked = 0;
    atomic_store_explicit(&g_loaded, 0, memory_order_release);
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
    char why[480];
    switch (g_choice) {
    case CHOICE_LAMINA:
        snprintf(why, sizeof why, "set by Lamina: %s; OPENBLAS_CORETYPE overrides", g_choice_arg);
        break;
    case CHOICE_USER:
        snprintf(why, sizeof why, "OPENBLAS_CORETYPE=%s set by the user, checked against this CPU",
                 g_choice_arg);
        break;
    case CHOICE_ALREADY_LOADED:
        snprintf(why, sizeof why,
                 "chosen by OpenBLAS: it was already loaded in this process, too late for "
                 "Lamina to choose");
        break;
    case CHOICE_OPENBLAS:
    default:
        snprintf(why, sizeof why, "chosen by OpenBLAS: %s", g_choice_arg);
        break;
    }
    int threads = g_get_threads != NULL ? g_get_threads() : 0;
    char thread_text[48] = "";
    if (threads > 0) {
        snprintf(thread_text, sizeof thread_text, ", %d thread%s%s", threads,
                 threads == 1 ? "" : "s", g_limit_note[0] != '\0' ? " (address-space limit)" : "");
    }
    if (driver_cap > 0) {
        snprintf(driver, driver_cap, "%s", version);
    }
    if (details_cap > 0) {
        snprintf(details, details_cap, "%s, kernel %s (%s)%s", version, core, why, thread_text);
    }
    pthread_mutex_unlock(&g_lock);
}

static lam_status no_room(void) {
    return cpu_error(LAM_ERR_OUT_OF_MEMORY,
                     "cpu: Out of memory, OpenBLAS needs %zu MiB of address space for another "
                     "GEMM buffer and the address-space limit (ulimit -v %llu KiB) leaves less",
                     OPENBLAS_BUFFER_BYTES >> 20, as_limit_kib());
}

lam_status cpu_blas_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha,
                          const float *a, int lda, const float *b, int ldb, float beta, float *c,
                          int ldc) {
    const enum CBLAS_TRANSPOSE ta = trans_a ? CblasTrans : CblasNoTrans;
    const enum CBLAS_TRANSPOSE tb = trans_b ? CblasTrans : CblasNoTrans;
    if (!atomic_load_explicit(&g_loaded, memory_order_acquire)) {
        lam_status st = ensure_loaded(); /* the first GEMM of the process that needs OpenBLAS */
        if (st != LAM_OK) {
            return st;
        }
    }
    cpu_pool_quiet(); /* the cores are for OpenBLAS's threads now */
    if (!g_as_limited) {
        g_sgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return LAM_OK;
    }
    /* Under a limit: OpenBLAS would retry a failed buffer allocation for ever. */
    if (g_tls_buffers) {
        if (t_buffer_generation != g_generation) { /* this thread's first GEMM */
            if (!can_map(OPENBLAS_BUFFER_BYTES)) {
                return no_room();
            }
            t_buffer_generation = g_generation;
        }
        g_sgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return LAM_OK;
    }
    const int running = atomic_fetch_add(&g_inflight, 1) + 1;
    int held = atomic_load(&g_pool_buffers);
    if (running > held) { /* the pool will grow: check the room first */
        if (!can_map(OPENBLAS_BUFFER_BYTES)) {
            atomic_fetch_sub(&g_inflight, 1);
            return no_room();
        }
        while (held < running && !atomic_compare_exchange_weak(&g_pool_buffers, &held, running)) {
        }
    }
    g_sgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    atomic_fetch_sub(&g_inflight, 1);
    return LAM_OK;
}
