/*
 * cpu_dnnl.c - CONV, CONV_BACKWARD_DATA and CONV_BACKWARD_WEIGHT (ABI 2.2) on oneDNN.
 *
 * Why oneDNN: it is the CPU convolution PyTorch runs (torch 1.13 bundles MKL-DNN 2.6.3, the
 * version Debian 12 ships as libdnnl2), direct convolution in blocked layouts with JIT kernels
 * for every x86 ISA it detects at run time. The host's fallback (IM2COL + batched GEMM +
 * COL2IM) moves a column buffer KH*KW times the input through memory and stays the path
 * wherever this file says no.
 *
 * Like OpenBLAS (cpu_blas.c), libdnnl.so.2 is not linked: it is dlopen()ed on the first
 * convolution, so the plugin loads and runs every other op on a machine without it, and
 * LAMINA_CPU_DNNL=0 turns it off (the host then runs its fallback; benchmarks use it to time
 * both). Built under a sanitizer the file is compiled out and the fallback runs: oneDNN threads
 * through libgomp, whose synchronisation ThreadSanitizer cannot see, and in the ASan build
 * LeakSanitizer's end-of-process scan crashed ("Tracer caught signal 11") in processes that had
 * run oneDNN's OpenMP threads (not investigated further; ASan cannot see inside oneDNN anyway).
 * The plain build's suite and CI's Vulkan pass run this file.
 *
 * A call's operands are the user's plain NCHW / OIHW views; the primitive chooses its own
 * layouts (format "any") and the operands are reordered into and out of them around it, as
 * PyTorch does for plain tensors. The primitives, their reorders and the layouts are made once
 * per shape and kept in a small table (oneDNN's own cache would still leave the primitive
 * descriptor to be built on every call); the scratchpad is the caller's (user mode), so one
 * primitive may run on several threads at once. Threads: oneDNN's OpenMP regions get the
 * backend's thread count (LAMINA_NUM_THREADS or the cores), set before creation and execution.
 *
 * Allocation failure: this file's own buffers are checked (a clean "Out of memory"), and the
 * oneDNN objects a run needs are made once per thread (run_prim), but oneDNN itself does not
 * survive every allocation of its own failing: dnnl_memory_create uses an unchecked malloc, and
 * dnnl_primitive_execute ends the process on std::bad_alloc (it reaches a frame that lets no
 * exception out, so cpu_dnnl_try.cpp never sees it; it catches what the other entries throw).
 * Lamina's allocation-failure sweeps therefore run with LAMINA_CPU_DNNL=0, as they run without
 * lavapipe.
 */
#define _GNU_SOURCE /* RTLD_NOLOAD */

#include "cpu_internal.h"

#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define CPU_DNNL_OFF 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define CPU_DNNL_OFF 1
#endif
#endif

#if defined(LAMINA_CPU_HAVE_DNNL) && !defined(CPU_DNNL_OFF)

#include <oneapi/dnnl/dnnl.h>

#include <dlfcn.h>
#include <pthread.h>

#define DNNL_SONAME "libdnnl.so.2"

/* The entries used, looked up by name; the types are oneDNN's own prototypes. */
typedef struct dnnl_api {
    __typeof__(&dnnl_engine_create) engine_create;
    __typeof__(&dnnl_engine_destroy) engine_destroy;
    __typeof__(&dnnl_stream_create) stream_create;
    __typeof__(&dnnl_stream_wait) stream_wait;
    __typeof__(&dnnl_stream_destroy) stream_destroy;
    __typeof__(&dnnl_memory_desc_init_by_tag) md_init;
    __typeof__(&dnnl_memory_desc_equal) md_equal;
    __typeof__(&dnnl_memory_desc_get_size) md_size;
    __typeof__(&dnnl_memory_create) memory_create;
    __typeof__(&dnnl_memory_destroy) memory_destroy;
    __typeof__(&dnnl_memory_set_data_handle) memory_set_handle;
    __typeof__(&dnnl_dilated_convolution_forward_desc_init) fwd_init;
    __typeof__(&dnnl_dilated_convolution_backward_data_desc_init) bwd_data_init;
    __typeof__(&dnnl_dilated_convolution_backward_weights_desc_init) bwd_weights_init;
    __typeof__(&dnnl_primitive_desc_create) pd_create;
    __typeof__(&dnnl_primitive_desc_destroy) pd_destroy;
    __typeof__(&dnnl_primitive_desc_query_md) pd_query_md;
    __typeof__(&dnnl_primitive_create) prim_create;
    __typeof__(&dnnl_primitive_destroy) prim_destroy;
    __typeof__(&dnnl_primitive_execute) prim_execute;
    __typeof__(&dnnl_reorder_primitive_desc_create) reorder_pd_create;
    __typeof__(&dnnl_primitive_attr_create) attr_create;
    __typeof__(&dnnl_primitive_attr_destroy) attr_destroy;
    __typeof__(&dnnl_primitive_attr_set_scratchpad_mode) attr_scratchpad;
    void (*omp_set_num_threads)(int);
} dnnl_api;

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static dnnl_api g_api;
static int g_ready; /* set once by load(); read after pthread_once */
static dnnl_engine_t g_engine;
static dnnl_primitive_attr_t g_attr; /* user scratchpad */
static pthread_key_t g_tl_key;       /* each thread's tl_objs list (run_prim) */
static int g_tl_key_ok;
static void tl_list_free(void *head);
static pthread_key_t g_ws_key; /* each thread's workspace (ws_get) */
static int g_ws_key_ok;
static void ws_free(void *w);

/* The engine and the attribute every primitive is made with (oneDNN may throw: build_state). */
static int load_objects(void *arg) {
    (void)arg;
    return g_api.engine_create(&g_engine, dnnl_cpu, 0) == dnnl_success &&
           g_api.attr_create(&g_attr) == dnnl_success &&
           g_api.attr_scratchpad(g_attr, dnnl_scratchpad_mode_user) == dnnl_success;
}

/*
 * How many times oneDNN's idle OpenMP threads poll for the next parallel region before they
 * sleep, unless the user set GOMP_SPINCOUNT or OMP_WAIT_POLICY: 10^4 (well under a
 * millisecond) instead of libgomp's 3 x 10^5, whose spinning took the cores from the pool's
 * and OpenBLAS's threads between convolutions (a quarter of a 2-thread LeNet step's samples in
 * libgomp's wait loop). A convolution's reorders and primitive still follow one another
 * within the spin.
 */
#define OMP_IDLE_SPIN "10000"

static void load(void) {
    const char *env = getenv("LAMINA_CPU_DNNL");
    if (env != NULL && strcmp(env, "0") == 0) {
        return;
    }
    /* libgomp reads GOMP_SPINCOUNT once, when it is loaded (here, as libdnnl's dependency,
     * unless something loaded it before): see OMP_IDLE_SPIN. */
    cpu_env_patch spin;
    cpu_env_default(&spin, "GOMP_SPINCOUNT", OMP_IDLE_SPIN, "OMP_WAIT_POLICY");
    void *h = dlopen(DNNL_SONAME, RTLD_NOW | RTLD_LOCAL);
    cpu_env_restore(&spin);
    if (h == NULL) {
        return;
    }
    void *gomp = dlopen("libgomp.so.1", RTLD_NOW | RTLD_NOLOAD);
    dnnl_api a;
    int ok = 1;
#define SYM(field, name)                                                                           \
    do {                                                                                           \
        void *p_ = dlsym(h, name);                                                                 \
        ok = ok && p_ != NULL;                                                                     \
        memcpy(&a.field, &p_, sizeof p_);                                                          \
    } while (0)
    SYM(engine_create, "dnnl_engine_create");
    SYM(engine_destroy, "dnnl_engine_destroy");
    SYM(stream_create, "dnnl_stream_create");
    SYM(stream_wait, "dnnl_stream_wait");
    SYM(stream_destroy, "dnnl_stream_destroy");
    SYM(md_init, "dnnl_memory_desc_init_by_tag");
    SYM(md_equal, "dnnl_memory_desc_equal");
    SYM(md_size, "dnnl_memory_desc_get_size");
    SYM(memory_create, "dnnl_memory_create");
    SYM(memory_destroy, "dnnl_memory_destroy");
    SYM(memory_set_handle, "dnnl_memory_set_data_handle");
    SYM(fwd_init, "dnnl_dilated_convolution_forward_desc_init");
    SYM(bwd_data_init, "dnnl_dilated_convolution_backward_data_desc_init");
    SYM(bwd_weights_init, "dnnl_dilated_convolution_backward_weights_desc_init");
    SYM(pd_create, "dnnl_primitive_desc_create");
    SYM(pd_destroy, "dnnl_primitive_desc_destroy");
    SYM(pd_query_md, "dnnl_primitive_desc_query_md");
    SYM(prim_create, "dnnl_primitive_create");
    SYM(prim_destroy, "dnnl_primitive_destroy");
    SYM(prim_execute, "dnnl_primitive_execute");
    SYM(reorder_pd_create, "dnnl_reorder_primitive_desc_create");
    SYM(attr_create, "dnnl_primitive_attr_create");
    SYM(attr_destroy, "dnnl_primitive_attr_destroy");
    SYM(attr_scratchpad, "dnnl_primitive_attr_set_scratchpad_mode");
#undef SYM
    a.omp_set_num_threads = NULL;
    if (gomp != NULL) {
        void *p = dlsym(gomp, "omp_set_num_threads");
        memcpy(&a.omp_set_num_threads, &p, sizeof p);
    }
    if (!ok) {
        return; /* libdnnl stays loaded: its OpenMP threads may exist */
    }
    g_api = a;
    g_tl_key_ok = pthread_key_create(&g_tl_key, tl_list_free) == 0;
    g_ws_key_ok = pthread_key_create(&g_ws_key, ws_free) == 0;
    g_ready = g_tl_key_ok && cpu_dnnl_try(load_objects, NULL) == 1;
}

static int ready(void) {
    pthread_once(&g_once, load);
    return g_ready;
}

static void set_threads(void) {
    if (g_api.omp_set_num_threads != NULL) {
        g_api.omp_set_num_threads(cpu_threads());
    }
}

/* What a primitive is made for: the op, the four dims of input, weight and output, the
 * window, groups, and whether the bias takes part. Zeroed before filling (compared bytewise). */
typedef struct conv_key {
    int64_t op;
    int64_t x[4], w[4], y[4];
    int64_t stride[2], pad_l[2], pad_r[2], dil[2];
    int64_t groups, bias, threads;
} conv_key;

/* One primitive argument and, when the primitive wants another layout, the reorder. */
typedef struct conv_arg {
    int arg;     /* DNNL_ARG_* of the primitive */
    int operand; /* 0..2: inputs, 3..4: outputs */
    dnnl_memory_desc_t user_md, prim_md;
    dnnl_primitive_t reorder; /* NULL: the layouts agree, the user's memory is used */
    size_t bytes;             /* prim_md's size */
} conv_arg;

#define CONV_ARGS 4
#define CONV_OUT0 3

typedef struct conv_prim {
    conv_key key;
    uint64_t id; /* unique for the process's life: names the prim in the threads' objects */
    dnnl_primitive_t prim;
    size_t scratch; /* the largest scratchpad of the primitive and its reorders */
    int n_args;
    conv_arg args[CONV_ARGS];
} conv_prim;

#define CONV_CACHE 64
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static conv_prim *g_cache[CONV_CACHE];
static int g_cached;

static void prim_free(conv_prim *p) {
    if (p == NULL) {
        return;
    }
    if (p->prim != NULL) {
        g_api.prim_destroy(p->prim);
    }
    for (int i = 0; i < p->n_args; i++) {
        if (p->args[i].reorder != NULL) {
            g_api.prim_destroy(p->args[i].reorder);
        }
    }
    free(p);
}

static size_t scratch_of(const_dnnl_primitive_desc_t pd) {
    const dnnl_memory_desc_t *md = g_api.pd_query_md(pd, dnnl_query_scratchpad_md, 0);
    return md != NULL ? g_api.md_size(md) : 0;
}

/* A primitive made from pd, kept with its scratchpad size. */
static int make_prim(conv_prim *p, const_dnnl_primitive_desc_t pd) {
    size_t s = scratch_of(pd);
    p->scratch = s > p->scratch ? s : p->scratch;
    return g_api.prim_create(&p->prim, pd) == dnnl_success;
}

/*
 * What build_body makes, kept where build() can free it: oneDNN's C entries let C++
 * exceptions out (std::bad_alloc when an allocation fails), so every oneDNN call runs inside
 * cpu_dnnl_try, which catches them, and whatever was made before a throw is freed by the
 * caller from here (run_state does the same for run_body).
 */
typedef struct build_state {
    const conv_key *k;
    conv_prim *p;
    dnnl_primitive_desc_t fpd, pd, rpd;
} build_state;

/* Adds an argument: the user's plain layout and the primitive's (queried from pd), with the
 * reorder between them (user -> primitive for inputs, back for outputs) when they differ. */
static int add_arg(build_state *bs, const_dnnl_primitive_desc_t pd, dnnl_query_t what, int index,
                   int arg, int operand, int ndims, const dnnl_dims_t dims, dnnl_format_tag_t tag) {
    conv_prim *p = bs->p;
    conv_arg *a = &p->args[p->n_args++];
    memset(a, 0, sizeof *a);
    a->arg = arg;
    a->operand = operand;
    if (g_api.md_init(&a->user_md, ndims, dims, dnnl_f32, tag) != dnnl_success) {
        return 0;
    }
    const dnnl_memory_desc_t *pm = g_api.pd_query_md(pd, what, index);
    if (pm == NULL) {
        return 0;
    }
    a->prim_md = *pm;
    a->bytes = g_api.md_size(pm);
    if (g_api.md_equal(&a->user_md, &a->prim_md)) {
        return 1;
    }
    const int out = operand >= CONV_OUT0;
    if (g_api.reorder_pd_create(&bs->rpd, out ? &a->prim_md : &a->user_md, g_engine,
                                out ? &a->user_md : &a->prim_md, g_engine,
                                g_attr) != dnnl_success) {
        return 0;
    }
    size_t s = scratch_of(bs->rpd);
    p->scratch = s > p->scratch ? s : p->scratch;
    int ok = g_api.prim_create(&a->reorder, bs->rpd) == dnnl_success;
    g_api.pd_destroy(bs->rpd);
    bs->rpd = NULL;
    return ok;
}

/* A key's dims in oneDNN's terms (the weight 5-D, groups first, when grouped), the window, and
 * the operands' descriptors in format "any" (the primitive chooses their layouts). */
typedef struct conv_dims {
    dnnl_dims_t x, y, b, w, stride, dil, pad_l, pad_r;
    int wn;
    dnnl_format_tag_t wtag; /* the user's weight layout */
    dnnl_memory_desc_t src, wei, bias, dst;
} conv_dims;

static int conv_dims_of(const conv_key *k, conv_dims *d) {
    memset(d, 0, sizeof *d);
    d->wn = k->groups > 1 ? 5 : 4;
    d->wtag = d->wn == 5 ? dnnl_goihw : dnnl_oihw;
    for (int i = 0; i < 4; i++) {
        d->x[i] = k->x[i];
        d->y[i] = k->y[i];
    }
    d->b[0] = k->w[0];
    if (d->wn == 5) {
        d->w[0] = k->groups;
        d->w[1] = k->w[0] / k->groups;
        memcpy(&d->w[2], &k->w[1], 3 * sizeof k->w[0]);
    } else {
        memcpy(d->w, k->w, 4 * sizeof k->w[0]);
    }
    for (int a = 0; a < 2; a++) {
        d->stride[a] = k->stride[a];
        d->dil[a] = k->dil[a] - 1; /* oneDNN counts the gaps: 0 is a dense kernel */
        d->pad_l[a] = k->pad_l[a];
        d->pad_r[a] = k->pad_r[a];
    }
    return g_api.md_init(&d->src, 4, d->x, dnnl_f32, dnnl_format_tag_any) == dnnl_success &&
           g_api.md_init(&d->wei, d->wn, d->w, dnnl_f32, dnnl_format_tag_any) == dnnl_success &&
           g_api.md_init(&d->bias, 1, d->b, dnnl_f32, dnnl_format_tag_any) == dnnl_success &&
           g_api.md_init(&d->dst, 4, d->y, dnnl_f32, dnnl_format_tag_any) == dnnl_success;
}

/* Makes bs->p's primitive and reorders; 0 when oneDNN has none for the key. The forward
 * descriptor (for training) is the op itself for CONV, the hint of the backward ops else. */
static int build_body(void *arg) {
    build_state *bs = arg;
    const conv_key *k = bs->k;
    conv_prim *p = bs->p;
    conv_dims d;
    dnnl_convolution_desc_t fd, bd;
    int ok = conv_dims_of(k, &d) &&
             g_api.fwd_init(&fd, dnnl_forward_training, dnnl_convolution_direct, &d.src, &d.wei,
                            k->op == LAM_OP_CONV && k->bias ? &d.bias : NULL, &d.dst, d.stride,
                            d.dil, d.pad_l, d.pad_r) == dnnl_success &&
             g_api.pd_create(&bs->fpd, &fd, g_attr, g_engine, NULL) == dnnl_success;
    const_dnnl_primitive_desc_t fpd = bs->fpd;
    if (ok && k->op == LAM_OP_CONV) {
        return make_prim(p, fpd) &&
               add_arg(bs, fpd, dnnl_query_src_md, 0, DNNL_ARG_SRC, 0, 4, d.x, dnnl_nchw) &&
               add_arg(bs, fpd, dnnl_query_weights_md, 0, DNNL_ARG_WEIGHTS, 1, d.wn, d.w, d.wtag) &&
               (!k->bias ||
                add_arg(bs, fpd, dnnl_query_weights_md, 1, DNNL_ARG_BIAS, 2, 1, d.b, dnnl_x)) &&
               add_arg(bs, fpd, dnnl_query_dst_md, 0, DNNL_ARG_DST, CONV_OUT0, 4, d.y, dnnl_nchw);
    }
    if (ok && k->op == LAM_OP_CONV_BACKWARD_DATA) {
        return g_api.bwd_data_init(&bd, dnnl_convolution_direct, &d.src, &d.wei, &d.dst, d.stride,
                                   d.dil, d.pad_l, d.pad_r) == dnnl_success &&
               g_api.pd_create(&bs->pd, &bd, g_attr, g_engine, fpd) == dnnl_success &&
               make_prim(p, bs->pd) &&
               add_arg(bs, bs->pd, dnnl_query_diff_dst_md, 0, DNNL_ARG_DIFF_DST, 0, 4, d.y,
                       dnnl_nchw) &&
               add_arg(bs, bs->pd, dnnl_query_weights_md, 0, DNNL_ARG_WEIGHTS, 1, d.wn, d.w,
                       d.wtag) &&
               add_arg(bs, bs->pd, dnnl_query_diff_src_md, 0, DNNL_ARG_DIFF_SRC, CONV_OUT0, 4, d.x,
                       dnnl_nchw);
    }
    return ok &&
           g_api.bwd_weights_init(&bd, dnnl_convolution_direct, &d.src, &d.wei,
                                  k->bias ? &d.bias : NULL, &d.dst, d.stride, d.dil, d.pad_l,
                                  d.pad_r) == dnnl_success &&
           g_api.pd_create(&bs->pd, &bd, g_attr, g_engine, fpd) == dnnl_success &&
           make_prim(p, bs->pd) &&
           add_arg(bs, bs->pd, dnnl_query_src_md, 0, DNNL_ARG_SRC, 0, 4, d.x, dnnl_nchw) &&
           add_arg(bs, bs->pd, dnnl_query_diff_dst_md, 0, DNNL_ARG_DIFF_DST, 1, 4, d.y,
                   dnnl_nchw) &&
           add_arg(bs, bs->pd, dnnl_query_diff_weights_md, 0, DNNL_ARG_DIFF_WEIGHTS, CONV_OUT0,
                   d.wn, d.w, d.wtag) &&
           (!k->bias || add_arg(bs, bs->pd, dnnl_query_diff_weights_md, 1, DNNL_ARG_DIFF_BIAS,
                                CONV_OUT0 + 1, 1, d.b, dnnl_x));
}

/* Makes the primitive and its reorders for key k; NULL when oneDNN has none for it (or threw). */
static conv_prim *build(const conv_key *k) {
    build_state bs = {k, calloc(1, sizeof(conv_prim)), NULL, NULL, NULL};
    if (bs.p == NULL) {
        return NULL;
    }
    bs.p->key = *k;
    static uint64_t next_id; /* under g_lock (build runs there) */
    bs.p->id = ++next_id;
    const int ok = cpu_dnnl_try(build_body, &bs) == 1;
    const dnnl_primitive_desc_t pds[3] = {bs.rpd, bs.pd, bs.fpd};
    for (int i = 0; i < 3; i++) {
        if (pds[i] != NULL) {
            g_api.pd_destroy(pds[i]);
        }
    }
    if (!ok) {
        prim_free(bs.p);
        return NULL;
    }
    return bs.p;
}

/* The kept primitive for k, made now if new; *owned says the caller frees it (table full). */
static conv_prim *get_prim(const conv_key *k, int *owned) {
    *owned = 0;
    pthread_mutex_lock(&g_lock);
    for (int i = 0; i < g_cached; i++) {
        if (memcmp(&g_cache[i]->key, k, sizeof *k) == 0) {
            conv_prim *p = g_cache[i];
            pthread_mutex_unlock(&g_lock);
            return p;
        }
    }
    set_threads();
    conv_prim *p = build(k);
    if (p != NULL) {
        if (g_cached < CONV_CACHE) {
            g_cache[g_cached++] = p;
        } else {
            *owned = 1;
        }
    }
    pthread_mutex_unlock(&g_lock);
    return p;
}

/*
 * A thread's oneDNN objects for one kept primitive: the stream and the memory objects, made on
 * the thread's first run of it and pointed at each run's buffers (dnnl_memory_set_data_handle).
 * oneDNN allocates them with a malloc whose failure it does not check, so making them on every
 * run would turn a failed allocation into a crash; kept, a run's own allocations are only the
 * buffers below (ours, checked) and what dnnl_primitive_execute makes with operator new (a
 * std::bad_alloc, caught by cpu_dnnl_try). The list is freed when the thread ends.
 */
typedef struct tl_objs {
    uint64_t id; /* conv_prim.id */
    dnnl_stream_t stream;
    dnnl_memory_t user[CONV_ARGS], prim[CONV_ARGS], scratch_mem;
    struct tl_objs *next;
} tl_objs;

static void tl_objs_free(tl_objs *o) {
    for (int i = 0; i < CONV_ARGS; i++) {
        if (o->user[i] != NULL) {
            g_api.memory_destroy(o->user[i]);
        }
        if (o->prim[i] != NULL) {
            g_api.memory_destroy(o->prim[i]);
        }
    }
    if (o->scratch_mem != NULL) {
        g_api.memory_destroy(o->scratch_mem);
    }
    if (o->stream != NULL) {
        g_api.stream_destroy(o->stream);
    }
    free(o);
}

static void tl_list_free(void *head) {
    for (tl_objs *o = head, *next; o != NULL; o = next) {
        next = o->next;
        tl_objs_free(o);
    }
}

/* A run: its thread objects (kept, or for a primitive not kept made for this run only) and its
 * buffers (in the thread's workspace). */
typedef struct run_state {
    const conv_prim *p;
    float *const *ptr;
    tl_objs *o;
    void *tmp[CONV_ARGS], *scratch;
} run_state;

static size_t round_up(size_t bytes) {
    return (bytes + CPU_ALIGN - 1) / CPU_ALIGN * CPU_ALIGN;
}

/*
 * The thread's workspace: the reordered operands and the scratchpad of its runs, one block
 * that only grows (a run needs its buffers only while it runs, and a thread runs one at a
 * time). Allocated per run instead, every buffer of a large convolution was a fresh mapping
 * from glibc (megabytes are mmap()ed, or trimmed off the heap's top when freed), and the page
 * faults of touching it again cost a quarter of the convolution's time.
 */
typedef struct workspace {
    void *data;
    size_t bytes;
} workspace;

static void ws_free(void *w) {
    if (w != NULL) {
        free(((workspace *)w)->data);
        free(w);
    }
}

/* The calling thread's workspace of at least `bytes` bytes, or NULL (out of memory). */
static char *ws_get(size_t bytes) {
    if (!g_ws_key_ok) {
        return NULL;
    }
    workspace *w = pthread_getspecific(g_ws_key);
    if (w == NULL) {
        w = calloc(1, sizeof *w);
        if (w == NULL || pthread_setspecific(g_ws_key, w) != 0) {
            free(w);
            return NULL;
        }
    }
    if (w->bytes < bytes) {
        void *d = aligned_alloc(CPU_ALIGN, bytes);
        if (d == NULL) {
            return NULL;
        }
        free(w->data);
        w->data = d;
        w->bytes = bytes;
    }
    return w->data;
}

/* Makes o's stream and memory objects for p (the handles are set per run). */
static int make_objs(void *arg) {
    run_state *r = arg;
    const conv_prim *p = r->p;
    tl_objs *o = r->o;
    if (g_api.stream_create(&o->stream, g_engine, dnnl_stream_default_flags) != dnnl_success) {
        return 0;
    }
    if (p->scratch > 0) {
        const dnnl_dims_t sd = {(dnnl_dim_t)p->scratch};
        dnnl_memory_desc_t smd;
        if (g_api.md_init(&smd, 1, sd, dnnl_u8, dnnl_x) != dnnl_success ||
            g_api.memory_create(&o->scratch_mem, &smd, g_engine, DNNL_MEMORY_NONE) !=
                dnnl_success) {
            return 0;
        }
    }
    for (int i = 0; i < p->n_args; i++) {
        const conv_arg *a = &p->args[i];
        if (g_api.memory_create(&o->user[i], &a->user_md, g_engine, DNNL_MEMORY_NONE) !=
                dnnl_success ||
            (a->reorder != NULL && g_api.memory_create(&o->prim[i], &a->prim_md, g_engine,
                                                       DNNL_MEMORY_NONE) != dnnl_success)) {
            return 0;
        }
    }
    return 1;
}

/* Reorders the inputs in, runs the primitive, reorders the outputs out; 1 when all ran. */
static int run_body(void *arg) {
    run_state *r = arg;
    const conv_prim *p = r->p;
    tl_objs *o = r->o;
    dnnl_exec_arg_t args[CONV_ARGS + 1];
    if (o->scratch_mem != NULL &&
        g_api.memory_set_handle(o->scratch_mem, r->scratch) != dnnl_success) {
        return 0;
    }
    const int n_reorder = o->scratch_mem != NULL ? 3 : 2;
    set_threads();
    cpu_pool_quiet(); /* the cores are for oneDNN's OpenMP threads now */
    for (int i = 0; i < p->n_args; i++) {
        const conv_arg *a = &p->args[i];
        if (g_api.memory_set_handle(o->user[i], r->ptr[a->operand]) != dnnl_success ||
            (a->reorder != NULL &&
             g_api.memory_set_handle(o->prim[i], r->tmp[i]) != dnnl_success)) {
            return 0;
        }
        args[i].arg = a->arg;
        args[i].memory = a->reorder != NULL ? o->prim[i] : o->user[i];
        dnnl_exec_arg_t ra[3] = {{DNNL_ARG_FROM, o->user[i]},
                                 {DNNL_ARG_TO, o->prim[i]},
                                 {DNNL_ARG_SCRATCHPAD, o->scratch_mem}};
        if (a->reorder != NULL && a->operand < CONV_OUT0 &&
            g_api.prim_execute(a->reorder, o->stream, n_reorder, ra) != dnnl_success) {
            return 0;
        }
    }
    int n = p->n_args;
    if (o->scratch_mem != NULL) {
        args[n].arg = DNNL_ARG_SCRATCHPAD;
        args[n++].memory = o->scratch_mem;
    }
    if (g_api.prim_execute(p->prim, o->stream, n, args) != dnnl_success) {
        return 0;
    }
    for (int i = 0; i < p->n_args; i++) {
        const conv_arg *a = &p->args[i];
        dnnl_exec_arg_t ra[3] = {{DNNL_ARG_FROM, o->prim[i]},
                                 {DNNL_ARG_TO, o->user[i]},
                                 {DNNL_ARG_SCRATCHPAD, o->scratch_mem}};
        if (a->reorder != NULL && a->operand >= CONV_OUT0 &&
            g_api.prim_execute(a->reorder, o->stream, n_reorder, ra) != dnnl_success) {
            return 0;
        }
    }
    return g_api.stream_wait(o->stream) == dnnl_success;
}

/* Runs p on the call's operands (float pointers: inputs 0..2, outputs 3..4); `kept` says p
 * stays in the table (its thread objects are then kept too). */
static lam_status run_prim(const conv_prim *p, int kept, float *const *ptr, const char *name) {
    run_state r;
    memset(&r, 0, sizeof r);
    r.p = p;
    r.ptr = ptr;
    tl_objs *head = g_tl_key_ok ? pthread_getspecific(g_tl_key) : NULL;
    for (tl_objs *o = head; kept && o != NULL; o = o->next) {
        if (o->id == p->id) {
            r.o = o;
            break;
        }
    }
    int ok = 1, fresh = 0;
    if (r.o == NULL) {
        fresh = 1;
        r.o = calloc(1, sizeof *r.o);
        ok = r.o != NULL && cpu_dnnl_try(make_objs, &r) == 1;
        if (ok) {
            r.o->id = p->id;
        }
    }
    size_t need = round_up(p->scratch);
    for (int i = 0; i < p->n_args; i++) {
        need += p->args[i].reorder != NULL ? round_up(p->args[i].bytes) : 0;
    }
    char *ws = ok && need > 0 ? ws_get(need) : NULL;
    ok = ok && (need == 0 || ws != NULL);
    for (int i = 0; ok && i < p->n_args; i++) {
        if (p->args[i].reorder != NULL) {
            r.tmp[i] = ws;
            ws += round_up(p->args[i].bytes);
        }
    }
    if (ok && p->scratch > 0) {
        r.scratch = ws;
    }
    ok = ok && cpu_dnnl_try(run_body, &r) == 1;
    if (r.o != NULL && r.o->stream != NULL) {
        g_api.stream_wait(r.o->stream); /* nothing may still use the buffers freed below */
    }
    if (fresh && r.o != NULL) {
        if (kept && r.o->id != 0 && g_tl_key_ok && pthread_setspecific(g_tl_key, r.o) == 0) {
            r.o->next = head; /* setspecific took it: the list's new head */
        } else {
            tl_objs_free(r.o);
        }
    }
    return ok ? LAM_OK
              : cpu_error(LAM_ERR_OUT_OF_MEMORY,
                          "cpu: Out of memory, %s could not get its oneDNN buffers, stream or "
                          "memory objects",
                          name);
}

void cpu_dnnl_fini(void) {
    if (!g_ready) {
        return;
    }
    g_ready = 0; /* after shutdown the fallback runs (the plugin is unloaded next) */
    pthread_mutex_lock(&g_lock);
    for (int i = 0; i < g_cached; i++) {
        prim_free(g_cache[i]);
        g_cache[i] = NULL;
    }
    g_cached = 0;
    pthread_mutex_unlock(&g_lock);
    if (g_tl_key_ok) {
        /* This thread's objects now; other threads' lists are left (their destructor is gone
         * with the key, so unloading the plugin cannot leave it dangling). */
        tl_list_free(pthread_getspecific(g_tl_key));
        pthread_setspecific(g_tl_key, NULL);
        pthread_key_delete(g_tl_key);
        g_tl_key_ok = 0;
    }
    if (g_ws_key_ok) {
        ws_free(pthread_getspecific(g_ws_key));
        pthread_setspecific(g_ws_key, NULL);
        pthread_key_delete(g_ws_key);
        g_ws_key_ok = 0;
    }
    /* The engine and attribute too: the plugin's statics go with it when it is unloaded, and
     * oneDNN (which stays loaded) would hold them with no reference left. */
    g_api.attr_destroy(g_attr);
    g_api.engine_destroy(g_engine);
    g_attr = NULL;
    g_engine = NULL;
}

int cpu_dnnl_available(void) {
    return ready();
}

#else /* built without oneDNN's header, or under ThreadSanitizer */

void cpu_dnnl_fini(void) {}

int cpu_dnnl_available(void) {
    return 0;
}

#endif

/* ---- the checks, shared by both builds ---- */

/* True when v is a dense row-major view (what oneDNN's plain layouts describe). */
static int dense(const cpu_view *v) {
    int64_t s = 1;
    for (int d = (int)v->ndim - 1; d >= 0; d--) {
        if (v->dims[d] != 1 && v->st[d] != s) {
            return 0;
        }
        s *= v->dims[d];
    }
    return 1;
}

static int64_t conv_out(int64_t in, int64_t k, int64_t s, int64_t pl, int64_t pr, int64_t d) {
    const int64_t span = in + pl + pr - d * (k - 1) - 1;
    return span < 0 ? -1 : span / s + 1;
}

/*
 * CONV and its gradients: checks the call (any wrong operand or parameter is an error naming
 * it), then, unless dry, runs it on oneDNN. A well-formed call oneDNN cannot take (oneDNN
 * missing or off, a strided view, an empty dim) is LAM_ERR_UNSUPPORTED, so supports() says no
 * and the host runs its fallback.
 */
lam_status cpu_conv(const cpu_call *c) {
    const lam_conv_params *p = lam_op_params(c, lam_conv_params);
    if (p == NULL) {
        return cpu_error(LAM_ERR_INVALID_ARGUMENT,
                         "cpu: Invalid argument, %s needs its parameters (lam_conv_params, "
                         "struct_size set)",
                         c->name);
    }
    const lam_window_params *w = &p->window;
    if (p->groups < 1 || w->n_spatial != 2 || w->flags != 0) {
        return cpu_error(LAM_ERR_INVALID_ARGUMENT,
                         "cpu: Invalid argument, %s has groups %u, n_spatial %u, flags %u "
                         "(groups >= 1, 2 spatial dims, no flags)",
                         c->name, (unsigned)p->groups, (unsigned)w->n_spatial, (unsigned)w->flags);
    }
    for (int a = 0; a < 2; a++) {
        if (w->stride[a] < 1 || w->dilation[a] < 1 || w->pad_before[a] < 0 || w->pad_after[a] < 0 ||
            w->kernel[a] < 1 || w->stride[a] > (INT64_C(1) << 31) ||
            w->dilation[a] > (INT64_C(1) << 31) || w->pad_before[a] > (INT64_C(1) << 31) ||
            w->pad_after[a] > (INT64_C(1) << 31)) {
            return cpu_error(LAM_ERR_INVALID_ARGUMENT,
                             "cpu: Invalid argument, %s window axis %d: kernel %lld, stride %lld, "
                             "dilation %lld, padding %lld/%lld",
                             c->name, a, (long long)w->kernel[a], (long long)w->stride[a],
                             (long long)w->dilation[a], (long long)w->pad_before[a],
                             (long long)w->pad_after[a]);
        }
    }
    /* The image (x), weight and output-gradient/output views of the three ops. */
    const cpu_view *img, *wv, *yv, *bv = NULL;
    if (c->op == LAM_OP_CONV) {
        img = &c->in[0];
        wv = &c->in[1];
        yv = &c->out[0];
        bv = c->n_in > 2 ? &c->in[2] : NULL;
    } else if (c->op == LAM_OP_CONV_BACKWARD_DATA) {
        yv = &c->in[0];
        wv = &c->in[1];
        img = &c->out[0];
    } else {
        img = &c->in[0];
        yv = &c->in[1];
        wv = &c->out[0];
        bv = c->n_out > 1 ? &c->out[1] : NULL;
    }
    for (uint32_t i = 0; i < c->n_in + c->n_out; i++) {
        const cpu_view *v = i < c->n_in ? &c->in[i] : &c->out[i - c->n_in];
        if (v->dtype != LAM_DTYPE_F32) {
            return cpu_error(LAM_ERR_DTYPE, "cpu: Unsupported dtype, %s takes float32 operands",
                             c->name);
        }
    }
    const int64_t g = p->groups;
    int bad = img->ndim != 4 || wv->ndim != 4 || yv->ndim != 4 || (bv != NULL && bv->ndim != 1);
    if (!bad) {
        bad = wv->dims[2] != w->kernel[0] || wv->dims[3] != w->kernel[1] ||
              img->dims[1] != wv->dims[1] * g || wv->dims[0] % g != 0 ||
              yv->dims[0] != img->dims[0] || yv->dims[1] != wv->dims[0] ||
              (bv != NULL && bv->dims[0] != wv->dims[0]);
        for (int a = 0; !bad && a < 2; a++) {
            bad = yv->dims[2 + a] != conv_out(img->dims[2 + a], w->kernel[a], w->stride[a],
                                              w->pad_before[a], w->pad_after[a], w->dilation[a]);
        }
    }
    if (bad) {
        return cpu_error(LAM_ERR_SHAPE,
                         "cpu: Shape mismatch, %s operands do not agree with each other and the "
                         "window (image (N, C, H, W), weight (O, C/groups, KH, KW), output (N, O, "
                         "OH, OW), bias (O); groups %lld)",
                         c->name, (long long)g);
    }
    int plain = dense(img) && dense(wv) && dense(yv) && (bv == NULL || dense(bv));
    int64_t numel = cpu_count(img) * cpu_count(wv) * cpu_count(yv);
    if (!plain || numel == 0 || !cpu_dnnl_available()) {
        return cpu_error(LAM_ERR_UNSUPPORTED,
                         "cpu: Unsupported, %s runs on oneDNN and %s (the host runs its fallback)",
                         c->name,
                         !plain       ? "these views are not dense"
                         : numel == 0 ? "an operand is empty"
                                      : "oneDNN is not available (libdnnl.so.2, LAMINA_CPU_DNNL)");
    }
#if defined(LAMINA_CPU_HAVE_DNNL) && !defined(CPU_DNNL_OFF)
    conv_key k;
    memset(&k, 0, sizeof k);
    k.op = (int64_t)c->op;
    for (int d = 0; d < 4; d++) {
        k.x[d] = img->dims[d];
        k.w[d] = wv->dims[d];
        k.y[d] = yv->dims[d];
    }
    for (int a = 0; a < 2; a++) {
        k.stride[a] = w->stride[a];
        k.pad_l[a] = w->pad_before[a];
        k.pad_r[a] = w->pad_after[a];
        k.dil[a] = w->dilation[a];
    }
    k.groups = g;
    k.bias = bv != NULL;
    k.threads = cpu_threads();
    int owned = 0;
    conv_prim *prim = get_prim(&k, &owned);
    if (prim == NULL) {
        return cpu_error(LAM_ERR_UNSUPPORTED,
                         "cpu: Unsupported, oneDNN has no %s for these sizes (the host runs its "
                         "fallback)",
                         c->name);
    }
    lam_status st = LAM_OK;
    if (!c->dry) {
        float *ptr[5] = {NULL, NULL, NULL, NULL, NULL};
        for (uint32_t i = 0; i < c->n_in; i++) {
            ptr[i] = cpu_f32(&c->in[i]);
        }
        for (uint32_t i = 0; i < c->n_out; i++) {
            ptr[CONV_OUT0 + i] = cpu_f32(&c->out[i]);
        }
        st = run_prim(prim, !owned, ptr, c->name);
    }
    if (owned) {
        prim_free(prim);
    }
    return st;
#else
    return LAM_OK; /* not reached: cpu_dnnl_available() is 0 */
#endif
}
