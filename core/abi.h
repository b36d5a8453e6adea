/*
 * The plugin ABI's layout fingerprints and descriptor sizes (abi.c). Private to core/.
 */
#ifndef LAMINA_CORE_ABI_H
#define LAMINA_CORE_ABI_H

#include <stdint.h>

/* Fingerprint of the layout this core was compiled with. */
uint64_t lam__abi_fingerprint(void);
/* Expected descriptor sizes for a given minor of the current major; 0 when unknown. */
uint32_t lam__backend_desc_size(uint32_t minor);
uint32_t lam__layer_desc_size(uint32_t minor);
uint32_t lam__kernel_desc_size(uint32_t minor);
/* Communicator descriptors exist since 2.1: 0 for 2.0. */
uint32_t lam__comm_desc_size(uint32_t minor);
/* Fingerprint of the layout of a given minor of the current major; 0 when unknown. */
uint64_t lam__abi_fingerprint_for_minor(uint32_t minor);
/* Number of minors of the current major this host has a layout row for. */
uint32_t lam__abi_known_minors(void);

#endif
