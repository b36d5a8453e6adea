/*
 * failalloc.h - client side of liblamina_failalloc.so (see failalloc.c), header only.
 *
 * A process started with LD_PRELOAD=<path>/liblamina_failalloc.so finds the injector's entry
 * points with lam_failalloc_bind(); without the preload (or under ASan, which owns malloc)
 * binding fails or the calibration count stays 0, and a sweep must report a skip, never a pass.
 */
#ifndef LAMINA_FAILALLOC_H
#define LAMINA_FAILALLOC_H

#include <dlfcn.h>
#include <stddef.h>

typedef struct lam_failalloc {
    void (*arm)(unsigned long k); /* k-th allocation of this thread fails; 0 disarms */
    unsigned long (*count)(void); /* allocations this thread made since arming */
    int (*injected)(void);        /* 1 when the armed failure happened */
    int (*guard)(int on); /* guard pages after every block from now (1) or not (0); old state */
} lam_failalloc;

/* Fills *fa from the preloaded injector; 0 on success, -1 when it is not loaded. */
static inline int lam_failalloc_bind(lam_failalloc *fa) {
    void *arm = dlsym(RTLD_DEFAULT, "lam_failalloc_arm");
    void *count = dlsym(RTLD_DEFAULT, "lam_failalloc_count");
    void *injected = dlsym(RTLD_DEFAULT, "lam_failalloc_injected");
    void *guard = dlsym(RTLD_DEFAULT, "lam_failalloc_guard");
    if (arm == NULL || count == NULL || injected == NULL || guard == NULL) {
        return -1;
    }
    /* POSIX guarantees data and function pointers convert through dlsym's void *. */
    *(void **)&fa->arm = arm;
    *(void **)&fa->count = count;
    *(void **)&fa->injected = injected;
    *(void **)&fa->guard = guard;
    return 0;
}

/* Counts the allocations fn(arg) makes on this thread: 0 means the injector is not active
 * (not preloaded, or ASan's malloc took precedence), and a sweep must say SKIP. */
static inline unsigned long lam_failalloc_calibrate(const lam_failalloc *fa, void (*fn)(void *),
                                                    void *arg) {
    fa->arm(~0UL);
    fn(arg);
    unsigned long n = fa->count();
    fa->arm(0);
    return n;
}

#endif
