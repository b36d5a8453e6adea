/* cpu_kern_avx512.c - cpu_kern_impl.h's loops for the avx512 instruction set (flags:
 * CMakeLists.txt). */
#define CPU_KERN_SFX avx512
#include "cpu_kern_impl.h"
