/*
 * vk_loader.h - libvulkan loaded at run time, the instance, and the physical devices found.
 *
 * The plugin never links libvulkan: vk_loader.c dlopen()s libvulkan.so.1 at probe time and
 * fills the function table below, so the plugin always loads and reports why it has no device.
 * Level 1: it calls only vk_diag.
 */
#ifndef LAMINA_VK_LOADER_H
#define LAMINA_VK_LOADER_H

#include "vk_diag.h"

#include <stdint.h>

/* ---- Vulkan entry points, loaded at run time ---- */

#define VK_GLOBAL_FUNCS(X)                                                                         \
    X(vkCreateInstance)                                                                            \
    X(vkEnumerateInstanceLayerProperties)                                                          \
    X(vkEnumerateInstanceExtensionProperties)

#define VK_INSTANCE_FUNCS(X)                                                                       \
    X(vkDestroyInstance)                                                                           \
    X(vkEnumeratePhysicalDevices)                                                                  \
    X(vkGetPhysicalDeviceProperties)                                                               \
    X(vkGetPhysicalDeviceQueueFamilyProperties)                                                    \
    X(vkGetPhysicalDeviceMemoryProperties)                                                         \
    X(vkCreateDevice)                                                                              \
    X(vkGetDeviceProcAddr)

/* Optional instance-level functions (NULL when absent). */
#define VK_INSTANCE_OPT_FUNCS(X)                                                                   \
    X(vkGetPhysicalDeviceProperties2)                                                              \
    X(vkCreateDebugUtilsMessengerEXT)                                                              \
    X(vkDestroyDebugUtilsMessengerEXT)

#define VK_DEVICE_FUNCS(X)                                                                         \
    X(vkDestroyDevice)                                                                             \
    X(vkGetDeviceQueue)                                                                            \
    X(vkDeviceWaitIdle)                                                                            \
    X(vkAllocateMemory)                                                                            \
    X(vkFreeMemory)                                                                                \
    X(vkMapMemory)                                                                                 \
    X(vkUnmapMemory)                                                                               \
    X(vkCreateBuffer)                                                                              \
    X(vkDestroyBuffer)                                                                             \
    X(vkGetBufferMemoryRequirements)                                                               \
    X(vkBindBufferMemory)                                                                          \
    X(vkCreateShaderModule)                                                                        \
    X(vkDestroyShaderModule)                                                                       \
    X(vkCreateDescriptorSetLayout)                                                                 \
    X(vkDestroyDescriptorSetLayout)                                                                \
    X(vkCreatePipelineLayout)                                                                      \
    X(vkDestroyPipelineLayout)                                                                     \
    X(vkCreateComputePipelines)                                                                    \
    X(vkDestroyPipeline)                                                                           \
    X(vkCreateDescriptorPool)                                                                      \
    X(vkDestroyDescriptorPool)                                                                     \
    X(vkResetDescriptorPool)                                                                       \
    X(vkAllocateDescriptorSets)                                                                    \
    X(vkUpdateDescriptorSets)                                                                      \
    X(vkCreateCommandPool)                                                                         \
    X(vkDestroyCommandPool)                                                                        \
    X(vkAllocateCommandBuffers)                                                                    \
    X(vkResetCommandBuffer)                                                                        \
    X(vkBeginCommandBuffer)                                                                        \
    X(vkEndCommandBuffer)                                                                          \
    X(vkCmdBindPipeline)                                                                           \
    X(vkCmdBindDescriptorSets)                                                                     \
    X(vkCmdPushConstants)                                                                          \
    X(vkCmdDispatch)                                                                               \
    X(vkCmdPipelineBarrier)                                                                        \
    X(vkCmdCopyBuffer)                                                                             \
    X(vkCreateFence)                                                                               \
    X(vkDestroyFence)                                                                              \
    X(vkResetFences)                                                                               \
    X(vkWaitForFences)                                                                             \
    X(vkQueueSubmit)

typedef struct vk_funcs {
    PFN_vkGetInstanceProcAddr vkGetInstanceProcAddr;
#define VK_DECLARE(name) PFN_##name name;
    VK_GLOBAL_FUNCS(VK_DECLARE)
    VK_INSTANCE_FUNCS(VK_DECLARE)
    VK_INSTANCE_OPT_FUNCS(VK_DECLARE)
    VK_DEVICE_FUNCS(VK_DECLARE)
#undef VK_DECLARE
} vk_funcs;

/* The loaded entry points. Device-level ones come from the first device opened (every device
 * of one loader dispatches through the same trampolines, so they are valid for all). */
extern vk_funcs vkf;

/* A usable physical device, as probing found it. */
typedef struct vk_physical {
    VkPhysicalDevice pd;
    VkPhysicalDeviceProperties props;
    VkPhysicalDeviceMemoryProperties mem;
    uint32_t queue_family;
    char driver[128];
    int host_visible_device_local; /* a DEVICE_LOCAL | HOST_VISIBLE | HOST_COHERENT type */
} vk_physical;

/*
 * Loads libvulkan, makes the instance and lists the usable devices, best first (discrete GPU,
 * integrated GPU, virtual GPU, other, CPU); once, thread safe. Returns how many there are;
 * when none, *why (if why is not NULL) says why, valid until vk_loader_unload.
 */
uint32_t vk_loader_probe(const char **why);
/* The physical device at index, which must be below vk_loader_probe's count. */
const vk_physical *vk_loader_physical(uint32_t index);
/* The instance (VK_NULL_HANDLE before a successful probe). */
VkInstance vk_loader_instance(void);
/* Nonzero when the validation layer is on (LAMINA_VULKAN_VALIDATION). */
int vk_loader_validation(void);
/* Destroys the instance and unloads libvulkan; the next probe starts over. */
void vk_loader_unload(void);

#endif /* LAMINA_VK_LOADER_H */
