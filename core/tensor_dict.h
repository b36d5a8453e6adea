/*
 * The dict lam_load returns (tensor_dict.c): named tensors in file order and the file's
 * metadata; serialize.c fills it. Private to core/.
 */
#ifndef LAMINA_CORE_TENSOR_DICT_H
#define LAMINA_CORE_TENSOR_DICT_H

#include "lamina/lamina.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct dict_entry {
    char *name;
    lam_tensor *tensor;
} dict_entry;

struct lam_tensor_dict {
    dict_entry *entries;
    size_t n;
    char **meta_keys, **meta_values;
    size_t n_meta;
    bool is_list;
};

#endif
