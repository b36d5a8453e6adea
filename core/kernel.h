/*
 * Plugin kernels run by name (kernel.c): lam_kernel_call of lamina.h. Private to core/.
 */
#ifndef LAMINA_CORE_KERNEL_H
#define LAMINA_CORE_KERNEL_H

#include "lamina/lamina.h"

#endif
