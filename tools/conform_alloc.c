/*
 * conform_alloc.c - allocation-failure injection for `lamina conform`.
 *
 * The lamina executable defines malloc, calloc, realloc and free; the dynamic linker binds
 * every shared object (liblamina, the plugins, libc's own callers) to these, and they forward
 * to glibc's __libc_* functions; posix_memalign and aligned_alloc are counted as well. When armed,
 * the k-th allocation made by the arming thread fails (returns NULL with ENOMEM). Other threads
 * (BLAS pools, ...) are never failed, so the sweep is deterministic. Under AddressSanitizer, which
 * replaces malloc itself, none of this is compiled and the sweep reports a skip.
 */
#define _POSIX_C_SOURCE 200809L /* posix_memalign */
#include "conform.h"

#if defined(__SANITIZE_ADDRESS__)
#define CF_NO_ALLOC_HOOK 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer)
#define CF_NO_ALLOC_HOOK 1
#endif
#endif

#ifdef CF_NO_ALLOC_HOOK

int cf_alloc_available(void) {
    return 0;
}
void cf_alloc_arm(unsigned long k) {
    (void)k;
}
unsigned long cf_alloc_count(void) {
    return 0;
}
int cf_alloc_injected(void) {
    return 0;
}

#else

#include <errno.h>
#include <execinfo.h>
#include <stddef.h>
#include <stdlib.h>
#include <unistd.h>

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);
extern void __libc_free(void *p);
extern void *__libc_memalign(size_t align, size_t size);

/* Per thread, so only the thread running the operation under test is counted and failed. */
static _Thread_local unsigned long fail_at; /* 0: disarmed */
static _Thread_local unsigned long counted;
static _Thread_local int injected;

int cf_alloc_available(void) {
    return 1;
}

void cf_alloc_arm(unsigned long k) {
    fail_at = k;
    counted = 0;
    injected = 0;
}

unsigned long cf_alloc_count(void) {
    return counted;
}

int cf_alloc_injected(void) {
    return injected;
}

/* True when this allocation is the one to fail. */
static int should_fail(void) {
    if (fail_at == 0) {
        return 0;
    }
    if (++counted == fail_at) {
        injected = 1;
        /* LAMINA_CONFORM_ALLOC_TRACE=1 prints the stack of each failed allocation (to find
         * the error path that misbehaves); allocations it makes itself are past fail_at. */
        const char *trace = getenv("LAMINA_CONFORM_ALLOC_TRACE");
        if (trace != NULL && trace[0] == '1') {
            void *frames[32];
            int n = backtrace(frames, 32);
            static const char head[] = "lamina conform: failing this allocation:\n";
            (void)!write(STDERR_FILENO, head, sizeof head - 1);
            backtrace_symbols_fd(frames, n, STDERR_FILENO);
        }
        errno = ENOMEM;
        return 1;
    }
    return 0;
}

/* Default visibility: the project builds with hidden symbols, and the dynamic linker must see
 * these to bind liblamina and the plugins to them. */
#define CF_PUBLIC __attribute__((visibility("default")))

CF_PUBLIC void *malloc(size_t size) {
    return should_fail() ? NULL : __libc_malloc(size);
}

CF_PUBLIC void *calloc(size_t n, size_t size) {
    return should_fail() ? NULL : __libc_calloc(n, size);
}

CF_PUBLIC void *realloc(void *p, size_t size) {
    return should_fail() ? NULL : __libc_realloc(p, size);
}

CF_PUBLIC void free(void *p) {
    __libc_free(p);
}

/* Aligned allocations (backends use them for device buffers) count and fail too. */
CF_PUBLIC int posix_memalign(void **out, size_t align, size_t size) {
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

CF_PUBLIC void *aligned_alloc(size_t align, size_t size) {
    return should_fail() ? NULL : __libc_memalign(align, size);
}

#endif
