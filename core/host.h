/*
 * The host table given to plugins (host.c). Private to core/.
 */
#ifndef LAMINA_CORE_HOST_H
#define LAMINA_CORE_HOST_H

#include "lamina/lamina.h"

/* The host table every plugin entry receives: filled once, constant, valid while the library
 * is loaded. */
const lam_host_api *lam__host_table(void);

#endif
