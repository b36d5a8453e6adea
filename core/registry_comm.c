/*
 * Communicator types (since ABI 2.1): the registration of lam_comm_desc, checked as backends
 * are (header, name, required callbacks, duplicates), and the table the communicators of
 * comm.c are opened from. Written only while plugins load (under the start lock).
 */
#include "registry_comm.h"
#include "abi.h"
#include "error.h"
#include "registry_desc.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

static lam__comm_type **types;
static size_t n_types;

size_t lam__comm_type_count(void) {
    return n_types;
}

const lam__comm_type *lam__comm_type_at(size_t index) {
    return index < n_types ? types[index] : NULL;
}

const lam__comm_type *lam__comm_type_find(const char *name) {
    for (size_t i = 0; name != NULL && i < n_types; i++) {
        if (strcmp(types[i]->desc.name, name) == 0) {
            return types[i];
        }
    }
    return NULL;
}

/* Checks a copied descriptor beyond its header: name and callbacks. */
static lam_status check_comm(lam_plugin *p, const lam_comm_desc *d) {
    if (!lam__desc_valid_name(d->name, true) || strcmp(d->name, "self") == 0) {
        return lam__plugin_refuse(p, LAM_ERR_INVALID_ARGUMENT, LAM_REASON_BAD_DESCRIPTOR,
                                  "communicator name '%.63s' is invalid (1-63 characters of a-z, "
                                  "0-9, _; 'self' is the built-in one)",
                                  d->name ? d->name : "(null)");
    }
    const char *missing = d->open == NULL              ? "open"
                          : d->close == NULL           ? "close"
                          : d->rank == NULL            ? "rank"
                          : d->size == NULL            ? "size"
                          : d->barrier == NULL         ? "barrier"
                          : d->broadcast == NULL       ? "broadcast"
                          : d->allreduce == NULL       ? "allreduce"
                          : d->allgather == NULL       ? "allgather"
                          : d->allreduce_start == NULL ? "allreduce_start"
                          : d->wait == NULL            ? "wait"
                                                       : NULL;
    if (missing != NULL) {
        return lam__plugin_refuse(p, LAM_ERR_ABI, LAM_REASON_NULL_CALLBACK,
                                  "communicator '%s': required callback '%s' is NULL", d->name,
                                  missing);
    }
    if ((d->supports_backend == NULL) != (d->allreduce_device == NULL)) {
        return lam__plugin_refuse(p, LAM_ERR_INVALID_ARGUMENT, LAM_REASON_BAD_DESCRIPTOR,
                                  "communicator '%s': supports_backend and allreduce_device come "
                                  "together (one of them is NULL)",
                                  d->name);
    }
    const lam__comm_type *other = lam__comm_type_find(d->name);
    if (other != NULL) {
        return lam__plugin_refuse(p, LAM_ERR_ABI, LAM_REASON_DUPLICATE_NAME,
                                  "duplicate communicator name '%s', already registered by %s",
                                  d->name, other->plugin->path);
    }
    return LAM_OK;
}

/* Size of a communicator descriptor for a minor: 0 before 2.1 (refused as too old). */
static uint32_t comm_size_for_minor(uint32_t minor) {
    return lam__comm_desc_size(minor);
}

lam_status lam__host_register_comm(lam_plugin *p, const struct lam_comm_desc *desc) {
    if (p == NULL || !p->loading) {
        return lam__error(LAM_ERR_STATE, "register_comm: Invalid state, registration is only "
                                         "allowed during lamina_plugin_entry");
    }
    if (desc == NULL) {
        return lam__plugin_refuse(p, LAM_ERR_INVALID_ARGUMENT, LAM_REASON_BAD_DESCRIPTOR,
                                  "communicator descriptor is NULL");
    }
    if (desc->struct_size >= 8 && LAM_VERSION_MAJOR(desc->abi_version) == LAM_ABI_VERSION_MAJOR &&
        LAM_VERSION_MINOR(desc->abi_version) < 1) {
        return lam__plugin_refuse(p, LAM_ERR_ABI, LAM_REASON_STRUCT_SIZE,
                                  "communicator descriptor says ABI %u.%u, communicators exist "
                                  "since ABI 2.1 (rebuild the plugin against this SDK)",
                                  (unsigned)LAM_VERSION_MAJOR(desc->abi_version),
                                  (unsigned)LAM_VERSION_MINOR(desc->abi_version));
    }
    lam_status st =
        lam__desc_check_header(p, "communicator", desc->struct_size, desc, comm_size_for_minor);
    if (st != LAM_OK) {
        return st;
    }
    lam__comm_type *c = calloc(1, sizeof *c);
    if (c == NULL) {
        return lam__plugin_refuse(p, LAM_ERR_OUT_OF_MEMORY, LAM_REASON_ENTRY_FAILED,
                                  "out of memory");
    }
    memcpy(&c->desc, desc, desc->struct_size < sizeof c->desc ? desc->struct_size : sizeof c->desc);
    c->plugin = p;
    if (p->version_seen == NULL) {
        p->version_seen = lam__desc_text_dup(c->desc.version);
    }
    st = check_comm(p, &c->desc);
    if (st == LAM_OK) {
        st = lam__comm_copy_strings(p, c);
    }
    lam__comm_type **arr = st == LAM_OK ? realloc(types, (n_types + 1) * sizeof *arr) : NULL;
    if (st == LAM_OK && arr == NULL) {
        st = lam__plugin_refuse(p, LAM_ERR_OUT_OF_MEMORY, LAM_REASON_ENTRY_FAILED, "out of memory");
    }
    if (st != LAM_OK) {
        lam__comm_type_free(c);
        return st;
    }
    types = arr;
    types[n_types++] = c;
    return LAM_OK;
}

void lam__comm_types_rollback(const lam_plugin *p) {
    size_t w = 0;
    for (size_t i = 0; i < n_types; i++) {
        if (types[i]->plugin == p) {
            lam__comm_type_free(types[i]);
        } else {
            types[w++] = types[i];
        }
    }
    n_types = w;
}

bool lam__comm_types_describe(const lam_plugin *p, lam__strbuf *names) {
    bool any = false;
    for (size_t i = 0; i < n_types; i++) {
        if (types[i]->plugin == p) {
            lam__strbuf_printf(names, "%s%s", names->len ? "," : "", types[i]->desc.name);
            any = true;
        }
    }
    return any;
}

void lam__comm_types_unload(void) {
    for (size_t i = 0; i < n_types; i++) {
        const lam_comm_desc *d = &types[i]->desc;
        if (d->shutdown != NULL) {
            d->shutdown(d->user);
        }
        lam__comm_type_free(types[i]);
    }
    free(types);
    types = NULL;
    n_types = 0;
}
