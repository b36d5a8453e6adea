/*
 * Per-thread heaps (declared in tensor.h): which tensors are alive (for lam_shutdown and
 * lam_tensor_live_count), pools of tensor and storage structs, a buffer cache per thread, and
 * lam_shutdown's guard against other threads inside the library. tensor.c makes and frees
 * tensors with these; nothing here calls tensor.c.
 */
#include "tensor.h"
#include "context.h"
#include "error.h"
#include "log.h"
#include "util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* Manual poisoning: released tensor and storage structs wait in pools for reuse, where ASan
 * would not see a use after release; poisoned, it reports it. */
#if defined(__SANITIZE_ADDRESS__)
#define LAM_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LAM_ASAN 1
#endif
#endif
#ifdef LAM_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n)   ASAN_POISON_MEMORY_REGION(p, n)
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define POISON(p, n)   ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

/* Tensors the user still held at lam_shutdown(), freed when released (any thread: locked). The
 * live tensors are in the per-thread heaps below. */
typedef struct tensor_list {
    lam_tensor *head;
    size_t n;
} tensor_list;
static tensor_list orphans;
static pthread_mutex_t orphans_lock = PTHREAD_MUTEX_INITIALIZER;

static void orphan_link(lam_tensor *t) {
    pthread_mutex_lock(&orphans_lock);
    t->prev = NULL;
    t->next = orphans.head;
    if (orphans.head) {
        orphans.head->prev = t;
    }
    orphans.head = t;
    orphans.n++;
    pthread_mutex_unlock(&orphans_lock);
}

void lam__heap_orphan_unlink(lam_tensor *t) {
    pthread_mutex_lock(&orphans_lock);
    if (t->prev) {
        t->prev->next = t->next;
    } else {
        orphans.head = t->next;
    }
    if (t->next) {
        t->next->prev = t->prev;
    }
    orphans.n--;
    pthread_mutex_unlock(&orphans_lock);
}

/* ---- pools: freed tensor structs and storage structs are reused ---- */

/* The pools keep pointers beside the objects, not inside them: a released tensor keeps its
 * LAM__TENSOR_DEAD mark (normal builds detect a second release) and can be poisoned whole.
 * They are per thread, so the op hot path takes no lock for them: a struct released on a
 * thread goes to that thread's pools. They hold plain memory only (nothing of the runtime):
 * a thread's pools are freed when it exits (a pthread key destructor), the calling thread's
 * also by lam_shutdown. */
#define POOL_MAX 1024
typedef struct lam__pool {
    void *slot[POOL_MAX];
    size_t n;
    size_t size;
} lam__pool;
static _Thread_local bool thread_registered LAM__TLS_FAST; /* its exit destructor is set */
static pthread_key_t thread_key;
static pthread_once_t thread_once = PTHREAD_ONCE_INIT;
static bool thread_key_ok;

static void at_thread_exit(void *unused);

static void thread_key_create(void) {
    thread_key_ok = pthread_key_create(&thread_key, at_thread_exit) == 0;
}

/* A dlclose()d liblamina must not leave a destructor pointing into unmapped code. */
__attribute__((destructor)) static void thread_key_delete(void) {
    if (thread_key_ok) {
        pthread_key_delete(thread_key);
        thread_key_ok = false;
    }
}

/* Sets the exit destructor for this thread; false when that is impossible. */
static bool thread_register(void) {
    if (!thread_registered) {
        pthread_once(&thread_once, thread_key_create);
        thread_registered =
            thread_key_ok && pthread_setspecific(thread_key, &thread_registered) == 0;
    }
    return thread_registered;
}

static void *pool_get(lam__pool *p) {
    if (p->n > 0) {
        void *obj = p->slot[--p->n];
        UNPOISON(obj, p->size);
        memset(obj, 0, p->size);
        return obj;
    }
    return calloc(1, p->size);
}

static void pool_put(lam__pool *p, void *obj) {
    if (p->n >= POOL_MAX) {
        free(obj);
        return;
    }
    POISON(obj, p->size);
    p->slot[p->n++] = obj;
}

static void pool_flush(lam__pool *p) {
    while (p->n > 0) {
        void *obj = p->slot[--p->n];
        UNPOISON(obj, p->size);
        free(obj);
    }
}

/*
 * ---- heaps: the live tensors and a buffer cache, per thread ----
 *
 * lam_shutdown must find every live tensor (to free its data and orphan its handle), and
 * lam_tensor_live_count must count them. A heap lists the tensors made on one thread, which
 * alone links and unlinks them (no lock, no atomic read-modify-write on the op path). A
 * tensor released on another thread is pushed on its heap's `remote` stack (lock-free), and
 * the owner unlinks it at its next tensor call. When a thread exits its heap is abandoned,
 * still holding its tensors, and the next new thread adopts it. Creating, abandoning and
 * adopting heaps, lam_tensor_live_count and lam_shutdown take heaps_lock; lam_shutdown, which
 * may not run while other threads use the library (lamina.h), walks every heap.
 *
 * The heap also keeps the buffers its thread's tensors freed, by context and size, for the
 * thread's next tensors; beyond its bounds they go to the context's shared, locked cache
 * (context.c), where the heap also looks when its own has no buffer of the size.
 */
#define HEAP_CACHE_SLOTS 64
#define HEAP_CACHE_BYTES ((size_t)64 << 20)

typedef struct lam__heap {
    struct lam__heap *next_all;   /* every heap (heaps_lock) */
    struct lam__heap *next_free;  /* abandoned heaps (heaps_lock) */
    bool owned;                   /* a thread uses it (heaps_lock) */
    lam_tensor *head;             /* the owner's live tensors */
    atomic_size_t n;              /* how many: written by the owner (or under heaps_lock) only */
    _Atomic(lam_tensor *) remote; /* released on other threads, waiting to be unlinked */
    atomic_size_t n_remote;       /* how many (at least) */
    uint32_t cache_n;
    size_t cache_total;
    struct {
        lam_ctx *ctx;
        void *buf;
        size_t bytes;
    } cache[HEAP_CACHE_SLOTS];
    atomic_uint busy;      /* calls of the owner inside the guard (lam__call_enter); owner writes */
    lam__pool tensor_pool; /* the owner's */
    lam__pool storage_pool; /* the owner's */
} heap;

static pthread_mutex_t heaps_lock = PTHREAD_MUTEX_INITIALIZER;
static lam__heap *heaps_all, *heaps_free;

static _Thread_local heap *my_heap LAM__TLS_FAST;

/* Unlinks the tensors released on other threads; they are dead. `keep`: pool their structs
 * (the owner), else free them. */
static void heap_drain(heap *h, bool keep) {
    lam_tensor *t = atomic_exchange_explicit(&h->remote, NULL, memory_order_acquire);
    size_t k = 0;
    while (t != NULL) {
        lam_tensor *next = t->remote_next;
        if (t->prev) {
            t->prev->next = t->next;
        } else {
            h->head = t->next;
        }
        if (t->next) {
            t->next->prev = t->prev;
        }
        if (keep) {
            pool_put(&h->tensor_pool, t);
        } else {
            free(t);
        }
        k++;
        t = next;
    }
    if (k > 0) {
        atomic_store_explicit(&h->n, atomic_load_explicit(&h->n, memory_order_relaxed) - k,
                              memory_order_relaxed);
        atomic_fetch_sub_explicit(&h->n_remote, k, memory_order_relaxed);
    }
}

/* This thread's heap: its own, an abandoned one adopted, or a new one; NULL when out of
 * memory. */
lam__heap *lam__heap_mine(void) {
    heap *h = my_heap;
    if (h != NULL) {
        if (atomic_load_explicit(&h->remote, memory_order_relaxed) != NULL) {
            heap_drain(h, true);
        }
        return h;
    }
    if (!thread_register()) {
        return NULL; /* without the exit destructor the heap would never be abandoned */
    }
    pthread_mutex_lock(&heaps_lock);
    h = heaps_free;
    if (h != NULL) {
        heaps_free = h->next_free;
    } else if ((h = calloc(1, sizeof *h)) != NULL) {
        h->tensor_pool.size = sizeof(lam_tensor);
        h->storage_pool.size = sizeof(lam__storage);
        h->next_all = heaps_all;
        heaps_all = h;
    }
    if (h != NULL) {
        h->owned = true;
        h->next_free = NULL;
    }
    pthread_mutex_unlock(&heaps_lock);
    my_heap = h;
    if (h != NULL) {
        heap_drain(h, true);
    }
    return h;
}

static void heap_cache_flush(heap *h, bool to_ctx) {
    for (uint32_t i = 0; i < h->cache_n; i++) {
        lam_ctx *c = h->cache[i].ctx;
        if (to_ctx) {
            lam__ctx_cache_give(c, h->cache[i].buf, h->cache[i].bytes);
        } else {
            c->backend->desc.buffer_free(c->dev, h->cache[i].buf);
        }
    }
    h->cache_n = 0;
    h->cache_total = 0;
}

/* At thread exit: the heap's buffers go to the contexts' caches, its tensors stay for the
 * thread that adopts it. */
static void heap_abandon(void) {
    heap *h = my_heap;
    if (h == NULL) {
        return;
    }
    my_heap = NULL;
    pthread_mutex_lock(&heaps_lock);
    heap_drain(h, false);
    heap_cache_flush(h, true);
    pool_flush(&h->tensor_pool);
    pool_flush(&h->storage_pool);
    h->owned = false;
    h->next_free = heaps_free;
    heaps_free = h;
    pthread_mutex_unlock(&heaps_lock);
}

static void at_thread_exit(void *unused) {
    (void)unused;
    heap_abandon();
}

void lam__tensor_pool_flush(void) {
    if (my_heap != NULL) {
        pool_flush(&my_heap->tensor_pool);
        pool_flush(&my_heap->storage_pool);
    }
}

void *lam__heap_buffer_take(heap *h, lam_ctx *ctx, size_t bytes) {
    for (uint32_t i = h->cache_n; i-- > 0;) {
        if (h->cache[i].bytes == bytes && h->cache[i].ctx == ctx) {
            void *buf = h->cache[i].buf;
            h->cache_total -= bytes;
            h->cache_n--;
            memmove(&h->cache[i], &h->cache[i + 1], (h->cache_n - i) * sizeof h->cache[0]);
            return buf;
        }
    }
    return lam__ctx_cache_take(ctx, bytes);
}

void lam__heap_buffer_give(heap *h, lam_ctx *ctx, void *buf, size_t bytes) {
    if (bytes > HEAP_CACHE_BYTES) {
        lam__ctx_cache_give(ctx, buf, bytes);
        return;
    }
    /* Make room by handing the oldest to their contexts' caches. */
    uint32_t k = 0;
    while (k < h->cache_n &&
           (h->cache_n - k >= HEAP_CACHE_SLOTS || h->cache_total + bytes > HEAP_CACHE_BYTES)) {
        lam__ctx_cache_give(h->cache[k].ctx, h->cache[k].buf, h->cache[k].bytes);
        h->cache_total -= h->cache[k].bytes;
        k++;
    }
    if (k > 0) {
        h->cache_n -= k;
        memmove(&h->cache[0], &h->cache[k], h->cache_n * sizeof h->cache[0]);
    }
    h->cache[h->cache_n].ctx = ctx;
    h->cache[h->cache_n].buf = buf;
    h->cache[h->cache_n].bytes = bytes;
    h->cache_n++;
    h->cache_total += bytes;
}

/* Links a new tensor into this thread's heap (lam__heap_mine() succeeded). */
void lam__heap_link(lam_tensor *t) {
    heap *h = my_heap;
    t->heap = h;
    t->prev = NULL;
    t->next = h->head;
    if (h->head) {
        h->head->prev = t;
    }
    h->head = t;
    atomic_store_explicit(&h->n, atomic_load_explicit(&h->n, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

/* Unlinks a released tensor and recycles its struct: here when it is this thread's, else by
 * its heap's owner. The caller does not touch t afterwards. */
void lam__heap_unlink(lam_tensor *t) {
    heap *h = t->heap;
    if (h == my_heap) {
        if (t->prev) {
            t->prev->next = t->next;
        } else {
            h->head = t->next;
        }
        if (t->next) {
            t->next->prev = t->prev;
        }
        atomic_store_explicit(&h->n, atomic_load_explicit(&h->n, memory_order_relaxed) - 1,
                              memory_order_relaxed);
        pool_put(&h->tensor_pool, t);
        return;
    }
    atomic_fetch_add_explicit(&h->n_remote, 1, memory_order_relaxed);
    lam_tensor *top = atomic_load_explicit(&h->remote, memory_order_relaxed);
    do {
        t->remote_next = top;
    } while (!atomic_compare_exchange_weak_explicit(&h->remote, &top, t, memory_order_release,
                                                    memory_order_relaxed));
}

/*
 * ---- lam_shutdown's guard ----
 *
 * Calls that run backend or plugin code (ops, making, reading and writing tensors, forwards,
 * backward passes) mark their thread's heap busy while they run. lam_shutdown raises `stopping`
 * and then looks at every other heap: a busy one makes it refuse (and lower the flag again); a
 * call that starts after the flag is up fails with LAM_ERR_STATE. Both sides write, then read,
 * with sequential consistency, so at least one of them sees the other. After a shutdown the flag
 * stays up (only the stopping thread passes) until the runtime starts again.
 */
static atomic_bool stopping;
static _Atomic(const heap *) stopper; /* the heap of the thread running lam_shutdown */

lam_status lam__call_enter(const char *fn) {
    heap *h = lam__heap_mine();
    if (h == NULL) {
        return lam__error(LAM_ERR_OUT_OF_MEMORY, "%s: Out of memory", fn);
    }
    unsigned busy = atomic_load_explicit(&h->busy, memory_order_relaxed);
    if (busy > 0) {
        /* Nested in a call of this thread that passed the check below: a lam_shutdown on
         * another thread sees that call busy and refuses until it ends, so this one needs
         * neither the full fence (tens of cycles, on every op a layer runs) nor the check. */
        atomic_store_explicit(&h->busy, busy + 1, memory_order_relaxed);
        return LAM_OK;
    }
    atomic_store_explicit(&h->busy, busy + 1, memory_order_seq_cst);
    if (atomic_load_explicit(&stopping, memory_order_seq_cst) &&
        atomic_load_explicit(&stopper, memory_order_relaxed) != h) {
        atomic_store_explicit(&h->busy, busy, memory_order_relaxed);
        return lam__error(LAM_ERR_STATE,
                          "%s: Runtime shut down, lam_shutdown() stopped the runtime (or is "
                          "stopping it on another thread); objects made before are unusable",
                          fn);
    }
    return LAM_OK;
}

void lam__call_leave(void) {
    heap *h = my_heap; /* set by lam__call_enter */
    atomic_store_explicit(&h->busy, atomic_load_explicit(&h->busy, memory_order_relaxed) - 1,
                          memory_order_release);
}

size_t lam__calls_stop(void) {
    const heap *me = lam__heap_mine();
    atomic_store_explicit(&stopper, me, memory_order_relaxed);
    bool was = atomic_exchange_explicit(&stopping, true, memory_order_seq_cst);
    size_t busy = 0;
    pthread_mutex_lock(&heaps_lock);
    for (heap *h = heaps_all; h != NULL; h = h->next_all) {
        if (h != me && atomic_load_explicit(&h->busy, memory_order_seq_cst) > 0) {
            busy++;
        }
    }
    pthread_mutex_unlock(&heaps_lock);
    if (busy > 0) {
        atomic_store_explicit(&stopping, was, memory_order_seq_cst);
        atomic_store_explicit(&stopper, NULL, memory_order_relaxed);
    }
    return busy;
}

void lam__calls_stopped(void) {
    atomic_store_explicit(&stopper, NULL, memory_order_relaxed);
}

void lam__calls_resume(void) {
    atomic_store_explicit(&stopping, false, memory_order_seq_cst);
}
/* The live tensors still in h, unlinked (heaps_lock held, no thread using the library). */
static size_t heap_reclaim(heap *h) {
    heap_drain(h, false);
    size_t n = 0;
    /* The structs stay for whoever holds them (a user, a block's parameters, a trainer, a
     * dict): releasing them later must not touch the backend, which is about to go. Storage is
     * shared by views: each buffer is freed once. */
    while (h->head != NULL) {
        lam_tensor *t = h->head;
        h->head = t->next;
        lam__storage *s = t->storage;
        if (s->ctx != NULL) {
            s->ctx->backend->desc.buffer_free(s->ctx->dev, s->buf);
            if (s->release != NULL) { /* host memory under the buffer (a mapped file) */
                s->release(s->release_arg);
                s->release = NULL;
                s->release_arg = NULL;
            }
            s->ctx = NULL;
            s->buf = NULL;
        }
        t->magic = LAM__TENSOR_ORPHAN;
        t->heap = NULL;
        orphan_link(t);
        n++;
    }
    atomic_store_explicit(&h->n, 0, memory_order_relaxed);
    heap_cache_flush(h, false);
    return n;
}

void lam__tensors_reclaim_all(void) {
    size_t n = 0;
    pthread_mutex_lock(&heaps_lock);
    for (heap *h = heaps_all; h != NULL; h = h->next_all) {
        n += heap_reclaim(h);
    }
    /* Abandoned heaps are empty now: free them (threads still running keep theirs). */
    heaps_free = NULL;
    for (heap **p = &heaps_all; *p != NULL;) {
        heap *h = *p;
        if (!h->owned) {
            *p = h->next_all;
            free(h);
        } else {
            p = &h->next_all;
        }
    }
    pthread_mutex_unlock(&heaps_lock);
    if (n > 0) {
        lam__log(LAM_LOG_WARN,
                 "lam_shutdown: %zu tensor%s still alive, data freed; the handles only accept "
                 "lam_tensor_release",
                 n, n == 1 ? "" : "s");
    }
}

size_t lam_tensor_live_count(void) {
    size_t n = 0, gone = 0;
    pthread_mutex_lock(&heaps_lock);
    for (const heap *h = heaps_all; h != NULL; h = h->next_all) {
        n += atomic_load_explicit(&h->n, memory_order_relaxed);
        gone += atomic_load_explicit(&h->n_remote, memory_order_relaxed);
    }
    pthread_mutex_unlock(&heaps_lock);
    return n > gone ? n - gone : 0;
}

lam_tensor *lam__heap_tensor_get(lam__heap *h) {
    return pool_get(&h->tensor_pool);
}

lam__storage *lam__heap_storage_get(lam__heap *h) {
    return pool_get(&h->storage_pool);
}

void lam__heap_storage_put(lam__heap *h, lam__storage *s) {
    pool_put(&h->storage_pool, s);
}
