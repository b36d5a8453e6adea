/*
 * Communicator types registered by plugins (registry_comm.c, since ABI 2.1). Private to core/.
 */
#ifndef LAMINA_CORE_REGISTRY_COMM_H
#define LAMINA_CORE_REGISTRY_COMM_H

#include "registry_types.h"
#include "util.h"

#include "lamina/lamina.h"

#include <stdbool.h>
#include <stddef.h>

/* The host table's register_comm: checks the descriptor and keeps a copy. */
lam_status lam__host_register_comm(lam_plugin *p, const struct lam_comm_desc *desc);
/* The registered communicator types, in registration order; find: NULL for an unknown name. */
size_t lam__comm_type_count(void);
const lam__comm_type *lam__comm_type_at(size_t index);
const lam__comm_type *lam__comm_type_find(const char *name);
/* Removes what plugin p registered (a refused plugin's rollback). */
void lam__comm_types_rollback(const lam_plugin *p);
/* Appends the names p registered to `names` (comma-separated); true when there is one. */
bool lam__comm_types_describe(const lam_plugin *p, lam__strbuf *names);
/* At shutdown, before plugins are unloaded: calls each type's shutdown and frees the table. */
void lam__comm_types_unload(void);

#endif
