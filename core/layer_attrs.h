/*
 * A layer instance's validated attributes (layer_attrs.c). Private to core/.
 */
#ifndef LAMINA_CORE_LAYER_ATTRS_H
#define LAMINA_CORE_LAYER_ATTRS_H

#include "lamina/plugin.h"

typedef struct lam__attrs lam__attrs;
/* What a plugin sees as lam_attrs: the schema and one value per attribute (defaults applied). */
struct lam__attrs {
    const lam_layer_desc *desc;
    char **values;
};

/* Parses "name=value, ..." against d's schema (unknown, repeated, missing and ill-typed values
 * are errors naming the layer type); *out is freed with lam__attrs_free. */
lam_status lam__attrs_parse(const lam_layer_desc *d, const char *text, lam__attrs **out);
void lam__attrs_free(lam__attrs *a);

lam_status lam__host_attr_int(const lam_attrs *attrs, const char *name, int64_t *value);
lam_status lam__host_attr_float(const lam_attrs *attrs, const char *name, double *value);
lam_status lam__host_attr_bool(const lam_attrs *attrs, const char *name, int32_t *value);
lam_status lam__host_attr_string(const lam_attrs *attrs, const char *name, const char **value);
lam_status lam__host_attr_ints(const lam_attrs *attrs, const char *name, int64_t *values,
                               uint32_t cap, uint32_t *count);

#endif
