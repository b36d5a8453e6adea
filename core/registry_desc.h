/*
 * Plugin descriptors at registration (registry_desc.c): checks and the host's copies. A check
 * that fails refuses the plugin (lam__plugin_refuse) and returns the status for the plugin.
 * Private to core/.
 */
#ifndef LAMINA_CORE_REGISTRY_DESC_H
#define LAMINA_CORE_REGISTRY_DESC_H

#include "registry_types.h"

#include "lamina/lamina.h"

#include <stdbool.h>
#include <stdint.h>

/* Records the first refusal of a plugin and returns its status to the plugin. */
lam_status lam__plugin_refuse(lam_plugin *p, lam_status st, lam_plugin_reason reason,
                              const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Checks the common header of a descriptor: size, version, fingerprint. */
lam_status lam__desc_check_header(lam_plugin *p, const char *what, uint32_t struct_size,
                                  const void *desc, uint32_t (*size_for_minor)(uint32_t));
/* 1-63 characters of a-z, 0-9, _ (and A-Z unless lower_only). */
bool lam__desc_valid_name(const char *name, bool lower_only);
/* A bounded copy of a plugin's string (NULL for NULL or out of memory). */
char *lam__desc_text_dup(const char *s);
/* Replaces the strings of b's descriptor by copies owned by b. */
lam_status lam__backend_copy_strings(lam_plugin *p, lam__backend *b);
/* Replaces the strings and the attribute array of l's descriptor by one block owned by l. */
lam_status lam__layer_type_copy_strings(lam_plugin *p, lam__layer_type *l);
void lam__backend_free(lam__backend *b);
void lam__layer_type_free(lam__layer_type *l);
/* Replaces the strings of k's descriptor by copies owned by k. */
lam_status lam__kernel_copy_strings(lam_plugin *p, lam__kernel *k);
void lam__kernel_free(lam__kernel *k);
/* Replaces the strings of c's descriptor by copies owned by c. */
lam_status lam__comm_copy_strings(lam_plugin *p, lam__comm_type *c);
void lam__comm_type_free(lam__comm_type *c);

#endif
