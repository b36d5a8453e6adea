/*
 * vk_backend.c - the Vulkan backend plugin: entry point, loading libvulkan, probing and
 * ordering devices, device description, opening devices, and the validation-layer messenger.
 *
 * libvulkan.so.1 is dlopen()ed at probe time, never linked, so the plugin loads on every
 * machine and says why it has no device ("no Vulkan loader (...)", "no Vulkan device",
 * "device lacks ..."). Devices are ordered discrete GPU, integrated GPU, virtual GPU, other,
 * CPU (lavapipe), so device 0 is the best one.
 */
#define _GNU_SOURCE

#include "vk_internal.h"

#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VK_PLUGIN_VERSION   "1.0.0"
#define VK_MAX_PHYSICAL     16
#define VK_VALIDATION_LAYER "VK_LAYER_KHRONOS_validation"

const lam_host_api *vk_host;
vk_funcs vkf;

/* What probe found; kept until shutdown. */
static struct {
    int probed;
    void *lib;
    VkInstance instance;
    VkDebugUtilsMessengerEXT messenger;
    int validation;
    uint32_t n;
    vk_physical phys[VK_MAX_PHYSICAL];
    char why[512];
} g;

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
    if (vk_host != NULL && vk_host->set_error != NULL) {
        return vk_host->set_error(status, "%s", msg);
    }
    return status;
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
    vk_host->log(level, "%s", msg);
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

static void copy_str(char *dst, size_t cap, const char *src) {
    if (cap > 0) {
        snprintf(dst, cap, "%s", src);
    }
}

/* ---- validation messages ---- */

static VKAPI_ATTR VkBool32 VKAPI_CALL on_message(VkDebugUtilsMessageSeverityFlagBitsEXT severity,
                                                 VkDebugUtilsMessageTypeFlagsEXT types,
                                                 const VkDebugUtilsMessengerCallbackDataEXT *data,
                                                 void *user) {
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
        copy_str(buf, cap, g_msg);
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
    copy_str(g_msg_op, sizeof g_msg_op, op != NULL ? op : "");
    pthread_mutex_unlock(&g_msg_lock);
}

/* ---- probing ---- */

static int env_on(const char *name) {
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' && strcmp(v, "0") != 0;
}

static int kind_rank(VkPhysicalDeviceType t) {
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU:
        return 0;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU:
        return 1;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU:
        return 2;
    case VK_PHYSICAL_DEVICE_TYPE_OTHER:
        return 3;
    default:
        return 4; /* CPU */
    }
}

static int has_layer(const char *name) {
    uint32_t n = 0;
    if (vkf.vkEnumerateInstanceLayerProperties(&n, NULL) != VK_SUCCESS || n == 0) {
        return 0;
    }
    VkLayerProperties *p = calloc(n, sizeof *p);
    if (p == NULL) {
        return 0;
    }
    int found = 0;
    if (vkf.vkEnumerateInstanceLayerProperties(&n, p) == VK_SUCCESS) {
        for (uint32_t i = 0; i < n && !found; i++) {
            found = strcmp(p[i].layerName, name) == 0;
        }
    }
    free(p);
    return found;
}

/* "Mesa 22.3.6 (LLVM 15.0.6) (llvmpipe)" from VkPhysicalDeviceDriverProperties, else the
 * vendor's encoding of driverVersion. */
static void describe_driver(vk_physical *p, uint32_t instance_api) {
    const VkPhysicalDeviceProperties *pr = &p->props;
    if (instance_api >= VK_API_VERSION_1_1 && pr->apiVersion >= VK_API_VERSION_1_2 &&
        vkf.vkGetPhysicalDeviceProperties2 != NULL) {
        VkPhysicalDeviceDriverProperties dp;
        memset(&dp, 0, sizeof dp);
        dp.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES;
        VkPhysicalDeviceProperties2 p2;
        memset(&p2, 0, sizeof p2);
        p2.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2;
        p2.pNext = &dp;
        vkf.vkGetPhysicalDeviceProperties2(p->pd, &p2);
        if (dp.driverInfo[0] != '\0' || dp.driverName[0] != '\0') {
            snprintf(p->driver, sizeof p->driver, "%.60s (%.60s)",
                     dp.driverInfo[0] ? dp.driverInfo : "driver", dp.driverName);
            return;
        }
    }
    uint32_t v = pr->driverVersion;
    if (pr->vendorID == 0x10DE) { /* NVIDIA: 10.8.8.6 bits */
        snprintf(p->driver, sizeof p->driver, "NVIDIA %u.%u", (v >> 22) & 0x3ffu,
                 (v >> 14) & 0xffu);
    } else {
        snprintf(p->driver, sizeof p->driver, "driver %u.%u.%u", VK_API_VERSION_MAJOR(v),
                 VK_API_VERSION_MINOR(v), VK_API_VERSION_PATCH(v));
    }
}

/* Why a physical device cannot run the shaders, or NULL when it can. */
static const char *lacks(const vk_physical *p) {
    const VkPhysicalDeviceLimits *l = &p->props.limits;
    if (p->queue_family == UINT32_MAX) {
        return "a compute queue";
    }
    if (l->maxComputeWorkGroupInvocations < 256 || l->maxComputeWorkGroupSize[0] < 256) {
        return "256 invocations per workgroup";
    }
    if (l->maxComputeSharedMemorySize < 8192) {
        return "8 KiB of shared memory";
    }
    if (l->maxPushConstantsSize < 128) {
        return "128 bytes of push constants";
    }
    int host = 0;
    for (uint32_t i = 0; i < p->mem.memoryTypeCount; i++) {
        VkMemoryPropertyFlags f = p->mem.memoryTypes[i].propertyFlags;
        host |=
            (f & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT) && (f & VK_MEMORY_PROPERTY_HOST_COHERENT_BIT);
    }
    if (!host) {
        return "host-visible coherent memory";
    }
    return NULL;
}

static void unload(void) {
    if (g.instance != VK_NULL_HANDLE) {
        if (g.messenger != VK_NULL_HANDLE && vkf.vkDestroyDebugUtilsMessengerEXT != NULL) {
            vkf.vkDestroyDebugUtilsMessengerEXT(g.instance, g.messenger, NULL);
        }
        vkf.vkDestroyInstance(g.instance, NULL);
    }
    if (g.lib != NULL) {
        dlclose(g.lib);
    }
    memset(&g, 0, sizeof g);
    memset(&vkf, 0, sizeof vkf);
}

/* Loads the loader, makes the instance and lists usable devices; sets g.why when none. */
static void do_probe(void) {
    g.probed = 1;
    dlerror();
    g.lib = dlopen("libvulkan.so.1", RTLD_NOW | RTLD_LOCAL);
    if (g.lib == NULL) {
        const char *e = dlerror();
        snprintf(g.why, sizeof g.why, "no Vulkan loader (%s)", e ? e : "libvulkan.so.1");
        return;
    }
    void *sym = dlsym(g.lib, "vkGetInstanceProcAddr");
    if (sym == NULL) {
        snprintf(g.why, sizeof g.why,
                 "no Vulkan loader (libvulkan.so.1 lacks vkGetInstanceProcAddr)");
        return;
    }
    memcpy(&vkf.vkGetInstanceProcAddr, &sym, sizeof sym);
#define VK_LOAD_GLOBAL(name)                                                                       \
    vkf.name = (PFN_##name)vkf.vkGetInstanceProcAddr(VK_NULL_HANDLE, #name);                       \
    if (vkf.name == NULL) {                                                                        \
        snprintf(g.why, sizeof g.why, "no Vulkan loader (no %s)", #name);                          \
        return;                                                                                    \
    }
    VK_GLOBAL_FUNCS(VK_LOAD_GLOBAL)
#undef VK_LOAD_GLOBAL

    uint32_t api = VK_API_VERSION_1_0;
    PFN_vkEnumerateInstanceVersion enum_version =
        (PFN_vkEnumerateInstanceVersion)vkf.vkGetInstanceProcAddr(VK_NULL_HANDLE,
                                                                  "vkEnumerateInstanceVersion");
    if (enum_version != NULL) {
        uint32_t v = 0;
        if (enum_version(&v) == VK_SUCCESS && v >= VK_API_VERSION_1_1) {
            api = v >= VK_API_VERSION_1_2 ? VK_API_VERSION_1_2 : VK_API_VERSION_1_1;
        }
    }

    g.validation = env_on("LAMINA_VULKAN_VALIDATION");
    const char *layers[1] = {VK_VALIDATION_LAYER};
    const char *exts[1] = {VK_EXT_DEBUG_UTILS_EXTENSION_NAME};
    if (g.validation && !has_layer(VK_VALIDATION_LAYER)) {
        snprintf(g.why, sizeof g.why,
                 "LAMINA_VULKAN_VALIDATION is set but the layer %s is not installed "
                 "(Debian: vulkan-validationlayers)",
                 VK_VALIDATION_LAYER);
        return;
    }
    VkApplicationInfo app;
    memset(&app, 0, sizeof app);
    app.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO;
    app.pApplicationName = "lamina";
    app.pEngineName = "lamina";
    app.apiVersion = api;
    VkDebugUtilsMessengerCreateInfoEXT mi;
    memset(&mi, 0, sizeof mi);
    mi.sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT;
    mi.messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT |
                         VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT;
    mi.messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT |
                     VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                     VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT;
    mi.pfnUserCallback = on_message;
    VkInstanceCreateInfo ci;
    memset(&ci, 0, sizeof ci);
    ci.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO;
    ci.pApplicationInfo = &app;
    if (g.validation) {
        ci.enabledLayerCount = 1;
        ci.ppEnabledLayerNames = layers;
        ci.enabledExtensionCount = 1;
        ci.ppEnabledExtensionNames = exts;
        ci.pNext = &mi; /* also catches messages of vkCreateInstance itself */
    }
    VkResult r = vkf.vkCreateInstance(&ci, NULL, &g.instance);
    if (r != VK_SUCCESS) {
        g.instance = VK_NULL_HANDLE;
        snprintf(g.why, sizeof g.why, "no Vulkan device (vkCreateInstance: %s)",
                 vk_result_string(r));
        return;
    }
#define VK_LOAD_INSTANCE(name)                                                                     \
    vkf.name = (PFN_##name)vkf.vkGetInstanceProcAddr(g.instance, #name);                           \
    if (vkf.name == NULL) {                                                                        \
        snprintf(g.why, sizeof g.why, "no Vulkan device (the loader lacks %s)", #name);            \
        return;                                                                                    \
    }
#define VK_LOAD_OPTIONAL(name) vkf.name = (PFN_##name)vkf.vkGetInstanceProcAddr(g.instance, #name);
    VK_INSTANCE_FUNCS(VK_LOAD_INSTANCE)
    VK_DEVICE_FUNCS(VK_LOAD_INSTANCE) /* loader trampolines: valid for every device */
    VK_INSTANCE_OPT_FUNCS(VK_LOAD_OPTIONAL)
#undef VK_LOAD_INSTANCE
#undef VK_LOAD_OPTIONAL
    if (g.validation) {
        if (vkf.vkCreateDebugUtilsMessengerEXT == NULL ||
            vkf.vkCreateDebugUtilsMessengerEXT(g.instance, &mi, NULL, &g.messenger) != VK_SUCCESS) {
            snprintf(g.why, sizeof g.why,
                     "LAMINA_VULKAN_VALIDATION is set but no debug messenger could be made");
            return;
        }
    }

    uint32_t count = 0;
    r = vkf.vkEnumeratePhysicalDevices(g.instance, &count, NULL);
    if (r != VK_SUCCESS || count == 0) {
        snprintf(g.why, sizeof g.why, "no Vulkan device%s%s", r != VK_SUCCESS ? " (" : "",
                 r != VK_SUCCESS ? vk_result_string(r) : "");
        if (r != VK_SUCCESS) {
            strncat(g.why, ")", sizeof g.why - strlen(g.why) - 1);
        }
        return;
    }
    VkPhysicalDevice pds[VK_MAX_PHYSICAL];
    if (count > VK_MAX_PHYSICAL) {
        count = VK_MAX_PHYSICAL;
    }
    r = vkf.vkEnumeratePhysicalDevices(g.instance, &count, pds);
    if (r != VK_SUCCESS && r != VK_INCOMPLETE) {
        snprintf(g.why, sizeof g.why, "no Vulkan device (%s)", vk_result_string(r));
        return;
    }
    const char *first_lack = NULL;
    char first_name[VK_MAX_PHYSICAL_DEVICE_NAME_SIZE] = "";
    for (uint32_t i = 0; i < count; i++) {
        vk_physical p;
        memset(&p, 0, sizeof p);
        p.pd = pds[i];
        vkf.vkGetPhysicalDeviceProperties(p.pd, &p.props);
        vkf.vkGetPhysicalDeviceMemoryProperties(p.pd, &p.mem);
        p.queue_family = UINT32_MAX;
        uint32_t nq = 0;
        vkf.vkGetPhysicalDeviceQueueFamilyProperties(p.pd, &nq, NULL);
        VkQueueFamilyProperties qf[32];
        if (nq > 32) {
            nq = 32;
        }
        vkf.vkGetPhysicalDeviceQueueFamilyProperties(p.pd, &nq, qf);
        /* Prefer a compute queue without graphics (an async compute queue). */
        for (int pass = 0; pass < 2 && p.queue_family == UINT32_MAX; pass++) {
            for (uint32_t q = 0; q < nq; q++) {
                int compute = (qf[q].queueFlags & VK_QUEUE_COMPUTE_BIT) != 0;
                int gfx = (qf[q].queueFlags & VK_QUEUE_GRAPHICS_BIT) != 0;
                if (compute && qf[q].queueCount > 0 && (pass == 1 || !gfx)) {
                    p.queue_family = q;
                    break;
                }
            }
        }
        for (uint32_t t = 0; t < p.mem.memoryTypeCount; t++) {
            VkMemoryPropertyFlags f = p.mem.memoryTypes[t].propertyFlags;
            const VkMemoryPropertyFlags want = VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT |
                                               VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT |
                                               VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
            p.host_visible_device_local |= (f & want) == want;
        }
        const char *why = lacks(&p);
        if (why != NULL) {
            if (first_lack == NULL) {
                first_lack = why;
                copy_str(first_name, sizeof first_name, p.props.deviceName);
            }
            continue;
        }
        describe_driver(&p, api);
        /* insertion by kind, stable within a kind */
        uint32_t at = g.n;
        while (at > 0 &&
               kind_rank(g.phys[at - 1].props.deviceType) > kind_rank(p.props.deviceType)) {
            g.phys[at] = g.phys[at - 1];
            at--;
        }
        g.phys[at] = p;
        g.n++;
    }
    if (g.n == 0) {
        if (first_lack != NULL) {
            snprintf(g.why, sizeof g.why, "device lacks %s (%s)", first_lack, first_name);
        } else {
            snprintf(g.why, sizeof g.why, "no Vulkan device");
        }
    }
}

static pthread_mutex_t g_probe_lock = PTHREAD_MUTEX_INITIALIZER;

static void ensure_probed(void) {
    pthread_mutex_lock(&g_probe_lock);
    if (!g.probed) {
        do_probe();
    }
    pthread_mutex_unlock(&g_probe_lock);
}

static lam_status backend_probe(void *user, uint32_t *n_devices, char *why, size_t why_cap) {
    (void)user;
    if (n_devices == NULL) {
        return vk_error(LAM_ERR_INVALID_ARGUMENT, "vulkan: Invalid argument, n_devices is NULL");
    }
    ensure_probed();
    *n_devices = g.n;
    if (why != NULL) {
        copy_str(why, why_cap, g.n > 0 ? "" : g.why);
    }
    return LAM_OK;
}

static lam_status check_index(uint32_t index) {
    ensure_probed();
    if (g.n == 0) {
        return vk_error(LAM_ERR_DEVICE_UNAVAILABLE, "vulkan: Device unavailable, %s", g.why);
    }
    if (index >= g.n) {
        return vk_error(LAM_ERR_NOT_FOUND, "vulkan: Device not found, index %u (there %s %u)",
                        (unsigned)index, g.n == 1 ? "is" : "are", (unsigned)g.n);
    }
    return LAM_OK;
}

#define FITS(info, field)                                                                          \
    (offsetof(lam_device_info, field) + sizeof((info)->field) <= (size_t)(info)->struct_size)

static lam_device_kind kind_of(VkPhysicalDeviceType t) {
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU:
        return LAM_DEVICE_DISCRETE_GPU;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU:
        return LAM_DEVICE_INTEGRATED_GPU;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU:
        return LAM_DEVICE_VIRTUAL_GPU;
    case VK_PHYSICAL_DEVICE_TYPE_CPU:
        return LAM_DEVICE_CPU;
    default:
        return LAM_DEVICE_OTHER;
    }
}

static lam_status backend_device_info(void *user, uint32_t index, lam_device_info *info) {
    (void)user;
    if (info == NULL || info->struct_size < 2 * sizeof(uint32_t)) {
        return vk_error(LAM_ERR_INVALID_ARGUMENT,
                        "vulkan: Invalid argument, device_info needs a lam_device_info with "
                        "struct_size set");
    }
    lam_status st = check_index(index);
    if (st != LAM_OK) {
        return st;
    }
    const vk_physical *p = &g.phys[index];
    const VkPhysicalDeviceLimits *l = &p->props.limits;
    if (FITS(info, kind)) {
        info->kind = kind_of(p->props.deviceType);
    }
    if (FITS(info, memory_bytes)) {
        uint64_t mem = 0;
        for (uint32_t h = 0; h < p->mem.memoryHeapCount; h++) {
            if (p->mem.memoryHeaps[h].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) {
                mem += p->mem.memoryHeaps[h].size;
            }
        }
        info->memory_bytes = mem;
    }
    if (FITS(info, compute_units)) {
        info->compute_units = 0; /* Vulkan 1.0 does not say */
    }
    if (FITS(info, name)) {
        copy_str(info->name, sizeof info->name, p->props.deviceName);
    }
    if (FITS(info, driver)) {
        copy_str(info->driver, sizeof info->driver, p->driver);
    }
    if (FITS(info, details)) {
        const uint32_t a = p->props.apiVersion;
        snprintf(info->details, sizeof info->details,
                 "Vulkan %u.%u.%u; maxComputeWorkGroupCount (%u, %u, %u); "
                 "maxComputeWorkGroupSize (%u, %u, %u); maxComputeWorkGroupInvocations %u; "
                 "maxStorageBufferRange %u; minStorageBufferOffsetAlignment %llu; "
                 "maxComputeSharedMemorySize %u; host-visible device-local memory: %s%s%s",
                 VK_API_VERSION_MAJOR(a), VK_API_VERSION_MINOR(a), VK_API_VERSION_PATCH(a),
                 l->maxComputeWorkGroupCount[0], l->maxComputeWorkGroupCount[1],
                 l->maxComputeWorkGroupCount[2], l->maxComputeWorkGroupSize[0],
                 l->maxComputeWorkGroupSize[1], l->maxComputeWorkGroupSize[2],
                 l->maxComputeWorkGroupInvocations, l->maxStorageBufferRange,
                 (unsigned long long)l->minStorageBufferOffsetAlignment,
                 l->maxComputeSharedMemorySize, p->host_visible_device_local ? "yes" : "no",
                 env_on("LAMINA_VULKAN_FORCE_STAGING") ? " (staging forced)" : "",
                 g.validation ? "; validation layer on" : "");
    }
    return LAM_OK;
}

static void device_destroy(vk_device *d) {
    if (d == NULL) {
        return;
    }
    if (d->device != VK_NULL_HANDLE) {
        vkf.vkDeviceWaitIdle(d->device);
        vk_queue_fini(d);
        vk_memory_fini(d);
        for (int i = 0; i < VK_SHADER_COUNT; i++) {
            if (d->pipelines[i] != VK_NULL_HANDLE) {
                vkf.vkDestroyPipeline(d->device, d->pipelines[i], NULL);
            }
        }
        if (d->pipe_layout != VK_NULL_HANDLE) {
            vkf.vkDestroyPipelineLayout(d->device, d->pipe_layout, NULL);
        }
        if (d->set_layout != VK_NULL_HANDLE) {
            vkf.vkDestroyDescriptorSetLayout(d->device, d->set_layout, NULL);
        }
        vkf.vkDestroyDevice(d->device, NULL);
    }
    free(d->acc);
    d->magic = 0;
    free(d);
}

static lam_status make_layouts(vk_device *d) {
    VkDescriptorSetLayoutBinding b[3];
    memset(b, 0, sizeof b);
    for (uint32_t i = 0; i < 3; i++) {
        b[i].binding = i;
        b[i].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
        b[i].descriptorCount = 1;
        b[i].stageFlags = VK_SHADER_STAGE_COMPUTE_BIT;
    }
    VkDescriptorSetLayoutCreateInfo li;
    memset(&li, 0, sizeof li);
    li.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO;
    li.bindingCount = 3;
    li.pBindings = b;
    VkResult r = vkf.vkCreateDescriptorSetLayout(d->device, &li, NULL, &d->set_layout);
    if (r != VK_SUCCESS) {
        return vk_error(LAM_ERR_BACKEND, "vulkan: Descriptor set layout failed, %s",
                        vk_result_string(r));
    }
    VkPushConstantRange pr;
    pr.stageFlags = VK_SHADER_STAGE_COMPUTE_BIT;
    pr.offset = 0;
    pr.size = 128;
    VkPipelineLayoutCreateInfo pi;
    memset(&pi, 0, sizeof pi);
    pi.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO;
    pi.setLayoutCount = 1;
    pi.pSetLayouts = &d->set_layout;
    pi.pushConstantRangeCount = 1;
    pi.pPushConstantRanges = &pr;
    r = vkf.vkCreatePipelineLayout(d->device, &pi, NULL, &d->pipe_layout);
    if (r != VK_SUCCESS) {
        return vk_error(LAM_ERR_BACKEND, "vulkan: Pipeline layout failed, %s", vk_result_string(r));
    }
    return LAM_OK;
}

lam_status vk_pipeline(vk_device *d, vk_shader_id id, VkPipeline *out) {
    /* Made on first use: compiling every shader at device open would cost each process that
     * opens the device the compile time of shaders it never runs (lavapipe compiles here). */
    if (d->pipelines[id] != VK_NULL_HANDLE) {
        *out = d->pipelines[id];
        return LAM_OK;
    }
    const vk_shader_code code = vk_shader_get(id);
    VkShaderModuleCreateInfo si;
    memset(&si, 0, sizeof si);
    si.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO;
    si.codeSize = code.bytes;
    si.pCode = code.words;
    VkShaderModule mod;
    VkResult r = vkf.vkCreateShaderModule(d->device, &si, NULL, &mod);
    if (r != VK_SUCCESS) {
        return vk_error(LAM_ERR_BACKEND, "vulkan: Shader module %s failed, %s", code.name,
                        vk_result_string(r));
    }
    VkComputePipelineCreateInfo ci;
    memset(&ci, 0, sizeof ci);
    ci.sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO;
    ci.stage.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO;
    ci.stage.stage = VK_SHADER_STAGE_COMPUTE_BIT;
    ci.stage.module = mod;
    ci.stage.pName = "main";
    ci.layout = d->pipe_layout;
    r = vkf.vkCreateComputePipelines(d->device, VK_NULL_HANDLE, 1, &ci, NULL, &d->pipelines[id]);
    vkf.vkDestroyShaderModule(d->device, mod, NULL);
    if (r != VK_SUCCESS) {
        d->pipelines[id] = VK_NULL_HANDLE;
        return vk_error(LAM_ERR_BACKEND, "vulkan: Compute pipeline %s failed, %s", code.name,
                        vk_result_string(r));
    }
    *out = d->pipelines[id];
    return LAM_OK;
}

static lam_status backend_device_open(void *user, uint32_t index, void **out) {
    (void)user;
    if (out == NULL) {
        return vk_error(LAM_ERR_INVALID_ARGUMENT, "vulkan: Invalid argument, dev is NULL");
    }
    *out = NULL;
    lam_status st = check_index(index);
    if (st != LAM_OK) {
        return st;
    }
    vk_device *d = calloc(1, sizeof *d);
    if (d == NULL) {
        return vk_error(LAM_ERR_OUT_OF_MEMORY, "vulkan: Out of memory, opening device %u",
                        (unsigned)index);
    }
    d->magic = VK_DEVICE_MAGIC;
    d->index = index;
    d->phys = &g.phys[index];
    uint64_t before = vk_validation_count();
    vk_validation_set_op("device_open");
    const float prio = 1.0f;
    VkDeviceQueueCreateInfo qi;
    memset(&qi, 0, sizeof qi);
    qi.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO;
    qi.queueFamilyIndex = d->phys->queue_family;
    qi.queueCount = 1;
    qi.pQueuePriorities = &prio;
    VkDeviceCreateInfo di;
    memset(&di, 0, sizeof di);
    di.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO;
    di.queueCreateInfoCount = 1;
    di.pQueueCreateInfos = &qi;
    VkResult r = vkf.vkCreateDevice(d->phys->pd, &di, NULL, &d->device);
    if (r != VK_SUCCESS) {
        d->device = VK_NULL_HANDLE;
        device_destroy(d);
        vk_validation_set_op(NULL);
        return vk_error(LAM_ERR_DEVICE_UNAVAILABLE,
                        "vulkan: Device unavailable, vkCreateDevice: %s", vk_result_string(r));
    }
    vkf.vkGetDeviceQueue(d->device, d->phys->queue_family, 0, &d->queue);
    st = make_layouts(d);
    if (st == LAM_OK) {
        st = vk_memory_init(d);
    }
    if (st == LAM_OK) {
        st = vk_queue_init(d);
    }
    if (st == LAM_OK) {
        st = vk_check_validation(d, before, "device_open");
    }
    vk_validation_set_op(NULL);
    if (st != LAM_OK) {
        device_destroy(d);
        return st;
    }
    vk_log(LAM_LOG_INFO, "vulkan(%u): %s, %s", (unsigned)index, d->phys->props.deviceName,
           d->phys->driver);
    *out = d;
    return LAM_OK;
}

static void backend_device_close(void *dev) {
    vk_device *d = dev;
    if (d == NULL || d->magic != VK_DEVICE_MAGIC) {
        return;
    }
    vk_wait_all(d);
    device_destroy(d);
}

static lam_status backend_synchronize(void *dev) {
    vk_device *d = dev;
    if (d == NULL || d->magic != VK_DEVICE_MAGIC) {
        return vk_error(LAM_ERR_INVALID_ARGUMENT, "vulkan: Invalid argument, not a vulkan device");
    }
    return vk_wait_all(d);
}

static void backend_shutdown(void *user) {
    (void)user;
    pthread_mutex_lock(&g_probe_lock);
    unload();
    pthread_mutex_unlock(&g_probe_lock);
    pthread_mutex_lock(&g_msg_lock);
    g_msg_pending = 0;
    g_msg_count = 0;
    g_msg[0] = '\0';
    g_msg_op[0] = '\0';
    pthread_mutex_unlock(&g_msg_lock);
}

static const lam_backend_desc vk_backend_desc = {
    LAM_BACKEND_DESC_HEADER,
    .name = "vulkan",
    .version = VK_PLUGIN_VERSION,
    .doc = "Vulkan compute backend: GLSL compute shaders compiled to SPIR-V at build time",
    .user = NULL,
    .probe = backend_probe,
    .device_info = backend_device_info,
    .device_open = backend_device_open,
    .device_close = backend_device_close,
    .buffer_alloc = vk_buffer_alloc,
    .buffer_free = vk_buffer_free,
    .buffer_write = vk_buffer_write,
    .buffer_read = vk_buffer_read,
    .buffer_copy = vk_buffer_copy,
    .supports_op = vk_supports_op,
    .execute = vk_execute,
    .synchronize = backend_synchronize,
    .shutdown = backend_shutdown,
};

LAM_PLUGIN_ENTRY {
    lam_status st = lam_plugin_check_host(host);
    if (st != LAM_OK) {
        return st;
    }
    if (host->register_backend == NULL) {
        return host->set_error(LAM_ERR_ABI, "vulkan: ABI mismatch, host has no register_backend");
    }
    vk_host = host;
    return host->register_backend(plugin, &vk_backend_desc);
}
