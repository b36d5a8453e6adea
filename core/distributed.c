/*
 * Data-parallel training over a communicator, the way PyTorch's DistributedDataParallel does
 * it: every rank holds the whole model and its own share of the batch; the gradients are
 * summed over the ranks before each update, so every rank makes the same update.
 *
 * Buckets: the parameters that train are grouped, in reverse registration order (roughly the
 * order in which backward completes their gradients), into buckets of about bucket_bytes.
 * A hook on each parameter's data tensor (tape.h) tells when its gradient is complete; when a
 * bucket's last one is, its non-blocking reductions start while the pass goes on. Buckets are
 * started strictly in index order on every rank (a collective's order must agree across
 * ranks), so one that completes early waits for those before it.
 *
 * What a bucket reduces: a large gradient (OWN_MIN_BYTES and more) is reduced in its own
 * buffer, where the backward pass leaves it (the tape hands the computed gradient's storage to
 * the parameter's gradient, tape.h: no copy); the small ones are gathered into one flat tensor
 * per bucket, each small parameter's gradient buffer a view into it, so they make one message.
 * Copying every gradient into one flat bucket instead cost a pass over all of them each step
 * (1.2 ms of the 784-1024-1024-10 MLP's 21.5 ms step), and the copy left them to be reduced
 * from a cold cache.
 */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include "distributed.h"
#include "error.h"
#include "lamina/plugin.h"
#include "log.h"
#include "param.h"
#include "safetensors.h"
#include "tape.h"
#include "tensor.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct dbucket dbucket;

/* A gradient this large is reduced in its own buffer, not copied into a flat bucket: a
 * message costs about as much as copying 64 KiB (bench/SCALING.md's alpha and beta). */
#define OWN_MIN_BYTES ((size_t)256 * 1024)

typedef struct dslot {
    lam_param *param;   /* retained */
    lam_tensor *hooked; /* the data tensor carrying the hook (retained), NULL: none */
    lam_tensor *view;   /* a small gradient's buffer: a view into its bucket (retained) */
    bool own;           /* a large one: reduced in p->grad itself (view NULL) */
    dbucket *bucket;
    size_t offset; /* elements into the bucket */
    struct lam__dist *d;
    atomic_int fired; /* the gradient was delivered since the last reduce */
} dslot;

struct dbucket {
    lam_tensor *flat;   /* the small gradients (NULL: the bucket has none) */
    size_t first, last; /* its parameters: order[first..last) */
    atomic_int pending; /* parameters whose gradient is not complete yet */
    atomic_int ready;
    /* The reductions in flight: the flat tensor's and each large gradient's, n_req of them
     * (room for last - first + 1); done[i]: lam_comm_test saw req[i] complete (it still
     * needs its wait). */
    lam_comm_request **req;
    int *done;
    size_t n_req;
};

struct lam__dist {
    lam_comm *comm;
    lam_ctx *host; /* cpu(0): the check's and the batch size's small tensors */
    size_t bucket_bytes;
    dslot *slots; /* registration order; the ones that train come first in `order` */
    size_t n;
    size_t *order; /* slot indices of the reduced parameters, in bucket order */
    size_t n_order;
    dbucket *buckets;
    size_t n_buckets;
    size_t next_launch; /* buckets before it were started */
    bool checked, built;
    /* MPI moves a non-blocking reduction on only inside MPI calls (no progress thread of its
     * own). Where a CPU is free for it (progress_mode), a thread of ours tests the reductions
     * in flight while backward computes; where every CPU computes, that thread would only
     * take turns with the compute on the same cores (measured: 1.1-2.2 ms of a 21.5 ms step
     * on 2 ranks of 1 core each), so the caller's thread tests them at each gradient hook and
     * completes them at the step. The communicator is used by one thread at a time
     * (MPI_THREAD_SERIALIZED): every call on it from here holds mu. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    bool thread_on, stop;
    int progress; /* 0: not decided yet, PROGRESS_THREAD or PROGRESS_CALLER */
};

enum { PROGRESS_THREAD = 1, PROGRESS_CALLER = 2 };

static bool trains(const lam_param *p) {
    return p->grad_req != LAM_GRAD_NULL && !(p->flags & LAM_PARAM_CONSTANT);
}

lam_status lam__dist_create(lam_comm *comm, lam_param *const *params, size_t n, size_t bucket_bytes,
                            lam__dist **out) {
    *out = NULL;
    lam__dist *d = calloc(1, sizeof *d);
    if (d == NULL || (d->slots = calloc(n ? n : 1, sizeof *d->slots)) == NULL ||
        (d->order = calloc(n ? n : 1, sizeof *d->order)) == NULL) {
        if (d) {
            free(d->slots);
        }
        free(d);
        return lam__error(LAM_ERR_OUT_OF_MEMORY, "distributed: Out of memory");
    }
    lam_status st = lam_ctx_get("cpu", &d->host);
    if (st != LAM_OK) {
        free(d->slots);
        free(d->order);
        free(d);
        return lam__error_prefix(st, "distributed");
    }
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->cv, NULL);
    d->comm = comm;
    d->bucket_bytes = bucket_bytes ? bucket_bytes : LAM_TRAINER_BUCKET_BYTES;
    for (size_t i = 0; i < n; i++) {
        bool dup = false; /* a parameter listed twice is one parameter */
        for (size_t j = 0; j < d->n && !dup; j++) {
            dup = d->slots[j].param == params[i];
        }
        if (!dup) {
            dslot *s = &d->slots[d->n++];
            s->param = lam__param_retain(params[i]);
            s->d = d;
        }
    }
    *out = d;
    return LAM_OK;
}

/* Waits for a bucket's reductions in flight: the first error, or LAM_OK. */
static lam_status wait_bucket(dbucket *b) {
    lam_status st = LAM_OK;
    for (size_t i = 0; i < b->n_req; i++) {
        lam_status w = lam_comm_wait(b->req[i]);
        b->req[i] = NULL;
        st = st == LAM_OK ? w : st;
    }
    b->n_req = 0;
    return st;
}

/* Waits for every reduction in flight (their errors are lost: this is a teardown). */
static void drain(lam__dist *d) {
    for (size_t b = 0; b < d->n_buckets; b++) {
        (void)wait_bucket(&d->buckets[b]);
    }
}

static void unhook(dslot *s) {
    if (s->hooked != NULL) {
        (void)lam__tape_leaf_hook(s->hooked, NULL, NULL);
        lam_tensor_release(s->hooked);
        s->hooked = NULL;
    }
}

/* Drops the buckets; the parameters keep their gradient views as plain buffers. */
static void unbuild(lam__dist *d) {
    drain(d);
    for (size_t i = 0; i < d->n; i++) {
        unhook(&d->slots[i]);
        lam_tensor_release(d->slots[i].view);
        d->slots[i].view = NULL;
        d->slots[i].bucket = NULL;
        d->slots[i].own = false;
    }
    for (size_t b = 0; b < d->n_buckets; b++) {
        lam_tensor_release(d->buckets[b].flat);
        free(d->buckets[b].req);
        free(d->buckets[b].done);
    }
    free(d->buckets);
    d->buckets = NULL;
    d->n_buckets = 0;
    d->n_order = 0;
    d->built = false;
}

void lam__dist_destroy(lam__dist *d) {
    if (d == NULL) {
        return;
    }
    if (d->thread_on) {
        pthread_mutex_lock(&d->mu);
        d->stop = true;
        pthread_cond_signal(&d->cv);
        pthread_mutex_unlock(&d->mu);
        pthread_join(d->thread, NULL);
    }
    pthread_mutex_destroy(&d->mu);
    pthread_cond_destroy(&d->cv);
    unbuild(d);
    for (size_t i = 0; i < d->n; i++) {
        lam__param_release(d->slots[i].param);
    }
    free(d->slots);
    free(d->order);
    free(d);
}

/* ---- the first step's check: one model, one set of values ---------------------------- */

/* Per parameter, floats that hold exact integers below 2^16 (any float32 transport is exact):
 * the key's checksum, the shape, whether it trains, the values' checksum. */
enum {
    R_KEY = 0,
    R_NDIM = 2,
    R_DIMS = 3,
    R_TRAINS = R_DIMS + 2 * LAM_MAX_DIMS,
    R_SUM,
    REC = R_SUM + 2
};

static void put32(float *f, uint32_t v) {
    f[0] = (float)(v >> 16);
    f[1] = (float)(v & 0xffffu);
}

static uint32_t get32(const float *f) {
    return ((uint32_t)f[0] << 16) | (uint32_t)f[1];
}

static const char *key_of(const lam_param *p) {
    return p->key ? p->key : p->name;
}

static lam_status record(const lam_param *p, float *r) {
    const char *key = key_of(p);
    put32(r + R_KEY, lam__crc32c(0, key, strlen(key)));
    r[R_NDIM] = (float)p->shape.ndim;
    for (uint32_t k = 0; k < p->shape.ndim && k < LAM_MAX_DIMS; k++) {
        put32(r + R_DIMS + 2 * k, (uint32_t)p->shape.dims[k]);
    }
    /* Not initialized (the step then fails on every rank where it is so): 2, so that it
     * differs from the initialized one of another rank instead of failing here alone. */
    r[R_TRAINS] = p->data == NULL ? 2.0f : trains(p) ? 1.0f : 0.0f;
    /* Running statistics (LAM_PARAM_STATE) are each rank's own, as PyTorch's buffers with
     * broadcast_buffers off: after a forward in training they differ by design. */
    if (p->data == NULL || (p->flags & LAM_PARAM_STATE)) {
        return LAM_OK;
    }
    size_t count = (size_t)p->data->numel;
    float *v = malloc((count ? count : 1) * sizeof *v);
    if (v == NULL) {
        return lam__error(LAM_ERR_OUT_OF_MEMORY, "distributed: Out of memory");
    }
    lam_status st = lam_tensor_read(p->data, v, count);
    if (st == LAM_OK) {
        put32(r + R_SUM, lam__crc32c(0, v, count * sizeof *v));
    }
    free(v);
    return st;
}

/* The parameter's shape as rank `rank` reported it. */
static const char *shape_text(const float *r, char *buf, size_t cap) {
    lam_shape s;
    int64_t dims[LAM_MAX_DIMS] = {0};
    uint32_t nd = (uint32_t)r[R_NDIM];
    for (uint32_t k = 0; k < nd && k < LAM_MAX_DIMS; k++) {
        dims[k] = (int64_t)(int32_t)get32(r + R_DIMS + 2 * k);
    }
    lam_shape_init(&s, nd < LAM_MAX_DIMS ? nd : LAM_MAX_DIMS, dims);
    return lam_shape_format(&s, buf, cap);
}

static lam_status gather(lam_comm *c, lam_ctx *host, const float *mine, size_t len, float *all) {
    int size = lam_comm_size(c);
    int64_t d1 = (int64_t)len, d2[2] = {size, (int64_t)len};
    lam_shape s1, s2;
    lam_shape_init(&s1, 1, &d1);
    lam_shape_init(&s2, 2, d2);
    lam_tensor *in = NULL, *out = NULL;
    lam_status st = lam_tensor_from_data(host, &s1, mine, len, &in);
    if (st == LAM_OK) {
        st = lam_tensor_create(host, &s2, &out);
    }
    if (st == LAM_OK) {
        st = lam_comm_allgather(c, in, out);
    }
    if (st == LAM_OK) {
        st = lam_tensor_read(out, all, len * (size_t)size);
    }
    lam_tensor_release(in);
    lam_tensor_release(out);
    return st;
}

static lam_status check(lam__dist *d) {
    int rank = lam_comm_rank(d->comm), size = lam_comm_size(d->comm);
    float n = (float)d->n, *counts = malloc((size_t)size * sizeof *counts);
    float *mine = calloc((d->n ? d->n : 1) * REC, sizeof *mine);
    float *all = malloc((d->n ? d->n : 1) * REC * (size_t)size * sizeof *all);
    lam_status st = (counts && mine && all)
                        ? LAM_OK
                        : lam__error(LAM_ERR_OUT_OF_MEMORY, "distributed: Out of memory");
    if (st == LAM_OK) {
        st = gather(d->comm, d->host, &n, 1, counts);
    }
    for (int r = 0; st == LAM_OK && r < size; r++) {
        if (counts[r] != counts[0]) {
            st = lam__error(LAM_ERR_SHAPE,
                            "distributed: Model differs across ranks, %.0f parameters on rank "
                            "0, %.0f on rank %d",
                            (double)counts[0], (double)counts[r], r);
        }
    }
    for (size_t i = 0; st == LAM_OK && i < d->n; i++) {
        st = record(d->slots[i].param, mine + i * REC);
    }
    if (st == LAM_OK) {
        st = gather(d->comm, d->host, mine, d->n * REC, all);
    }
    /* Every rank has every record, so every rank finds the same first difference and fails
     * the same way: no rank is left waiting in a reduction. */
    int differs = -1;
    size_t first_differs = 0;
    for (int r = 1; st == LAM_OK && r < size; r++) {
        for (size_t i = 0; st == LAM_OK && i < d->n; i++) {
            const float *a = all + i * REC, *b = all + ((size_t)r * d->n + i) * REC;
            char s0[160], s1[160];
            if (memcmp(a, b, R_SUM * sizeof *a) != 0) {
                const char *what = memcmp(a, b, R_NDIM * sizeof *a) != 0 ? "its key differs"
                                   : a[R_TRAINS] != b[R_TRAINS]          ? "it trains on one only"
                                                                         : "shapes differ";
                st = lam__error(LAM_ERR_SHAPE,
                                "distributed: Model differs across ranks, parameter %zu ('%s' "
                                "here on rank %d) is %s on rank 0 and %s on rank %d (%s)",
                                i, key_of(d->slots[i].param), rank, shape_text(a, s0, sizeof s0),
                                shape_text(b, s1, sizeof s1), r, what);
            } else if (differs < 0 && memcmp(a + R_SUM, b + R_SUM, 2 * sizeof *a) != 0) {
                differs = r;
                first_differs = i;
            }
        }
    }
    if (st == LAM_OK && differs >= 0) {
        lam__log(rank == 0 ? LAM_LOG_WARN : LAM_LOG_DEBUG,
                 "distributed: Parameters differ across ranks (first '%s' on rank %d), "
                 "broadcasting rank 0's values to all %d ranks",
                 key_of(d->slots[first_differs].param), differs, size);
        for (size_t i = 0; st == LAM_OK && i < d->n; i++) {
            if (d->slots[i].param->data != NULL) {
                st = lam_comm_broadcast(d->comm, d->slots[i].param->data, 0);
            }
        }
    } else if (st == LAM_OK) {
        uint32_t sum = 0;
        for (size_t i = 0; i < d->n; i++) {
            sum = lam__crc32c(sum, mine + i * REC + R_SUM, 2 * sizeof *mine);
        }
        lam__log(rank == 0 ? LAM_LOG_INFO : LAM_LOG_DEBUG,
                 "distributed: All %d ranks hold identical parameters (%zu tensors, checksum "
                 "%08x)",
                 size, d->n, sum);
    }
    free(counts);
    free(mine);
    free(all);
    return st;
}

/* ---- buckets ---------------------------------------------------------------------------- */

/* Starts one reduction of bucket b: t in place. */
static lam_status start_one(lam__dist *d, dbucket *b, lam_tensor *t) {
    lam_status st = lam_comm_allreduce_start(d->comm, t, &b->req[b->n_req]);
    if (st == LAM_OK) {
        b->done[b->n_req++] = 0;
    }
    return st;
}

static lam_status launch_ready(lam__dist *d) {
    while (d->next_launch < d->n_buckets &&
           atomic_load_explicit(&d->buckets[d->next_launch].ready, memory_order_acquire)) {
        dbucket *b = &d->buckets[d->next_launch];
        /* The same reductions in the same order on every rank: the layout is every rank's. */
        lam_status st = b->flat != NULL ? start_one(d, b, b->flat) : LAM_OK;
        for (size_t k = b->first; st == LAM_OK && k < b->last; k++) {
            dslot *s = &d->slots[d->order[k]];
            if (s->own) {
                st = start_one(d, b, s->param->grad);
            }
        }
        d->next_launch++;
        pthread_cond_signal(&d->cv);
        if (st != LAM_OK) {
            return lam__error_prefix(st, "distributed: bucket %zu", d->next_launch - 1);
        }
    }
    return LAM_OK;
}

/* Tests the reductions in flight (mu held): true while one is still running. */
static bool progress(lam__dist *d) {
    for (size_t i = 0; i < d->next_launch; i++) {
        dbucket *b = &d->buckets[i];
        for (size_t r = 0; r < b->n_req; r++) {
            /* An error here is lam_comm_wait's to report, at the step. */
            if (!b->done[r] && (lam_comm_test(b->req[r], &b->done[r]) != LAM_OK || !b->done[r])) {
                return true;
            }
        }
    }
    return false;
}

static void *progress_thread(void *arg) {
    lam__dist *d = arg;
    pthread_mutex_lock(&d->mu);
    while (!d->stop) {
        if (!progress(d)) {
            pthread_cond_wait(&d->cv, &d->mu);
            continue;
        }
        pthread_mutex_unlock(&d->mu);
        struct timespec ts = {0, 20000}; /* 20 us: a few wake-ups per millisecond of MPI */
        nanosleep(&ts, NULL);
        pthread_mutex_lock(&d->mu);
    }
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

/* A count from 1 to 4096 in an environment variable, else 0. */
static long env_count(const char *name) {
    const char *v = getenv(name);
    char *end = NULL;
    long n = v != NULL ? strtol(v, &end, 10) : 0;
    return v != NULL && end != v && *end == '\0' && n >= 1 && n <= 4096 ? n : 0;
}

/* Who moves the reductions on (mu held, at the first reduce): LAMINA_COMM_PROGRESS=thread or
 * caller, else a thread when a CPU is free for it: the parameters live on a device (the CPU
 * mostly waits for it), or the process may run on more CPUs than the CPU backend computes on
 * (LAMINA_NUM_THREADS, whose default is every CPU of the affinity mask, as the backend's). */
static int progress_mode(lam__dist *d, char *why, size_t cap) {
    const char *v = getenv("LAMINA_COMM_PROGRESS");
    if (v != NULL && (strcmp(v, "thread") == 0 || strcmp(v, "caller") == 0)) {
        snprintf(why, cap, "LAMINA_COMM_PROGRESS=%s", v);
        return v[0] == 't' ? PROGRESS_THREAD : PROGRESS_CALLER;
    }
    for (size_t b = 0; b < d->n_buckets; b++) {
        const lam_tensor *t = d->buckets[b].flat;
        for (size_t k = d->buckets[b].first; t == NULL && k < d->buckets[b].last; k++) {
            t = d->slots[d->order[k]].param->data;
        }
        if (t != NULL && lam_tensor_ctx(t) != d->host) {
            snprintf(why, cap, "the gradients live on a device");
            return PROGRESS_THREAD;
        }
    }
    long cpus = 1, threads = env_count("LAMINA_NUM_THREADS");
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        cpus = CPU_COUNT(&set);
    }
    threads = threads ? threads : cpus;
    snprintf(why, cap, "%ld CPU%s for %ld compute thread%s", cpus, cpus == 1 ? "" : "s", threads,
             threads == 1 ? "" : "s");
    return cpus > threads ? PROGRESS_THREAD : PROGRESS_CALLER;
}

/* The tape calls this when the parameter's gradient is complete (backward.c). */
static lam_status on_grad(void *ctx) {
    dslot *s = ctx;
    if (atomic_exchange_explicit(&s->fired, 1, memory_order_acq_rel)) {
        return lam__error(LAM_ERR_STATE,
                          "distributed: %s: Gradient computed twice before a step, a "
                          "data-parallel trainer takes one backward pass per step",
                          s->param->name);
    }
    dbucket *b = s->bucket;
    lam_status st = LAM_OK;
    bool last = atomic_fetch_sub_explicit(&b->pending, 1, memory_order_acq_rel) == 1;
    if (last) {
        atomic_store_explicit(&b->ready, 1, memory_order_release);
    }
    if (last || s->d->progress == PROGRESS_CALLER) {
        pthread_mutex_lock(&s->d->mu);
        st = last ? launch_ready(s->d) : LAM_OK;
        if (s->d->progress == PROGRESS_CALLER) {
            (void)progress(s->d); /* errors are lam_comm_wait's to report, at the step */
        }
        pthread_mutex_unlock(&s->d->mu);
    }
    return st;
}

/* Whether t is a tensor of its own: the only user of its storage, from element 0. */
static bool standalone(const lam_tensor *t) {
    return t->offset == 0 && t->storage != NULL && atomic_load(&t->storage->refcount) == 1;
}

/* Gives a large parameter a gradient buffer of its own (it had none, or a view into an old
 * bucket), with the values it held. */
static lam_status adopt_own(dslot *s) {
    lam_param *p = s->param;
    if (p->grad != NULL && standalone(p->grad) &&
        lam_shape_equal(&p->grad->shape, &p->data->shape) &&
        lam_tensor_ctx(p->grad) == lam_tensor_ctx(p->data)) {
        return LAM_OK;
    }
    lam_tensor *g = NULL;
    lam_status st = p->grad != NULL
                        ? lam_op_copy(p->grad, &g)
                        : lam_tensor_full(lam_tensor_ctx(p->data), &p->data->shape, 0.0f, &g);
    if (st == LAM_OK) {
        st = lam__tape_leaf_set(p->data, true, g, p->grad_req == LAM_GRAD_ADD);
    }
    if (st == LAM_OK) {
        lam_tensor_release(p->grad);
        p->grad = g;
        g = NULL;
    }
    lam_tensor_release(g);
    return st;
}

/* Copies what the parameter's gradient holds into its view and makes the view its gradient
 * buffer (param.h: the tape's sink follows the gradient). */
static lam_status adopt(dslot *s) {
    lam_param *p = s->param;
    if (s->own) {
        return adopt_own(s);
    }
    if (p->grad == s->view) {
        return LAM_OK;
    }
    lam_status st = LAM_OK;
    size_t count = (size_t)s->view->numel;
    if (p->grad != NULL) {
        float *v = malloc((count ? count : 1) * sizeof *v);
        st = v ? lam_tensor_read(p->grad, v, count)
               : lam__error(LAM_ERR_OUT_OF_MEMORY, "distributed: Out of memory");
        if (st == LAM_OK) {
            st = lam_tensor_write(s->view, v, count);
        }
        free(v);
    } else {
        st = lam_op_fill(s->view, 0.0f);
    }
    if (st == LAM_OK) {
        st = lam__tape_leaf_set(p->data, true, s->view, p->grad_req == LAM_GRAD_ADD);
    }
    if (st == LAM_OK) {
        lam_tensor_release(p->grad);
        p->grad = lam_tensor_retain(s->view);
    }
    return st;
}

/* Lays the buckets out: parameters that train, last registered first, a new bucket once
 * bucket_bytes are reached or the context changes. */
static lam_status build(lam__dist *d) {
    d->n_order = 0;
    for (size_t i = d->n; i-- > 0;) {
        if (trains(d->slots[i].param) && d->slots[i].param->data != NULL) {
            d->order[d->n_order++] = i;
        }
    }
    d->buckets = calloc(d->n_order ? d->n_order : 1, sizeof *d->buckets);
    if (d->buckets == NULL) {
        return lam__error(LAM_ERR_OUT_OF_MEMORY, "distributed: Out of memory");
    }
    lam_status st = LAM_OK;
    size_t k = 0;
    while (st == LAM_OK && k < d->n_order) {
        lam_ctx *ctx = lam_tensor_ctx(d->slots[d->order[k]].param->data);
        size_t first = k, total = 0, flat = 0;
        while (k < d->n_order && (k == first || total * sizeof(float) < d->bucket_bytes) &&
               lam_tensor_ctx(d->slots[d->order[k]].param->data) == ctx) {
            dslot *s = &d->slots[d->order[k]];
            size_t numel = (size_t)s->param->data->numel;
            s->own = numel * sizeof(float) >= OWN_MIN_BYTES;
            if (!s->own) {
                s->offset = flat;
                flat += numel;
            }
            total += numel;
            k++;
        }
        dbucket *b = &d->buckets[d->n_buckets++];
        b->first = first;
        b->last = k;
        b->req = calloc(k - first + 1, sizeof *b->req);
        b->done = calloc(k - first + 1, sizeof *b->done);
        if (b->req == NULL || b->done == NULL) {
            st = lam__error(LAM_ERR_OUT_OF_MEMORY, "distributed: Out of memory");
        }
        if (st == LAM_OK && flat > 0) {
            int64_t len = (int64_t)flat;
            lam_shape shape;
            lam_shape_init(&shape, 1, &len);
            st = lam_tensor_create(ctx, &shape, &b->flat);
        }
        for (size_t j = first; st == LAM_OK && j < k; j++) {
            dslot *s = &d->slots[d->order[j]];
            s->bucket = b;
            if (!s->own) {
                st = lam__tensor_slice_view(b->flat, s->offset, &s->param->data->shape, &s->view);
            }
            if (st == LAM_OK) {
                st = adopt(s);
            }
        }
    }
    d->built = st == LAM_OK;
    if (st != LAM_OK) {
        unbuild(d); /* what was laid out so far: the next step lays it out again */
    }
    return st;
}

/* Whether the buckets still fit the parameters (a load may give one a new data tensor or a
 * new gradient buffer). */
static bool fits(const lam__dist *d) {
    size_t n = 0;
    for (size_t i = 0; i < d->n; i++) {
        const lam_param *p = d->slots[i].param;
        if (trains(p) && p->data != NULL) {
            const dslot *s = &d->slots[i];
            const lam_tensor *g = s->own ? p->grad : s->view;
            if (s->bucket == NULL || g == NULL || !lam_shape_equal(&g->shape, &p->data->shape) ||
                lam_tensor_ctx(p->data) != lam_tensor_ctx(g)) {
                return false;
            }
            n++;
        }
    }
    return n == d->n_order;
}

/* Arms the hooks for the next backward pass. */
static lam_status arm(lam__dist *d) {
    lam_status st = LAM_OK;
    for (size_t b = 0; b < d->n_buckets; b++) {
        atomic_store(&d->buckets[b].pending, 0);
        atomic_store(&d->buckets[b].ready, 0);
    }
    for (size_t k = 0; k < d->n_order; k++) {
        dslot *s = &d->slots[d->order[k]];
        atomic_fetch_add(&s->bucket->pending, 1);
        atomic_store(&s->fired, 0);
        /* grad_req add sums several passes into the buffer: it is final only at the step, so
         * its bucket is reduced there (its pending count never reaches zero before). */
        if (s->param->grad_req != LAM_GRAD_WRITE) {
            unhook(s);
            continue;
        }
        if (s->hooked != s->param->data) {
            unhook(s);
            st = lam__tape_leaf_hook(s->param->data, on_grad, s);
            if (st != LAM_OK) {
                return st;
            }
            s->hooked = lam_tensor_retain(s->param->data);
        }
    }
    d->next_launch = 0;
    return LAM_OK;
}

static lam_status reduce_locked(lam__dist *d, int64_t batch, int64_t *global_batch);

lam_status lam__dist_reduce(lam__dist *d, int64_t batch, int64_t *global_batch) {
    pthread_mutex_lock(&d->mu);
    lam_status st = reduce_locked(d, batch, global_batch);
    /* From the second step on, reductions start during backward: who drives them on (if the
     * thread cannot start, lam_comm_wait still completes them, later). */
    if (st == LAM_OK && d->progress == 0 && lam_comm_size(d->comm) > 1) {
        char why[96];
        d->progress = progress_mode(d, why, sizeof why);
        lam__log(lam_comm_rank(d->comm) == 0 ? LAM_LOG_INFO : LAM_LOG_DEBUG,
                 "distributed: Reductions during backward progress on %s (%s)",
                 d->progress == PROGRESS_THREAD ? "a thread of their own"
                                                : "the training thread, at each gradient",
                 why);
    }
    if (st == LAM_OK && d->progress == PROGRESS_THREAD && !d->thread_on) {
        d->thread_on = pthread_create(&d->thread, NULL, progress_thread, d) == 0;
    }
    pthread_mutex_unlock(&d->mu);
    return st;
}

static lam_status reduce_locked(lam__dist *d, int64_t batch, int64_t *global_batch) {
    lam_status st = LAM_OK;
    if (!d->checked) {
        st = check(d);
        if (st != LAM_OK) {
            return st;
        }
        d->checked = true;
    }
    if (d->built && !fits(d)) {
        unbuild(d);
    }
    if (!d->built) {
        st = build(d);
    }
    for (size_t k = 0; st == LAM_OK && k < d->n_order; k++) {
        st = adopt(&d->slots[d->order[k]]); /* a gradient buffer replaced since: copied in */
    }
    /* Buckets whose gradients did not all arrive (a parameter the pass did not reach, the
     * first step, grad_req add) start now, in order. */
    for (size_t b = 0; st == LAM_OK && b < d->n_buckets; b++) {
        atomic_store_explicit(&d->buckets[b].ready, 1, memory_order_release);
    }
    if (st == LAM_OK) {
        st = launch_ready(d);
    }
    /* The global batch after the buckets, in the same order on every rank. */
    float bsz = (float)batch;
    lam_tensor *bt = NULL;
    int64_t one = 1;
    lam_shape s1;
    lam_shape_init(&s1, 1, &one);
    if (st == LAM_OK) {
        st = lam_tensor_from_data(d->host, &s1, &bsz, 1, &bt);
    }
    if (st == LAM_OK) {
        st = lam_comm_allreduce(d->comm, bt);
    }
    if (st == LAM_OK) {
        st = lam_tensor_read(bt, &bsz, 1);
    }
    lam_tensor_release(bt);
    for (size_t b = 0; b < d->n_buckets; b++) {
        lam_status w = wait_bucket(&d->buckets[b]);
        if (st == LAM_OK && w != LAM_OK) {
            st = lam__error_prefix(w, "distributed: bucket %zu", b);
        }
    }
    if (st == LAM_OK) {
        *global_batch = (int64_t)bsz;
        st = arm(d);
    }
    return st;
}
