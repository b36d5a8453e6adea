/*
 * Plugin descriptors at registration: the header check (size, ABI version, fingerprint), names,
 * and the host's own bounded copies of every string a descriptor points to.
 */
#define _POSIX_C_SOURCE 200809L /* strnlen */
#include "registry_desc.h"
#include "abi.h"
#include "error.h"
#include "util.h"

#include <ctype.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

lam_status lam__plugin_refuse(lam_plugin *p, lam_status st, lam_plugin_reason reason,
                              const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (p->refuse_reason == LAM_REASON_INVALID) {
        p->refuse_status = st;
        p->refuse_reason = reason;
        p->refuse_message = lam__strdup(msg);
    }
    return lam__error(st, "%s", msg);
}

/* Checks the common header of a descriptor: size, version, fingerprint. */
lam_status lam__desc_check_header(lam_plugin *p, const char *what, uint32_t struct_size,
                                  const void *desc, uint32_t (*size_for_minor)(uint32_t)) {
    if (struct_size == 0) {
        return lam__plugin_refuse(p, LAM_ERR_ABI, LAM_REASON_STRUCT_SIZE,
                                  "%s descriptor has struct_size 0 (not filled in; use the SDK's "
                                  "descriptor header macro)",
                                  what);
    }
    if (struct_size < 16) {
        return lam__plugin_refuse(p, LAM_ERR_ABI, LAM_REASON_STRUCT_SIZE,
                                  "%s descriptor has struct_size %u, smaller than its header", what,
                                  (unsigned)struct_size);
    }
    uint32_t abi;
    uint64_t fingerprint;
    memcpy(&abi, (const char *)desc + 4, sizeof abi);
    memcpy(&fingerprint, (const char *)desc + 8, sizeof fingerprint);
    if (p->abi_seen == 0) {
        p->abi_seen = abi;
    }
    uint32_t major = LAM_VERSION_MAJOR(abi), minor = LAM_VERSION_MINOR(abi);
    if (major != LAM_ABI_VERSION_MAJOR) {
        return lam__plugin_refuse(p, LAM_ERR_ABI, LAM_REASON_ABI_MAJOR,
                                  "ABI major mismatch, plugin built for %u.%u, host provides %u.%u",
                                  major, minor, LAM_ABI_VERSION_MAJOR, LAM_ABI_VERSION_MINOR);
    }
    if (minor > LAM_ABI_VERSION_MINOR) {
        return lam__plugin_refuse(
            p, LAM_ERR_ABI, LAM_REASON_ABI_MINOR_NEWER,
            "ABI too new, plugin built for %u.%u, host provides %u.%u (upgrade Lamina "
            "or rebuild the plugin against this SDK)",
            major, minor, LAM_ABI_VERSION_MAJOR, LAM_ABI_VERSION_MINOR);
    }
    uint32_t expected = size_for_minor(minor);
    if (struct_size != expected) {
        return lam__plugin_refuse(p, LAM_ERR_ABI, LAM_REASON_STRUCT_SIZE,
                                  "%s descriptor has unknown struct_size %u, ABI %u.%u defines %u",
                                  what, (unsigned)struct_size, major, minor, (unsigned)expected);
    }
    uint64_t known = lam__abi_fingerprint_for_minor(minor);
    if (fingerprint != known) {
        return lam__plugin_refuse(
            p, LAM_ERR_ABI, LAM_REASON_ABI_FINGERPRINT,
            "ABI fingerprint mismatch, plugin has %016llx, host expects %016llx for "
            "ABI %u.%u (the plugin was built against a different layout of the same "
            "version)",
            (unsigned long long)fingerprint, (unsigned long long)known, major, minor);
    }
    return LAM_OK;
}

bool lam__desc_valid_name(const char *name, bool lower_only) {
    if (name == NULL || name[0] == '\0' || strnlen(name, 64) > 63) {
        return false;
    }
    for (const char *c = name; *c; c++) {
        bool ok = islower((unsigned char)*c) || isdigit((unsigned char)*c) || *c == '_' ||
                  (!lower_only && isupper((unsigned char)*c));
        if (!ok) {
            return false;
        }
    }
    return true;
}

/*
 * Descriptor strings. The host copies every string it keeps at registration (the plugin may
 * free or reuse its own as soon as register_* returns), and never reads more than
 * DESC_TEXT_MAX bytes of one: a longer string, or one without its NUL, is a bad descriptor.
 */
#define DESC_TEXT_MAX 4096

/* Length of a plugin's string; SIZE_MAX when it has no NUL within DESC_TEXT_MAX bytes. */
static size_t text_len(const char *s) {
    size_t n = strnlen(s, DESC_TEXT_MAX + 1);
    return n > DESC_TEXT_MAX ? SIZE_MAX : n;
}

/* A bounded copy of a plugin's string (NULL for NULL or out of memory). */
char *lam__desc_text_dup(const char *s) {
    if (s == NULL) {
        return NULL;
    }
    size_t n = strnlen(s, DESC_TEXT_MAX);
    char *d = malloc(n + 1);
    if (d != NULL) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

/* Copies s to *pos, never past end; returns the copy (NULL for NULL). */
static const char *text_put(char **pos, char *end, const char *s) {
    if (s == NULL) {
        return NULL;
    }
    char *d = *pos;
    size_t n = strnlen(s, (size_t)(end - d) - 1);
    memcpy(d, s, n);
    d[n] = '\0';
    *pos = d + n + 1;
    return d;
}

/* Adds the size of one descriptor string to *total; refuses the plugin when it is too long. */
static lam_status text_measure(lam_plugin *p, const char *what, const char *owner,
                               const char *field, const char *s, size_t *total) {
    if (s == NULL) {
        return LAM_OK;
    }
    size_t n = text_len(s);
    if (n == SIZE_MAX) {
        return lam__plugin_refuse(p, LAM_ERR_INVALID_ARGUMENT, LAM_REASON_BAD_DESCRIPTOR,
                                  "%s '%.63s': %s has no terminating NUL within %d bytes", what,
                                  owner, field, DESC_TEXT_MAX);
    }
    *total += n + 1;
    return LAM_OK;
}

void lam__layer_type_free(lam__layer_type *l) {
    if (l != NULL) {
        free(l->owned);
        free(l);
    }
}

void lam__backend_free(lam__backend *b) {
    if (b != NULL) {
        free(b->ctxs);
        free(b->strings);
        free(b);
    }
}

/* Replaces the strings of b's descriptor by copies owned by b. */
lam_status lam__backend_copy_strings(lam_plugin *p, lam__backend *b) {
    lam_backend_desc *d = &b->desc;
    size_t total = 0;
    lam_status st = text_measure(p, "backend", d->name, "version", d->version, &total);
    if (st == LAM_OK) {
        st = text_measure(p, "backend", d->name, "doc", d->doc, &total);
    }
    if (st != LAM_OK) {
        return st;
    }
    total += strlen(d->name) + 1; /* checked by valid_name */
    char *pos = malloc(total);
    if (pos == NULL) {
        return lam__plugin_refuse(p, LAM_ERR_OUT_OF_MEMORY, LAM_REASON_ENTRY_FAILED,
                                  "out of memory");
    }
    b->strings = pos;
    char *end = pos + total;
    d->name = text_put(&pos, end, d->name);
    d->version = text_put(&pos, end, d->version);
    d->doc = text_put(&pos, end, d->doc);
    return LAM_OK;
}

lam_status lam__comm_copy_strings(lam_plugin *p, lam__comm_type *c) {
    lam_comm_desc *d = &c->desc;
    size_t total = strlen(d->name) + 1; /* checked by valid_name */
    lam_status st = text_measure(p, "communicator", d->name, "version", d->version, &total);
    if (st == LAM_OK) {
        st = text_measure(p, "communicator", d->name, "doc", d->doc, &total);
    }
    if (st != LAM_OK) {
        return st;
    }
    char *pos = malloc(total);
    if (pos == NULL) {
        return lam__plugin_refuse(p, LAM_ERR_OUT_OF_MEMORY, LAM_REASON_ENTRY_FAILED,
                                  "out of memory");
    }
    c->strings = pos;
    char *end = pos + total;
    d->name = text_put(&pos, end, d->name);
    d->version = text_put(&pos, end, d->version);
    d->doc = text_put(&pos, end, d->doc);
    return LAM_OK;
}

void lam__comm_type_free(lam__comm_type *c) {
    if (c != NULL) {
        free(c->strings);
        free(c);
    }
}

/* Replaces the strings and the attribute array of l's descriptor by one block owned by l: the
 * plugin's attribute structs copied at full host size (fields past a plugin's struct_size zero)
 * and an array of pointers to them. */
lam_status lam__layer_type_copy_strings(lam_plugin *p, lam__layer_type *l) {
    lam_layer_desc *d = &l->desc;
    size_t total = strlen(d->name) + 1; /* checked by valid_name */
    lam_status st = text_measure(p, "layer", d->name, "prefix", d->prefix, &total);
    if (st == LAM_OK) {
        st = text_measure(p, "layer", d->name, "version", d->version, &total);
    }
    if (st == LAM_OK) {
        st = text_measure(p, "layer", d->name, "doc", d->doc, &total);
    }
    if (st == LAM_OK) {
        st = text_measure(p, "layer", d->name, "example_attrs", d->example_attrs, &total);
    }
    for (uint32_t i = 0; st == LAM_OK && i < d->n_attrs; i++) {
        const lam_attr_desc *a = d->attrs[i];
        if (a == NULL || a->struct_size < offsetof(lam_attr_desc, count)) {
            return lam__plugin_refuse(p, LAM_ERR_INVALID_ARGUMENT, LAM_REASON_BAD_DESCRIPTOR,
                                      "layer '%s': attribute %u is NULL or has struct_size %u "
                                      "(use LAM_ATTR_DESC_HEADER)",
                                      d->name, (unsigned)i, a ? (unsigned)a->struct_size : 0u);
        }
        char field[64];
        snprintf(field, sizeof field, "attribute %u's name", (unsigned)i);
        st = text_measure(p, "layer", d->name, field, a->name, &total);
        snprintf(field, sizeof field, "attribute %u's default", (unsigned)i);
        if (st == LAM_OK) {
            st = text_measure(p, "layer", d->name, field, a->default_value, &total);
        }
        snprintf(field, sizeof field, "attribute %u's choices", (unsigned)i);
        if (st == LAM_OK) {
            st = text_measure(p, "layer", d->name, field, a->choices, &total);
        }
        snprintf(field, sizeof field, "attribute %u's doc", (unsigned)i);
        if (st == LAM_OK) {
            st = text_measure(p, "layer", d->name, field, a->doc, &total);
        }
    }
    if (st != LAM_OK) {
        return st;
    }
    size_t ptrs_bytes = (size_t)d->n_attrs * sizeof(lam_attr_desc *);
    size_t attrs_bytes = (size_t)d->n_attrs * sizeof(lam_attr_desc);
    char *block = malloc(ptrs_bytes + attrs_bytes + total);
    if (block == NULL) {
        return lam__plugin_refuse(p, LAM_ERR_OUT_OF_MEMORY, LAM_REASON_ENTRY_FAILED,
                                  "out of memory");
    }
    l->owned = block;
    const lam_attr_desc **ptrs = (const lam_attr_desc **)(void *)block;
    lam_attr_desc *attrs = (lam_attr_desc *)(void *)(block + ptrs_bytes);
    char *pos = block + ptrs_bytes + attrs_bytes, *end = pos + total;
    for (uint32_t i = 0; i < d->n_attrs; i++) {
        const lam_attr_desc *a = d->attrs[i];
        memset(&attrs[i], 0, sizeof attrs[i]);
        memcpy(&attrs[i], a, a->struct_size < sizeof attrs[i] ? a->struct_size : sizeof attrs[i]);
        attrs[i].struct_size = (uint32_t)sizeof attrs[i];
        attrs[i].name = text_put(&pos, end, a->name);
        attrs[i].default_value = text_put(&pos, end, a->default_value);
        attrs[i].choices = text_put(&pos, end, a->choices);
        attrs[i].doc = text_put(&pos, end, a->doc);
        ptrs[i] = &attrs[i];
    }
    d->name = text_put(&pos, end, d->name);
    d->prefix = text_put(&pos, end, d->prefix);
    d->version = text_put(&pos, end, d->version);
    d->doc = text_put(&pos, end, d->doc);
    d->example_attrs = text_put(&pos, end, d->example_attrs);
    d->attrs = d->n_attrs > 0 ? ptrs : NULL;
    return LAM_OK;
}

void lam__kernel_free(lam__kernel *k) {
    if (k != NULL) {
        free(k->owned);
        free(k);
    }
}

/* Replaces the strings of k's descriptor by copies owned by k. */
lam_status lam__kernel_copy_strings(lam_plugin *p, lam__kernel *k) {
    lam_kernel_desc *d = &k->desc;
    size_t total = strlen(d->name) + 1; /* checked by the caller */
    lam_status st = text_measure(p, "kernel", d->name, "doc", d->doc, &total);
    if (st != LAM_OK) {
        return st;
    }
    char *pos = malloc(total);
    if (pos == NULL) {
        return lam__plugin_refuse(p, LAM_ERR_OUT_OF_MEMORY, LAM_REASON_ENTRY_FAILED,
                                  "out of memory");
    }
    k->owned = pos;
    char *end = pos + total;
    d->name = text_put(&pos, end, d->name);
    d->doc = text_put(&pos, end, d->doc);
    return LAM_OK;
}
