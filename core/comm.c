/*
 * Communicators (lamina.h): opening and closing them (the choice of one and the built-in
 * "self" communicator are in comm_choose.c), and the collectives on tensors. A tensor whose backend
 * exposes its buffers as host memory (the CPU) goes to the communicator as it is; any other is
 * staged through a host copy, unless the communicator reduces that backend's buffers itself
 * (allreduce_device).
 */
#include "comm.h"
#include "callback.h"
#include "comm_choose.h"
#include "context.h"
#include "error.h"
#include "registry_comm.h"
#include "shape.h"
#include "start.h"
#include "tensor.h"
#include "util.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct lam_comm {
    const lam_comm_desc *desc; /* NULL once lam_shutdown closed it */
    const char *path;          /* the plugin's file, NULL for "self" */
    void *impl;
    char name[64];
    int rank, size;
    lam_comm_request *requests; /* outstanding, newest first */
    lam_comm *prev, *next;      /* in the open list */
};

struct lam_comm_request {
    lam_comm *comm; /* NULL once lam_shutdown ended it */
    void *impl;
    lam_tensor *t; /* retained */
    void *staged;  /* the host copy written back at wait; NULL when t was used directly */
    size_t bytes;  /* of t */
    lam_comm_request *next;
};

/* Open communicators, so lam_shutdown can close them before their plugins go. */
static pthread_mutex_t open_lock = PTHREAD_MUTEX_INITIALIZER;
static lam_comm *open_list;

/* ---- open and close ---- */

/* A plugin callback's status, named after the communicator and the callback. */
static lam_status comm_status(lam_status st, uint64_t mark, const lam_comm *c, const char *fn,
                              const char *callback) {
    if (st == LAM_OK) {
        return LAM_OK;
    }
    char who[96];
    snprintf(who, sizeof who, "communicator '%s'", c->name);
    st = lam__plugin_status(st, mark, c->path, who, NULL, callback);
    return lam__error_prefix(st, "%s on %s", fn, c->name);
}

lam_status lam_comm_open(const char *name, lam_comm **out) {
    if (out == NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "lam_comm_open: Invalid argument, out is NULL");
    }
    *out = NULL;
    lam_status st = lam__ensure_started();
    if (st != LAM_OK) {
        return st;
    }
    lam__comm_choice ch;
    st = lam__comm_choose("lam_comm_open", name, &ch);
    if (st != LAM_OK) {
        return st;
    }
    lam_comm *c = calloc(1, sizeof *c);
    if (c == NULL) {
        return lam__error(LAM_ERR_OUT_OF_MEMORY, "lam_comm_open: Out of memory");
    }
    c->desc = ch.desc;
    c->path = ch.path;
    snprintf(c->name, sizeof c->name, "%s", ch.desc->name);
    st = lam__call_enter("lam_comm_open");
    if (st != LAM_OK) {
        free(c);
        return st;
    }
    uint64_t mark = lam__error_mark();
    st = comm_status(c->desc->open(c->desc->user, &c->impl), mark, c, "lam_comm_open", "open");
    if (st == LAM_OK) {
        c->rank = c->desc->rank(c->impl);
        c->size = c->desc->size(c->impl);
        if (c->size < 1 || c->rank < 0 || c->rank >= c->size) {
            st = lam__error(LAM_ERR_INTERNAL,
                            "lam_comm_open on %s: Internal error, the communicator says rank %d "
                            "of size %d",
                            c->name, c->rank, c->size);
            (void)c->desc->close(c->impl);
        }
    }
    lam__call_leave();
    if (st != LAM_OK) {
        free(c);
        return st;
    }
    pthread_mutex_lock(&open_lock);
    c->next = open_list;
    if (open_list != NULL) {
        open_list->prev = c;
    }
    open_list = c;
    pthread_mutex_unlock(&open_lock);
    *out = c;
    return LAM_OK;
}

static void unlink_open(lam_comm *c) {
    pthread_mutex_lock(&open_lock);
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else if (open_list == c) {
        open_list = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    c->prev = c->next = NULL;
    pthread_mutex_unlock(&open_lock);
}

lam_status lam_comm_close(lam_comm *c) {
    if (c == NULL) {
        return LAM_OK;
    }
    if (c->desc == NULL) { /* closed by lam_shutdown: only the handle is left */
        free(c);
        return LAM_OK;
    }
    if (c->requests != NULL) {
        return lam__error(LAM_ERR_STATE,
                          "lam_comm_close on %s: Invalid state, a non-blocking allreduce is "
                          "still outstanding (lam_comm_wait for it first)",
                          c->name);
    }
    unlink_open(c);
    lam_status st = lam__call_enter("lam_comm_close");
    if (st == LAM_OK) {
        uint64_t mark = lam__error_mark();
        st = comm_status(c->desc->close(c->impl), mark, c, "lam_comm_close", "close");
        lam__call_leave();
    }
    free(c);
    return st;
}

int lam_comm_rank(const lam_comm *c) {
    return c != NULL ? c->rank : -1;
}

int lam_comm_size(const lam_comm *c) {
    return c != NULL ? c->size : -1;
}

const char *lam_comm_name(const lam_comm *c) {
    return c != NULL ? c->name : NULL;
}

/* ---- tensors ---- */

/* Checks the communicator and enters the call guard (leave with lam__call_leave). */
static lam_status enter(const char *fn, const lam_comm *c) {
    if (c == NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "%s: Invalid argument, communicator is NULL",
                          fn);
    }
    if (c->desc == NULL) {
        return lam__error(LAM_ERR_STATE,
                          "%s: Runtime shut down, the communicator was closed by lam_shutdown", fn);
    }
    return lam__call_enter(fn);
}

static lam_status check_tensor(const char *fn, const lam_comm *c, const lam_tensor *t,
                               const char *what) {
    if (t == NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "%s on %s: Invalid argument, %s is NULL", fn,
                          c->name, what);
    }
    if (t->magic != LAM__TENSOR_LIVE) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "%s on %s: Invalid argument, %s was released or outlived "
                          "lam_shutdown",
                          fn, c->name, what);
    }
    return LAM_OK;
}

static size_t tensor_bytes(const lam_tensor *t) {
    return (size_t)t->numel * lam_dtype_size(t->dtype);
}

/* The host address of t's elements when its backend's buffers are host memory, else NULL. */
static void *host_address(const lam_tensor *t) {
    lam_ctx *ctx = t->storage->ctx;
    const lam_backend_desc *b = &ctx->backend->desc;
    if (b->buffer_host_ptr == NULL || lam_ctx_synchronize(ctx) != LAM_OK) {
        return NULL;
    }
    char *p = b->buffer_host_ptr(ctx->dev, t->storage->buf);
    return p != NULL ? p + t->offset * lam_dtype_size(t->dtype) : NULL;
}

/* t's elements in host memory: its own (*staged NULL) or a copy to write back (*staged set). */
static lam_status host_data(const char *fn, const lam_comm *c, const lam_tensor *t, bool read,
                            void **data, void **staged) {
    *staged = NULL;
    *data = host_address(t);
    if (*data != NULL) {
        return LAM_OK;
    }
    size_t bytes = tensor_bytes(t);
    *staged = malloc(bytes ? bytes : 1);
    if (*staged == NULL) {
        return lam__error(LAM_ERR_OUT_OF_MEMORY,
                          "%s on %s: Out of memory, staging %zu bytes of a tensor on %s", fn,
                          c->name, bytes, t->storage->ctx->name);
    }
    if (read) {
        lam_status st = lam_tensor_read_bytes(t, *staged, bytes);
        if (st != LAM_OK) {
            free(*staged);
            *staged = NULL;
            return lam__error_prefix(st, "%s on %s", fn, c->name);
        }
    }
    *data = *staged;
    return LAM_OK;
}

/* Writes a staged copy back into t and frees it. */
static lam_status write_back(const char *fn, const lam_comm *c, lam_tensor *t, void *staged,
                             lam_status st) {
    if (staged == NULL) {
        return st;
    }
    if (st == LAM_OK) {
        st = lam_tensor_write_bytes(t, staged, tensor_bytes(t));
        if (st != LAM_OK) {
            st = lam__error_prefix(st, "%s on %s", fn, c->name);
        }
    }
    free(staged);
    return st;
}

static lam_status busy(const char *fn, const lam_comm *c, const lam_tensor *t) {
    for (const lam_comm_request *r = c->requests; r != NULL; r = r->next) {
        if (r->t->storage == t->storage) {
            return lam__error(LAM_ERR_STATE,
                              "%s on %s: Invalid state, the tensor is in an outstanding "
                              "non-blocking allreduce (lam_comm_wait for it first)",
                              fn, c->name);
        }
    }
    return LAM_OK;
}

lam_status lam_comm_barrier(lam_comm *c) {
    lam_status st = enter("lam_comm_barrier", c);
    if (st != LAM_OK) {
        return st;
    }
    uint64_t mark = lam__error_mark();
    st = comm_status(c->desc->barrier(c->impl), mark, c, "lam_comm_barrier", "barrier");
    lam__call_leave();
    return st;
}

lam_status lam_comm_broadcast(lam_comm *c, lam_tensor *t, int root) {
    const char *fn = "lam_comm_broadcast";
    lam_status st = enter(fn, c);
    if (st != LAM_OK) {
        return st;
    }
    st = check_tensor(fn, c, t, "tensor");
    if (st == LAM_OK && (root < 0 || root >= c->size)) {
        st = lam__error(LAM_ERR_INVALID_ARGUMENT,
                        "%s on %s: Invalid argument, root %d is not a rank (size %d)", fn, c->name,
                        root, c->size);
    }
    if (st == LAM_OK) {
        st = busy(fn, c, t);
    }
    void *data, *staged = NULL;
    if (st == LAM_OK) {
        st = host_data(fn, c, t, c->rank == root, &data, &staged);
    }
    if (st == LAM_OK) {
        uint64_t mark = lam__error_mark();
        st = c->desc->broadcast(c->impl, data, (size_t)t->numel, t->dtype, (int32_t)root);
        st = comm_status(st, mark, c, fn, "broadcast");
        st = write_back(fn, c, t, staged, st);
    }
    lam__call_leave();
    return st;
}

static lam_status check_op(const char *fn, const lam_comm *c, lam_comm_reduce op) {
    if (op != LAM_COMM_SUM && op != LAM_COMM_MAX && op != LAM_COMM_MIN) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "%s on %s: Invalid argument, reduction %d (use LAM_COMM_SUM, "
                          "LAM_COMM_MAX or LAM_COMM_MIN)",
                          fn, c->name, (int)op);
    }
    return LAM_OK;
}

lam_status lam_comm_allreduce_op(lam_comm *c, lam_tensor *t, lam_comm_reduce op) {
    const char *fn = "lam_comm_allreduce";
    lam_status st = enter(fn, c);
    if (st != LAM_OK) {
        return st;
    }
    st = check_tensor(fn, c, t, "tensor");
    if (st == LAM_OK) {
        st = check_op(fn, c, op);
    }
    if (st == LAM_OK) {
        st = busy(fn, c, t);
    }
    void *data, *staged = NULL;
    if (st == LAM_OK) {
        st = host_data(fn, c, t, true, &data, &staged);
    }
    if (st == LAM_OK) {
        uint64_t mark = lam__error_mark();
        st = c->desc->allreduce(c->impl, data, (size_t)t->numel, t->dtype, op);
        st = comm_status(st, mark, c, fn, "allreduce");
        st = write_back(fn, c, t, staged, st);
    }
    lam__call_leave();
    return st;
}

lam_status lam_comm_allreduce(lam_comm *c, lam_tensor *t) {
    return lam_comm_allreduce_op(c, t, LAM_COMM_SUM);
}

/* The communicator reduces t's device buffer itself (a NCCL communicator on its backend). */
static bool on_device(const lam_comm *c, const lam_tensor *t) {
    const lam_comm_desc *d = c->desc;
    if (d->supports_backend == NULL || d->allreduce_device == NULL) {
        return false;
    }
    return d->supports_backend(c->impl, t->storage->ctx->backend->desc.name) != 0;
}

lam_status lam_comm_allreduce_start(lam_comm *c, lam_tensor *t, lam_comm_request **out) {
    const char *fn = "lam_comm_allreduce_start";
    if (out == NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "%s: Invalid argument, out is NULL", fn);
    }
    *out = NULL;
    lam_status st = enter(fn, c);
    if (st != LAM_OK) {
        return st;
    }
    st = check_tensor(fn, c, t, "tensor");
    if (st == LAM_OK) {
        st = busy(fn, c, t);
    }
    lam_comm_request *r = st == LAM_OK ? calloc(1, sizeof *r) : NULL;
    if (st == LAM_OK && r == NULL) {
        st = lam__error(LAM_ERR_OUT_OF_MEMORY, "%s on %s: Out of memory", fn, c->name);
    }
    if (st == LAM_OK && on_device(c, t)) {
        lam_ctx *ctx = t->storage->ctx;
        size_t es = lam_dtype_size(t->dtype);
        lam_tensor_view v;
        memset(&v, 0, sizeof v);
        v.struct_size = (uint32_t)sizeof v;
        v.dtype = t->dtype;
        v.buffer = t->storage->buf;
        v.offset = t->offset * es;
        v.ndim = 1;
        v.dims[0] = t->numel;
        v.strides[0] = (int64_t)es;
        uint64_t mark = lam__error_mark();
        st = c->desc->allreduce_device(c->impl, ctx->backend->desc.name, ctx->dev, &v, LAM_COMM_SUM,
                                       &r->impl);
        st = comm_status(st, mark, c, fn, "allreduce_device");
    } else if (st == LAM_OK) {
        void *data;
        st = host_data(fn, c, t, true, &data, &r->staged);
        if (st == LAM_OK) {
            uint64_t mark = lam__error_mark();
            st = c->desc->allreduce_start(c->impl, data, (size_t)t->numel, t->dtype, LAM_COMM_SUM,
                                          &r->impl);
            st = comm_status(st, mark, c, fn, "allreduce_start");
        }
    }
    lam__call_leave();
    if (st != LAM_OK) {
        if (r != NULL) {
            free(r->staged);
        }
        free(r);
        return st;
    }
    r->comm = c;
    r->t = lam_tensor_retain(t);
    r->bytes = tensor_bytes(t);
    r->next = c->requests;
    c->requests = r;
    *out = r;
    return LAM_OK;
}

lam_status lam_comm_test(lam_comm_request *r, int *done) {
    const char *fn = "lam_comm_test";
    if (r == NULL || done == NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "%s: Invalid argument, %s is NULL", fn,
                          r == NULL ? "request" : "done");
    }
    *done = 0;
    lam_comm *c = r->comm;
    if (c == NULL) {
        *done = 1; /* ended by lam_shutdown; lam_comm_wait says so */
        return LAM_OK;
    }
    if (c->desc->test == NULL) {
        return LAM_OK;
    }
    lam_status st = lam__call_enter(fn);
    if (st != LAM_OK) {
        return st;
    }
    int32_t d = 0;
    uint64_t mark = lam__error_mark();
    st = comm_status(c->desc->test(c->impl, r->impl, &d), mark, c, fn, "test");
    lam__call_leave();
    *done = st == LAM_OK && d != 0;
    return st;
}

static void unlink_request(lam_comm *c, lam_comm_request *r) {
    for (lam_comm_request **p = &c->requests; *p != NULL; p = &(*p)->next) {
        if (*p == r) {
            *p = r->next;
            return;
        }
    }
}

/* Completes a request (the plugin's wait, then the write-back) and releases its tensor. */
static lam_status finish(const char *fn, lam_comm *c, lam_comm_request *r) {
    uint64_t mark = lam__error_mark();
    lam_status st = comm_status(c->desc->wait(c->impl, r->impl), mark, c, fn, "wait");
    st = write_back(fn, c, r->t, r->staged, st);
    r->staged = NULL;
    lam_tensor_release(r->t);
    r->t = NULL;
    unlink_request(c, r);
    r->comm = NULL;
    return st;
}

lam_status lam_comm_wait(lam_comm_request *r) {
    const char *fn = "lam_comm_wait";
    if (r == NULL) {
        return LAM_OK;
    }
    lam_comm *c = r->comm;
    if (c == NULL) {
        free(r);
        return lam__error(LAM_ERR_STATE,
                          "%s: Runtime shut down, lam_shutdown ended the request (its tensor "
                          "holds the result if the reduction completed)",
                          fn);
    }
    lam_status st = lam__call_enter(fn);
    if (st != LAM_OK) {
        return st;
    }
    st = finish(fn, c, r);
    lam__call_leave();
    free(r);
    return st;
}

lam_status lam_comm_allgather(lam_comm *c, const lam_tensor *in, lam_tensor *out) {
    const char *fn = "lam_comm_allgather";
    lam_status st = enter(fn, c);
    if (st != LAM_OK) {
        return st;
    }
    st = check_tensor(fn, c, in, "in");
    if (st == LAM_OK) {
        st = check_tensor(fn, c, out, "out");
    }
    if (st == LAM_OK && (in == out || in->storage == out->storage)) {
        st = lam__error(LAM_ERR_INVALID_ARGUMENT,
                        "%s on %s: Invalid argument, in and out share their storage", fn, c->name);
    }
    if (st == LAM_OK && in->dtype != out->dtype) {
        st = lam__error(LAM_ERR_DTYPE, "%s on %s: Dtype mismatch, in is %s, out is %s", fn, c->name,
                        lam__dtype_name(in->dtype), lam__dtype_name(out->dtype));
    }
    if (st == LAM_OK && out->numel != in->numel * c->size) {
        char a[128], b[128];
        st = lam__error(LAM_ERR_SHAPE,
                        "%s on %s: Size mismatch, out %s has %lld elements, %d ranks times in %s "
                        "need %lld",
                        fn, c->name, lam_shape_format(&out->shape, b, sizeof b),
                        (long long)out->numel, c->size, lam_shape_format(&in->shape, a, sizeof a),
                        (long long)(in->numel * c->size));
    }
    if (st == LAM_OK) {
        st = busy(fn, c, in);
    }
    if (st == LAM_OK) {
        st = busy(fn, c, out);
    }
    void *send = NULL, *recv = NULL, *send_staged = NULL, *recv_staged = NULL;
    if (st == LAM_OK) {
        st = host_data(fn, c, in, true, &send, &send_staged);
    }
    if (st == LAM_OK) {
        st = host_data(fn, c, out, false, &recv, &recv_staged);
    }
    if (st == LAM_OK) {
        uint64_t mark = lam__error_mark();
        st = c->desc->allgather(c->impl, send, recv, (size_t)in->numel, in->dtype);
        st = comm_status(st, mark, c, fn, "allgather");
        st = write_back(fn, c, out, recv_staged, st);
        recv_staged = NULL;
    }
    free(send_staged);
    free(recv_staged);
    lam__call_leave();
    return st;
}

void lam__comms_close_all(void) {
    pthread_mutex_lock(&open_lock);
    lam_comm *list = open_list;
    open_list = NULL;
    pthread_mutex_unlock(&open_lock);
    for (lam_comm *c = list, *next; c != NULL; c = next) {
        next = c->next;
        while (c->requests != NULL) {
            (void)finish("lam_shutdown", c, c->requests);
        }
        (void)c->desc->close(c->impl);
        c->desc = NULL;
        c->impl = NULL;
        c->prev = c->next = NULL;
    }
}
