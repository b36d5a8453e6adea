/* The dict lam_load returns (Gluon's nd.load result): its accessors and destroy. */
#include "tensor_dict.h"

#include <stdlib.h>
#include <string.h>

int lam_tensor_dict_is_list(const lam_tensor_dict *d) {
    return d != NULL && d->is_list;
}

size_t lam_tensor_dict_count(const lam_tensor_dict *d) {
    return d ? d->n : 0;
}

const char *lam_tensor_dict_name(const lam_tensor_dict *d, size_t i) {
    return (d && i < d->n) ? d->entries[i].name : NULL;
}

lam_tensor *lam_tensor_dict_get(const lam_tensor_dict *d, size_t i) {
    return (d && i < d->n) ? d->entries[i].tensor : NULL;
}

lam_tensor *lam_tensor_dict_find(const lam_tensor_dict *d, const char *name) {
    for (size_t i = 0; d && name && i < d->n; i++) {
        if (strcmp(d->entries[i].name, name) == 0) {
            return d->entries[i].tensor;
        }
    }
    return NULL;
}

const char *lam_tensor_dict_metadata(const lam_tensor_dict *d, const char *key) {
    for (size_t i = 0; d && key && i < d->n_meta; i++) {
        if (strcmp(d->meta_keys[i], key) == 0) {
            return d->meta_values[i];
        }
    }
    return NULL;
}

void lam_tensor_dict_destroy(lam_tensor_dict *d) {
    if (d == NULL) {
        return;
    }
    for (size_t i = 0; i < d->n; i++) {
        free(d->entries[i].name);
        lam_tensor_release(d->entries[i].tensor);
    }
    for (size_t i = 0; i < d->n_meta; i++) {
        free(d->meta_keys[i]);
        free(d->meta_values[i]);
    }
    free(d->entries);
    free(d->meta_keys);
    free(d->meta_values);
    free(d);
}
