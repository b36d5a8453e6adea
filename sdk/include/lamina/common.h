/*
 * lamina/common.h - types shared by the user API (lamina.h) and the plugin ABI (plugin.h).
 *
 * Everything here crosses the plugin boundary, so it follows the ABI rules of STYLE.md:
 * enums carry explicit values that are never renumbered and are pinned to 32 bits, value
 * types hold only fixed-width fields, and any layout change moves LAM_ABI_FINGERPRINT.
 */
#ifndef LAMINA_COMMON_H
#define LAMINA_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ABI version: major rises only on a breaking change; a minor only appends (2.1: communicators;
 * 2.2: convolution and layer-normalization ops; see plugin.h). */
#define LAM_ABI_VERSION_MAJOR 2
#define LAM_ABI_VERSION_MINOR 2
/* Packs a major and minor version into one 32-bit number (major in the high 16 bits). */
#define LAM_MAKE_VERSION(major, minor) ((((uint32_t)(major)) << 16) | ((uint32_t)(minor)&0xFFFFu))
#define LAM_VERSION_MAJOR(v)           ((uint32_t)(v) >> 16)
#define LAM_VERSION_MINOR(v)           ((uint32_t)(v)&0xFFFFu)
#define LAM_ABI_VERSION                LAM_MAKE_VERSION(LAM_ABI_VERSION_MAJOR, LAM_ABI_VERSION_MINOR)

/* The most dimensions a tensor may have. */
#define LAM_MAX_DIMS 8

/* A dimension that is not known yet (deferred initialization); printed as None. */
#define LAM_DIM_UNKNOWN (-1)

#if defined(_WIN32)
#define LAM_EXPORT __declspec(dllexport)
#else
#define LAM_EXPORT __attribute__((visibility("default")))
#endif

/*
 * Result of every fallible call. LAM_OK is zero, errors are negative and append-only.
 * lam_status_string() names a status; lam_last_error() holds the message of the last failure.
 */
typedef enum lam_status {
    LAM_OK = 0,
    LAM_ERR_INVALID_ARGUMENT = -1,
    LAM_ERR_OUT_OF_MEMORY = -2,
    LAM_ERR_SHAPE = -3,
    LAM_ERR_DTYPE = -4,
    LAM_ERR_NOT_FOUND = -5,
    LAM_ERR_STATE = -6,
    LAM_ERR_UNSUPPORTED = -7,
    LAM_ERR_IO = -8,
    LAM_ERR_FORMAT = -9,
    LAM_ERR_ABI = -10,
    LAM_ERR_BACKEND = -11,
    LAM_ERR_DEVICE_UNAVAILABLE = -12,
    LAM_ERR_DEFERRED_INIT = -13,
    LAM_ERR_INTERNAL = -14,
    LAM_STATUS_MIN_ENUM = -0x7FFFFFFF,
    LAM_STATUS_MAX_ENUM = 0x7FFFFFFF
} lam_status;

/* Element type of a tensor. F32 is the type every op supports; others where an op says so. */
typedef enum lam_dtype {
    LAM_DTYPE_INVALID = 0,
    LAM_DTYPE_F32 = 1,
    LAM_DTYPE_F16 = 2,
    LAM_DTYPE_BF16 = 3,
    LAM_DTYPE_F64 = 4,
    LAM_DTYPE_I32 = 5,
    LAM_DTYPE_I64 = 6,
    LAM_DTYPE_U8 = 7,
    LAM_DTYPE_MAX_ENUM = 0x7FFFFFFF
} lam_dtype;

/* Number of lam_dtype values including INVALID; part of the ABI fingerprint. */
#define LAM_DTYPE_COUNT 8

/*
 * A shape: ndim dimensions, row-major. A dimension of LAM_DIM_UNKNOWN (-1) is not known yet
 * (only parameters before deferred initialization have such shapes). A frozen value type,
 * always passed by pointer.
 */
typedef struct lam_shape {
    uint32_t ndim;
    uint32_t reserved; /* zero */
    int64_t dims[LAM_MAX_DIMS];
} lam_shape;

/* Severity of a log message passed to the application's log callback. */
typedef enum lam_log_level {
    LAM_LOG_INVALID = 0,
    LAM_LOG_ERROR = 1,
    LAM_LOG_WARN = 2,
    LAM_LOG_INFO = 3,
    LAM_LOG_DEBUG = 4,
    LAM_LOG_MAX_ENUM = 0x7FFFFFFF
} lam_log_level;

/* What kind of device a backend device is; used by LAMINA_BACKEND=auto to rank devices. */
typedef enum lam_device_kind {
    LAM_DEVICE_INVALID = 0,
    LAM_DEVICE_CPU = 1,
    LAM_DEVICE_DISCRETE_GPU = 2,
    LAM_DEVICE_INTEGRATED_GPU = 3,
    LAM_DEVICE_VIRTUAL_GPU = 4,
    LAM_DEVICE_OTHER = 5,
    LAM_DEVICE_MAX_ENUM = 0x7FFFFFFF
} lam_device_kind;

#define LAM_DEVICE_KIND_COUNT 6

/*
 * Description of one device of a backend, filled by the backend's device_info callback.
 * The caller sets struct_size and abi_version (LAM_DEVICE_INFO_INIT); the backend writes only
 * fields that lie inside struct_size. Strings are NUL-terminated and truncated to fit (the
 * host terminates a string a backend left without its NUL at the array's last byte).
 */
typedef struct lam_device_info {
    uint32_t struct_size;
    uint32_t abi_version;
    lam_device_kind kind;
    uint32_t reserved;
    uint64_t memory_bytes;  /* usable memory, 0 if unknown */
    uint32_t compute_units; /* cores or compute units, 0 if unknown */
    uint32_t reserved2;
    char name[128];    /* e.g. "Intel(R) Xeon(R) Processor" */
    char driver[128];  /* e.g. "OpenBLAS 0.3.21" or "llvmpipe (Mesa 22.3.6)" */
    char details[512]; /* free text: kernel in use, limits, ... */
} lam_device_info;

#define LAM_DEVICE_INFO_INIT                                                                       \
    {                                                                                              \
        (uint32_t)sizeof(lam_device_info), LAM_ABI_VERSION, LAM_DEVICE_INVALID, 0, 0, 0, 0, "",    \
            "", ""                                                                                 \
    }

/* Formats dims as the host's lam_shape_format does, Python style: "(2, 20)", "(3,)", "()",
 * an unknown (negative) dim as None: "(None, 20)". Writes into buf (truncated to cap) and
 * returns it. Header-only, so plugins, which do not link liblamina, name shapes in their
 * messages as the host does. */
static inline const char *lam_dims_format(char *buf, size_t cap, uint32_t ndim,
                                          const int64_t *dims) {
    size_t used = 0;
    int w;
    if (buf == NULL || cap == 0) {
        return buf;
    }
    buf[0] = '\0';
    w = snprintf(buf, cap, "(");
    used += w > 0 ? (size_t)w : 0;
    for (uint32_t i = 0; i < ndim && i < LAM_MAX_DIMS && used < cap; i++) {
        w = dims[i] < 0
                ? snprintf(buf + used, cap - used, "%sNone", i ? ", " : "")
                : snprintf(buf + used, cap - used, "%s%lld", i ? ", " : "", (long long)dims[i]);
        used += w > 0 ? (size_t)w : 0;
    }
    if (used < cap) {
        snprintf(buf + used, cap - used, "%s", ndim == 1 ? ",)" : ")");
    }
    return buf;
}

#ifdef __cplusplus
}
#endif

#endif /* LAMINA_COMMON_H */
