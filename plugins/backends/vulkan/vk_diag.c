/*
 * vk_diag.c - error messages, logging, VkResult names and the validation-layer messages of the
 * Vulkan backend. The bottom level of the plugin: it calls nothing of the plugin.
 */
#include "vk_diag.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const lam_host_api *vk_host;

/* Per thread, nonzero while `supports` runs the checks of execute: their errors are answers,
 * not failures. A pthread key, not _Thread_local: the host dlclose()s plugins at lam_shutdown,
 * and a dlclosed module's static TLS crashed LeakSanitizer's thread scan at exit. */
static pthread_key_t g_mute_key;
static pthread_once_t g_mute_once = PTHREAD_ONCE_INIT;
static int g_mute_ok;

static void mute_key_make(void) {
    g_mute_ok = pthread_key_create(&g_mute_key, NULL) == 0;
}

static int mute_now(void) {
    return g_mute_ok ? (int)(intptr_t)pthread_getspecific(g_mute_key) : 0;
}

void vk_diag_fini(void) {
    if (g_mute_ok) {
        pthread_key_delete(g_mute_key);
        g_mute_ok = 0;
    }
}

/* Validation messages, written by the messenger (any thread) and read by the device calls. */
static pthread_mutex_t g_msg_lock = PTHREAD_MUTEX_INITIALIZER;
static char g_msg[1024];
static int g_msg_pending;
static uint64_t g_msg_count;
static char g_msg_op[64];

lam_status vk_error(lam_status status, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (mute_now() == 0 && vk_host != NULL && vk_host->set_error != NULL) {
        return vk_host->set_error(status, msg);
    }
    return status;
}

void vk_diag_mute(int delta) {
    pthread_once(&g_mute_once, mute_key_make);
    if (g_mute_ok) {
        pthread_setspecific(g_mute_key, (void *)(intptr_t)(mute_now() + delta));
    }
}

void vk_log(lam_log_level level, const char *fmt, ...) {
    if (vk_host == NULL || vk_host->log == NULL) {
        return;
    }
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    vk_host->log(level, msg);
}

const char *vk_result_string(VkResult r) {
    switch (r) {
    case VK_SUCCESS:
        return "VK_SUCCESS";
    case VK_NOT_READY:
        return "VK_NOT_READY";
    case VK_TIMEOUT:
        return "VK_TIMEOUT";
    case VK_ERROR_OUT_OF_HOST_MEMORY:
        return "VK_ERROR_OUT_OF_HOST_MEMORY";
    case VK_ERROR_OUT_OF_DEVICE_MEMORY:
        return "VK_ERROR_OUT_OF_DEVICE_MEMORY";
    case VK_ERROR_INITIALIZATION_FAILED:
        return "VK_ERROR_INITIALIZATION_FAILED";
    case VK_ERROR_DEVICE_LOST:
        return "VK_ERROR_DEVICE_LOST";
    case VK_ERROR_MEMORY_MAP_FAILED:
        return "VK_ERROR_MEMORY_MAP_FAILED";
    case VK_ERROR_LAYER_NOT_PRESENT:
        return "VK_ERROR_LAYER_NOT_PRESENT";
    case VK_ERROR_EXTENSION_NOT_PRESENT:
        return "VK_ERROR_EXTENSION_NOT_PRESENT";
    case VK_ERROR_FEATURE_NOT_PRESENT:
        return "VK_ERROR_FEATURE_NOT_PRESENT";
    case VK_ERROR_INCOMPATIBLE_DRIVER:
        return "VK_ERROR_INCOMPATIBLE_DRIVER";
    case VK_ERROR_TOO_MANY_OBJECTS:
        return "VK_ERROR_TOO_MANY_OBJECTS";
    case VK_ERROR_FRAGMENTED_POOL:
        return "VK_ERROR_FRAGMENTED_POOL";
    case VK_ERROR_OUT_OF_POOL_MEMORY:
        return "VK_ERROR_OUT_OF_POOL_MEMORY";
    default:
        return "VkResult error";
    }
}

void vk_copy_str(char *dst, size_t cap, const char *src) {
    if (cap > 0) {
        snprintf(dst, cap, "%s", src);
    }
}

int vk_env_on(const char *name) {
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' && strcmp(v, "0") != 0;
}

/* ---- validation messages ---- */

VKAPI_ATTR VkBool32 VKAPI_CALL vk_validation_on_message(
    VkDebugUtilsMessageSeverityFlagBitsEXT severity, VkDebugUtilsMessageTypeFlagsEXT types,
    const VkDebugUtilsMessengerCallbackDataEXT *data, void *user) {
    (void)types;
    (void)user;
    if ((severity & (VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT |
                     VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT)) == 0) {
        return VK_FALSE;
    }
    const char *text = data != NULL && data->pMessage != NULL ? data->pMessage : "(no text)";
    pthread_mutex_lock(&g_msg_lock);
    g_msg_count++;
    if (!g_msg_pending) {
        g_msg_pending = 1;
        snprintf(g_msg, sizeof g_msg, "validation %s%s%s: %s",
                 (severity & VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT) ? "error" : "warning",
                 g_msg_op[0] ? " in " : "", g_msg_op, text);
    }
    pthread_mutex_unlock(&g_msg_lock);
    return VK_FALSE;
}

int vk_validation_take(char *buf, size_t cap, int consume) {
    pthread_mutex_lock(&g_msg_lock);
    int had = g_msg_pending;
    if (had) {
        vk_copy_str(buf, cap, g_msg);
        if (consume) {
            g_msg_pending = 0;
        }
    }
    pthread_mutex_unlock(&g_msg_lock);
    return had;
}

uint64_t vk_validation_count(void) {
    pthread_mutex_lock(&g_msg_lock);
    uint64_t n = g_msg_count;
    pthread_mutex_unlock(&g_msg_lock);
    return n;
}

void vk_validation_set_op(const char *op) {
    pthread_mutex_lock(&g_msg_lock);
    vk_copy_str(g_msg_op, sizeof g_msg_op, op != NULL ? op : "");
    pthread_mutex_unlock(&g_msg_lock);
}

void vk_validation_reset(void) {
    pthread_mutex_lock(&g_msg_lock);
    g_msg_pending = 0;
    g_msg_count = 0;
    g_msg[0] = '\0';
    g_msg_op[0] = '\0';
    pthread_mutex_unlock(&g_msg_lock);
}
