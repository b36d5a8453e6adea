/*
 * cpu_backend.c - the CPU backend plugin: entry point, probe, device description and buffers.
 *
 * Buffers are plain host memory (cpu_buffer.c), execution is synchronous, and the one device
 * is the whole machine. GEMM goes to OpenBLAS, which the plugin loads itself on the first GEMM
 * that needs it, or when its device is described (cpu_blas.c: the probe checks what it can
 * without loading it); every other op is a loop (cpu_ops.c, cpu_reduce.c, cpu_nn.c, cpu_index.c,
 * cpu_random.c). native_handle answers LAM_ERR_NOT_FOUND for every name: the CPU has no
 * native objects beyond host memory, which buffer_host_ptr gives.
 */
#define _GNU_SOURCE /* sysconf(_SC_NPROCESSORS_ONLN), posix_memalign */

#include "cpu_internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CPU_PLUGIN_VERSION "2.0.0"

/* Both instances are constant but for isa, which pick_isa sets once for both. */
static cpu_device g_device = {CPU_DEVICE_MAGIC, CPU_ISA_BASE, 0};
static cpu_device g_device_validated = {CPU_DEVICE_MAGIC, CPU_ISA_BASE, 1};
static pthread_once_t g_isa_once = PTHREAD_ONCE_INIT;

static void pick_isa(void) {
    g_device.isa = cpu_gemm_pick_isa();
    g_device_validated.isa = g_device.isa;
}

/* LAMINA_VALIDATION set and not "0": the device opened now validates every call in full. */
static int validation_wanted(void) {
    const char *v = getenv("LAMINA_VALIDATION");
    return v != NULL && *v != '\0' && strcmp(v, "0") != 0;
}

static void copy_str(char *dst, size_t cap, const char *src) {
    if (cap == 0) {
        return;
    }
    snprintf(dst, cap, "%s", src);
}

/* ---- device description ---- */

/* "model name" from /proc/cpuinfo, or "cpu". */
static void cpu_model_name(char *buf, size_t cap) {
    copy_str(buf, cap, "cpu");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f == NULL) {
        return;
    }
    char line[512];
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "model name", 10) != 0) {
            continue;
        }
        const char *colon = strchr(line, ':');
        if (colon == NULL) {
            continue;
        }
        const char *v = colon + 1;
        while (*v == ' ' || *v == '\t') {
            v++;
        }
        size_t len = strcspn(v, "\r\n");
        while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t')) {
            len--;
        }
        if (len > 0) {
            snprintf(buf, cap, "%.*s", (int)len, v);
        }
        break;
    }
    fclose(f);
}

static uint32_t cpu_online(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (uint32_t)n : 0;
}

/* True when field [off, off + size) lies inside a struct of struct_size bytes. */
#define FITS(info, field)                                                                          \
    (offsetof(lam_device_info, field) + sizeof((info)->field) <= (size_t)(info)->struct_size)
#define CAPS_FITS(caps, field)                                                                     \
    (offsetof(lam_backend_caps, field) + sizeof((caps)->field) <= (size_t)(caps)->struct_size)

static lam_status backend_probe(void *user, uint32_t *n_devices, char *why, size_t why_cap) {
    (void)user;
    if (n_devices == NULL) {
        return cpu_error(LAM_ERR_INVALID_ARGUMENT, "cpu: Invalid argument, n_devices is NULL");
    }
    char reason[512];
    if (cpu_blas_check(reason, sizeof reason) != LAM_OK) {
        *n_devices = 0;
        if (why != NULL) {
            copy_str(why, why_cap, reason);
        }
        return LAM_OK;
    }
    *n_devices = 1;
    if (why != NULL) {
        copy_str(why, why_cap, "");
    }
    return LAM_OK;
}

/* The device index is 0 and OpenBLAS is usable: loaded when `load`, else checked (probe). */
static lam_status check_index(uint32_t index, int load) {
    if (index != 0) {
        return cpu_error(LAM_ERR_NOT_FOUND, "cpu: Device not found, index %u (there is 1 device)",
                         (unsigned)index);
    }
    char reason[512];
    if ((load ? cpu_blas_load(reason, sizeof reason) : cpu_blas_check(reason, sizeof reason)) !=
        LAM_OK) {
        return cpu_error(LAM_ERR_DEVICE_UNAVAILABLE, "cpu: Device unavailable, %s", reason);
    }
    return LAM_OK;
}

static lam_status backend_device_info(void *user, uint32_t index, lam_device_info *info) {
    (void)user;
    if (info == NULL || info->struct_size < 2 * sizeof(uint32_t)) {
        return cpu_error(LAM_ERR_INVALID_ARGUMENT,
                         "cpu: Invalid argument, device_info needs a lam_device_info with "
                         "struct_size set");
    }
    lam_status st = check_index(index, 1); /* the details name OpenBLAS's kernel */
    if (st != LAM_OK) {
        return st;
    }
    if (FITS(info, kind)) {
        info->kind = LAM_DEVICE_CPU;
    }
    if (FITS(info, memory_bytes)) {
        info->memory_bytes = cpu_memory_bytes();
    }
    if (FITS(info, compute_units)) {
        info->compute_units = cpu_online();
    }
    if (FITS(info, name)) {
        cpu_model_name(info->name, sizeof info->name);
    }
    char driver[128];
    char details[400];
    cpu_blas_describe(driver, sizeof driver, details, sizeof details);
    pthread_once(&g_isa_once, pick_isa);
    if (FITS(info, driver)) {
        copy_str(info->driver, sizeof info->driver, driver);
    }
    if (FITS(info, details)) {
        snprintf(info->details, sizeof info->details,
                 "%s; small products (up to %d multiply-adds) in %s loops; other ops "
                 "single-threaded",
                 details, CPU_SMALL_GEMM_MACS, cpu_isa_name(g_device.isa));
    }
    return LAM_OK;
}

static lam_status backend_device_open(void *user, uint32_t index, void **dev) {
    (void)user;
    if (dev == NULL) {
        return cpu_error(LAM_ERR_INVALID_ARGUMENT, "cpu: Invalid argument, dev is NULL");
    }
    *dev = NULL;
    lam_status st = check_index(index, 0); /* OpenBLAS waits for the first GEMM */
    if (st != LAM_OK) {
        return st;
    }
    pthread_once(&g_isa_once, pick_isa);
    *dev = validation_wanted() ? &g_device_validated : &g_device;
    return LAM_OK;
}

static void backend_device_close(void *dev) {
    (void)dev; /* the device is static; nothing to release */
}

/* ---- capabilities and native handles ---- */

static lam_status backend_device_caps(void *dev, lam_backend_caps *caps) {
    lam_status st = cpu_check_dev(dev);
    if (st != LAM_OK) {
        return st;
    }
    if (caps == NULL || caps->struct_size < 2 * sizeof(uint32_t)) {
        return cpu_error(LAM_ERR_INVALID_ARGUMENT,
                         "cpu: Invalid argument, device_caps needs a lam_backend_caps with "
                         "struct_size set");
    }
    if (CAPS_FITS(caps, flags)) {
        caps->flags = LAM_BACKEND_HOST_VISIBLE | LAM_BACKEND_HOST_PTR; /* synchronous */
    }
    if (CAPS_FITS(caps, max_buffer_bytes)) {
        caps->max_buffer_bytes = 0; /* host memory: no limit but the machine's */
    }
    if (CAPS_FITS(caps, memory_budget)) {
        caps->memory_budget = cpu_memory_bytes();
    }
    if (CAPS_FITS(caps, buffer_alignment)) {
        caps->buffer_alignment = CPU_HOST_PTR_ALIGN;
    }
    if (CAPS_FITS(caps, dtypes)) {
        caps->dtypes = (1u << LAM_DTYPE_F32) | (1u << LAM_DTYPE_I32) | (1u << LAM_DTYPE_I64) |
                       (1u << LAM_DTYPE_U8);
    }
    return LAM_OK;
}

/* The CPU has no native objects beyond host memory (buffer_host_ptr gives that). */
static lam_status backend_native_handle(void *dev, void *buffer, const char *name, void **handle) {
    (void)buffer;
    if (handle != NULL) {
        *handle = NULL;
    }
    lam_status st = cpu_check_dev(dev);
    if (st != LAM_OK) {
        return st;
    }
    return cpu_error(LAM_ERR_NOT_FOUND,
                     "cpu: Handle not found, '%s'; the cpu backend has no native handles (its "
                     "buffers are host memory: buffer_host_ptr)",
                     name != NULL ? name : "(null)");
}

static lam_status backend_synchronize(void *dev) {
    return cpu_check_dev(dev); /* execution is synchronous: nothing is ever pending */
}

static void backend_shutdown(void *user) {
    (void)user;
    cpu_dnnl_fini();
    cpu_pool_fini();
    cpu_blas_unload();
    cpu_diag_fini();
}

static const lam_backend_desc cpu_backend_desc = {
    LAM_BACKEND_DESC_HEADER,
    .name = "cpu",
    .version = CPU_PLUGIN_VERSION,
    .doc = "CPU backend: OpenBLAS sgemm and vectorized loops; buffers are host memory",
    .user = NULL,
    .probe = backend_probe,
    .device_info = backend_device_info,
    .device_open = backend_device_open,
    .device_close = backend_device_close,
    .device_caps = backend_device_caps,
    .buffer_alloc = cpu_buffer_alloc,
    .buffer_free = cpu_buffer_free,
    .buffer_write = cpu_buffer_write,
    .buffer_read = cpu_buffer_read,
    .buffer_copy = cpu_buffer_copy,
    .supports = cpu_supports,
    .execute = cpu_execute,
    .synchronize = backend_synchronize,
    .shutdown = backend_shutdown,
    .buffer_host_ptr = cpu_buffer_host_ptr,
    .buffer_from_host_ptr = cpu_buffer_from_host_ptr,
    .native_handle = backend_native_handle,
    .run_kernel = cpu_run_kernel,
};

LAM_PLUGIN_ENTRY {
    lam_status st = lam_plugin_check_host(host);
    if (st != LAM_OK) {
        return st;
    }
    if (host->register_backend == NULL) {
        return host->set_error(LAM_ERR_ABI, "cpu: ABI mismatch, host has no register_backend");
    }
    cpu_host = host;
    return host->register_backend(plugin, &cpu_backend_desc);
}
