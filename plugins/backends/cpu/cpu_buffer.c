/*
 * cpu_buffer.c - buffers of the CPU backend: plain host memory, allocated here or wrapped
 * (buffer_from_host_ptr, e.g. an mmap'd weights file), and the copies between them and the
 * host. Execution is synchronous, so nothing here ever waits.
 */
#define _GNU_SOURCE /* sysconf(_SC_PHYS_PAGES), posix_memalign */

#include "cpu_internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

uint64_t cpu_memory_bytes(void) {
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

lam_status cpu_check_dev(const void *dev) {
    if (dev == NULL || ((const cpu_device *)dev)->magic != CPU_DEVICE_MAGIC) {
        return cpu_error(LAM_ERR_INVALID_ARGUMENT, "cpu: Invalid argument, not a cpu device");
    }
    return LAM_OK;
}

static lam_status check_buffer(const void *buffer, const char *what) {
    if (buffer == NULL || ((const cpu_buffer *)buffer)->magic != CPU_BUFFER_MAGIC) {
        return cpu_error(LAM_ERR_INVALID_ARGUMENT,
                         "cpu: Invalid argument, %s is not a live cpu buffer", what);
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

static lam_status check_writable(const cpu_buffer *b, size_t offset, size_t bytes) {
    if (b->read_only) {
        return cpu_error(LAM_ERR_INVALID_ARGUMENT,
                         "cpu: Read-only buffer, writing %zu bytes at offset %zu of a buffer "
                         "over read-only host memory",
                         bytes, offset);
    }
    return LAM_OK;
}

static uint64_t g_memory_bytes;
static pthread_once_t g_memory_once = PTHREAD_ONCE_INIT;

static void read_memory(void) {
    g_memory_bytes = cpu_memory_bytes();
}

lam_status cpu_buffer_alloc(void *dev, size_t bytes, void **buffer) {
    lam_status st = cpu_check_dev(dev);
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
    _Static_assert(sizeof(cpu_buffer) <= CPU_ALIGN, "the header fits before the data");
    cpu_buffer *b = p;
    b->magic = CPU_BUFFER_MAGIC;
    b->bytes = bytes;
    b->data = (char *)p + CPU_ALIGN;
    b->read_only = 0;
    b->reserved = 0;
    *buffer = b;
    return LAM_OK;
}

lam_status cpu_buffer_from_host_ptr(void *dev, void *ptr, size_t bytes, int32_t read_only,
                                    void **buffer) {
    lam_status st = cpu_check_dev(dev);
    if (st != LAM_OK) {
        return st;
    }
    if (buffer == NULL) {
        return cpu_error(LAM_ERR_INVALID_ARGUMENT, "cpu: Invalid argument, buffer is NULL");
    }
    *buffer = NULL;
    if (ptr == NULL) {
        return cpu_error(LAM_ERR_INVALID_ARGUMENT, "cpu: Invalid argument, host pointer is NULL");
    }
    if ((uintptr_t)ptr % CPU_HOST_PTR_ALIGN != 0) {
        return cpu_error(LAM_ERR_UNSUPPORTED,
                         "cpu: Unsupported alignment, host memory at %p is not %d-byte aligned",
                         ptr, CPU_HOST_PTR_ALIGN);
    }
    cpu_buffer *b = malloc(sizeof *b);
    if (b == NULL) {
        return cpu_error(LAM_ERR_OUT_OF_MEMORY, "cpu: Out of memory, wrapping host memory");
    }
    b->magic = CPU_BUFFER_MAGIC;
    b->bytes = bytes;
    b->data = ptr;
    b->read_only = read_only != 0;
    b->reserved = 0;
    *buffer = b;
    return LAM_OK;
}

void cpu_buffer_free(void *dev, void *buffer) {
    (void)dev;
    if (buffer == NULL) {
        return;
    }
    cpu_buffer *b = buffer;
    b->magic = 0; /* a second free or a use after free is then refused, not obeyed */
    free(b);      /* the header, and the data when it follows it; wrapped memory is the caller's */
}

void *cpu_buffer_host_ptr(void *dev, void *buffer) {
    if (dev == NULL || ((const cpu_device *)dev)->magic != CPU_DEVICE_MAGIC || buffer == NULL ||
        ((const cpu_buffer *)buffer)->magic != CPU_BUFFER_MAGIC) {
        return NULL;
    }
    return ((cpu_buffer *)buffer)->data;
}

lam_status cpu_buffer_write(void *dev, void *buffer, size_t offset, const void *src, size_t bytes) {
    lam_status st = cpu_check_dev(dev);
    if (st == LAM_OK) {
        st = check_buffer(buffer, "buffer");
    }
    if (st == LAM_OK) {
        st = check_range(buffer, offset, bytes, "writing");
    }
    if (st == LAM_OK) {
        st = check_writable(buffer, offset, bytes);
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
    memcpy(((cpu_buffer *)buffer)->data + offset, src, bytes);
    return LAM_OK;
}

lam_status cpu_buffer_read(void *dev, const void *buffer, size_t offset, void *dst, size_t bytes) {
    lam_status st = cpu_check_dev(dev);
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
    memcpy(dst, ((const cpu_buffer *)buffer)->data + offset, bytes);
    return LAM_OK;
}

lam_status cpu_buffer_copy(void *dev, void *dst, size_t dst_offset, const void *src,
                           size_t src_offset, size_t bytes) {
    lam_status st = cpu_check_dev(dev);
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
    if (st == LAM_OK) {
        st = check_writable(dst, dst_offset, bytes);
    }
    if (st != LAM_OK || bytes == 0) {
        return st;
    }
    /* memmove: a copy within one buffer (or two wrapping the same memory) may overlap */
    memmove(((cpu_buffer *)dst)->data + dst_offset, ((const cpu_buffer *)src)->data + src_offset,
            bytes);
    return LAM_OK;
}
