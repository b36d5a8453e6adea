/*
 * The plugin report's rows (registry_report.c): added for each candidate plugin file, decided
 * (loaded, skipped or refused, with a reason and a message, which is also logged), cleared at
 * unload. Private to core/.
 */
#ifndef LAMINA_CORE_REGISTRY_REPORT_H
#define LAMINA_CORE_REGISTRY_REPORT_H

#include "registry_types.h"

#include "lamina/lamina.h"

#include <stddef.h>

/* Appends a row for path (kind "-", empty names, version and message); *out points to it
 * until the next row is added (rows move: keep the index, lam__report_rows() - 1). */
lam_status lam__report_add(const char *path, lam__record **out);
/* The number of rows, and one of them (index below lam__report_rows()). */
size_t lam__report_rows(void);
lam__record *lam__report_row(size_t index);
/* Replaces a row's string field with a copy of value (kept as it was when out of memory). */
void lam__report_set(char **field, const char *value);
/* Sets a row's decision, reason and message, and logs it (a refusal as a warning). */
void lam__report_decide(lam__record *rec, lam_plugin_decision d, lam_plugin_reason r,
                        const char *msg);
/* Frees every row. */
void lam__report_clear(void);

#endif
