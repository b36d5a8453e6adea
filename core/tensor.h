/*
 * Tensors and their storage (tensor.c): lifetime, pools, and running one op on a backend. Private
 * to core/.
 */
#ifndef LAMINA_CORE_TENSOR_H
#define LAMINA_CORE_TENSOR_H

#include "lamina/lamina.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/*
 * A tensor's extension slot: data that a higher level attaches to a tensor (the autograd tape
 * keeps its recorded node and gradient buffers there), so tensor.c needs to know nothing about
 * it. destroy(data) runs when the tensor is freed (also for a tensor orphaned by lam_shutdown,
 * when its last holder releases it).
 */
#define LAM__TENSOR_EXT_INLINE 64
typedef struct lam__tensor_ext {
    void *data;
    void (*destroy)(void *data); /* NULL: empty */
} lam__tensor_ext;

typedef struct lam__storage {
    atomic_long refcount;
    lam_ctx *ctx;
    void *buf;
    size_t bytes;
    /* A buffer over host memory the storage does not own (lam__tensor_wrap_host): freed, never
     * cached, and then release(release_arg) runs (NULL for buffers of buffer_alloc). */
    void (*release)(void *arg);
    void *release_arg;
} lam__storage;

/*
 * A tensor's state, checked where a released or orphaned tensor would otherwise be used
 * (lamina.h documents what is detected). Released structs wait in a pool; the ASan build
 * poisons them there, so any use after release is reported.
 */
#define LAM__TENSOR_LIVE   0x4c54454eu /* in use */
#define LAM__TENSOR_ORPHAN 0x4c544f52u /* held by the user after lam_shutdown(): no data */
#define LAM__TENSOR_DEAD   0x4c544445u /* released */

struct lam_tensor {
    uint32_t magic;
    atomic_long refcount;
    lam__storage *storage;
    uint64_t offset; /* elements */
    lam_shape shape;
    int64_t numel;
    lam_dtype dtype;
    struct lam__heap *heap;         /* the thread heap listing it (tensor.c) */
    struct lam_tensor *prev, *next; /* in its heap's live list, so shutdown can reclaim */
    struct lam_tensor *remote_next; /* released on another thread: its heap's stack */
    lam__tensor_ext ext;
    /* Tensor scopes (scope.c): the scope stack holding it (NULL: none), its place there, how
     * many references the scope holds and how many of those the user retained on top. */
    const void *scope_owner;
    struct lam_tensor *scope_prev, *scope_next;
    uint32_t scope_index, scope_refs, scope_own;
    /* Room for a small extension (ext.data may point here), so that the tape's state on a
     * tensor costs no allocation; the tensor level does not look inside. */
    _Alignas(8) unsigned char ext_inline[LAM__TENSOR_EXT_INLINE];
};

/* A new uninitialized contiguous tensor on ctx. */
lam_status lam__tensor_alloc(lam_ctx *ctx, const lam_shape *shape, lam_tensor **out);
/* The same for any dtype (uninitialized contents). */
lam_status lam__tensor_alloc_dtype(lam_ctx *ctx, lam_dtype dtype, const lam_shape *shape,
                                   lam_tensor **out);
/* A tensor sharing t's storage with another shape of the same size (one -1 dim is inferred);
 * not recorded (lam_tensor_reshape, the ops level, records it). */
lam_status lam__tensor_reshape_view(lam_tensor *t, const lam_shape *shape, lam_tensor **out);
/* A contiguous tensor of `shape` sharing t's storage from element `first` of t (a float32 t);
 * not recorded. The distributed trainer's gradient buckets hand such views to parameters as
 * their gradient buffers. Errors: LAM_ERR_INVALID_ARGUMENT (a range beyond t). */
lam_status lam__tensor_slice_view(lam_tensor *t, size_t first, const lam_shape *shape,
                                  lam_tensor **out);
/* Reads or writes count elements of t starting at element `first`, for a save or a load
 * streaming a tensor in pieces. Errors: LAM_ERR_INVALID_ARGUMENT (a released tensor, a range
 * beyond numel), the backend's (prefixed with the function and the context). */
lam_status lam__tensor_read_at(const lam_tensor *t, size_t first, float *dst, size_t count);
lam_status lam__tensor_write_at(lam_tensor *t, size_t first, const float *src, size_t count);
/* The host address of float32 tensor t's elements when its backend's buffers are host memory
 * (the backend has buffer_host_ptr, e.g. the CPU backend), after t's context finished its
 * work; NULL when they are not (Vulkan), for another dtype, or when synchronizing fails (the
 * caller then goes through lam__tensor_write_at, which reports it). For filling a new tensor
 * in place (a load reading a file straight into it): the memory is t's storage, so only a
 * tensor nobody else holds may be written through it. */
float *lam__tensor_host_f32(lam_tensor *t);
/* A new contiguous float32 tensor on ctx over `bytes` bytes of host memory at ptr, without a
 * copy (the backend's buffer_from_host_ptr): writes go to that memory. When its storage goes,
 * the buffer is freed and release(arg) runs (also when this fails: the caller hands its
 * reference over). LAM_ERR_UNSUPPORTED when the backend cannot wrap this memory (no
 * LAM_BACKEND_HOST_PTR, alignment): copy instead. */
lam_status lam__tensor_wrap_host(lam_ctx *ctx, const lam_shape *shape, void *ptr, size_t bytes,
                                 void (*release)(void *arg), void *arg, lam_tensor **out);
/* Contiguous view of the whole tensor, as the ABI hands it to backends: byte offset and byte
 * strides, struct_size set (every view core builds is in these units; lam__execute passes it
 * on as it is). A 0-D tensor is one element of a 1-D view. */
void lam__tensor_view(const lam_tensor *t, lam_tensor_view *view);
/* Checks that both tensors live on one context; error names both. */
lam_status lam__same_ctx(const char *op, const lam_tensor *a, const lam_tensor *b);

/* ---- per-thread heaps (tensor_heap.c) ---- */

typedef struct lam__heap lam__heap;

/* The calling thread's heap (set up on first use); NULL when out of memory. */
lam__heap *lam__heap_mine(void);
/* A zeroed tensor / storage struct from the heap's pool (or calloc); NULL when out of memory. */
lam_tensor *lam__heap_tensor_get(lam__heap *h);
lam__storage *lam__heap_storage_get(lam__heap *h);
/* Gives a storage struct back to the heap's pool. */
void lam__heap_storage_put(lam__heap *h, lam__storage *s);
/* A cached buffer of exactly `bytes` on ctx (the thread's cache, then the context's), or NULL. */
void *lam__heap_buffer_take(lam__heap *h, lam_ctx *ctx, size_t bytes);
/* Keeps a freed buffer of ctx for reuse (or frees it when the caches are full). */
void lam__heap_buffer_give(lam__heap *h, lam_ctx *ctx, void *buf, size_t bytes);
/* Lists a new tensor as alive in the calling thread's heap (lam__heap_mine succeeded). */
void lam__heap_link(lam_tensor *t);
/* Unlists a released tensor (magic already DEAD, extension and storage released) and recycles
 * its struct; the caller does not touch t afterwards. */
void lam__heap_unlink(lam_tensor *t);
/* Unlists a released orphan (the caller frees it). */
void lam__heap_orphan_unlink(lam_tensor *t);

/*
 * lam_shutdown's guard: a call that runs backend or plugin code brackets it with
 * lam__call_enter (LAM_ERR_STATE "Runtime shut down", message naming fn, while or after
 * lam_shutdown runs) and, when that succeeded, lam__call_leave. lam__calls_stop (lam_shutdown)
 * stops new calls on other threads and returns how many other threads are inside one now: when
 * not 0, nothing is stopped. lam__calls_stopped ends the shutdown (new calls still fail);
 * lam__calls_resume (at start) lets calls in again.
 */
lam_status lam__call_enter(const char *fn);
void lam__call_leave(void);
size_t lam__calls_stop(void);
void lam__calls_stopped(void);
void lam__calls_resume(void);

/* At shutdown: frees the device memory of every tensor still alive; the handles become
 * orphans that only lam_tensor_release (and the shape getters) accept. */
void lam__tensors_reclaim_all(void);
/* Frees the calling thread's pooled tensor and storage structs (at shutdown). */
void lam__tensor_pool_flush(void);

#endif
