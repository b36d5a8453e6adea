/* cpu_kern_base.c - cpu_kern_impl.h's loops for the base instruction set (flags: CMakeLists.txt).
 */
#define CPU_KERN_SFX base
#include "cpu_kern_impl.h"
