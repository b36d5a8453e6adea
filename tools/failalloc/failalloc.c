/*
 * failalloc.c - liblamina_failalloc.so, an allocation-failure injector loaded with LD_PRELOAD.
 *
 * It defines malloc, calloc, realloc, free, posix_memalign, aligned_alloc and memalign; the
 * dynamic linker binds every object of the process (the program, liblamina, plugins, jansson,
 * libc's own callers) to them, and they forward to glibc's __libc_* functions. When armed with
 * lam_failalloc_arm(k), the k-th allocation made by the arming thread fails (NULL and ENOMEM).
 * Other threads (BLAS pools, ...) are never failed, so a sweep over k is deterministic.
 *
 * It is a separate library so that no shipped program defines malloc: `lamina conform` and the
 * test suite preload it into the processes that sweep allocation failures, and an ASan-built
 * plugin can still be conformed by a `lamina` started with LD_PRELOAD=libasan.so (ASan then
 * owns malloc; lam_failalloc_count() stays 0 and the sweep reports a skip).
 *
 * failalloc.h finds these entry points at run time with dlsym, so users need not link this.
 */
#define _GNU_SOURCE /* memalign, backtrace */
#include <errno.h>
#include <execinfo.h>
#include <malloc.h>
#include <stddef.h>
#include <stdlib.h>
#include <unistd.h>

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);
extern void __libc_free(void *p);
extern void *__libc_memalign(size_t align, size_t size);

#define FA_PUBLIC __attribute__((visibility("default")))

/* Per thread, so only the thread running the operation under test is counted and failed. */
static _Thread_local unsigned long fail_at; /* 0: disarmed */
static _Thread_local unsigned long counted;
static _Thread_local int injected;

FA_PUBLIC void lam_failalloc_arm(unsigned long k);
FA_PUBLIC unsigned long lam_failalloc_count(void);
FA_PUBLIC int lam_failalloc_injected(void);

/* Arms the calling thread: its k-th allocation from now fails (k = 0 disarms); a huge k only
 * counts. Resets the count and the injected flag. */
FA_PUBLIC void lam_failalloc_arm(unsigned long k) {
    fail_at = k;
    counted = 0;
    injected = 0;
}

/* Allocations the calling thread made since it was last armed. */
FA_PUBLIC unsigned long lam_failalloc_count(void) {
    return counted;
}

/* 1 when the armed failure happened since the calling thread was last armed. */
FA_PUBLIC int lam_failalloc_injected(void) {
    return injected;
}

static void trace_failure(void) {
    /* LAMINA_FAILALLOC_TRACE=1 prints the stack of each failed allocation (to find the error
     * path that misbehaves); allocations made here come after fail_at and succeed. */
    const char *trace = getenv("LAMINA_FAILALLOC_TRACE");
    if (trace != NULL && trace[0] == '1') {
        void *frames[32];
        int n = backtrace(frames, 32);
        static const char head[] = "failalloc: failing this allocation:\n";
        (void)!write(STDERR_FILENO, head, sizeof head - 1);
        backtrace_symbols_fd(frames, n, STDERR_FILENO);
    }
}

/* True when this allocation is the one to fail. */
static int should_fail(void) {
    if (fail_at == 0) {
        return 0;
    }
    if (++counted == fail_at) {
        injected = 1;
        trace_failure();
        errno = ENOMEM;
        return 1;
    }
    return 0;
}

FA_PUBLIC void *malloc(size_t size) {
    return should_fail() ? NULL : __libc_malloc(size);
}

FA_PUBLIC void *calloc(size_t n, size_t size) {
    return should_fail() ? NULL : __libc_calloc(n, size);
}

FA_PUBLIC void *realloc(void *p, size_t size) {
    return should_fail() ? NULL : __libc_realloc(p, size);
}

FA_PUBLIC void free(void *p) {
    __libc_free(p);
}

/* Aligned allocations (backends use them for device buffers) count and fail too. */
FA_PUBLIC int posix_memalign(void **out, size_t align, size_t size) {
    if (align < sizeof(void *) || (align & (align - 1)) != 0) {
        return EINVAL;
    }
    if (should_fail()) {
        return ENOMEM;
    }
    void *p = __libc_memalign(align, size);
    if (p == NULL) {
        return ENOMEM;
    }
    *out = p;
    return 0;
}

FA_PUBLIC void *aligned_alloc(size_t align, size_t size) {
    return should_fail() ? NULL : __libc_memalign(align, size);
}

FA_PUBLIC void *memalign(size_t align, size_t size) {
    return should_fail() ? NULL : __libc_memalign(align, size);
}
