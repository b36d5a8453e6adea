/*
 * Building blocks for the deliberately broken plugins in tests/abi: a valid layer descriptor
 * and a valid backend descriptor (whose backend has no device), each plugin breaking one rule.
 * The callbacks are never run by the registry tests, except probe.
 */
#ifndef LAMINA_TEST_ABI_FIXTURE_H
#define LAMINA_TEST_ABI_FIXTURE_H

#include "lamina/plugin.h"

#include <string.h>

static const lam_host_api *fx_host;

static lam_status fx_create(void *user, lam_layer *layer, const lam_attrs *attrs, void **state) {
    (void)user, (void)layer, (void)attrs;
    *state = NULL;
    return LAM_OK;
}
static void fx_destroy(void *state) {
    (void)state;
}
static lam_status fx_infer(void *state, lam_layer *layer, uint32_t n,
                           const lam_tensor_info *const *in, uint32_t n_out,
                           lam_tensor_info *const *out) {
    (void)state, (void)layer, (void)n, (void)n_out;
    out[0]->dtype = in[0]->dtype;
    out[0]->ndim = in[0]->ndim;
    memcpy(out[0]->dims, in[0]->dims, sizeof out[0]->dims);
    return LAM_OK;
}
static lam_status fx_forward(void *state, lam_layer *layer, uint32_t n, lam_tensor *const *in,
                             uint32_t n_out, lam_tensor **out) {
    (void)state, (void)layer, (void)n, (void)n_out;
    out[0] = fx_host->tensor_retain(in[0]);
    return LAM_OK;
}

static lam_layer_desc fx_layer(const char *name) {
    lam_layer_desc d;
    memset(&d, 0, sizeof d);
    d.struct_size = (uint32_t)sizeof d;
    d.abi_version = LAM_ABI_VERSION;
    d.abi_fingerprint = LAM_ABI_FINGERPRINT;
    d.name = name;
    d.version = "0.0.1";
    d.doc = "test fixture layer";
    d.create = fx_create;
    d.destroy = fx_destroy;
    d.infer_shape = fx_infer;
    d.forward = fx_forward;
    return d;
}

static lam_status fx_probe(void *user, uint32_t *n, char *why, size_t cap) {
    (void)user;
    *n = 0;
    strncpy(why, "fixture backend has no device by design", cap - 1);
    why[cap - 1] = '\0';
    return LAM_OK;
}
static lam_status fx_info(void *user, uint32_t i, lam_device_info *info) {
    (void)user, (void)i, (void)info;
    return LAM_ERR_NOT_FOUND;
}
static lam_status fx_open(void *user, uint32_t i, void **dev) {
    (void)user, (void)i, (void)dev;
    return LAM_ERR_NOT_FOUND;
}
static void fx_close(void *dev) {
    (void)dev;
}
static lam_status fx_alloc(void *dev, size_t bytes, void **buf) {
    (void)dev, (void)bytes, (void)buf;
    return LAM_ERR_OUT_OF_MEMORY;
}
static void fx_free(void *dev, void *buf) {
    (void)dev, (void)buf;
}
static lam_status fx_write(void *dev, void *buf, size_t off, const void *src, size_t n) {
    (void)dev, (void)buf, (void)off, (void)src, (void)n;
    return LAM_ERR_BACKEND;
}
static lam_status fx_read(void *dev, const void *buf, size_t off, void *dst, size_t n) {
    (void)dev, (void)buf, (void)off, (void)dst, (void)n;
    return LAM_ERR_BACKEND;
}
static lam_status fx_copy(void *dev, void *dst, size_t doff, const void *src, size_t soff,
                          size_t n) {
    (void)dev, (void)dst, (void)doff, (void)src, (void)soff, (void)n;
    return LAM_ERR_BACKEND;
}
static int32_t fx_supports(void *dev, const lam_op_call *call) {
    (void)dev, (void)call;
    return 0;
}
static lam_status fx_caps(void *dev, lam_backend_caps *caps) {
    (void)dev;
    caps->dtypes = 1u << LAM_DTYPE_F32;
    return LAM_OK;
}
static lam_status fx_execute(void *dev, const lam_op_call *call) {
    (void)dev, (void)call;
    return LAM_ERR_UNSUPPORTED;
}
static lam_status fx_sync(void *dev) {
    (void)dev;
    return LAM_OK;
}

static lam_backend_desc fx_backend(const char *name) {
    lam_backend_desc d;
    memset(&d, 0, sizeof d);
    d.struct_size = (uint32_t)sizeof d;
    d.abi_version = LAM_ABI_VERSION;
    d.abi_fingerprint = LAM_ABI_FINGERPRINT;
    d.name = name;
    d.version = "0.0.1";
    d.doc = "test fixture backend";
    d.probe = fx_probe;
    d.device_info = fx_info;
    d.device_open = fx_open;
    d.device_close = fx_close;
    d.device_caps = fx_caps;
    d.buffer_alloc = fx_alloc;
    d.buffer_free = fx_free;
    d.buffer_write = fx_write;
    d.buffer_read = fx_read;
    d.buffer_copy = fx_copy;
    d.supports = fx_supports;
    d.execute = fx_execute;
    d.synchronize = fx_sync;
    return d;
}

#endif
