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
 * Guard mode (lam_failalloc_guard(1), or LAMINA_FAILALLOC_GUARD=1 in the environment at load
 * time) gives every allocation its own mapping whose end abuts a PROT_NONE page, electric-fence
 * style: the block is placed so that it ends at the guard page (at its natural alignment, the
 * largest power of two up to 16 dividing its size, or the alignment asked of posix_memalign),
 * so reading or writing one element past an array faults with SIGSEGV at once. A 16-byte header
 * before the block (the mapping's base and that base xor a magic) lets free and realloc tell
 * these blocks from glibc's, which go to __libc_free: blocks made before the mode started, or
 * after it stopped, mix freely with guarded ones. A freed guarded block is unmapped.
 *
 * failalloc.h finds these entry points at run time with dlsym, so users need not link this.
 */
#define _GNU_SOURCE /* memalign, backtrace */
#include <errno.h>
#include <execinfo.h>
#include <malloc.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
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
FA_PUBLIC int lam_failalloc_guard(int on);

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

/* ---- guard mode ---- */

static void *guard_map(size_t size, size_t align);

/* Process-wide (every thread's allocations are guarded while it is on). */
static volatile int guard_on;

#define GUARD_MAGIC 0x6c616d4775617264ULL /* "lamGuard" */

/* At the mapping's base: its length and the block's size. Just before the block: the base
 * and base ^ GUARD_MAGIC (read with memcpy: a block may be as little as 1-aligned). */
typedef struct guard_meta {
    size_t len;
    size_t size;
} guard_meta;

static size_t page_size(void) {
    static size_t page;
    if (page == 0) {
        long p = sysconf(_SC_PAGESIZE);
        page = p > 0 ? (size_t)p : 4096;
    }
    return page;
}

/* The base of p's mapping when p is a guarded block, else NULL. p - 16 is always readable:
 * within the mapping for a guarded block, glibc's chunk header (prev_size, size) otherwise. */
static unsigned char *guard_base(const void *p) {
    uint64_t h[2];
    memcpy(h, (const unsigned char *)p - sizeof h, sizeof h);
    return (h[0] ^ GUARD_MAGIC) == h[1] && h[0] != 0 ? (unsigned char *)(uintptr_t)h[0] : NULL;
}

static void *libc_aligned(size_t align, size_t size) {
    return align <= 16 ? __libc_malloc(size) : __libc_memalign(align, size);
}

/* A block of `size` bytes at alignment `align` ending at a PROT_NONE page. When no mapping can
 * be made (the process's map count limit, vm.max_map_count, with two mappings a block), the
 * block comes from glibc unguarded: guard mode never makes an allocation fail. */
static void *guard_alloc(size_t size, size_t align) {
    void *p = guard_map(size, align);
    return p != NULL ? p : libc_aligned(align, size);
}

/* The guarded block itself, or NULL. */
static void *guard_map(size_t size, size_t align) {
    size_t page = page_size();
    size_t need = sizeof(guard_meta) + 16 + align + size;
    if (need < size) {
        errno = ENOMEM;
        return NULL;
    }
    size_t data = (need + page - 1) / page * page;
    unsigned char *base =
        mmap(NULL, data + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) {
        errno = ENOMEM;
        return NULL;
    }
    if (mprotect(base + data, page, PROT_NONE) != 0) {
        munmap(base, data + page);
        errno = ENOMEM;
        return NULL;
    }
    uintptr_t user = ((uintptr_t)(base + data) - size) & ~(uintptr_t)(align - 1);
    guard_meta m = {data + page, size};
    memcpy(base, &m, sizeof m);
    uint64_t h[2] = {(uint64_t)(uintptr_t)base, (uint64_t)(uintptr_t)base ^ GUARD_MAGIC};
    memcpy((unsigned char *)user - sizeof h, h, sizeof h);
    return (void *)user;
}

static size_t guard_size(const unsigned char *base) {
    guard_meta m;
    memcpy(&m, base, sizeof m);
    return m.size;
}

static void guard_free(unsigned char *base) {
    guard_meta m;
    memcpy(&m, base, sizeof m);
    munmap(base, m.len);
}

/* The natural alignment of a block of n bytes: the largest power of two up to 16 dividing n
 * (a C object's size is a multiple of its alignment), so an array ends right at the guard. */
static size_t natural_align(size_t n) {
    size_t a = n & (~n + 1);
    return n == 0 || a > 16 ? 16 : a;
}

/* Switches guard mode on (1) or off (0) for the whole process; returns the previous state.
 * Blocks keep working across switches. */
FA_PUBLIC int lam_failalloc_guard(int on) {
    int was = guard_on;
    guard_on = on != 0;
    return was;
}

__attribute__((constructor)) static void guard_from_env(void) {
    const char *g = getenv("LAMINA_FAILALLOC_GUARD");
    if (g != NULL && g[0] == '1') {
        guard_on = 1;
    }
}

/* ---- the allocator ---- */

FA_PUBLIC void *malloc(size_t size) {
    if (should_fail()) {
        return NULL;
    }
    return guard_on ? guard_alloc(size, natural_align(size)) : __libc_malloc(size);
}

FA_PUBLIC void *calloc(size_t n, size_t size) {
    if (should_fail()) {
        return NULL;
    }
    if (!guard_on) {
        return __libc_calloc(n, size);
    }
    if (size != 0 && n > (size_t)-1 / size) {
        errno = ENOMEM;
        return NULL;
    }
    return guard_alloc(n * size, natural_align(n * size)); /* fresh mappings are zero */
}

FA_PUBLIC void free(void *p) {
    if (p == NULL) {
        return;
    }
    unsigned char *base = guard_base(p);
    if (base != NULL) {
        guard_free(base);
    } else {
        __libc_free(p);
    }
}

FA_PUBLIC void *realloc(void *p, size_t size) {
    if (should_fail()) {
        return NULL;
    }
    unsigned char *base = p ? guard_base(p) : NULL;
    if (!guard_on && base == NULL) {
        return __libc_realloc(p, size);
    }
    if (p != NULL && size == 0) {
        free(p);
        return NULL;
    }
    void *q = guard_on ? guard_alloc(size, natural_align(size)) : __libc_malloc(size);
    if (q == NULL || p == NULL) {
        return q;
    }
    size_t old = base ? guard_size(base) : malloc_usable_size(p); /* glibc's block */
    memcpy(q, p, old < size ? old : size);
    free(p);
    return q;
}

static void *aligned(size_t align, size_t size) {
    if (guard_on) {
        size_t nat = natural_align(size);
        return guard_alloc(size, align > nat ? align : nat);
    }
    return __libc_memalign(align, size);
}

/* Aligned allocations (backends use them for device buffers) count and fail too. */
FA_PUBLIC int posix_memalign(void **out, size_t align, size_t size) {
    if (align < sizeof(void *) || (align & (align - 1)) != 0) {
        return EINVAL;
    }
    if (should_fail()) {
        return ENOMEM;
    }
    void *p = aligned(align, size);
    if (p == NULL) {
        return ENOMEM;
    }
    *out = p;
    return 0;
}

FA_PUBLIC void *aligned_alloc(size_t align, size_t size) {
    return should_fail() ? NULL : aligned(align, size);
}

FA_PUBLIC void *memalign(size_t align, size_t size) {
    return should_fail() ? NULL : aligned(align, size);
}
