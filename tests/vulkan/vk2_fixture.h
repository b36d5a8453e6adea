/*
 * vk2_fixture.h - loads lamina_backend_vulkan.so directly (dlopen) with a minimal fake host
 * table, so the backend's ABI 2.0 callbacks are tested without the core: register_backend
 * keeps the descriptor, set_error / set_error_fmt keep the last message, alloc / free are
 * malloc / free. Helpers make buffers and byte-strided views and run op calls.
 */
#ifndef LAMINA_TEST_VK2_FIXTURE_H
#define LAMINA_TEST_VK2_FIXTURE_H

#include <criterion/criterion.h>

#include <dlfcn.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lamina/plugin.h"

static char vk2_msg[2048];
static lam_status vk2_msg_status;
static const lam_backend_desc *vk2_desc;
static void *vk2_so;
static void *vk2_dev;

static lam_status vk2_set_error_fmt(lam_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(vk2_msg, sizeof vk2_msg, fmt, ap);
    va_end(ap);
    vk2_msg_status = st;
    return st;
}

static lam_status vk2_set_error(lam_status st, const char *msg) {
    snprintf(vk2_msg, sizeof vk2_msg, "%s", msg);
    vk2_msg_status = st;
    return st;
}

static void vk2_log(lam_log_level level, const char *msg) {
    (void)level;
    (void)msg;
}

static lam_status vk2_register_backend(lam_plugin *plugin, const lam_backend_desc *desc) {
    (void)plugin;
    vk2_desc = desc;
    return LAM_OK;
}

static void *vk2_alloc(size_t bytes) {
    return malloc(bytes);
}

static void vk2_free(void *p) {
    free(p);
}

static lam_host_api vk2_host;

/* Buffers a test made, freed at vk2_close (a test that fails midway leaks nothing). */
static void *vk2_bufs[256];
static size_t vk2_n_bufs;

static void vk2_track(void *b) {
    cr_assert_lt(vk2_n_bufs, sizeof vk2_bufs / sizeof vk2_bufs[0]);
    vk2_bufs[vk2_n_bufs++] = b;
}

/* Frees a buffer before the end of the test. */
static void vk2_release(void *b) {
    for (size_t i = 0; i < vk2_n_bufs; i++) {
        if (vk2_bufs[i] == b) {
            vk2_bufs[i] = NULL;
        }
    }
    vk2_desc->buffer_free(vk2_dev, b);
}

/* Loads the plugin and opens device 0, or skips the test saying why there is none. */
static void vk2_open(void) {
    char path[1024];
    snprintf(path, sizeof path, "%s/lib/lamina/plugins/lamina_backend_vulkan.so",
             LAMINA_TEST_BINARY_DIR);
    vk2_so = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    cr_assert_not_null(vk2_so, "dlopen %s: %s", path, dlerror());
    lam_plugin_entry_fn entry = (lam_plugin_entry_fn)dlsym(vk2_so, LAM_PLUGIN_ENTRY_NAME);
    cr_assert_not_null(entry);
    memset(&vk2_host, 0, sizeof vk2_host);
    vk2_host.struct_size = (uint32_t)sizeof vk2_host;
    vk2_host.abi_version = LAM_ABI_VERSION;
    vk2_host.abi_fingerprint = LAM_ABI_FINGERPRINT;
    vk2_host.set_error_fmt = vk2_set_error_fmt;
    vk2_host.set_error = vk2_set_error;
    vk2_host.log = vk2_log;
    vk2_host.register_backend = vk2_register_backend;
    vk2_host.alloc = vk2_alloc;
    vk2_host.free = vk2_free;
    cr_assert_eq(entry(&vk2_host, NULL), LAM_OK, "entry: %s", vk2_msg);
    cr_assert_not_null(vk2_desc);
    uint32_t n = 0;
    char why[512] = "";
    cr_assert_eq(vk2_desc->probe(vk2_desc->user, &n, why, sizeof why), LAM_OK);
    if (n == 0) {
        cr_skip_test("no Vulkan device: %s", why);
    }
    cr_assert_eq(vk2_desc->device_open(vk2_desc->user, 0, &vk2_dev), LAM_OK, "open: %s", vk2_msg);
}

static void vk2_close(void) {
    for (size_t i = 0; i < vk2_n_bufs && vk2_dev != NULL; i++) {
        if (vk2_bufs[i] != NULL) {
            vk2_desc->buffer_free(vk2_dev, vk2_bufs[i]);
        }
    }
    vk2_n_bufs = 0;
    if (vk2_dev != NULL) {
        vk2_desc->device_close(vk2_dev);
        vk2_dev = NULL;
    }
    if (vk2_desc != NULL && vk2_desc->shutdown != NULL) {
        vk2_desc->shutdown(vk2_desc->user);
    }
    vk2_desc = NULL;
    if (vk2_so != NULL) {
        dlclose(vk2_so);
        vk2_so = NULL;
    }
}

/* A device buffer holding `bytes` bytes of src (zeros when src is NULL). */
static void *vk2_buffer(const void *src, size_t bytes) {
    void *b = NULL;
    cr_assert_eq(vk2_desc->buffer_alloc(vk2_dev, bytes, &b), LAM_OK, "alloc: %s", vk2_msg);
    vk2_track(b);
    void *zeros = NULL;
    if (src == NULL) {
        zeros = calloc(1, bytes + 1);
        src = zeros;
    }
    cr_assert_eq(vk2_desc->buffer_write(vk2_dev, b, 0, src, bytes), LAM_OK, "write: %s", vk2_msg);
    free(zeros);
    return b;
}

static void vk2_read(void *buf, size_t offset, void *dst, size_t bytes) {
    cr_assert_eq(vk2_desc->buffer_read(vk2_dev, buf, offset, dst, bytes), LAM_OK, "read: %s",
                 vk2_msg);
}

/* A contiguous view of dims over buf at byte offset `offset`. */
static lam_tensor_view vk2_view(void *buf, lam_dtype dt, uint64_t offset, uint32_t nd,
                                const int64_t *dims) {
    lam_tensor_view v;
    memset(&v, 0, sizeof v);
    v.struct_size = (uint32_t)sizeof v;
    v.dtype = dt;
    v.buffer = buf;
    v.offset = offset;
    v.ndim = nd;
    int64_t st = (int64_t)lam_dtype_size(dt);
    for (uint32_t i = nd; i-- > 0;) {
        v.dims[i] = dims[i];
        v.strides[i] = st;
        st *= dims[i];
    }
    return v;
}

/* An op call over view pointers. */
static lam_op_call vk2_call(lam_op op, uint32_t n_in, const lam_tensor_view *const *in,
                            uint32_t n_out, const lam_tensor_view *const *out, const void *params) {
    lam_op_call c;
    memset(&c, 0, sizeof c);
    c.struct_size = (uint32_t)sizeof c;
    c.abi_version = LAM_ABI_VERSION;
    c.op = op;
    c.n_inputs = n_in;
    c.inputs = in;
    c.n_outputs = n_out;
    c.outputs = out;
    c.params = params;
    return c;
}

/* supports says yes and execute succeeds. */
static void vk2_run(const lam_op_call *c) {
    cr_assert_eq(vk2_desc->supports(vk2_dev, c), 1, "supports %s said no", lam_op_name(c->op));
    lam_status st = vk2_desc->execute(vk2_dev, c);
    cr_assert_eq(st, LAM_OK, "%s: %s", lam_op_name(c->op), vk2_msg);
}

static void vk2_expect_floats(const float *got, const float *want, size_t n, float tol) {
    for (size_t i = 0; i < n; i++) {
        if (want[i] != want[i]) {
            cr_assert(got[i] != got[i], "element %zu: got %g, want NaN", i, (double)got[i]);
        } else {
            float d = got[i] - want[i];
            cr_assert(d <= tol && d >= -tol, "element %zu: got %.9g, want %.9g", i, (double)got[i],
                      (double)want[i]);
        }
    }
}

#define VK2_NDIMS(...) ((uint32_t)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)))
#define VK2_DIMS(...)                                                                              \
    VK2_NDIMS(__VA_ARGS__), (const int64_t[]) {                                                    \
        __VA_ARGS__                                                                                \
    }

#endif /* LAMINA_TEST_VK2_FIXTURE_H */
