/*
 * User regular expressions (pattern.c). Private to core/.
 */
#ifndef LAMINA_CORE_PATTERN_H
#define LAMINA_CORE_PATTERN_H

#include "lamina/lamina.h"

#include <regex.h>
#include <stdbool.h>

/* Compiles a POSIX extended regular expression given by the user after checking it against
 * limits (length, nesting, size after expanding repetitions; no back references), so that a
 * hostile pattern is an error instead of a crash or a hang. Errors name `subject`. */
lam_status lam__pattern_compile(const char *subject, const char *pattern, regex_t *out);
/* True when the pattern matches at the start of text (Python's re.match). */
bool lam__pattern_match_start(const regex_t *re, const char *text);

#endif
