/*
 * cpu_env.c - environment variables set for the length of a dlopen(): OpenBLAS and libgomp read
 * their settings once, in their library constructors, so the CPU backend sets the variables it
 * chooses for them (a kernel, a thread count, how long idle threads spin) around the dlopen()
 * and restores the environment right after. A variable the user has set is left alone where
 * the caller asks for that (cpu_env_default).
 */
#define _GNU_SOURCE /* setenv */

#include "cpu_internal.h"

#include <stdio.h>
#include <stdlib.h>

void cpu_env_set(cpu_env_patch *p, const char *name, const char *value) {
    p->name = name;
    p->set = 0;
    const char *prev = getenv(name);
    p->had_prev = prev != NULL;
    if (prev != NULL) {
        snprintf(p->prev, sizeof p->prev, "%s", prev);
    }
    if (value != NULL) {
        p->set = setenv(name, value, 1) == 0;
    }
}

void cpu_env_default(cpu_env_patch *p, const char *name, const char *value, const char *unless) {
    const char *mine = getenv(name);
    const char *other = unless != NULL ? getenv(unless) : NULL;
    const int user_set = (mine != NULL && *mine != '\0') || (other != NULL && *other != '\0');
    cpu_env_set(p, name, user_set ? NULL : value);
}

void cpu_env_restore(const cpu_env_patch *p) {
    if (!p->set) {
        return;
    }
    if (p->had_prev) {
        setenv(p->name, p->prev, 1);
    } else {
        unsetenv(p->name);
    }
}
