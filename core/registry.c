/*
 * Plugin registry: finds candidate plugin files, loads each with dlopen, negotiates the ABI
 * through its registrations, and keeps a load report with a decision and reason per file.
 * A plugin is accepted whole or not at all: a refused registration or a failing entry rolls
 * back everything the plugin registered and unloads it (as Redis does for modules).
 */
#define _GNU_SOURCE
#include "registry.h"
#include "abi.h"
#include "callback.h"
#include "error.h"
#include "log.h"
#include "name_index.h"
#include "registry_comm.h"
#include "registry_desc.h"
#include "registry_report.h"
#include "start.h"
#include "util.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Everything the registry holds between lam__registry_load and lam__registry_unload. */
static struct {
    lam_plugin **plugins; /* loaded plugins */
    size_t n_plugins;
    lam__backend **backends;
    size_t n_backends;
    lam__layer_type **layers;
    size_t n_layers;
    lam__kernel **kernels;
    size_t n_kernels;
} reg;

/* The plugin whose entry is running. Plugins load only inside lam_init (or the first call that
 * starts the runtime), which runs under runtime.c's start lock: one loader at a time. */
static lam_plugin *current_plugin;

/* ---- report ---- */

size_t lam__report_count(bool probe) {
    if (lam__ensure_started() != LAM_OK) {
        return 0;
    }
    if (probe) {
        lam__backends_probe_all(); /* the report says which backends have no device */
    }
    return lam__report_rows();
}

size_t lam_plugin_report_count(void) {
    return lam__report_count(true);
}

lam_status lam_plugin_report_get(size_t index, lam_plugin_record *record) {
    return lam__report_get(index, record, true);
}

lam_status lam__report_get(size_t index, lam_plugin_record *record, bool probe) {
    lam_status st = lam__ensure_started();
    if (st != LAM_OK) {
        return st;
    }
    if (record == NULL ||
        record->struct_size < offsetof(lam_plugin_record, message) + sizeof(char *)) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "lam_plugin_report_get: Invalid argument, record is NULL or its "
                          "struct_size is too small (use LAM_PLUGIN_RECORD_INIT)");
    }
    if (probe) {
        lam__backends_probe_all();
    }
    if (index >= lam__report_rows()) {
        return lam__error(LAM_ERR_NOT_FOUND,
                          "lam_plugin_report_get: Not found, index %zu, the report has %zu records",
                          index, lam__report_rows());
    }
    const lam__record *r = lam__report_row(index);
    record->path = r->path;
    record->kind = r->kind;
    record->names = r->names;
    record->version = r->version;
    record->plugin_abi = r->plugin_abi;
    record->decision = r->decision;
    record->reason = r->reason;
    record->message = r->message;
    return LAM_OK;
}

/* ---- lookup ---- */

static lam__name_index layer_index, backend_index;

/* Capacity of reg.layers: it grows by doubling, since growing it by one entry per layer
 * copies the whole array each time under allocators that never grow in place (ASan's). */
static size_t layers_cap;

size_t lam__backend_count(void) {
    return reg.n_backends;
}

lam__backend *lam__backend_at(size_t index) {
    return reg.backends[index];
}

size_t lam__layer_type_count(void) {
    return reg.n_layers;
}

const lam__layer_type *lam__layer_type_at(size_t index) {
    return reg.layers[index];
}

lam__backend *lam__backend_find(const char *name) {
    return name != NULL ? lam__index_find(&backend_index, name) : NULL;
}

const lam__layer_type *lam__layer_type_find(const char *name) {
    return name != NULL ? lam__index_find(&layer_index, name) : NULL;
}

/* ---- registration ---- */

lam_status lam__host_register_backend(lam_plugin *p, const lam_backend_desc *desc) {
    if (p == NULL || p != current_plugin || !p->loading) {
        return lam__error(LAM_ERR_STATE, "register_backend: Invalid state, registration is only "
                                         "allowed during lamina_plugin_entry");
    }
    if (desc == NULL) {
        return lam__plugin_refuse(p, LAM_ERR_INVALID_ARGUMENT, LAM_REASON_BAD_DESCRIPTOR,
                                  "backend descriptor is NULL");
    }
    lam_status st =
        lam__desc_check_header(p, "backend", desc->struct_size, desc, lam__backend_desc_size);
    if (st != LAM_OK) {
        return st;
    }
    lam__backend *b = calloc(1, sizeof *b);
    if (b == NULL) {
        return lam__plugin_refuse(p, LAM_ERR_OUT_OF_MEMORY, LAM_REASON_ENTRY_FAILED,
                                  "out of memory");
    }
    memcpy(&b->desc, desc, desc->struct_size < sizeof b->desc ? desc->struct_size : sizeof b->desc);
    b->plugin = p;
    const lam_backend_desc *d = &b->desc;
    if (p->version_seen == NULL) {
        p->version_seen = lam__desc_text_dup(d->version);
    }
    if (!lam__desc_valid_name(d->name, true)) {
        st = lam__plugin_refuse(p, LAM_ERR_INVALID_ARGUMENT, LAM_REASON_BAD_DESCRIPTOR,
                                "backend name '%.63s' is invalid (1-63 characters of a-z, 0-9, _)",
                                d->name ? d->name : "(null)");
        free(b);
        return st;
    }
    st = lam__backend_copy_strings(p, b);
    if (st != LAM_OK) {
        lam__backend_free(b);
        return st;
    }
#define REQ(field)                                                                                 \
    if (st == LAM_OK && d->field == NULL) {                                                        \
        st = lam__plugin_refuse(p, LAM_ERR_ABI, LAM_REASON_NULL_CALLBACK,                          \
                                "backend '%s': required callback '%s' is NULL", d->name, #field);  \
    }
    REQ(probe)
    REQ(device_info)
    REQ(device_open)
    REQ(device_close)
    REQ(buffer_alloc)
    REQ(buffer_free)
    REQ(buffer_write)
    REQ(buffer_read)
    REQ(buffer_copy)
    REQ(device_caps)
    REQ(supports)
    REQ(execute)
    REQ(synchronize)
#undef REQ
    if (st == LAM_OK && lam__backend_find(d->name) != NULL) {
        const lam__backend *other = lam__backend_find(d->name);
        st = lam__plugin_refuse(p, LAM_ERR_ABI, LAM_REASON_DUPLICATE_NAME,
                                "duplicate backend name '%s', already registered by %s", d->name,
                                other->plugin->path);
    }
    if (st != LAM_OK) {
        lam__backend_free(b);
        return st;
    }
    lam__backend **arr = realloc(reg.backends, (reg.n_backends + 1) * sizeof *arr);
    if (arr == NULL || !lam__index_add(&backend_index, d->name, b)) {
        if (arr != NULL) {
            reg.backends = arr;
        }
        lam__backend_free(b);
        return lam__plugin_refuse(p, LAM_ERR_OUT_OF_MEMORY, LAM_REASON_ENTRY_FAILED,
                                  "out of memory");
    }
    reg.backends = arr;
    arr[reg.n_backends++] = b;
    return LAM_OK;
}

/* Just over 100 lines: the registration checks run in the order the plugin report documents
 * (state, size, version, fingerprint, callbacks, copied strings, duplicate name), each with its
 * own refusal reason; splitting them would scatter that order. */
lam_status lam__host_register_layer(lam_plugin *p, const lam_layer_desc *desc) {
    if (p == NULL || p != current_plugin || !p->loading) {
        return lam__error(LAM_ERR_STATE, "register_layer: Invalid state, registration is only "
                                         "allowed during lamina_plugin_entry");
    }
    if (desc == NULL) {
        return lam__plugin_refuse(p, LAM_ERR_INVALID_ARGUMENT, LAM_REASON_BAD_DESCRIPTOR,
                                  "layer descriptor is NULL");
    }
    lam_status st =
        lam__desc_check_header(p, "layer", desc->struct_size, desc, lam__layer_desc_size);
    if (st != LAM_OK) {
        return st;
    }
    lam__layer_type *l = calloc(1, sizeof *l);
    if (l == NULL) {
        return lam__plugin_refuse(p, LAM_ERR_OUT_OF_MEMORY, LAM_REASON_ENTRY_FAILED,
                                  "out of memory");
    }
    memcpy(&l->desc, desc, desc->struct_size < sizeof l->desc ? desc->struct_size : sizeof l->desc);
    l->plugin = p;
    const lam_layer_desc *d = &l->desc;
    if (p->version_seen == NULL) {
        p->version_seen = lam__desc_text_dup(d->version);
    }
    if (!lam__desc_valid_name(d->name, false)) {
        st = lam__plugin_refuse(
            p, LAM_ERR_INVALID_ARGUMENT, LAM_REASON_BAD_DESCRIPTOR,
            "layer name '%.63s' is invalid (1-63 characters of A-Z, a-z, 0-9, _)",
            d->name ? d->name : "(null)");
        free(l);
        return st;
    }
    if (d->n_attrs > 0 && d->attrs == NULL) {
        st = lam__plugin_refuse(p, LAM_ERR_INVALID_ARGUMENT, LAM_REASON_BAD_DESCRIPTOR,
                                "layer '%s': n_attrs is %u but attrs is NULL", d->name,
                                (unsigned)d->n_attrs);
        free(l);
        return st;
    }
    if (d->max_inputs != 0 && d->max_inputs < (d->min_inputs ? d->min_inputs : 1u)) {
        st = lam__plugin_refuse(p, LAM_ERR_INVALID_ARGUMENT, LAM_REASON_BAD_DESCRIPTOR,
                                "layer '%s': max_inputs %u is below min_inputs %u", d->name,
                                (unsigned)d->max_inputs, (unsigned)d->min_inputs);
        free(l);
        return st;
    }
    st = lam__layer_type_copy_strings(p, l);
    if (st != LAM_OK) {
        lam__layer_type_free(l);
        return st;
    }
#define REQ(field)                                                                                 \
    if (st == LAM_OK && d->field == NULL) {                                                        \
        st = lam__plugin_refuse(p, LAM_ERR_ABI, LAM_REASON_NULL_CALLBACK,                          \
                                "layer '%s': required callback '%s' is NULL", d->name, #field);    \
    }
    REQ(create)
    REQ(destroy)
    REQ(infer_shape)
    REQ(forward)
#undef REQ
    for (uint32_t i = 0; st == LAM_OK && i < d->n_attrs; i++) {
        const lam_attr_desc *a = d->attrs[i];
        if (a->name == NULL || a->name[0] == '\0' || a->type <= LAM_ATTR_INVALID ||
            a->type >= LAM_ATTR_TYPE_COUNT || (a->type == LAM_ATTR_ENUM && a->choices == NULL)) {
            st = lam__plugin_refuse(
                p, LAM_ERR_INVALID_ARGUMENT, LAM_REASON_BAD_DESCRIPTOR,
                "layer '%s': attribute %u ('%s') has no name, an unknown type or an enum "
                "without choices",
                d->name, (unsigned)i, a->name ? a->name : "(null)");
        }
        for (uint32_t j = 0; st == LAM_OK && j < i; j++) {
            if (strcmp(d->attrs[j]->name, a->name) == 0) {
                st = lam__plugin_refuse(p, LAM_ERR_INVALID_ARGUMENT, LAM_REASON_BAD_DESCRIPTOR,
                                        "layer '%s': attribute '%s' is declared twice", d->name,
                                        a->name);
            }
        }
    }
    if (st == LAM_OK && lam__layer_type_find(d->name) != NULL) {
        const lam__layer_type *other = lam__layer_type_find(d->name);
        st = lam__plugin_refuse(p, LAM_ERR_ABI, LAM_REASON_DUPLICATE_NAME,
                                "duplicate layer name '%s', already registered by %s", d->name,
                                other->plugin->path);
    }
    if (st != LAM_OK) {
        lam__layer_type_free(l);
        return st;
    }
    if (reg.n_layers == layers_cap) {
        size_t cap = layers_cap ? 2 * layers_cap : 16;
        lam__layer_type **arr = realloc(reg.layers, cap * sizeof *arr);
        if (arr == NULL) {
            lam__layer_type_free(l);
            return lam__plugin_refuse(p, LAM_ERR_OUT_OF_MEMORY, LAM_REASON_ENTRY_FAILED,
                                      "out of memory");
        }
        reg.layers = arr;
        layers_cap = cap;
    }
    if (!lam__index_add(&layer_index, d->name, l)) {
        lam__layer_type_free(l);
        return lam__plugin_refuse(p, LAM_ERR_OUT_OF_MEMORY, LAM_REASON_ENTRY_FAILED,
                                  "out of memory");
    }
    lam__layer_type **arr = reg.layers;
    arr[reg.n_layers++] = l;
    return LAM_OK;
}

static bool valid_kernel_name(const char *name) {
    if (name == NULL || name[0] == '\0' || strnlen(name, 64) > 63) {
        return false;
    }
    for (const char *c = name; *c; c++) {
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_' || *c == '.')) {
            return false;
        }
    }
    return true;
}

size_t lam__kernel_count(void) {
    return reg.n_kernels;
}

const lam__kernel *lam__kernel_at(size_t index) {
    return reg.kernels[index];
}

const lam__kernel *lam__kernel_find(const char *name) {
    for (size_t i = 0; name != NULL && i < reg.n_kernels; i++) {
        if (strcmp(reg.kernels[i]->desc.name, name) == 0) {
            return reg.kernels[i];
        }
    }
    return NULL;
}

/* Checks a kernel descriptor beyond its header: name, callbacks, counts, implementations. */
static lam_status check_kernel(lam_plugin *p, const lam_kernel_desc *d) {
    if (!valid_kernel_name(d->name)) {
        return lam__plugin_refuse(p, LAM_ERR_INVALID_ARGUMENT, LAM_REASON_BAD_DESCRIPTOR,
                                  "kernel name '%.63s' is invalid (1-63 characters of a-z, 0-9, "
                                  "_ and .)",
                                  d->name ? d->name : "(null)");
    }
    if (d->shape == NULL || d->reference == NULL) {
        return lam__plugin_refuse(p, LAM_ERR_ABI, LAM_REASON_NULL_CALLBACK,
                                  "kernel '%s': required callback '%s' is NULL", d->name,
                                  d->shape == NULL ? "shape" : "reference");
    }
    if (d->n_inputs < 1 || d->n_inputs > 16 || d->n_outputs < 1 || d->n_outputs > 16 ||
        d->params_size > 96 || (d->n_impls > 0 && d->impls == NULL)) {
        return lam__plugin_refuse(p, LAM_ERR_INVALID_ARGUMENT, LAM_REASON_BAD_DESCRIPTOR,
                                  "kernel '%s': %u inputs, %u outputs, params_size %u, %u "
                                  "implementations (1-16 inputs and outputs, params_size <= 96, "
                                  "impls given when n_impls > 0)",
                                  d->name, (unsigned)d->n_inputs, (unsigned)d->n_outputs,
                                  (unsigned)d->params_size, (unsigned)d->n_impls);
    }
    for (uint32_t i = 0; i < d->n_impls; i++) {
        const lam_kernel_impl *m = d->impls[i];
        if (m == NULL || m->struct_size < offsetof(lam_kernel_impl, supports) ||
            m->backend == NULL || (m->run == NULL && m->spirv == NULL) ||
            (m->spirv != NULL && (m->spirv_size == 0 || m->spirv_size % 4 != 0))) {
            return lam__plugin_refuse(p, LAM_ERR_INVALID_ARGUMENT, LAM_REASON_BAD_DESCRIPTOR,
                                      "kernel '%s': implementation %u is NULL, too small, names "
                                      "no backend, has neither run nor spirv, or has a SPIR-V "
                                      "size that is not a multiple of 4",
                                      d->name, (unsigned)i);
        }
    }
    if (lam__kernel_find(d->name) != NULL) {
        return lam__plugin_refuse(p, LAM_ERR_ABI, LAM_REASON_DUPLICATE_NAME,
                                  "duplicate kernel name '%s', already registered by %s", d->name,
                                  lam__kernel_find(d->name)->plugin->path);
    }
    return LAM_OK;
}

lam_status lam__host_register_kernel(lam_plugin *p, const lam_kernel_desc *desc) {
    if (p == NULL || p != current_plugin || !p->loading) {
        return lam__error(LAM_ERR_STATE, "register_kernel: Invalid state, registration is only "
                                         "allowed during lamina_plugin_entry");
    }
    if (desc == NULL) {
        return lam__plugin_refuse(p, LAM_ERR_INVALID_ARGUMENT, LAM_REASON_BAD_DESCRIPTOR,
                                  "kernel descriptor is NULL");
    }
    lam_status st =
        lam__desc_check_header(p, "kernel", desc->struct_size, desc, lam__kernel_desc_size);
    if (st == LAM_OK) {
        st = check_kernel(p, desc);
    }
    if (st != LAM_OK) {
        return st;
    }
    lam__kernel *k = calloc(1, sizeof *k);
    lam__kernel **arr = k ? realloc(reg.kernels, (reg.n_kernels + 1) * sizeof *arr) : NULL;
    if (arr != NULL) {
        reg.kernels = arr;
    }
    if (k == NULL || arr == NULL) {
        free(k);
        return lam__plugin_refuse(p, LAM_ERR_OUT_OF_MEMORY, LAM_REASON_ENTRY_FAILED,
                                  "out of memory");
    }
    memcpy(&k->desc, desc, desc->struct_size < sizeof k->desc ? desc->struct_size : sizeof k->desc);
    k->plugin = p;
    st = lam__kernel_copy_strings(p, k);
    if (st != LAM_OK) {
        lam__kernel_free(k);
        return st;
    }
    arr[reg.n_kernels++] = k;
    return LAM_OK;
}

/* ---- loading ---- */

void lam__registry_skip(const char *path, lam_plugin_reason reason, const char *message) {
    lam__record *rec;
    if (lam__report_add(path, &rec) == LAM_OK) {
        lam__report_decide(rec, LAM_PLUGIN_SKIPPED, reason, message);
    }
}

/* Removes every backend and layer a plugin registered (rollback of a refused plugin). */
static void rollback(lam_plugin *p) {
    size_t w = 0;
    /* The indexes are rebuilt from what stays (a rollback is rare); they never grow here, so
     * rebuilding cannot fail. */
    lam__index_clear(&backend_index);
    for (size_t i = 0; i < reg.n_backends; i++) {
        if (reg.backends[i]->plugin == p) {
            lam__backend_free(reg.backends[i]);
        } else {
            reg.backends[w++] = reg.backends[i];
        }
    }
    reg.n_backends = w;
    for (size_t i = 0; i < w; i++) {
        (void)lam__index_add(&backend_index, reg.backends[i]->desc.name, reg.backends[i]);
    }
    w = 0;
    lam__index_clear(&layer_index);
    for (size_t i = 0; i < reg.n_layers; i++) {
        if (reg.layers[i]->plugin == p) {
            lam__layer_type_free(reg.layers[i]);
        } else {
            reg.layers[w++] = reg.layers[i];
        }
    }
    reg.n_layers = w;
    w = 0;
    for (size_t i = 0; i < reg.n_kernels; i++) {
        if (reg.kernels[i]->plugin == p) {
            lam__kernel_free(reg.kernels[i]);
        } else {
            reg.kernels[w++] = reg.kernels[i];
        }
    }
    reg.n_kernels = w;
    lam__comm_types_rollback(p);
    w = reg.n_layers;
    for (size_t i = 0; i < w; i++) {
        (void)lam__index_add(&layer_index, reg.layers[i]->desc.name, reg.layers[i]);
    }
}

static void plugin_free(lam_plugin *p) {
    if (p == NULL) {
        return;
    }
    if (p->handle != NULL) {
        dlclose(p->handle);
    }
    free(p->path);
    free(p->refuse_message);
    free(p->version_seen);
    free(p);
}

/* Fills kind and names of a loaded plugin's record from what it registered. */
static void describe_registrations(lam_plugin *p, lam__record *rec) {
    lam__strbuf names = {0};
    bool has_b = false, has_l = false, has_k = false;
    for (size_t i = 0; i < reg.n_backends; i++) {
        if (reg.backends[i]->plugin == p) {
            lam__strbuf_printf(&names, "%s%s", names.len ? "," : "", reg.backends[i]->desc.name);
            has_b = true;
        }
    }
    for (size_t i = 0; i < reg.n_layers; i++) {
        if (reg.layers[i]->plugin == p) {
            lam__strbuf_printf(&names, "%s%s", names.len ? "," : "", reg.layers[i]->desc.name);
            has_l = true;
        }
    }
    for (size_t i = 0; i < reg.n_kernels; i++) {
        if (reg.kernels[i]->plugin == p) {
            lam__strbuf_printf(&names, "%s%s", names.len ? "," : "", reg.kernels[i]->desc.name);
            has_k = true;
        }
    }
    bool has_c = lam__comm_types_describe(p, &names);
    lam__report_set(&rec->kind, has_c            ? (has_b || has_l || has_k ? "comm+other" : "comm")
                                : has_b && has_l ? "backend+layer"
                                : has_b          ? "backend"
                                : has_l && has_k ? "layer+kernel"
                                : has_l          ? "layer"
                                : has_k          ? "kernel"
                                                 : "-");
    lam__report_set(&rec->names, names.data ? names.data : "");
    lam__strbuf_fini(&names);
}

void lam__registry_load_one(const lam_host_api *host, const char *path) {
    lam__record *rec;
    if (lam__report_add(path, &rec) != LAM_OK) {
        return;
    }
    size_t rec_index = lam__report_rows() - 1;
    lam_plugin *p = calloc(1, sizeof *p);
    if (p == NULL || (p->path = lam__strdup(path)) == NULL) {
        free(p);
        lam__report_decide(rec, LAM_PLUGIN_REFUSED, LAM_REASON_ENTRY_FAILED, "out of memory");
        return;
    }
    p->record = rec_index;
    dlerror();
    p->handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (p->handle == NULL) {
        const char *err = dlerror();
        lam__report_decide(rec, LAM_PLUGIN_REFUSED, LAM_REASON_DLOPEN_FAILED,
                           err ? err : "dlopen failed");
        plugin_free(p);
        return;
    }
    void *sym = dlsym(p->handle, LAM_PLUGIN_ENTRY_NAME);
    if (sym == NULL) {
        lam__report_decide(
            rec, LAM_PLUGIN_REFUSED, LAM_REASON_NO_ENTRY,
            "missing entry symbol 'lamina_plugin_entry' (is it exported with LAM_PLUGIN_ENTRY?)");
        plugin_free(p);
        return;
    }
    lam_plugin_entry_fn entry;
    memcpy(&entry, &sym, sizeof entry); /* object pointer to function pointer, as POSIX allows */
    p->loading = true;
    current_plugin = p;
    uint64_t mark = lam__error_mark();
    lam_status st = entry(host, p);
    current_plugin = NULL;
    p->loading = false;
    rec = lam__report_row(rec_index);
    rec->plugin_abi = p->abi_seen;
    if (p->version_seen != NULL) {
        lam__report_set(&rec->version, p->version_seen);
    }
    if (p->refuse_reason != LAM_REASON_INVALID) {
        rollback(p);
        lam__report_decide(rec, LAM_PLUGIN_REFUSED, p->refuse_reason,
                           p->refuse_message ? p->refuse_message : "");
        plugin_free(p);
        return;
    }
    if (st != LAM_OK) {
        char msg[2300];
        const char *err = lam__error_set_since(mark) ? lam_last_error() : "";
        snprintf(msg, sizeof msg, "entry returned %s%s%s", lam_status_string(st),
                 err[0] ? ": " : "", err);
        rollback(p);
        lam__report_decide(rec, LAM_PLUGIN_REFUSED, LAM_REASON_ENTRY_FAILED, msg);
        plugin_free(p);
        return;
    }
    describe_registrations(p, rec);
    if (strcmp(rec->kind, "-") == 0) {
        lam__report_decide(rec, LAM_PLUGIN_REFUSED, LAM_REASON_NOTHING_REGISTERED,
                           "the entry registered no layer and no backend");
        plugin_free(p);
        return;
    }
    lam_plugin **arr = realloc(reg.plugins, (reg.n_plugins + 1) * sizeof *arr);
    if (arr == NULL) {
        rollback(p);
        lam__report_decide(rec, LAM_PLUGIN_REFUSED, LAM_REASON_ENTRY_FAILED, "out of memory");
        plugin_free(p);
        return;
    }
    reg.plugins = arr;
    arr[reg.n_plugins++] = p;

    /* Backends are probed on first use (lam__backend_probe), so a process that only uses the
     * CPU never pays for starting, say, a Vulkan instance. */
    lam__report_decide(rec, LAM_PLUGIN_LOADED, LAM_REASON_OK, "");
}

lam_status lam__backend_status(lam_status st, uint64_t mark, const lam__backend *b,
                               const char *callback) {
    if (st == LAM_OK) {
        return LAM_OK;
    }
    char who[96];
    snprintf(who, sizeof who, "backend '%s'", b->desc.name);
    return lam__plugin_status(st, mark, b->plugin != NULL ? b->plugin->path : NULL, who, NULL,
                              callback);
}

/* Probing runs once per backend even when many threads ask at once: the others wait for its
 * result (a thread that saw `probed` before n_devices was written would report no device). */
static pthread_mutex_t probe_lock = PTHREAD_MUTEX_INITIALIZER;

static void probe_locked(lam__backend *b);

void lam__backend_probe(lam__backend *b) {
    if (atomic_load_explicit(&b->probed, memory_order_acquire)) {
        return;
    }
    pthread_mutex_lock(&probe_lock);
    if (!atomic_load_explicit(&b->probed, memory_order_relaxed)) {
        probe_locked(b);
        atomic_store_explicit(&b->probed, true, memory_order_release);
    }
    pthread_mutex_unlock(&probe_lock);
}

static void probe_locked(lam__backend *b) {
    uint32_t n = 0;
    uint64_t mark = lam__error_mark();
    lam_status pst = b->desc.probe(b->desc.user, &n, b->why, sizeof b->why);
    pst = lam__backend_status(pst, mark, b, "probe");
    b->why[sizeof b->why - 1] = '\0';
    if (pst != LAM_OK) {
        n = 0;
        snprintf(b->why, sizeof b->why, "probe failed: %s",
                 lam__error_set_since(mark) ? lam_last_error() : lam_status_string(pst));
    } else if (n == 0 && b->why[0] == '\0') {
        snprintf(b->why, sizeof b->why, "no device (the backend gave no reason)");
    }
    b->n_devices = n;
    if (n > 0) {
        b->ctxs = calloc(n, sizeof *b->ctxs);
        if (b->ctxs == NULL) {
            b->n_devices = 0;
            snprintf(b->why, sizeof b->why, "out of memory");
        }
    }
    if (b->n_devices == 0) {
        /* A backend without devices stays listed, with why, in its plugin's record. */
        lam__record *rec = lam__report_row(b->plugin->record);
        lam__strbuf msg = {0};
        lam__strbuf_printf(&msg, "%s%s%s: %s", rec->message, rec->message[0] ? "; " : "",
                           b->desc.name, b->why);
        lam__report_decide(rec, LAM_PLUGIN_LOADED, LAM_REASON_NO_DEVICE, msg.data ? msg.data : "");
        lam__strbuf_fini(&msg);
    }
}

void lam__backends_probe_all(void) {
    for (size_t i = 0; i < reg.n_backends; i++) {
        lam__backend_probe(reg.backends[i]);
    }
}

void lam__registry_unload(void) {
    lam__comm_types_unload(); /* their shutdown (MPI_Finalize) while the plugins are loaded */
    for (size_t i = 0; i < reg.n_backends; i++) {
        lam__backend *b = reg.backends[i];
        if (b->desc.struct_size > offsetof(lam_backend_desc, shutdown) && b->desc.shutdown) {
            b->desc.shutdown(b->desc.user);
        }
        lam__backend_free(b);
    }
    lam__index_clear(&backend_index);
    free(reg.backends);
    reg.backends = NULL;
    reg.n_backends = 0;
    for (size_t i = 0; i < reg.n_layers; i++) {
        lam__layer_type_free(reg.layers[i]);
    }
    lam__index_clear(&layer_index);
    layers_cap = 0;
    free(reg.layers);
    reg.layers = NULL;
    reg.n_layers = 0;
    for (size_t i = 0; i < reg.n_kernels; i++) {
        lam__kernel_free(reg.kernels[i]);
    }
    free(reg.kernels);
    reg.kernels = NULL;
    reg.n_kernels = 0;
    for (size_t i = 0; i < reg.n_plugins; i++) {
        plugin_free(reg.plugins[i]);
    }
    free(reg.plugins);
    reg.plugins = NULL;
    reg.n_plugins = 0;
    lam__report_clear();
}
