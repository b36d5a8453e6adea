/* Name lookup tables: open addressing with linear probing, FNV-1a hashes. */
#include "name_index.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static size_t name_hash(const char *s) {
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */
    for (; *s; s++) {
        h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    }
    return (size_t)(h ^ (h >> 32));
}

void *lam__index_find(const lam__name_index *ix, const char *key) {
    if (ix->cap == 0) {
        return NULL;
    }
    for (size_t i = name_hash(key) & (ix->cap - 1);; i = (i + 1) & (ix->cap - 1)) {
        if (ix->slots[i].key == NULL) {
            return NULL;
        }
        if (strcmp(ix->slots[i].key, key) == 0) {
            return ix->slots[i].value;
        }
    }
}

static void index_put_slot(lam__name_slot *slots, size_t cap, const char *key, void *value) {
    size_t i = name_hash(key) & (cap - 1);
    while (slots[i].key != NULL) {
        i = (i + 1) & (cap - 1);
    }
    slots[i].key = key;
    slots[i].value = value;
}

bool lam__index_add(lam__name_index *ix, const char *key, void *value) {
    if (2 * (ix->n + 1) > ix->cap) {
        size_t cap = ix->cap ? 2 * ix->cap : 64;
        lam__name_slot *slots = calloc(cap, sizeof *slots);
        if (slots == NULL) {
            return false;
        }
        for (size_t i = 0; i < ix->cap; i++) {
            if (ix->slots[i].key != NULL) {
                index_put_slot(slots, cap, ix->slots[i].key, ix->slots[i].value);
            }
        }
        free(ix->slots);
        ix->slots = slots;
        ix->cap = cap;
    }
    index_put_slot(ix->slots, ix->cap, key, value);
    ix->n++;
    return true;
}

void lam__index_clear(lam__name_index *ix) {
    free(ix->slots);
    memset(ix, 0, sizeof *ix);
}
