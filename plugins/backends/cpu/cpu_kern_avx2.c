/* cpu_kern_avx2.c - cpu_kern_impl.h's loops for the avx2 instruction set (flags: CMakeLists.txt).
 */
#define CPU_KERN_SFX avx2
#include "cpu_kern_impl.h"
