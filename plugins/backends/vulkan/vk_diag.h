/*
 * vk_diag.h - the bottom of the Vulkan backend: error messages through the host table, the
 * host's log, VkResult names, small string and environment helpers, and the validation-layer
 * messages. Everything else in the plugin may call these; they call nothing of the plugin.
 *
 * Levels of the plugin's files are listed in LEVELS (checked by tools/check_layers.py).
 */
#ifndef LAMINA_VK_DIAG_H
#define LAMINA_VK_DIAG_H

#ifndef VK_NO_PROTOTYPES
#define VK_NO_PROTOTYPES
#endif
#include <vulkan/vulkan.h>

#include "lamina/plugin.h"

#include <stddef.h>
#include <stdint.h>

/* The host table handed to lamina_plugin_entry; NULL before it ran. */
extern const lam_host_api *vk_host;

/* Sets the thread's error message through the host (when there is one) and returns status. */
lam_status vk_error(lam_status status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* delta +1 mutes vk_error on this thread (it returns the status and sets no message), -1
 * undoes it; for `supports`, which runs execute's checks. */
void vk_diag_mute(int delta);
/* Frees what vk_diag_mute created (at the backend's shutdown). */
void vk_diag_fini(void);
/* Logs through the host's log callback; nothing when the host has none. */
void vk_log(lam_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The name of a VkResult ("VK_ERROR_DEVICE_LOST"); static text. */
const char *vk_result_string(VkResult r);
/* snprintf(dst, cap, "%s", src) that does nothing when cap is 0. */
void vk_copy_str(char *dst, size_t cap, const char *src);
/* Nonzero when the environment variable is set, non-empty and not "0". */
int vk_env_on(const char *name);

/*
 * Validation messages (LAMINA_VULKAN_VALIDATION=1). vk_validation_on_message is the debug
 * messenger's callback (any thread). vk_validation_take copies the oldest unreported message
 * into buf (and forgets it when consume is nonzero) and returns nonzero when there was one.
 * vk_validation_count is the number recorded so far (to see whether an op raised one).
 */
VKAPI_ATTR VkBool32 VKAPI_CALL vk_validation_on_message(
    VkDebugUtilsMessageSeverityFlagBitsEXT severity, VkDebugUtilsMessageTypeFlagsEXT types,
    const VkDebugUtilsMessengerCallbackDataEXT *data, void *user);
int vk_validation_take(char *buf, size_t cap, int consume);
uint64_t vk_validation_count(void);
/* Names the op being recorded, so a validation message can say which op raised it. */
void vk_validation_set_op(const char *op);
/* Forgets every message and the op name (at shutdown). */
void vk_validation_reset(void);

#endif /* LAMINA_VK_DIAG_H */
