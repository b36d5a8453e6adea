/* Contexts (a backend plus a device index) and run-time backend selection. */
#include "context.h"
#include "error.h"
#include "log.h"
#include "registry.h"
#include "start.h"
#include "util.h"

#include <ctype.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t lam_backend_count(void) {
    if (lam__ensure_started() != LAM_OK) {
        return 0;
    }
    return lam__backend_count();
}

size_t lam_plugin_report_peek_count(void) {
    return lam__report_count(false);
}

lam_status lam_plugin_report_peek(size_t index, lam_plugin_record *record) {
    return lam__report_get(index, record, false);
}

lam_status lam_backend_peek(size_t index, const char **name, int *probed, uint32_t *n_devices,
                            const char **why) {
    lam_status st = lam__ensure_started();
    if (st != LAM_OK) {
        return st;
    }
    if (index >= lam__backend_count()) {
        return lam__error(LAM_ERR_NOT_FOUND, "lam_backend_peek: Not found, index %zu, %zu backends",
                          index, lam__backend_count());
    }
    const lam__backend *b = lam__backend_at(index);
    const bool done = atomic_load_explicit(&b->probed, memory_order_acquire);
    if (name) {
        *name = b->desc.name;
    }
    if (probed) {
        *probed = done ? 1 : 0;
    }
    if (n_devices) {
        *n_devices = done ? b->n_devices : 0;
    }
    if (why) {
        *why = done ? b->why : "";
    }
    return LAM_OK;
}

lam_status lam_backend_get(size_t index, const char **name, uint32_t *n_devices, const char **why) {
    lam_status st = lam__ensure_started();
    if (st != LAM_OK) {
        return st;
    }
    if (index >= lam__backend_count()) {
        return lam__error(LAM_ERR_NOT_FOUND, "lam_backend_get: Not found, index %zu, %zu backends",
                          index, lam__backend_count());
    }
    lam__backend *b = lam__backend_at(index);
    lam__backend_probe(b);
    if (name) {
        *name = b->desc.name;
    }
    if (n_devices) {
        *n_devices = b->n_devices;
    }
    if (why) {
        *why = b->why;
    }
    return LAM_OK;
}

lam_status lam_backend_device_info(size_t index, uint32_t device, lam_device_info *info) {
    lam_status st = lam__ensure_started();
    if (st != LAM_OK) {
        return st;
    }
    if (info == NULL || info->struct_size < 16) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "lam_backend_device_info: Invalid argument, info is NULL or its "
                          "struct_size is not set (use LAM_DEVICE_INFO_INIT)");
    }
    if (index >= lam__backend_count()) {
        return lam__error(LAM_ERR_NOT_FOUND,
                          "lam_backend_device_info: Not found, backend index %zu, %zu backends",
                          index, lam__backend_count());
    }
    lam__backend *b = lam__backend_at(index);
    lam__backend_probe(b);
    if (device >= b->n_devices) {
        return lam__error(LAM_ERR_NOT_FOUND, "%s: Not found, device %u, the backend has %u",
                          b->desc.name, device, b->n_devices);
    }
    lam_device_info want = *info;
    uint64_t mark = lam__error_mark();
    st = lam__backend_status(b->desc.device_info(b->desc.user, device, info), mark, b,
                             "device_info");
    if (st != LAM_OK) {
        return lam__error_prefix(st, "%s(%u)", b->desc.name, device);
    }
    /* The backend may not have written the header back or may have left text without its NUL:
     * restore the one and terminate the others within the caller's struct. */
    info->struct_size = want.struct_size;
    info->abi_version = want.abi_version;
    size_t have = want.struct_size;
    if (have >= offsetof(lam_device_info, name) + sizeof info->name) {
        info->name[sizeof info->name - 1] = '\0';
    }
    if (have >= offsetof(lam_device_info, driver) + sizeof info->driver) {
        info->driver[sizeof info->driver - 1] = '\0';
    }
    if (have >= offsetof(lam_device_info, details) + sizeof info->details) {
        info->details[sizeof info->details - 1] = '\0';
    }
    return LAM_OK;
}

/* "cpu (1 device), vulkan (no device: no Vulkan loader)" */
static void list_available(lam__strbuf *sb) {
    lam__backends_probe_all();
    if (lam__backend_count() == 0) {
        lam__strbuf_printf(sb, "none (no backend plugin was loaded; see `lamina plugins`)");
        return;
    }
    for (size_t i = 0; i < lam__backend_count(); i++) {
        const lam__backend *b = lam__backend_at(i);
        if (b->n_devices > 0) {
            lam__strbuf_printf(sb, "%s%s (%u device%s)", i ? ", " : "", b->desc.name, b->n_devices,
                               b->n_devices == 1 ? "" : "s");
        } else {
            lam__strbuf_printf(sb, "%s%s (no device: %s)", i ? ", " : "", b->desc.name, b->why);
        }
    }
}

/* Contexts open once even when many threads ask for one at once; later calls find it with one
 * atomic load. */
static pthread_mutex_t open_lock = PTHREAD_MUTEX_INITIALIZER;

static lam_status open_ctx_locked(lam__backend *b, uint32_t device, lam_ctx **out);

static lam_status open_ctx(lam__backend *b, uint32_t device, lam_ctx **out) {
    lam_ctx *c = atomic_load_explicit(&b->ctxs[device], memory_order_acquire);
    if (c != NULL) {
        *out = c;
        return LAM_OK;
    }
    pthread_mutex_lock(&open_lock);
    lam_status st = open_ctx_locked(b, device, out);
    pthread_mutex_unlock(&open_lock);
    return st;
}

static lam_status open_ctx_locked(lam__backend *b, uint32_t device, lam_ctx **out) {
    lam_ctx *c = atomic_load_explicit(&b->ctxs[device], memory_order_relaxed);
    if (c != NULL) {
        *out = c;
        return LAM_OK;
    }
    c = calloc(1, sizeof *c);
    if (c == NULL) {
        return lam__error(LAM_ERR_OUT_OF_MEMORY, "%s(%u): Out of memory", b->desc.name, device);
    }
    c->backend = b;
    c->device = device;
    snprintf(c->name, sizeof c->name, "%s(%u)", b->desc.name, device);
    uint64_t mark = lam__error_mark();
    lam_status st = b->desc.device_open(b->desc.user, device, &c->dev);
    st = lam__backend_status(st, mark, b, "device_open");
    if (st != LAM_OK) {
        free(c);
        return lam__error_prefix(st, "%s(%u): Opening the device failed", b->desc.name, device);
    }
    if (pthread_mutex_init(&c->cache_lock, NULL) != 0) {
        b->desc.device_close(c->dev);
        free(c);
        return lam__error(LAM_ERR_OUT_OF_MEMORY, "%s(%u): Out of memory", b->desc.name, device);
    }
    atomic_store_explicit(&b->ctxs[device], c, memory_order_release);
    *out = c;
    return LAM_OK;
}

/* Higher is better for LAMINA_BACKEND=auto: GPUs first, then the native CPU backend, then
 * CPU devices of other backends (such as lavapipe under Vulkan). */
static int rank(const lam__backend *b, uint32_t device) {
    lam_device_info info = LAM_DEVICE_INFO_INIT;
    if (b->desc.device_info(b->desc.user, device, &info) != LAM_OK) {
        return 0;
    }
    switch (info.kind) {
    case LAM_DEVICE_DISCRETE_GPU:
        return 6;
    case LAM_DEVICE_INTEGRATED_GPU:
        return 5;
    case LAM_DEVICE_VIRTUAL_GPU:
        return 4;
    case LAM_DEVICE_OTHER:
        return 3;
    case LAM_DEVICE_CPU:
        return strcmp(b->desc.name, "cpu") == 0 ? 2 : 1;
    default:
        return 0;
    }
}

static lam_status pick_auto(lam_ctx **out) {
    lam__backends_probe_all();
    lam__backend *best = NULL;
    uint32_t best_dev = 0;
    int best_rank = 0;
    for (size_t i = 0; i < lam__backend_count(); i++) {
        lam__backend *b = lam__backend_at(i);
        for (uint32_t d = 0; d < b->n_devices; d++) {
            int r = rank(b, d);
            if (r > best_rank) {
                best = b;
                best_dev = d;
                best_rank = r;
            }
        }
    }
    if (best == NULL) {
        lam__strbuf sb = {0};
        list_available(&sb);
        lam_status st =
            lam__error(LAM_ERR_DEVICE_UNAVAILABLE,
                       "auto: Device unavailable, no backend has a device; backends: %s",
                       sb.data ? sb.data : "");
        lam__strbuf_fini(&sb);
        return st;
    }
    lam__log(LAM_LOG_INFO, "auto: chose %s(%u)", best->desc.name, best_dev);
    return open_ctx(best, best_dev, out);
}

lam_status lam_ctx_get(const char *spec, lam_ctx **out) {
    if (out == NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "lam_ctx_get: Invalid argument, out is NULL");
    }
    *out = NULL;
    lam_status st = lam__ensure_started();
    if (st != LAM_OK) {
        return st;
    }
    char subject[200];
    if (spec == NULL) {
        spec = getenv("LAMINA_BACKEND");
        if (spec == NULL || spec[0] == '\0') {
            spec = "cpu";
            snprintf(subject, sizeof subject, "cpu");
        } else {
            snprintf(subject, sizeof subject, "LAMINA_BACKEND=%s", spec);
        }
    } else {
        snprintf(subject, sizeof subject, "%s", spec);
    }
    if (strcmp(spec, "auto") == 0) {
        return pick_auto(out);
    }
    char name[64];
    size_t n = strcspn(spec, ":");
    bool ok = n > 0 && n < sizeof name;
    for (size_t i = 0; ok && i < n; i++) {
        ok = islower((unsigned char)spec[i]) || isdigit((unsigned char)spec[i]) || spec[i] == '_';
    }
    unsigned long device = 0;
    if (ok && spec[n] == ':') {
        const char *d = spec + n + 1;
        char *end = NULL;
        ok = isdigit((unsigned char)d[0]) != 0;
        if (ok) {
            device = strtoul(d, &end, 10);
            ok = *end == '\0' && device < 65536;
        }
    }
    if (!ok) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "%s: Invalid backend, expected <name>, <name>:<device> or auto "
                          "(e.g. cpu, vulkan:1)",
                          subject);
    }
    memcpy(name, spec, n);
    name[n] = '\0';
    lam__backend *b = lam__backend_find(name);
    lam__strbuf sb = {0};
    if (b != NULL) {
        lam__backend_probe(b);
    }
    if (b == NULL) {
        list_available(&sb);
        st = lam__error(LAM_ERR_NOT_FOUND,
                        "%s: Backend not found, no plugin provides '%s'; available: %s", subject,
                        name, sb.data ? sb.data : "");
        lam__strbuf_fini(&sb);
        return st;
    }
    if (b->n_devices == 0) {
        list_available(&sb);
        st = lam__error(LAM_ERR_DEVICE_UNAVAILABLE, "%s: Device unavailable, %s; available: %s",
                        subject, b->why, sb.data ? sb.data : "");
        lam__strbuf_fini(&sb);
        return st;
    }
    if (device >= b->n_devices) {
        list_available(&sb);
        st = lam__error(LAM_ERR_DEVICE_UNAVAILABLE,
                        "%s: Device unavailable, backend '%s' has %u device%s (0..%u); "
                        "available: %s",
                        subject, name, b->n_devices, b->n_devices == 1 ? "" : "s", b->n_devices - 1,
                        sb.data ? sb.data : "");
        lam__strbuf_fini(&sb);
        return st;
    }
    return open_ctx(b, (uint32_t)device, out);
}

lam_status lam_ctx_default(lam_ctx **out) {
    return lam_ctx_get(NULL, out);
}

const char *lam_ctx_name(const lam_ctx *ctx) {
    return ctx ? ctx->name : "(null)";
}

const char *lam_ctx_backend(const lam_ctx *ctx) {
    return ctx ? ctx->backend->desc.name : "(null)";
}

uint32_t lam_ctx_device(const lam_ctx *ctx) {
    return ctx ? ctx->device : 0;
}

lam_status lam_ctx_synchronize(lam_ctx *ctx) {
    if (ctx == NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "lam_ctx_synchronize: Invalid argument, "
                                                    "ctx is NULL");
    }
    uint64_t mark = lam__error_mark();
    lam_status st = ctx->backend->desc.synchronize(ctx->dev);
    st = lam__backend_status(st, mark, ctx->backend, "synchronize");
    if (st != LAM_OK) {
        return lam__error_prefix(st, "%s", ctx->name);
    }
    return LAM_OK;
}

lam_status lam_waitall(void) {
    lam_status first = LAM_OK;
    if (!lam__started()) {
        return LAM_OK;
    }
    for (size_t i = 0; i < lam__backend_count(); i++) {
        lam__backend *b = lam__backend_at(i);
        if (!atomic_load_explicit(&b->probed, memory_order_acquire)) {
            continue; /* no device opened yet (another thread may be probing it) */
        }
        for (uint32_t d = 0; d < b->n_devices; d++) {
            lam_ctx *c = atomic_load_explicit(&b->ctxs[d], memory_order_acquire);
            if (c != NULL) {
                lam_status st = lam_ctx_synchronize(c);
                if (st != LAM_OK && first == LAM_OK) {
                    first = st;
                }
            }
        }
    }
    return first;
}

/* ---- the buffer cache ---- */

/* Like PyTorch's caching allocator, keep freed buffers for reuse, but bounded: a large
 * buffer freshly mapped costs page faults and zeroing on every op that makes one. */
#define CACHE_MAX_BYTES  ((size_t)256 << 20) /* per context */
#define CACHE_MAX_BUFFER ((size_t)128 << 20) /* larger buffers go straight back */

/* The buffer cache belongs to the context, which threads share: it is used under the
 * context's cache_lock. */
void *lam__ctx_cache_take(lam_ctx *ctx, size_t bytes) {
    lam__buffer_cache *c = &ctx->cache;
    void *buf = NULL;
    pthread_mutex_lock(&ctx->cache_lock);
    for (uint32_t i = c->n; i-- > 0;) {
        if (c->bytes[i] == bytes) {
            buf = c->buf[i];
            c->n--;
            c->bytes[i] = c->bytes[c->n];
            c->buf[i] = c->buf[c->n];
            c->total -= bytes;
            break;
        }
    }
    pthread_mutex_unlock(&ctx->cache_lock);
    return buf;
}

void lam__ctx_cache_give(lam_ctx *ctx, void *buf, size_t bytes) {
    lam__buffer_cache *c = &ctx->cache;
    void *evicted = NULL;
    pthread_mutex_lock(&ctx->cache_lock);
    if (bytes > CACHE_MAX_BUFFER || c->total + bytes > CACHE_MAX_BYTES) {
        pthread_mutex_unlock(&ctx->cache_lock);
        ctx->backend->desc.buffer_free(ctx->dev, buf);
        return;
    }
    if (c->n == LAM__CACHE_SLOTS) { /* evict the oldest */
        evicted = c->buf[0];
        c->total -= c->bytes[0];
        memmove(c->buf, c->buf + 1, (c->n - 1) * sizeof *c->buf);
        memmove(c->bytes, c->bytes + 1, (c->n - 1) * sizeof *c->bytes);
        c->n--;
    }
    c->bytes[c->n] = bytes;
    c->buf[c->n] = buf;
    c->n++;
    c->total += bytes;
    pthread_mutex_unlock(&ctx->cache_lock);
    if (evicted != NULL) {
        ctx->backend->desc.buffer_free(ctx->dev, evicted);
    }
}

void lam__ctx_cache_flush(lam_ctx *ctx) {
    lam__buffer_cache *c = &ctx->cache;
    for (uint32_t i = 0; i < c->n; i++) {
        ctx->backend->desc.buffer_free(ctx->dev, c->buf[i]);
    }
    c->n = 0;
    c->total = 0;
}

void lam__contexts_close_all(void) {
    for (size_t i = 0; i < lam__backend_count(); i++) {
        lam__backend *b = lam__backend_at(i);
        for (uint32_t d = 0; d < b->n_devices; d++) {
            lam_ctx *c = b->ctxs[d];
            if (c != NULL) {
                b->desc.synchronize(c->dev);
                lam__ctx_cache_flush(c);
                b->desc.device_close(c->dev);
                pthread_mutex_destroy(&c->cache_lock);
                free(c);
                b->ctxs[d] = NULL;
            }
        }
    }
}
