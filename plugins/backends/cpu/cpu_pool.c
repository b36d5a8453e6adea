/*
 * cpu_pool.c - a small persistent thread pool for the CPU backend's own loops (elementwise,
 * reductions, softmax, im2col/col2im, pooling; GEMM has OpenBLAS's threads).
 *
 * LAMINA_NUM_THREADS threads work on one op (default: the cores the process may run on, its
 * affinity mask: one per rank under mpirun's binding), the calling thread being one of them,
 * so the pool holds LAMINA_NUM_THREADS - 1 workers, started on the first op
 * large enough to share and joined at the backend's shutdown. One op at a time uses the pool:
 * when another thread's op holds it (several user threads calling the backend at once), the
 * op runs on its caller alone, so there are never more busy threads than cores and no thread
 * ever waits for another's op. Ranges are split the same way whatever the thread count and
 * every kernel writes only its own range, so results do not depend on LAMINA_NUM_THREADS.
 *
 * OpenBLAS's threads and the pool's are never busy at once: an op is either a GEMM or a loop.
 */
#define _GNU_SOURCE /* sysconf(_SC_NPROCESSORS_ONLN), sched_getaffinity, CPU_COUNT */

#include "cpu_internal.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define CPU_POOL_MAX 64

static pthread_once_t g_count_once = PTHREAD_ONCE_INIT;
static int g_threads = 1;

/* Guards the job description and the worker list; workers sleep on g_wake, the caller on
 * g_done_cv. */
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_wake = PTHREAD_COND_INITIALIZER;
static pthread_cond_t g_done_cv = PTHREAD_COND_INITIALIZER;
static pthread_t g_workers[CPU_POOL_MAX];
static int g_n_workers; /* started */
/* g_generation when worker w started: the jobs after it are its to see. */
static uint32_t g_start_gen[CPU_POOL_MAX];
static int g_stop;
static uint32_t g_generation; /* one per job */
/* g_generation and g_stop as they were last published, read without the lock by spinning
 * threads. */
static atomic_uint g_pub_gen;
static atomic_int g_pub_stop;
/* Set by cpu_pool_quiet(), cleared by the next op: spinning workers go to sleep. */
static atomic_int g_pub_quiet;
static cpu_task_fn g_fn;
static void *g_arg;
static int64_t g_n;
static uint32_t g_parts; /* the job's chunks */
/*
 * Chunks are claimed, not assigned: (generation << 32 | next chunk), advanced by compare and
 * swap, so a worker that wakes late claims nothing of a finished job (the generation moved
 * on) and the caller does whatever no worker took: an op never waits for a worker the
 * scheduler has not run yet, only for chunks already being worked on.
 */
static _Atomic uint64_t g_claim;
static atomic_uint g_done; /* chunks finished in this job */
/* 1 while an op uses the pool (taken without waiting; a second op runs alone). */
static atomic_int g_busy;

/* The cores this process may run on: its affinity mask (mpirun and srun bind each rank to
 * its share of the cores, taskset and cgroups' cpusets restrict it too), else the online
 * cores. OpenBLAS counts its default threads the same way. */
static long usable_cores(void) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n >= 1) {
            return n;
        }
    }
    return sysconf(_SC_NPROCESSORS_ONLN);
}

static void count_threads(void) {
    long n = usable_cores();
    const char *s = getenv("LAMINA_NUM_THREADS");
    if (s != NULL && *s != '\0') {
        char *end = NULL;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (errno == 0 && end != s && *end == '\0' && v >= 1 && v <= 4096) {
            n = v; /* a bad value is reported by cpu_blas.c, which reads it too */
        }
    }
    if (n < 1) {
        n = 1;
    }
    g_threads = n > CPU_POOL_MAX ? CPU_POOL_MAX : (int)n;
}

int cpu_threads(void) {
    pthread_once(&g_count_once, count_threads);
    return g_threads;
}

/*
 * Before sleeping on a condition variable, a worker waiting for the next op and the caller
 * waiting for the last chunk spin this long: ops follow one another within a few microseconds,
 * and a futex wake-up and sleep per op took 23% of the samples of the BatchNorm case at 2
 * threads (ops of 0.1-0.2 ms; 1.0 ms per forward+backward with the spin, 1.0-1.6 ms without,
 * depending on how long the woken threads took to run). Work on other threads (OpenBLAS's,
 * oneDNN's) stops the spinning first: cpu_pool_quiet().
 */
#define CPU_POOL_SPIN_NS 50000

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Spins until cond holds or CPU_POOL_SPIN_NS pass. */
#define SPIN_UNTIL(cond)                                                                           \
    do {                                                                                           \
        const int64_t t0_ = now_ns();                                                              \
        for (unsigned i_ = 1; !(cond); i_++) {                                                     \
            cpu_relax();                                                                           \
            if (i_ % 64u == 0 && now_ns() - t0_ > CPU_POOL_SPIN_NS) {                              \
                break;                                                                             \
            }                                                                                      \
        }                                                                                          \
    } while (0)

/* Claims and runs the chunks of job `gen` until none is left. */
static void work_on(uint32_t gen, cpu_task_fn fn, void *arg, int64_t n, uint32_t parts) {
    for (;;) {
        uint64_t v = atomic_load(&g_claim);
        if ((uint32_t)(v >> 32) != gen || (uint32_t)v >= parts) {
            return;
        }
        if (!atomic_compare_exchange_weak(&g_claim, &v, v + 1)) {
            continue;
        }
        const int64_t part = (int64_t)(uint32_t)v;
        const int64_t b = n * part / (int64_t)parts, e = n * (part + 1) / (int64_t)parts;
        if (b < e) {
            fn(arg, b, e);
        }
        if (atomic_fetch_add(&g_done, 1u) + 1u == parts) {
            pthread_mutex_lock(&g_lock);
            pthread_cond_signal(&g_done_cv);
            pthread_mutex_unlock(&g_lock);
        }
    }
}

static void *worker_main(void *p) {
    const int w = (int)(intptr_t)p;
    pthread_mutex_lock(&g_lock);
    uint32_t seen = g_start_gen[w];
    for (;;) {
        if (!g_stop && g_generation == seen) {
            pthread_mutex_unlock(&g_lock);
            SPIN_UNTIL(atomic_load(&g_pub_gen) != seen || atomic_load(&g_pub_stop) ||
                       atomic_load(&g_pub_quiet));
            pthread_mutex_lock(&g_lock);
        }
        while (!g_stop && g_generation == seen) {
            pthread_cond_wait(&g_wake, &g_lock);
        }
        if (g_stop) {
            break;
        }
        seen = g_generation;
        cpu_task_fn fn = g_fn;
        void *arg = g_arg;
        const int64_t n = g_n;
        const uint32_t parts = g_parts;
        pthread_mutex_unlock(&g_lock);
        work_on(seen, fn, arg, n, parts);
        pthread_mutex_lock(&g_lock);
    }
    pthread_mutex_unlock(&g_lock);
    return NULL;
}

/* Starts workers up to want - 1 (g_lock held). Returns how many threads can work. */
static int start_workers(int want) {
    while (g_n_workers < want - 1) {
        g_start_gen[g_n_workers] = g_generation;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, (size_t)256 << 10);
        int rc = pthread_create(&g_workers[g_n_workers], &attr, worker_main,
                                (void *)(intptr_t)g_n_workers);
        pthread_attr_destroy(&attr);
        if (rc != 0) {
            break; /* fewer threads: still correct */
        }
        g_n_workers++;
    }
    return g_n_workers + 1;
}

void cpu_parallel_for(int64_t n, int64_t work, cpu_task_fn fn, void *arg) {
    if (n <= 0) {
        return;
    }
    const int threads = cpu_threads();
    if (threads < 2 || n < 2 || work < CPU_PAR_MIN_WORK) {
        fn(arg, 0, n);
        return;
    }
    int expected = 0;
    if (!atomic_compare_exchange_strong(&g_busy, &expected, 1)) {
        fn(arg, 0, n); /* another op has the pool */
        return;
    }
    pthread_mutex_lock(&g_lock);
    const int workers = start_workers(threads);
    /* a few chunks per thread, none below a quarter of the threshold's work */
    int64_t parts = 4 * (int64_t)workers;
    const int64_t by_work = work / (CPU_PAR_MIN_WORK / 4);
    parts = parts < by_work ? parts : by_work;
    parts = parts < n ? parts : n;
    if (workers < 2 || parts < 2) {
        pthread_mutex_unlock(&g_lock);
        atomic_store(&g_busy, 0);
        fn(arg, 0, n);
        return;
    }
    const uint32_t gen = ++g_generation;
    atomic_store(&g_pub_quiet, 0);
    atomic_store(&g_pub_gen, gen);
    g_fn = fn;
    g_arg = arg;
    g_n = n;
    g_parts = (uint32_t)parts;
    atomic_store(&g_done, 0u);
    atomic_store(&g_claim, (uint64_t)gen << 32);
    pthread_cond_broadcast(&g_wake);
    pthread_mutex_unlock(&g_lock);
    work_on(gen, fn, arg, n, (uint32_t)parts);
    SPIN_UNTIL(atomic_load(&g_done) >= (uint32_t)parts);
    pthread_mutex_lock(&g_lock);
    while (atomic_load(&g_done) < (uint32_t)parts) {
        pthread_cond_wait(&g_done_cv, &g_lock);
    }
    pthread_mutex_unlock(&g_lock);
    atomic_store(&g_busy, 0);
}

void cpu_pool_quiet(void) {
    if (atomic_load_explicit(&g_pub_quiet, memory_order_relaxed) == 0) {
        atomic_store(&g_pub_quiet, 1);
    }
}

void cpu_pool_fini(void) {
    pthread_mutex_lock(&g_lock);
    g_stop = 1;
    atomic_store(&g_pub_stop, 1);
    pthread_cond_broadcast(&g_wake);
    const int n = g_n_workers;
    pthread_mutex_unlock(&g_lock);
    for (int i = 0; i < n; i++) {
        pthread_join(g_workers[i], NULL);
    }
    pthread_mutex_lock(&g_lock);
    g_n_workers = 0;
    g_stop = 0;
    atomic_store(&g_pub_stop, 0);
    pthread_mutex_unlock(&g_lock);
}
