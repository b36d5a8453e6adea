/*
 * test_failalloc.c - the allocation-failure injector that sweeps preload (tools/failalloc).
 *
 * Also its guard mode (a PROT_NONE page right after every block), whose out-of-bounds accesses
 * run in a forked child that must die with SIGSEGV.
 *
 * Run by ctest with LD_PRELOAD naming liblamina_failalloc.so. Without it (an ASan build, where
 * the injector is not built) every test skips, saying so.
 */
#define _POSIX_C_SOURCE 200809L /* posix_memalign, strdup */
#include <criterion/criterion.h>

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../tools/failalloc/failalloc.h"

static lam_failalloc fa;

/* ctest sets LAMINA_TEST_FAILALLOC_REQUIRED=1 wherever the injector is built: there a missing
 * preload is a failure, not a skip. */
static void need_injector(void) {
    if (lam_failalloc_bind(&fa) != 0) {
        const char *req = getenv("LAMINA_TEST_FAILALLOC_REQUIRED");
        cr_assert(req == NULL || req[0] != '1', "liblamina_failalloc.so is not preloaded");
        cr_skip_test("liblamina_failalloc.so is not preloaded (sanitizer build?)");
    }
}

/* Where allocations escape to, so the compiler cannot elide a malloc/free pair. */
static void *volatile sink[3];

/* Three allocations through three different entry points. */
static void three_allocs(void *arg) {
    (void)arg;
    sink[0] = malloc(16);
    sink[1] = calloc(2, 8);
    void *c = NULL;
    if (posix_memalign(&c, 64, 64) != 0) {
        c = NULL;
    }
    sink[2] = c;
    for (int i = 0; i < 3; i++) {
        free(sink[i]);
    }
}

Test(failalloc, calibration_counts_each_allocation) {
    need_injector();
    cr_assert_eq(lam_failalloc_calibrate(&fa, three_allocs, NULL), 3);
}

Test(failalloc, kth_allocation_fails_with_enomem) {
    need_injector();
    fa.arm(2);
    void *a = malloc(16);
    errno = 0;
    void *b = calloc(4, 4);
    int err = errno;
    void *c = malloc(16);
    int hit = fa.injected();
    fa.arm(0);
    cr_assert_not_null(a);
    cr_assert_null(b, "the 2nd allocation must fail");
    cr_assert_eq(err, ENOMEM);
    cr_assert_not_null(c, "only the armed allocation fails");
    cr_assert_eq(hit, 1);
    free(a);
    free(c);
}

Test(failalloc, aligned_allocation_fails_with_status) {
    need_injector();
    fa.arm(1);
    void *p = (void *)&fa;
    int rc = posix_memalign(&p, 64, 128);
    fa.arm(0);
    cr_assert_eq(rc, ENOMEM);
    cr_assert_eq(p, (void *)&fa, "a failed posix_memalign leaves *out alone");
}

Test(failalloc, disarmed_injector_fails_nothing) {
    need_injector();
    fa.arm(0);
    char *s = strdup("still works");
    cr_assert_str_eq(s, "still works");
    free(s);
    cr_assert_eq(fa.injected(), 0);
}

/* ---- guard mode: every block ends at a PROT_NONE page ---- */

/* Sizes through a volatile, so the compiler cannot see the out-of-bounds index at build time. */
static volatile size_t five = 5, twenty_one = 21;

static int at_page_end(const void *end) {
    return (uintptr_t)end % (uintptr_t)sysconf(_SC_PAGESIZE) == 0;
}

/* Runs fn in a child process; returns the signal that killed it, or 0 when it exited. */
static int dies_with(void (*fn)(void)) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        fn();
        _exit(0);
    }
    int status = 0;
    cr_assert_gt(pid, 0, "fork failed");
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    return WIFSIGNALED(status) ? WTERMSIG(status) : 0;
}

static void read_one_past(void) {
    fa.guard(1);
    size_t n = five;
    float *a = malloc(n * sizeof *a);
    if (a == NULL) {
        _exit(2);
    }
    volatile float *v = a;
    for (size_t i = 0; i < n; i++) {
        v[i] = (float)i;
    }
    float x = v[n]; /* the defect: must die here */
    (void)x;
}

static void write_one_past(void) {
    fa.guard(1);
    volatile char *p = calloc(3, 7);
    if (p == NULL) {
        _exit(2);
    }
    p[twenty_one] = 1; /* the defect */
}

static void read_last_element(void) {
    fa.guard(1);
    size_t n = five;
    volatile float *v = calloc(n, sizeof(float));
    if (v == NULL) {
        _exit(2);
    }
    float x = v[n - 1]; /* in bounds */
    (void)x;
}

Test(failalloc_guard, read_one_past_a_float_array_faults) {
    need_injector();
    cr_assert_eq(dies_with(read_one_past), SIGSEGV);
}

Test(failalloc_guard, write_one_past_a_calloc_block_faults) {
    need_injector();
    cr_assert_eq(dies_with(write_one_past), SIGSEGV);
}

Test(failalloc_guard, reading_the_last_element_does_not_fault) {
    need_injector();
    cr_assert_eq(dies_with(read_last_element), 0);
}

Test(failalloc_guard, in_bounds_use_works_and_blocks_end_at_the_guard) {
    need_injector();
    fa.guard(1);
    float *a = malloc(5 * sizeof *a);
    char *s = malloc(13);
    double *d = malloc(3 * sizeof *d);
    void *z = malloc(0);
    int was = fa.guard(0);
    cr_assert_eq(was, 1);
    cr_assert(a != NULL && s != NULL && d != NULL && z != NULL);
    cr_assert(at_page_end(a + 5), "a float array ends right at the guard page");
    cr_assert(at_page_end(s + 13));
    cr_assert(at_page_end(d + 3));
    cr_assert_eq((uintptr_t)d % 8, 0, "a block of 24 bytes keeps 8-byte alignment");
    for (int i = 0; i < 5; i++) {
        a[i] = 0.5f * (float)i;
    }
    memcpy(s, "hello guard!", 13);
    cr_assert_float_eq(a[4], 2.0f, 0.0f);
    cr_assert_str_eq(s, "hello guard!");
    /* Guarded blocks are freed after the mode stopped. */
    free(a);
    free(s);
    free(d);
    free(z);
}

Test(failalloc_guard, calloc_zeroes_and_realloc_keeps_contents) {
    need_injector();
    char *before = malloc(40); /* a glibc block, made before the mode started */
    cr_assert_not_null(before);
    memcpy(before, "made by glibc", 14);
    fa.guard(1);
    int *c = calloc(9, sizeof *c);
    cr_assert_not_null(c);
    for (int i = 0; i < 9; i++) {
        cr_assert_eq(c[i], 0, "calloc'd element %d is %d", i, c[i]);
        c[i] = i * i;
    }
    int *g = realloc(c, 20 * sizeof *g); /* guarded to guarded, growing */
    cr_assert_not_null(g);
    cr_assert(at_page_end(g + 20));
    for (int i = 0; i < 9; i++) {
        cr_assert_eq(g[i], i * i);
    }
    g = realloc(g, 4 * sizeof *g); /* shrinking */
    cr_assert_eq(g[3], 9);
    cr_assert(at_page_end(g + 4));
    char *moved = realloc(before, 14); /* glibc's block into a guarded one */
    cr_assert_str_eq(moved, "made by glibc");
    cr_assert(at_page_end(moved + 14));
    char *plain = malloc(8);
    fa.guard(0);
    char *back = realloc(moved, 100); /* a guarded block into glibc's */
    cr_assert_str_eq(back, "made by glibc");
    free(back);
    free(g);
    free(plain);
}

Test(failalloc_guard, posix_memalign_keeps_the_alignment_asked) {
    need_injector();
    fa.guard(1);
    void *p = NULL, *q = NULL;
    int rc = posix_memalign(&p, 64, 100);
    int rq = posix_memalign(&q, 4096, 4096);
    fa.guard(0);
    cr_assert_eq(rc, 0);
    cr_assert_eq(rq, 0);
    cr_assert_eq((uintptr_t)p % 64, 0);
    cr_assert_eq((uintptr_t)q % 4096, 0);
    cr_assert(at_page_end((char *)q + 4096), "a page-sized block fills the page before the guard");
    memset(p, 7, 100);
    memset(q, 8, 4096);
    cr_assert_eq(((unsigned char *)p)[99], 7);
    free(p);
    free(q);
}

Test(failalloc_guard, failures_are_still_injected_in_guard_mode) {
    need_injector();
    fa.guard(1);
    fa.arm(1);
    void *p = malloc(32);
    int hit = fa.injected();
    fa.arm(0);
    fa.guard(0);
    cr_assert_null(p);
    cr_assert_eq(hit, 1);
}
