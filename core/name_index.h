/*
 * Name lookup tables (name_index.c): the registry's layer and backend names. Private to core/.
 */
#ifndef LAMINA_CORE_NAME_INDEX_H
#define LAMINA_CORE_NAME_INDEX_H

#include <stdbool.h>
#include <stddef.h>

/* A set of names with a pointer each, hashed (open addressing, linear probing), so
 * registering n names costs O(n) and a plugin with 10^5 layers loads in well under a second.
 * Keys point into the registered type's own copy of its name. */
typedef struct lam__name_slot {
    const char *key;
    void *value;
} lam__name_slot;

typedef struct lam__name_index {
    lam__name_slot *slots;
    size_t cap; /* a power of two, or 0 */
    size_t n;
} lam__name_index;

/* The value stored under key, or NULL. */
void *lam__index_find(const lam__name_index *ix, const char *key);
/* Adds a key that is not in the index yet; false on out of memory. */
bool lam__index_add(lam__name_index *ix, const char *key, void *value);
/* Frees the table; the index is empty afterwards. */
void lam__index_clear(lam__name_index *ix);

#endif
