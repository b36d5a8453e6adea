/*
 * A backend that lies: its one device's name, driver and details fill their arrays with no
 * terminating NUL, and execute answers `neg` with an error but no message, `abs` with
 * INT_MIN and every other op with 12345. Buffers are plain host memory, so tensors can be made.
 */
#include "fixture.h"

#include <limits.h>
#include <stdlib.h>

static lam_status lb_probe(void *user, uint32_t *n, char *why, size_t cap) {
    (void)user, (void)why, (void)cap;
    *n = 1;
    return LAM_OK;
}

static lam_status lb_info(void *user, uint32_t i, lam_device_info *info) {
    (void)user, (void)i;
    info->kind = LAM_DEVICE_OTHER;
    memset(info->name, 'A', sizeof info->name);
    memset(info->driver, 'B', sizeof info->driver);
    memset(info->details, 'C', sizeof info->details);
    return LAM_OK;
}

static lam_status lb_open(void *user, uint32_t i, void **dev) {
    (void)user, (void)i;
    *dev = &fx_host; /* any non-NULL handle */
    return LAM_OK;
}

static lam_status lb_alloc(void *dev, size_t bytes, void **buf) {
    (void)dev;
    *buf = malloc(bytes ? bytes : 1);
    return *buf != NULL ? LAM_OK : fx_host->set_error(LAM_ERR_OUT_OF_MEMORY, "liar: Out of memory");
}

static void lb_free(void *dev, void *buf) {
    (void)dev;
    free(buf);
}

static lam_status lb_write(void *dev, void *buf, size_t off, const void *src, size_t n) {
    (void)dev;
    memcpy((char *)buf + off, src, n);
    return LAM_OK;
}

static lam_status lb_read(void *dev, const void *buf, size_t off, void *dst, size_t n) {
    (void)dev;
    memcpy(dst, (const char *)buf + off, n);
    return LAM_OK;
}

static lam_status lb_copy(void *dev, void *dst, size_t doff, const void *src, size_t soff,
                          size_t n) {
    (void)dev;
    memcpy((char *)dst + doff, (const char *)src + soff, n);
    return LAM_OK;
}

static int32_t lb_supports(void *dev, const lam_op_call *call) {
    (void)dev, (void)call;
    return 1;
}

static lam_status lb_execute(void *dev, const lam_op_call *call) {
    (void)dev;
    switch (call->op) {
    case LAM_OP_NEG:
        return LAM_ERR_BACKEND;
    case LAM_OP_ABS:
        return (lam_status)INT_MIN;
    default:
        return (lam_status)12345;
    }
}

LAM_PLUGIN_ENTRY {
    fx_host = host;
    lam_status st = lam_plugin_check_host(host);
    if (st != LAM_OK) {
        return st;
    }
    lam_backend_desc d = fx_backend("liar");
    d.probe = lb_probe;
    d.device_info = lb_info;
    d.device_open = lb_open;
    d.buffer_alloc = lb_alloc;
    d.buffer_free = lb_free;
    d.buffer_write = lb_write;
    d.buffer_read = lb_read;
    d.buffer_copy = lb_copy;
    d.supports = lb_supports;
    d.execute = lb_execute;
    return host->register_backend(plugin, &d);
}
