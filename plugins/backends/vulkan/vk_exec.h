/*
 * vk_exec.h - the backend's supports and execute callbacks: every op call is checked, then
 * handed to the kernel that records it.
 */
#ifndef LAMINA_VK_EXEC_H
#define LAMINA_VK_EXEC_H

#include "lamina/plugin.h"

#include <stdint.h>

int32_t vk_supports(void *dev, const lam_op_call *call);
lam_status vk_execute(void *dev, const lam_op_call *call);

#endif /* LAMINA_VK_EXEC_H */
