/*
 * cpu_backend.c - the CPU backend plugin: entry point, probe, device description and buffers.
 *
 * Buffers are plain host memory, execution is synchronous, and the one device is the whole
 * machine. GEMM goes to OpenBLAS, which the plugin loads itself at probe time (cpu_blas.c);
 * every other op is a loop in cpu_ops.c / cpu_reduce.c.
 */
#define _GNU_SOURCE /* sysconf(_SC_NPROCESSORS_ONLN), posix_memalign */

#include "cpu_internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CPU_PLUGIN_VERSION "1.0.0"

static cpu_device g_device = {CPU_DEVICE_MAGIC, CPU_ISA_BASE};
static pthread_once_t g_isa_once = PTHREAD_ONCE_INIT;

static void pick_isa(void) {
    g_device.isa = cpu_gemm_pick_isa();
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

/* MemTotal from /proc/meminfo, else physical pages times page size, else 0. */
static uint64_t cpu_memory_bytes(void) {
    FILE *f = fopen("/proc/meminfo", "r");
    if (f != NULL) {
        char line[256];
        while (fgets(line, sizeof line, f) != NULL) {
            unsigned long long kib;
            if (sscanf(line, "MemTotal: %llu kB", &kib) == 1) {
                fclose(f);
                return (uint64_t)kib * 1024u;
            }
        }
        fclose(f);
    }
    long pages = sysconf(_SC_PHYS_PAGES);
    long page = sysconf(_SC_PAGESIZE);
    if (pages > 0 && page > 0) {
        return (uint64_t)pages * (uint64_t)page;
    }
    return 0;
}

static uint32_t cpu_online(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (uint32_t)n : 0;
}

/* True when field [off, off + size) lies inside a struct of struct_size bytes. */
#define FITS(info, field)                                                                          \
    (offsetof(lam_device_info, field) + sizeof((info)->field) <= (size_t)(info)->struct_size)

static lam_status backend_probe(void *user, uint32_t *n_devices, char *why, size_t why_cap) {
    (void)user;
    if (n_devices == NULL) {
        return cpu_error(LAM_ERR_INVALID_ARGUMENT, "cpu: Invalid argument, n_devices is NULL");
    }
    char reason[512];
    if (cpu_blas_load(reason, sizeof reason) != LAM_OK) {
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

static lam_status check_index(uint32_t index) {
    if (index != 0) {
        return cpu_error(LAM_ERR_NOT_FOUND, "cpu: Device not found, index %u (there is 1 device)",
                         (unsigned)index);
    }
    char reason[512];
    if (cpu_blas_load(reason, sizeof reason) != LAM_OK) {
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
    lam_status st = check_index(index);
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
    lam_status st = check_index(index);
    if (st != LAM_OK) {
        return st;
    }
    pthread_once(&g_isa_once, pick_isa);
    *dev = &g_device;
    return LAM_OK;
}

static void backend_device_close(void *dev) {
    (void)dev; /* the device is static; nothing to release */
}

/* ---- buffers ---- */

static lam_status check_dev(const void *dev) {
    if (dev != (const void *)&g_device) {
        return cpu_error(LAM_ERR_INVALID_ARGUMENT, "cpu: Invalid argument, not a cpu device");
    }
    return LAM_OK;
}

static lam_status check_buffer(const void *buffer, const char *what) {
    if (buffer == NULL || ((const cpu_buffer *)buffer)->magic != CPU_BUFFER_MAGIC) {
        return cpu_error(LAM_ERR_INVALID_ARGUMENT,
                         "cpu: Invalid argument, %s is not a live cpu "
                         "buffer",
                         what);
    }
    return LAM_OK;
}

static lam_status check_range(const cpu_buffer *b, size_t offset, size_t bytes, const char *verb) {
    if (offset > b->bytes || bytes > b->bytes - offset) {
        return cpu_error(LAM_ERR_INVALID_ARGUMENT,
                         "cpu: Out of bounds, %s %zu bytes at offset %zu of a %zu-byte buffer",
                         verb, bytes, offset, b->bytes);
    }
    return LAM_OK;
}

static uint64_t g_memory_bytes;
static pthread_once_t g_memory_once = PTHREAD_ONCE_INIT;

static void read_memory(void) {
    g_memory_bytes = cpu_memory_bytes();
}

static lam_status backend_buffer_alloc(void *dev, size_t bytes, void **buffer) {
    lam_status st = check_dev(dev);
    if (st != LAM_OK) {
        return st;
    }
    if (buffer == NULL) {
        return cpu_error(LAM_ERR_INVALID_ARGUMENT, "cpu: Invalid argument, buffer is NULL");
    }
    *buffer = NULL;
    /*
     * A request beyond the machine's memory is refused up front: with overcommit it could
     * "succeed" and fail later, and sanitizer allocators abort on absurd sizes.
     */
    pthread_once(&g_memory_once, read_memory);
    if (g_memory_bytes > 0 && (uint64_t)bytes > g_memory_bytes) {
        return cpu_error(LAM_ERR_OUT_OF_MEMORY,
                         "cpu: Out of memory, allocating %zu bytes, more than the machine's %llu",
                         bytes, (unsigned long long)g_memory_bytes);
    }
    void *p = NULL;
    if (bytes > SIZE_MAX - CPU_ALIGN || posix_memalign(&p, CPU_ALIGN, CPU_ALIGN + bytes) != 0) {
        return cpu_error(LAM_ERR_OUT_OF_MEMORY, "cpu: Out of memory, allocating %zu bytes", bytes);
    }
    cpu_buffer *b = p;
    b->magic = CPU_BUFFER_MAGIC;
    b->bytes = bytes;
    *buffer = b;
    return LAM_OK;
}

static void backend_buffer_free(void *dev, void *buffer) {
    (void)dev;
    if (buffer == NULL) {
        return;
    }
    cpu_buffer *b = buffer;
    b->magic = 0; /* a second free or a use after free is then refused, not obeyed */
    free(b);
}

static lam_status backend_buffer_write(void *dev, void *buffer, size_t offset, const void *src,
                                       size_t bytes) {
    lam_status st = check_dev(dev);
    if (st == LAM_OK) {
        st = check_buffer(buffer, "buffer");
    }
    if (st == LAM_OK) {
        st = check_range(buffer, offset, bytes, "writing");
    }
    if (st != LAM_OK) {
        return st;
    }
    if (bytes == 0) {
        return LAM_OK;
    }
    if (src == NULL) {
        return cpu_error(LAM_ERR_INVALID_ARGUMENT, "cpu: Invalid argument, src is NULL");
    }
    memcpy((char *)cpu_buffer_data(buffer) + offset, src, bytes);
    return LAM_OK;
}

static lam_status backend_buffer_read(void *dev, const void *buffer, size_t offset, void *dst,
                                      size_t bytes) {
    lam_status st = check_dev(dev);
    if (st == LAM_OK) {
        st = check_buffer(buffer, "buffer");
    }
    if (st == LAM_OK) {
        st = check_range(buffer, offset, bytes, "reading");
    }
    if (st != LAM_OK) {
        return st;
    }
    if (bytes == 0) {
        return LAM_OK;
    }
    if (dst == NULL) {
        return cpu_error(LAM_ERR_INVALID_ARGUMENT, "cpu: Invalid argument, dst is NULL");
    }
    memcpy(dst, (const char *)cpu_buffer_data(buffer) + offset, bytes);
    return LAM_OK;
}

static lam_status backend_buffer_copy(void *dev, void *dst, size_t dst_offset, const void *src,
                                      size_t src_offset, size_t bytes) {
    lam_status st = check_dev(dev);
    if (st == LAM_OK) {
        st = check_buffer(dst, "dst");
    }
    if (st == LAM_OK) {
        st = check_buffer(src, "src");
    }
    if (st == LAM_OK) {
        st = check_range(src, src_offset, bytes, "reading");
    }
    if (st == LAM_OK) {
        st = check_range(dst, dst_offset, bytes, "writing");
    }
    if (st != LAM_OK || bytes == 0) {
        return st;
    }
    /* memmove: a copy within one buffer may overlap */
    memmove((char *)cpu_buffer_data(dst) + dst_offset,
            (const char *)cpu_buffer_data(src) + src_offset, bytes);
    return LAM_OK;
}

static lam_status backend_synchronize(void *dev) {
    return check_dev(dev); /* execution is synchronous: nothing is ever pending */
}

static void backend_shutdown(void *user) {
    (void)user;
    cpu_blas_unload();
}

static const lam_backend_desc cpu_backend_desc = {
    LAM_BACKEND_DESC_HEADER,
    .name = "cpu",
    .version = CPU_PLUGIN_VERSION,
    .doc = "CPU backend: OpenBLAS sgemm and vectorized loops",
    .user = NULL,
    .probe = backend_probe,
    .device_info = backend_device_info,
    .device_open = backend_device_open,
    .device_close = backend_device_close,
    .buffer_alloc = backend_buffer_alloc,
    .buffer_free = backend_buffer_free,
    .buffer_write = backend_buffer_write,
    .buffer_read = backend_buffer_read,
    .buffer_copy = backend_buffer_copy,
    .supports_op = cpu_supports_op,
    .execute = cpu_execute,
    .synchronize = backend_synchronize,
    .shutdown = backend_shutdown,
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
