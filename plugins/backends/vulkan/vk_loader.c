/*
 * vk_loader.c - loading libvulkan, making the instance (with the validation layer's messenger
 * when LAMINA_VULKAN_VALIDATION is set), probing and ordering the physical devices.
 *
 * libvulkan.so.1 is dlopen()ed at probe time, never linked, so the plugin loads on every
 * machine and says why it has no device ("no Vulkan loader (...)", "no Vulkan device",
 * "device lacks ..."). Devices are ordered discrete GPU, integrated GPU, virtual GPU, other,
 * CPU (lavapipe), so device 0 is the best one.
 */
#define _GNU_SOURCE

#include "vk_loader.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VK_MAX_PHYSICAL     16
#define VK_VALIDATION_LAYER "VK_LAYER_KHRONOS_validation"

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

static pthread_mutex_t g_probe_lock = PTHREAD_MUTEX_INITIALIZER;

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

/* dlopen()s the loader and takes its global entry points; 0 (and g.why) when it cannot. */
static int load_library(void) {
    dlerror();
    g.lib = dlopen("libvulkan.so.1", RTLD_NOW | RTLD_LOCAL);
    if (g.lib == NULL) {
        const char *e = dlerror();
        snprintf(g.why, sizeof g.why, "no Vulkan loader (%s)", e ? e : "libvulkan.so.1");
        return 0;
    }
    void *sym = dlsym(g.lib, "vkGetInstanceProcAddr");
    if (sym == NULL) {
        snprintf(g.why, sizeof g.why,
                 "no Vulkan loader (libvulkan.so.1 lacks vkGetInstanceProcAddr)");
        return 0;
    }
    memcpy(&vkf.vkGetInstanceProcAddr, &sym, sizeof sym);
#define VK_LOAD_GLOBAL(name)                                                                       \
    vkf.name = (PFN_##name)vkf.vkGetInstanceProcAddr(VK_NULL_HANDLE, #name);                       \
    if (vkf.name == NULL) {                                                                        \
        snprintf(g.why, sizeof g.why, "no Vulkan loader (no %s)", #name);                          \
        return 0;                                                                                  \
    }
    VK_GLOBAL_FUNCS(VK_LOAD_GLOBAL)
#undef VK_LOAD_GLOBAL
    return 1;
}

/* The instance API version to ask for: 1.2 or 1.1 when the loader has it, else 1.0. */
static uint32_t instance_api(void) {
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
    return api;
}

static void messenger_info(VkDebugUtilsMessengerCreateInfoEXT *mi) {
    memset(mi, 0, sizeof *mi);
    mi->sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT;
    mi->messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT |
                          VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT;
    mi->messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT |
                      VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                      VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT;
    mi->pfnUserCallback = vk_validation_on_message;
}

/* Takes the instance-level entry points (and the messenger when validating); 0 on failure. */
static int load_instance_funcs(const VkDebugUtilsMessengerCreateInfoEXT *mi) {
#define VK_LOAD_INSTANCE(name)                                                                     \
    vkf.name = (PFN_##name)vkf.vkGetInstanceProcAddr(g.instance, #name);                           \
    if (vkf.name == NULL) {                                                                        \
        snprintf(g.why, sizeof g.why, "no Vulkan device (the loader lacks %s)", #name);            \
        return 0;                                                                                  \
    }
#define VK_LOAD_OPTIONAL(name) vkf.name = (PFN_##name)vkf.vkGetInstanceProcAddr(g.instance, #name);
    VK_INSTANCE_FUNCS(VK_LOAD_INSTANCE)
    VK_DEVICE_FUNCS(VK_LOAD_INSTANCE) /* loader trampolines: valid for every device */
    VK_INSTANCE_OPT_FUNCS(VK_LOAD_OPTIONAL)
#undef VK_LOAD_INSTANCE
#undef VK_LOAD_OPTIONAL
    if (g.validation) {
        if (vkf.vkCreateDebugUtilsMessengerEXT == NULL ||
            vkf.vkCreateDebugUtilsMessengerEXT(g.instance, mi, NULL, &g.messenger) != VK_SUCCESS) {
            snprintf(g.why, sizeof g.why,
                     "LAMINA_VULKAN_VALIDATION is set but no debug messenger could be made");
            return 0;
        }
    }
    return 1;
}

/* Makes the instance (with the validation layer when asked for); 0 and g.why on failure. */
static int create_instance(uint32_t api) {
    g.validation = vk_env_on("LAMINA_VULKAN_VALIDATION");
    const char *layers[1] = {VK_VALIDATION_LAYER};
    const char *exts[1] = {VK_EXT_DEBUG_UTILS_EXTENSION_NAME};
    if (g.validation && !has_layer(VK_VALIDATION_LAYER)) {
        snprintf(g.why, sizeof g.why,
                 "LAMINA_VULKAN_VALIDATION is set but the layer %s is not installed "
                 "(Debian: vulkan-validationlayers)",
                 VK_VALIDATION_LAYER);
        return 0;
    }
    VkApplicationInfo app;
    memset(&app, 0, sizeof app);
    app.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO;
    app.pApplicationName = "lamina";
    app.pEngineName = "lamina";
    app.apiVersion = api;
    VkDebugUtilsMessengerCreateInfoEXT mi;
    messenger_info(&mi);
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
        return 0;
    }
    return load_instance_funcs(&mi);
}

/* Properties, memory types and the compute queue family of one physical device. */
static void inspect_physical(VkPhysicalDevice pd, vk_physical *p) {
    memset(p, 0, sizeof *p);
    p->pd = pd;
    vkf.vkGetPhysicalDeviceProperties(p->pd, &p->props);
    vkf.vkGetPhysicalDeviceMemoryProperties(p->pd, &p->mem);
    p->queue_family = UINT32_MAX;
    uint32_t nq = 0;
    vkf.vkGetPhysicalDeviceQueueFamilyProperties(p->pd, &nq, NULL);
    VkQueueFamilyProperties qf[32];
    if (nq > 32) {
        nq = 32;
    }
    vkf.vkGetPhysicalDeviceQueueFamilyProperties(p->pd, &nq, qf);
    /* Prefer a compute queue without graphics (an async compute queue). */
    for (int pass = 0; pass < 2 && p->queue_family == UINT32_MAX; pass++) {
        for (uint32_t q = 0; q < nq; q++) {
            int compute = (qf[q].queueFlags & VK_QUEUE_COMPUTE_BIT) != 0;
            int gfx = (qf[q].queueFlags & VK_QUEUE_GRAPHICS_BIT) != 0;
            if (compute && qf[q].queueCount > 0 && (pass == 1 || !gfx)) {
                p->queue_family = q;
                break;
            }
        }
    }
    for (uint32_t t = 0; t < p->mem.memoryTypeCount; t++) {
        VkMemoryPropertyFlags f = p->mem.memoryTypes[t].propertyFlags;
        const VkMemoryPropertyFlags want = VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT |
                                           VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT |
                                           VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
        p->host_visible_device_local |= (f & want) == want;
    }
}

/* Inserts a usable device by kind, stable within a kind. */
static void add_physical(const vk_physical *p) {
    uint32_t at = g.n;
    while (at > 0 && kind_rank(g.phys[at - 1].props.deviceType) > kind_rank(p->props.deviceType)) {
        g.phys[at] = g.phys[at - 1];
        at--;
    }
    g.phys[at] = *p;
    g.n++;
}

/* Lists the physical devices that can run the shaders; g.why says why when none. */
static void list_devices(uint32_t api) {
    uint32_t count = 0;
    VkResult r = vkf.vkEnumeratePhysicalDevices(g.instance, &count, NULL);
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
        inspect_physical(pds[i], &p);
        const char *why = lacks(&p);
        if (why != NULL) {
            if (first_lack == NULL) {
                first_lack = why;
                vk_copy_str(first_name, sizeof first_name, p.props.deviceName);
            }
            continue;
        }
        describe_driver(&p, api);
        add_physical(&p);
    }
    if (g.n == 0) {
        if (first_lack != NULL) {
            snprintf(g.why, sizeof g.why, "device lacks %s (%s)", first_lack, first_name);
        } else {
            snprintf(g.why, sizeof g.why, "no Vulkan device");
        }
    }
}

/* Loads the loader, makes the instance and lists usable devices; sets g.why when none. */
static void do_probe(void) {
    g.probed = 1;
    if (!load_library()) {
        return;
    }
    uint32_t api = instance_api();
    if (!create_instance(api)) {
        return;
    }
    list_devices(api);
}

uint32_t vk_loader_probe(const char **why) {
    pthread_mutex_lock(&g_probe_lock);
    if (!g.probed) {
        do_probe();
    }
    uint32_t n = g.n;
    if (why != NULL) {
        *why = g.why;
    }
    pthread_mutex_unlock(&g_probe_lock);
    return n;
}

const vk_physical *vk_loader_physical(uint32_t index) {
    return &g.phys[index];
}

VkInstance vk_loader_instance(void) {
    return g.instance;
}

int vk_loader_validation(void) {
    return g.validation;
}

void vk_loader_unload(void) {
    pthread_mutex_lock(&g_probe_lock);
    unload();
    pthread_mutex_unlock(&g_probe_lock);
}
