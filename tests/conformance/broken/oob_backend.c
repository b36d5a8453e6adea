/*
 * The "oob" backend: host-memory buffers and four element-wise ops (fill, copy, add, mul),
 * correct except that add writes one element past the end of its output: the guard elements
 * of the backend op checks must catch it.
 */
#include "lamina/plugin.h"

#include <stdlib.h>
#include <string.h>

static const lam_host_api *g_host;

typedef struct oob_buffer {
    size_t bytes;
    float data[];
} oob_buffer;

static int g_dev; /* the one device's handle points here */

static lam_status oob_probe(void *user, uint32_t *n, char *why, size_t cap) {
    (void)user;
    (void)why;
    (void)cap;
    *n = 1;
    return LAM_OK;
}

#define FITS(info, field)                                                                          \
    (offsetof(lam_device_info, field) + sizeof((info)->field) <= (size_t)(info)->struct_size)

static lam_status oob_info(void *user, uint32_t index, lam_device_info *info) {
    (void)user;
    if (index != 0) {
        return lam_plugin_error(g_host, LAM_ERR_NOT_FOUND, "oob: Not found, device %u", index);
    }
    if (FITS(info, kind)) {
        info->kind = LAM_DEVICE_CPU;
    }
    if (FITS(info, name)) {
        strcpy(info->name, "oob test device");
    }
    if (FITS(info, driver)) {
        strcpy(info->driver, "none");
    }
    if (FITS(info, details)) {
        info->details[0] = '\0';
    }
    return LAM_OK;
}

static lam_status oob_open(void *user, uint32_t index, void **dev) {
    (void)user;
    (void)index;
    *dev = &g_dev;
    return LAM_OK;
}

static void oob_close(void *dev) {
    (void)dev;
}

static lam_status oob_alloc(void *dev, size_t bytes, void **buffer) {
    (void)dev;
    oob_buffer *b = calloc(1, sizeof *b + bytes);
    if (b == NULL) {
        return lam_plugin_error(g_host, LAM_ERR_OUT_OF_MEMORY, "oob: Out of memory, %zu bytes",
                                bytes);
    }
    b->bytes = bytes;
    *buffer = b;
    return LAM_OK;
}

static void oob_free(void *dev, void *buffer) {
    (void)dev;
    free(buffer);
}

static lam_status oob_write(void *dev, void *buffer, size_t off, const void *src, size_t n) {
    (void)dev;
    oob_buffer *b = buffer;
    if (off > b->bytes || n > b->bytes - off) {
        return lam_plugin_error(g_host, LAM_ERR_INVALID_ARGUMENT, "oob: Out of bounds write");
    }
    memcpy((char *)b->data + off, src, n);
    return LAM_OK;
}

static lam_status oob_read(void *dev, const void *buffer, size_t off, void *dst, size_t n) {
    (void)dev;
    const oob_buffer *b = buffer;
    if (off > b->bytes || n > b->bytes - off) {
        return lam_plugin_error(g_host, LAM_ERR_INVALID_ARGUMENT, "oob: Out of bounds read");
    }
    memcpy(dst, (const char *)b->data + off, n);
    return LAM_OK;
}

static lam_status oob_copy(void *dev, void *dst, size_t doff, const void *src, size_t soff,
                           size_t n) {
    (void)dev;
    oob_buffer *d = dst;
    const oob_buffer *s = src;
    if (doff > d->bytes || n > d->bytes - doff || soff > s->bytes || n > s->bytes - soff) {
        return lam_plugin_error(g_host, LAM_ERR_INVALID_ARGUMENT, "oob: Out of bounds copy");
    }
    memmove((char *)d->data + doff, (const char *)s->data + soff, n);
    return LAM_OK;
}

static int32_t oob_supports(void *dev, const lam_op_call *call) {
    (void)dev;
    const lam_op op = call->op;
    if (call->n_outputs != 1) {
        return 0;
    }
    for (uint32_t i = 0; i < call->n_inputs; i++) {
        if (call->inputs[i]->dtype != LAM_DTYPE_F32) {
            return 0;
        }
    }
    return call->outputs[0]->dtype == LAM_DTYPE_F32 &&
           (op == LAM_OP_FILL || op == LAM_OP_COPY || op == LAM_OP_ADD || op == LAM_OP_MUL);
}

static lam_status oob_caps(void *dev, lam_backend_caps *caps) {
    (void)dev;
    if (offsetof(lam_backend_caps, dtypes) + sizeof caps->dtypes <= caps->struct_size) {
        caps->dtypes = 1u << LAM_DTYPE_F32;
    }
    return LAM_OK;
}

/* Element i of a view, i counted in row-major order over its dims (offset and strides count
 * bytes). */
static float *at(const lam_tensor_view *v, int64_t i) {
    int64_t off = (int64_t)v->offset;
    for (int d = (int)v->ndim - 1; d >= 0; d--) {
        off += (i % v->dims[d]) * v->strides[d];
        i /= v->dims[d];
    }
    return (float *)(void *)((char *)((oob_buffer *)v->buffer)->data + off);
}

static lam_status oob_execute(void *dev, const lam_op_call *call) {
    (void)dev;
    const lam_tensor_view *o = call->outputs[0];
    const lam_scalar_params *sp = lam_op_params(call, lam_scalar_params);
    int64_t n = 1;
    for (uint32_t d = 0; d < o->ndim; d++) {
        n *= o->dims[d];
    }
    uint32_t need = call->op == LAM_OP_FILL ? 0 : call->op == LAM_OP_COPY ? 1 : 2;
    if (call->n_inputs != need) {
        return lam_plugin_error(g_host, LAM_ERR_INVALID_ARGUMENT,
                                "oob: Invalid argument, %u inputs", call->n_inputs);
    }
    for (int64_t i = 0; i < n; i++) {
        float *y = at(o, i);
        switch (call->op) {
        case LAM_OP_FILL:
            *y = sp != NULL ? (float)sp->a : 0.0f;
            break;
        case LAM_OP_COPY:
            *y = *at(call->inputs[0], i);
            break;
        case LAM_OP_ADD:
            *y = *at(call->inputs[0], i) + *at(call->inputs[1], i);
#ifndef SILENT_BACKEND
            if (i == n - 1) {
                y[1] = 0.0f; /* the defect: one element past the output */
            }
#endif
            break;
        case LAM_OP_MUL:
#ifdef SILENT_BACKEND
            return LAM_OK; /* the defect: success without writing the output */
#else
            *y = *at(call->inputs[0], i) * *at(call->inputs[1], i);
            break;
#endif
        default:
            return lam_plugin_error(g_host, LAM_ERR_UNSUPPORTED, "oob: Unsupported op %d",
                                    (int)call->op);
        }
    }
    return LAM_OK;
}

static lam_status oob_sync(void *dev) {
    (void)dev;
    return LAM_OK;
}

static const lam_backend_desc desc = {
    LAM_BACKEND_DESC_HEADER,
#ifdef SILENT_BACKEND
    .name = "silent",
    .doc = "a backend whose mul returns LAM_OK without writing its output (broken)",
#else
    .name = "oob",
    .doc = "a backend whose add writes past its output (broken)",
#endif
    .version = "0.0.1",
    .probe = oob_probe,
    .device_info = oob_info,
    .device_open = oob_open,
    .device_close = oob_close,
    .device_caps = oob_caps,
    .buffer_alloc = oob_alloc,
    .buffer_free = oob_free,
    .buffer_write = oob_write,
    .buffer_read = oob_read,
    .buffer_copy = oob_copy,
    .supports = oob_supports,
    .execute = oob_execute,
    .synchronize = oob_sync,
};

LAM_PLUGIN_ENTRY {
    lam_status st = lam_plugin_check_host(host);
    if (st != LAM_OK) {
        return st;
    }
    g_host = host;
    return g_host->register_backend(plugin, &desc);
}
