/*
 * The choice of a communicator (comm_choose.c): by name, $LAMINA_COMM, or the launcher that
 * started the process, falling back to the built-in "self" communicator. Private to core/.
 */
#ifndef LAMINA_CORE_COMM_CHOOSE_H
#define LAMINA_CORE_COMM_CHOOSE_H

#include "lamina/lamina.h"

/* A communicator chosen: its descriptor, its plugin's file (NULL for "self"), and why. */
typedef struct lam__comm_choice {
    const lam_comm_desc *desc;
    const char *path;
    char why[512];
} lam__comm_choice;

/* Chooses the communicator `name` (NULL: $LAMINA_COMM, else the one whose plugin detects its
 * launcher, else "self" when no launcher started the process). Errors name fn: LAM_ERR_NOT_FOUND
 * for a communicator that is not loaded (with the plugin report's reason and an install hint),
 * LAM_ERR_DEVICE_UNAVAILABLE when a launcher started the process but no loaded communicator
 * serves it. The runtime must be started. */
lam_status lam__comm_choose(const char *fn, const char *name, lam__comm_choice *c);

#endif
