/*
 * test_failalloc.c - the allocation-failure injector that sweeps preload (tools/failalloc).
 *
 * Run by ctest with LD_PRELOAD naming liblamina_failalloc.so. Without it (an ASan build, where
 * the injector is not built) every test skips, saying so.
 */
#define _POSIX_C_SOURCE 200809L /* posix_memalign, strdup */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

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
