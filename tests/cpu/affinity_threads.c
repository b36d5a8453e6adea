/*
 * The CPU backend's thread pool counts the cores the process may run on (its affinity mask),
 * not the machine's online cores, when LAMINA_NUM_THREADS is unset: under mpirun, which binds
 * each of 2 ranks to one core, a rank must not start a pool worker that can only take turns
 * with it on that core.
 *
 *   cpu_affinity_threads one   binds itself to one core first: no worker may start
 *   cpu_affinity_threads all   keeps its mask of n cores: n - 1 workers (skipped when n = 1)
 *
 * Workers are counted as the process's threads (/proc/self/task) before and after the first
 * op large enough to be shared (a 1 Mi-element add: the pool starts its workers then); threads
 * started before it (OpenBLAS's, had a GEMM loaded it) do not count. The
 * sum is checked too: a + b with a[i] = i % 1000 and b[i] = 0.5, exact in float32.
 * Exit status 0: passed, 1: failed, 77: skipped.
 */
#define _GNU_SOURCE /* sched_setaffinity, CPU_COUNT */
#include "lamina/lamina.h"

#include <dirent.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int threads_now(void) {
    DIR *d = opendir("/proc/self/task");
    int n = 0;
    if (d == NULL) {
        return -1;
    }
    for (struct dirent *e = readdir(d); e != NULL; e = readdir(d)) {
        n += e->d_name[0] != '.';
    }
    closedir(d);
    return n;
}

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        fprintf(stderr, "cpu_affinity_threads: FAIL: ");                                           \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fprintf(stderr, " (last error: %s)\n", lam_last_error());                                  \
        return 1;                                                                                  \
    } while (0)

static lam_tensor *filled(lam_ctx *ctx, int64_t n, int halves) {
    lam_shape s;
    lam_shape_init(&s, 1, &n);
    float *v = malloc((size_t)n * sizeof *v);
    lam_tensor *t = NULL;
    if (v == NULL) {
        return NULL;
    }
    for (int64_t i = 0; i < n; i++) {
        v[i] = halves ? 0.5f : (float)(i % 1000);
    }
    if (lam_tensor_from_data(ctx, &s, v, (size_t)n, &t) != LAM_OK) {
        t = NULL;
    }
    free(v);
    return t;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    if (strcmp(mode, "one") != 0 && strcmp(mode, "all") != 0) {
        fprintf(stderr, "usage: cpu_affinity_threads one|all\n");
        return 2;
    }
    unsetenv("LAMINA_NUM_THREADS"); /* the default is what is tested */
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0) {
        FAIL("sched_getaffinity");
    }
    int cores = CPU_COUNT(&set);
    if (strcmp(mode, "one") == 0) {
        size_t first = 0;
        while (!CPU_ISSET(first, &set)) {
            first++;
        }
        CPU_ZERO(&set);
        CPU_SET(first, &set);
        if (sched_setaffinity(0, sizeof set, &set) != 0) {
            FAIL("sched_setaffinity to core %zu", first);
        }
        cores = 1;
    } else if (cores < 2) {
        printf("skipped: this process may run on one core only, the 'one' case covers it\n");
        return 77;
    }
    lam_ctx *ctx = NULL;
    if (lam_ctx_get("cpu", &ctx) != LAM_OK) {
        FAIL("lam_ctx_get(cpu)");
    }
    /* A small op first: the backend is loaded, the pool not. */
    lam_tensor *a = filled(ctx, 8, 0), *b = filled(ctx, 8, 1), *c = NULL;
    if (a == NULL || b == NULL || lam_op_add(a, b, &c) != LAM_OK) {
        FAIL("small add");
    }
    lam_tensor_release(a);
    lam_tensor_release(b);
    lam_tensor_release(c);
    int before = threads_now();
    const int64_t n = (int64_t)1 << 20;
    a = filled(ctx, n, 0);
    b = filled(ctx, n, 1);
    c = NULL;
    if (a == NULL || b == NULL || lam_op_add(a, b, &c) != LAM_OK) {
        FAIL("large add");
    }
    float *out = malloc((size_t)n * sizeof *out);
    if (out == NULL || lam_tensor_read(c, out, (size_t)n) != LAM_OK) {
        FAIL("read");
    }
    for (int64_t i = 0; i < n; i++) {
        if (out[i] != (float)(i % 1000) + 0.5f) {
            FAIL("element %lld is %g, want %g", (long long)i, (double)out[i],
                 (double)(i % 1000) + 0.5);
        }
    }
    int after = threads_now();
    int want = (cores > 64 ? 64 : cores) - 1; /* the pool's cap is 64 threads */
    if (before < 1 || after - before != want) {
        FAIL("%d core(s) in the affinity mask: the pool started %d worker(s) (threads %d -> %d), "
             "want %d",
             cores, after - before, before, after, want);
    }
    printf("%d core(s) in the affinity mask: %d pool worker(s), as wanted\n", cores,
           after - before);
    free(out);
    lam_tensor_release(a);
    lam_tensor_release(b);
    lam_tensor_release(c);
    lam_shutdown();
    return 0;
}
