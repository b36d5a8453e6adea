/*
 * Plugin registry: finds candidate plugin files, loads each with dlopen, negotiates the ABI
 * through its registrations, and keeps a load report with a decision and reason per file.
 * A plugin is accepted whole or not at all: a refused registration or a failing entry rolls
 * back everything the plugin registered and unloads it (as Redis does for modules).
 */
#define _GNU_SOURCE
#include "registry.h"
#include "abi.h"
#include "context.h"
#include "error.h"
#include "host.h"
#include "log.h"
#include "runtime.h"
#include "util.h"

#include <ctype.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The plugin whose entry is running. Plugins load only inside lam_init (or the first call that
 * starts the runtime), which runs under runtime.c's start lock: one loader at a time. */
static lam_plugin *current_plugin;

/* ---- report ---- */

static lam_status add_record(const char *path, lam__record **out) {
    lam__record *r = realloc(lam__rt.records, (lam__rt.n_records + 1) * sizeof *r);
    if (r == NULL) {
        return lam__error(LAM_ERR_OUT_OF_MEMORY, "plugin registry: Out of memory");
    }
    lam__rt.records = r;
    lam__record *rec = &r[lam__rt.n_records];
    memset(rec, 0, sizeof *rec);
    rec->path = lam__strdup(path);
    rec->kind = lam__strdup("-");
    rec->names = lam__strdup("");
    rec->version = lam__strdup("");
    rec->message = lam__strdup("");
    if (!rec->path || !rec->kind || !rec->names || !rec->version || !rec->message) {
        free(rec->path);
        free(rec->kind);
        free(rec->names);
        free(rec->version);
        free(rec->message);
        return lam__error(LAM_ERR_OUT_OF_MEMORY, "plugin registry: Out of memory");
    }
    lam__rt.n_records++;
    *out = rec;
    return LAM_OK;
}

static void set_str(char **field, const char *value) {
    char *d = lam__strdup(value);
    if (d != NULL) {
        free(*field);
        *field = d;
    }
}

static void decide(lam__record *rec, lam_plugin_decision d, lam_plugin_reason r, const char *msg) {
    rec->decision = d;
    rec->reason = r;
    set_str(&rec->message, msg);
    const char *base = strrchr(rec->path, '/');
    base = base ? base + 1 : rec->path;
    lam__log(d == LAM_PLUGIN_REFUSED ? LAM_LOG_WARN : LAM_LOG_DEBUG, "%s: %s%s%s", base,
             d == LAM_PLUGIN_LOADED    ? "Loaded"
             : d == LAM_PLUGIN_SKIPPED ? "Skipped"
                                       : "Refused",
             msg[0] ? ", " : "", msg);
}

const char *lam_plugin_reason_string(lam_plugin_reason reason) {
    switch (reason) {
    case LAM_REASON_OK:
        return "ok";
    case LAM_REASON_DLOPEN_FAILED:
        return "dlopen-failed";
    case LAM_REASON_NO_ENTRY:
        return "no-entry";
    case LAM_REASON_ABI_MAJOR:
        return "abi-major";
    case LAM_REASON_ABI_MINOR_NEWER:
        return "abi-minor-newer";
    case LAM_REASON_ABI_FINGERPRINT:
        return "abi-fingerprint";
    case LAM_REASON_STRUCT_SIZE:
        return "struct-size";
    case LAM_REASON_NULL_CALLBACK:
        return "null-callback";
    case LAM_REASON_BAD_DESCRIPTOR:
        return "bad-descriptor";
    case LAM_REASON_DUPLICATE_NAME:
        return "duplicate-name";
    case LAM_REASON_ENTRY_FAILED:
        return "entry-failed";
    case LAM_REASON_NOTHING_REGISTERED:
        return "nothing-registered";
    case LAM_REASON_NO_DEVICE:
        return "no-device";
    case LAM_REASON_SHADOWED:
        return "shadowed";
    case LAM_REASON_NOT_A_FILE:
        return "not-a-file";
    default:
        return "invalid";
    }
}

size_t lam_plugin_report_count(void) {
    if (lam__ensure_started() != LAM_OK) {
        return 0;
    }
    lam__backends_probe_all(); /* the report says which backends have no device */
    return lam__rt.n_records;
}

lam_status lam_plugin_report_get(size_t index, lam_plugin_record *record) {
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
    lam__backends_probe_all();
    if (index >= lam__rt.n_records) {
        return lam__error(LAM_ERR_NOT_FOUND,
                          "lam_plugin_report_get: Not found, index %zu, the report has %zu records",
                          index, lam__rt.n_records);
    }
    const lam__record *r = &lam__rt.records[index];
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

/* Names of registered layers and backends, hashed (open addressing, linear probing), so
 * registering n names costs O(n) and a plugin with 10^5 layers loads in well under a second.
 * Keys point into the registered type's own copy of its name. */
typedef struct name_slot {
    const char *key;
    void *value;
} name_slot;

typedef struct name_index {
    name_slot *slots;
    size_t cap; /* a power of two, or 0 */
    size_t n;
} name_index;

static name_index layer_index, backend_index;

/* Capacity of lam__rt.layers: it grows by doubling, since growing it by one entry per layer
 * copies the whole array each time under allocators that never grow in place (ASan's). */
static size_t layers_cap;

static size_t name_hash(const char *s) {
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */
    for (; *s; s++) {
        h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    }
    return (size_t)(h ^ (h >> 32));
}

static void *index_find(const name_index *ix, const char *key) {
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

static void index_put_slot(name_slot *slots, size_t cap, const char *key, void *value) {
    size_t i = name_hash(key) & (cap - 1);
    while (slots[i].key != NULL) {
        i = (i + 1) & (cap - 1);
    }
    slots[i].key = key;
    slots[i].value = value;
}

/* Adds a key that is not in the index yet; false on out of memory. */
static bool index_add(name_index *ix, const char *key, void *value) {
    if (2 * (ix->n + 1) > ix->cap) {
        size_t cap = ix->cap ? 2 * ix->cap : 64;
        name_slot *slots = calloc(cap, sizeof *slots);
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

static void index_clear(name_index *ix) {
    free(ix->slots);
    memset(ix, 0, sizeof *ix);
}

lam__backend *lam__backend_find(const char *name) {
    return name != NULL ? index_find(&backend_index, name) : NULL;
}

const lam__layer_type *lam__layer_type_find(const char *name) {
    return name != NULL ? index_find(&layer_index, name) : NULL;
}

/* ---- registration ---- */

/* Records the first refusal of a plugin and returns its status to the plugin. */
static lam_status refuse(lam_plugin *p, lam_status st, lam_plugin_reason reason, const char *fmt,
                         ...) __attribute__((format(printf, 4, 5)));

static lam_status refuse(lam_plugin *p, lam_status st, lam_plugin_reason reason, const char *fmt,
                         ...) {
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
static lam_status check_header(lam_plugin *p, const char *what, uint32_t struct_size,
                               const void *desc, uint32_t (*size_for_minor)(uint32_t)) {
    if (struct_size == 0) {
        return refuse(p, LAM_ERR_ABI, LAM_REASON_STRUCT_SIZE,
                      "%s descriptor has struct_size 0 (not filled in; use the SDK's "
                      "descriptor header macro)",
                      what);
    }
    if (struct_size < 16) {
        return refuse(p, LAM_ERR_ABI, LAM_REASON_STRUCT_SIZE,
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
        return refuse(p, LAM_ERR_ABI, LAM_REASON_ABI_MAJOR,
                      "ABI major mismatch, plugin built for %u.%u, host provides %u.%u", major,
                      minor, LAM_ABI_VERSION_MAJOR, LAM_ABI_VERSION_MINOR);
    }
    if (minor > LAM_ABI_VERSION_MINOR) {
        return refuse(p, LAM_ERR_ABI, LAM_REASON_ABI_MINOR_NEWER,
                      "ABI too new, plugin built for %u.%u, host provides %u.%u (upgrade Lamina "
                      "or rebuild the plugin against this SDK)",
                      major, minor, LAM_ABI_VERSION_MAJOR, LAM_ABI_VERSION_MINOR);
    }
    uint32_t expected = size_for_minor(minor);
    if (struct_size != expected) {
        return refuse(p, LAM_ERR_ABI, LAM_REASON_STRUCT_SIZE,
                      "%s descriptor has unknown struct_size %u, ABI %u.%u defines %u", what,
                      (unsigned)struct_size, major, minor, (unsigned)expected);
    }
    uint64_t known = lam__abi_fingerprint_for_minor(minor);
    if (fingerprint != known) {
        return refuse(p, LAM_ERR_ABI, LAM_REASON_ABI_FINGERPRINT,
                      "ABI fingerprint mismatch, plugin has %016llx, host expects %016llx for "
                      "ABI %u.%u (the plugin was built against a different layout of the same "
                      "version)",
                      (unsigned long long)fingerprint, (unsigned long long)known, major, minor);
    }
    return LAM_OK;
}

static bool valid_name(const char *name, bool lower_only) {
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
static char *text_dup(const char *s) {
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
        return refuse(p, LAM_ERR_INVALID_ARGUMENT, LAM_REASON_BAD_DESCRIPTOR,
                      "%s '%.63s': %s has no terminating NUL within %d bytes", what, owner, field,
                      DESC_TEXT_MAX);
    }
    *total += n + 1;
    return LAM_OK;
}

static void layer_type_free(lam__layer_type *l) {
    if (l != NULL) {
        free(l->owned);
        free(l);
    }
}

static void backend_free(lam__backend *b) {
    if (b != NULL) {
        free(b->ctxs);
        free(b->strings);
        free(b);
    }
}

/* Replaces the strings of b's descriptor by copies owned by b. */
static lam_status copy_backend_strings(lam_plugin *p, lam__backend *b) {
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
        return refuse(p, LAM_ERR_OUT_OF_MEMORY, LAM_REASON_ENTRY_FAILED, "out of memory");
    }
    b->strings = pos;
    char *end = pos + total;
    d->name = text_put(&pos, end, d->name);
    d->version = text_put(&pos, end, d->version);
    d->doc = text_put(&pos, end, d->doc);
    return LAM_OK;
}

/* Replaces the strings and the attribute array of l's descriptor by one block owned by l. */
static lam_status copy_layer_strings(lam_plugin *p, lam__layer_type *l) {
    lam_layer_desc *d = &l->desc;
    size_t total = strlen(d->name) + 1; /* checked by valid_name */
    lam_status st = text_measure(p, "layer", d->name, "prefix", d->prefix, &total);
    if (st == LAM_OK) {
        st = text_measure(p, "layer", d->name, "version", d->version, &total);
    }
    if (st == LAM_OK) {
        st = text_measure(p, "layer", d->name, "doc", d->doc, &total);
    }
    for (uint32_t i = 0; st == LAM_OK && i < d->n_attrs; i++) {
        const lam_attr_desc *a = &d->attrs[i];
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
    size_t attrs_bytes = (size_t)d->n_attrs * sizeof(lam_attr_desc);
    char *block = malloc(attrs_bytes + total);
    if (block == NULL) {
        return refuse(p, LAM_ERR_OUT_OF_MEMORY, LAM_REASON_ENTRY_FAILED, "out of memory");
    }
    l->owned = block;
    lam_attr_desc *attrs = (lam_attr_desc *)(void *)block;
    if (d->n_attrs > 0) {
        memcpy(attrs, d->attrs, attrs_bytes);
    }
    char *pos = block + attrs_bytes, *end = block + attrs_bytes + total;
    d->name = text_put(&pos, end, d->name);
    d->prefix = text_put(&pos, end, d->prefix);
    d->version = text_put(&pos, end, d->version);
    d->doc = text_put(&pos, end, d->doc);
    for (uint32_t i = 0; i < d->n_attrs; i++) {
        attrs[i].name = text_put(&pos, end, attrs[i].name);
        attrs[i].default_value = text_put(&pos, end, attrs[i].default_value);
        attrs[i].choices = text_put(&pos, end, attrs[i].choices);
        attrs[i].doc = text_put(&pos, end, attrs[i].doc);
    }
    d->attrs = d->n_attrs > 0 ? attrs : NULL;
    return LAM_OK;
}

static lam_status host_register_backend(lam_plugin *p, const lam_backend_desc *desc) {
    if (p == NULL || p != current_plugin || !p->loading) {
        return lam__error(LAM_ERR_STATE, "register_backend: Invalid state, registration is only "
                                         "allowed during lamina_plugin_entry");
    }
    if (desc == NULL) {
        return refuse(p, LAM_ERR_INVALID_ARGUMENT, LAM_REASON_BAD_DESCRIPTOR,
                      "backend descriptor is NULL");
    }
    lam_status st = check_header(p, "backend", desc->struct_size, desc, lam__backend_desc_size);
    if (st != LAM_OK) {
        return st;
    }
    lam__backend *b = calloc(1, sizeof *b);
    if (b == NULL) {
        return refuse(p, LAM_ERR_OUT_OF_MEMORY, LAM_REASON_ENTRY_FAILED, "out of memory");
    }
    memcpy(&b->desc, desc, desc->struct_size < sizeof b->desc ? desc->struct_size : sizeof b->desc);
    b->plugin = p;
    const lam_backend_desc *d = &b->desc;
    if (p->version_seen == NULL) {
        p->version_seen = text_dup(d->version);
    }
    if (!valid_name(d->name, true)) {
        st = refuse(p, LAM_ERR_INVALID_ARGUMENT, LAM_REASON_BAD_DESCRIPTOR,
                    "backend name '%.63s' is invalid (1-63 characters of a-z, 0-9, _)",
                    d->name ? d->name : "(null)");
        free(b);
        return st;
    }
    st = copy_backend_strings(p, b);
    if (st != LAM_OK) {
        backend_free(b);
        return st;
    }
#define REQ(field)                                                                                 \
    if (st == LAM_OK && d->field == NULL) {                                                        \
        st = refuse(p, LAM_ERR_ABI, LAM_REASON_NULL_CALLBACK,                                      \
                    "backend '%s': required callback '%s' is NULL", d->name, #field);              \
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
    REQ(supports_op)
    REQ(execute)
    REQ(synchronize)
#undef REQ
    if (st == LAM_OK && lam__backend_find(d->name) != NULL) {
        const lam__backend *other = lam__backend_find(d->name);
        st = refuse(p, LAM_ERR_ABI, LAM_REASON_DUPLICATE_NAME,
                    "duplicate backend name '%s', already registered by %s", d->name,
                    other->plugin->path);
    }
    if (st != LAM_OK) {
        backend_free(b);
        return st;
    }
    lam__backend **arr = realloc(lam__rt.backends, (lam__rt.n_backends + 1) * sizeof *arr);
    if (arr == NULL || !index_add(&backend_index, d->name, b)) {
        if (arr != NULL) {
            lam__rt.backends = arr;
        }
        backend_free(b);
        return refuse(p, LAM_ERR_OUT_OF_MEMORY, LAM_REASON_ENTRY_FAILED, "out of memory");
    }
    lam__rt.backends = arr;
    arr[lam__rt.n_backends++] = b;
    return LAM_OK;
}

static lam_status host_register_layer(lam_plugin *p, const lam_layer_desc *desc) {
    if (p == NULL || p != current_plugin || !p->loading) {
        return lam__error(LAM_ERR_STATE, "register_layer: Invalid state, registration is only "
                                         "allowed during lamina_plugin_entry");
    }
    if (desc == NULL) {
        return refuse(p, LAM_ERR_INVALID_ARGUMENT, LAM_REASON_BAD_DESCRIPTOR,
                      "layer descriptor is NULL");
    }
    lam_status st = check_header(p, "layer", desc->struct_size, desc, lam__layer_desc_size);
    if (st != LAM_OK) {
        return st;
    }
    lam__layer_type *l = calloc(1, sizeof *l);
    if (l == NULL) {
        return refuse(p, LAM_ERR_OUT_OF_MEMORY, LAM_REASON_ENTRY_FAILED, "out of memory");
    }
    memcpy(&l->desc, desc, desc->struct_size < sizeof l->desc ? desc->struct_size : sizeof l->desc);
    l->plugin = p;
    const lam_layer_desc *d = &l->desc;
    if (p->version_seen == NULL) {
        p->version_seen = text_dup(d->version);
    }
    if (!valid_name(d->name, false)) {
        st = refuse(p, LAM_ERR_INVALID_ARGUMENT, LAM_REASON_BAD_DESCRIPTOR,
                    "layer name '%.63s' is invalid (1-63 characters of A-Z, a-z, 0-9, _)",
                    d->name ? d->name : "(null)");
        free(l);
        return st;
    }
    if (d->n_attrs > 0 && d->attrs == NULL) {
        st = refuse(p, LAM_ERR_INVALID_ARGUMENT, LAM_REASON_BAD_DESCRIPTOR,
                    "layer '%s': n_attrs is %u but attrs is NULL", d->name, (unsigned)d->n_attrs);
        free(l);
        return st;
    }
    st = copy_layer_strings(p, l);
    if (st != LAM_OK) {
        layer_type_free(l);
        return st;
    }
#define REQ(field)                                                                                 \
    if (st == LAM_OK && d->field == NULL) {                                                        \
        st = refuse(p, LAM_ERR_ABI, LAM_REASON_NULL_CALLBACK,                                      \
                    "layer '%s': required callback '%s' is NULL", d->name, #field);                \
    }
    REQ(create)
    REQ(destroy)
    REQ(infer_shape)
    REQ(forward)
#undef REQ
    for (uint32_t i = 0; st == LAM_OK && i < d->n_attrs; i++) {
        const lam_attr_desc *a = &d->attrs[i];
        if (a->name == NULL || a->name[0] == '\0' || a->type <= LAM_ATTR_INVALID ||
            a->type >= LAM_ATTR_TYPE_COUNT || (a->type == LAM_ATTR_ENUM && a->choices == NULL)) {
            st = refuse(p, LAM_ERR_INVALID_ARGUMENT, LAM_REASON_BAD_DESCRIPTOR,
                        "layer '%s': attribute %u ('%s') has no name, an unknown type or an enum "
                        "without choices",
                        d->name, (unsigned)i, a->name ? a->name : "(null)");
        }
        for (uint32_t j = 0; st == LAM_OK && j < i; j++) {
            if (strcmp(d->attrs[j].name, a->name) == 0) {
                st = refuse(p, LAM_ERR_INVALID_ARGUMENT, LAM_REASON_BAD_DESCRIPTOR,
                            "layer '%s': attribute '%s' is declared twice", d->name, a->name);
            }
        }
    }
    if (st == LAM_OK && lam__layer_type_find(d->name) != NULL) {
        const lam__layer_type *other = lam__layer_type_find(d->name);
        st = refuse(p, LAM_ERR_ABI, LAM_REASON_DUPLICATE_NAME,
                    "duplicate layer name '%s', already registered by %s", d->name,
                    other->plugin->path);
    }
    if (st != LAM_OK) {
        layer_type_free(l);
        return st;
    }
    if (lam__rt.n_layers == layers_cap) {
        size_t cap = layers_cap ? 2 * layers_cap : 16;
        lam__layer_type **arr = realloc(lam__rt.layers, cap * sizeof *arr);
        if (arr == NULL) {
            layer_type_free(l);
            return refuse(p, LAM_ERR_OUT_OF_MEMORY, LAM_REASON_ENTRY_FAILED, "out of memory");
        }
        lam__rt.layers = arr;
        layers_cap = cap;
    }
    if (!index_add(&layer_index, d->name, l)) {
        layer_type_free(l);
        return refuse(p, LAM_ERR_OUT_OF_MEMORY, LAM_REASON_ENTRY_FAILED, "out of memory");
    }
    lam__layer_type **arr = lam__rt.layers;
    arr[lam__rt.n_layers++] = l;
    return LAM_OK;
}

/* The host table entries for registration live here because they need current_plugin. */
void lam__host_table_init_registry(lam_host_api *host) {
    host->register_backend = host_register_backend;
    host->register_layer = host_register_layer;
}

/* ---- loading ---- */

/* Removes every backend and layer a plugin registered (rollback of a refused plugin). */
static void rollback(lam_plugin *p) {
    size_t w = 0;
    /* The indexes are rebuilt from what stays (a rollback is rare); they never grow here, so
     * rebuilding cannot fail. */
    index_clear(&backend_index);
    for (size_t i = 0; i < lam__rt.n_backends; i++) {
        if (lam__rt.backends[i]->plugin == p) {
            backend_free(lam__rt.backends[i]);
        } else {
            lam__rt.backends[w++] = lam__rt.backends[i];
        }
    }
    lam__rt.n_backends = w;
    for (size_t i = 0; i < w; i++) {
        (void)index_add(&backend_index, lam__rt.backends[i]->desc.name, lam__rt.backends[i]);
    }
    w = 0;
    index_clear(&layer_index);
    for (size_t i = 0; i < lam__rt.n_layers; i++) {
        if (lam__rt.layers[i]->plugin == p) {
            layer_type_free(lam__rt.layers[i]);
        } else {
            lam__rt.layers[w++] = lam__rt.layers[i];
        }
    }
    lam__rt.n_layers = w;
    for (size_t i = 0; i < w; i++) {
        (void)index_add(&layer_index, lam__rt.layers[i]->desc.name, lam__rt.layers[i]);
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
    bool has_b = false, has_l = false;
    for (size_t i = 0; i < lam__rt.n_backends; i++) {
        if (lam__rt.backends[i]->plugin == p) {
            lam__strbuf_printf(&names, "%s%s", names.len ? "," : "",
                               lam__rt.backends[i]->desc.name);
            has_b = true;
        }
    }
    for (size_t i = 0; i < lam__rt.n_layers; i++) {
        if (lam__rt.layers[i]->plugin == p) {
            lam__strbuf_printf(&names, "%s%s", names.len ? "," : "", lam__rt.layers[i]->desc.name);
            has_l = true;
        }
    }
    set_str(&rec->kind, has_b && has_l ? "backend+layer"
                        : has_b        ? "backend"
                        : has_l        ? "layer"
                                       : "-");
    set_str(&rec->names, names.data ? names.data : "");
    lam__strbuf_fini(&names);
}

static void load_one(const char *path) {
    lam__record *rec;
    if (add_record(path, &rec) != LAM_OK) {
        return;
    }
    size_t rec_index = lam__rt.n_records - 1;
    lam_plugin *p = calloc(1, sizeof *p);
    if (p == NULL || (p->path = lam__strdup(path)) == NULL) {
        free(p);
        decide(rec, LAM_PLUGIN_REFUSED, LAM_REASON_ENTRY_FAILED, "out of memory");
        return;
    }
    p->record = rec_index;
    dlerror();
    p->handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (p->handle == NULL) {
        const char *err = dlerror();
        decide(rec, LAM_PLUGIN_REFUSED, LAM_REASON_DLOPEN_FAILED, err ? err : "dlopen failed");
        plugin_free(p);
        return;
    }
    void *sym = dlsym(p->handle, LAM_PLUGIN_ENTRY_NAME);
    if (sym == NULL) {
        decide(
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
    lam_status st = entry(&lam__rt.host, p);
    current_plugin = NULL;
    p->loading = false;
    rec = &lam__rt.records[rec_index];
    rec->plugin_abi = p->abi_seen;
    if (p->version_seen != NULL) {
        set_str(&rec->version, p->version_seen);
    }
    if (p->refuse_reason != LAM_REASON_INVALID) {
        rollback(p);
        decide(rec, LAM_PLUGIN_REFUSED, p->refuse_reason,
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
        decide(rec, LAM_PLUGIN_REFUSED, LAM_REASON_ENTRY_FAILED, msg);
        plugin_free(p);
        return;
    }
    describe_registrations(p, rec);
    if (strcmp(rec->kind, "-") == 0) {
        decide(rec, LAM_PLUGIN_REFUSED, LAM_REASON_NOTHING_REGISTERED,
               "the entry registered no layer and no backend");
        plugin_free(p);
        return;
    }
    lam_plugin **arr = realloc(lam__rt.plugins, (lam__rt.n_plugins + 1) * sizeof *arr);
    if (arr == NULL) {
        rollback(p);
        decide(rec, LAM_PLUGIN_REFUSED, LAM_REASON_ENTRY_FAILED, "out of memory");
        plugin_free(p);
        return;
    }
    lam__rt.plugins = arr;
    arr[lam__rt.n_plugins++] = p;

    /* Backends are probed on first use (lam__backend_probe), so a process that only uses the
     * CPU never pays for starting, say, a Vulkan instance. */
    decide(rec, LAM_PLUGIN_LOADED, LAM_REASON_OK, "");
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
        lam__record *rec = &lam__rt.records[b->plugin->record];
        lam__strbuf msg = {0};
        lam__strbuf_printf(&msg, "%s%s%s: %s", rec->message, rec->message[0] ? "; " : "",
                           b->desc.name, b->why);
        decide(rec, LAM_PLUGIN_LOADED, LAM_REASON_NO_DEVICE, msg.data ? msg.data : "");
        lam__strbuf_fini(&msg);
    }
}

void lam__backends_probe_all(void) {
    for (size_t i = 0; i < lam__rt.n_backends; i++) {
        lam__backend_probe(lam__rt.backends[i]);
    }
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool is_plugin_file_name(const char *name) {
    size_t n = strlen(name);
    return strncmp(name, "lamina_", 7) == 0 && n > 10 && strcmp(name + n - 3, ".so") == 0;
}

/* Candidate file list, in search order, for shadowing by base name. */
typedef struct cand_list {
    char **paths;
    size_t n;
} cand_list;

/* A row for a candidate that is not loaded because it is no plugin file at all. */
static void skip_row(const char *path, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void skip_row(const char *path, const char *fmt, ...) {
    lam__record *rec;
    if (add_record(path, &rec) != LAM_OK) {
        return;
    }
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    decide(rec, LAM_PLUGIN_SKIPPED, LAM_REASON_NOT_A_FILE, msg);
}

static const char *file_kind(mode_t mode) {
    return S_ISDIR(mode)    ? "a directory"
           : S_ISFIFO(mode) ? "a FIFO"
           : S_ISSOCK(mode) ? "a socket"
           : S_ISCHR(mode)  ? "a character device"
           : S_ISBLK(mode)  ? "a block device"
                            : "not a regular file";
}

/*
 * Only a readable regular file reaches dlopen: dlopen of a FIFO blocks for ever, of a device
 * may act on it. Everything else gets a row saying what it is. (A file swapped between this
 * check and dlopen needs write access to the plugin directory, which already means code
 * execution.)
 */
static bool loadable_file(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) {
        struct stat lst;
        if (lstat(path, &lst) == 0 && S_ISLNK(lst.st_mode)) {
            skip_row(path, "a dangling symbolic link (its target: %s)", strerror(errno));
        } else {
            skip_row(path, "cannot be examined: %s", strerror(errno));
        }
        return false;
    }
    if (!S_ISREG(st.st_mode)) {
        skip_row(path, "%s, not a regular file", file_kind(st.st_mode));
        return false;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        skip_row(path, "cannot be read: %s", strerror(errno));
        return false;
    }
    close(fd);
    return true;
}

static void consider(cand_list *seen, const char *path) {
    if (!loadable_file(path)) {
        return;
    }
    /* The same file reached twice (a directory listed twice, or a link to it) is one
     * candidate, not a shadowed one. */
    char real[PATH_MAX];
    if (realpath(path, real) != NULL) {
        for (size_t i = 0; i < seen->n; i++) {
            char other[PATH_MAX];
            if (realpath(seen->paths[i], other) != NULL && strcmp(other, real) == 0) {
                return;
            }
        }
    }
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    for (size_t i = 0; i < seen->n; i++) {
        const char *ob = strrchr(seen->paths[i], '/');
        ob = ob ? ob + 1 : seen->paths[i];
        if (strcmp(ob, base) == 0) {
            lam__record *rec;
            if (add_record(path, &rec) == LAM_OK) {
                char msg[1200];
                snprintf(msg, sizeof msg, "shadowed by %s earlier in the search path",
                         seen->paths[i]);
                decide(rec, LAM_PLUGIN_SKIPPED, LAM_REASON_SHADOWED, msg);
            }
            return;
        }
    }
    char **arr = realloc(seen->paths, (seen->n + 1) * sizeof *arr);
    if (arr == NULL) {
        return;
    }
    seen->paths = arr;
    arr[seen->n] = lam__strdup(path);
    if (arr[seen->n] == NULL) {
        return;
    }
    seen->n++;
    load_one(path);
}

static void scan_entry(cand_list *seen, const char *entry, bool from_path) {
    struct stat stt;
    if (entry[0] == '\0') {
        return;
    }
    if (stat(entry, &stt) != 0) {
        struct stat lst;
        if (lstat(entry, &lst) == 0) {
            consider(seen, entry); /* a dangling link: its row says so */
        } else if (from_path) {
            skip_row(entry, "cannot be examined: %s", strerror(errno));
        } else {
            lam__log(LAM_LOG_DEBUG, "plugin path: %s does not exist, skipped", entry);
        }
        return;
    }
    if (!S_ISDIR(stt.st_mode)) {
        /* A file named without a directory is that file, not a name for dlopen to look up in
         * the library search path. */
        if (strchr(entry, '/') == NULL) {
            lam__strbuf rel = {0};
            if (lam__strbuf_printf(&rel, "./%s", entry)) {
                consider(seen, rel.data);
            }
            lam__strbuf_fini(&rel);
            return;
        }
        consider(seen, entry);
        return;
    }
    DIR *dir = opendir(entry);
    if (dir == NULL) {
        skip_row(entry, "a directory that cannot be opened: %s", strerror(errno));
        return;
    }
    char **names = NULL;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(dir)) != NULL) {
        if (!is_plugin_file_name(de->d_name)) {
            continue;
        }
        char **arr = realloc(names, (n + 1) * sizeof *arr);
        if (arr == NULL) {
            break;
        }
        names = arr;
        names[n] = lam__strdup(de->d_name);
        if (names[n] != NULL) {
            n++;
        }
    }
    closedir(dir);
    if (n > 0) {
        qsort(names, n, sizeof *names, cmp_str);
    }
    for (size_t i = 0; i < n; i++) {
        lam__strbuf full = {0};
        if (lam__strbuf_printf(&full, "%s/%s", entry, names[i])) {
            consider(seen, full.data);
        }
        lam__strbuf_fini(&full);
        free(names[i]);
    }
    free(names);
}

const char *lam_builtin_plugin_dir(void) {
    static char dir[4096];
    if (dir[0] == '\0') {
        Dl_info info;
        void *self = (void *)(uintptr_t)&lam_builtin_plugin_dir;
        if (dladdr(self, &info) != 0 && info.dli_fname != NULL) {
            const char *slash = strrchr(info.dli_fname, '/');
            int len = slash ? (int)(slash - info.dli_fname) : 0;
            if (len > 0 && len < (int)sizeof dir - 32) {
                snprintf(dir, sizeof dir, "%.*s/lamina/plugins", len, info.dli_fname);
            } else {
                snprintf(dir, sizeof dir, "lamina/plugins");
            }
        }
    }
    return dir;
}

lam_status lam__registry_load(const char *plugin_path, bool skip_builtin) {
    cand_list seen = {0};
    if (plugin_path != NULL) {
        char *copy = lam__strdup(plugin_path);
        if (copy == NULL) {
            return lam__error(LAM_ERR_OUT_OF_MEMORY, "plugin registry: Out of memory");
        }
        char *save = NULL;
        for (char *tok = strtok_r(copy, ":", &save); tok; tok = strtok_r(NULL, ":", &save)) {
            scan_entry(&seen, tok, true);
        }
        free(copy);
    }
    if (!skip_builtin) {
        scan_entry(&seen, lam_builtin_plugin_dir(), false);
    }
    for (size_t i = 0; i < seen.n; i++) {
        free(seen.paths[i]);
    }
    free(seen.paths);
    return LAM_OK;
}

void lam__registry_unload(void) {
    for (size_t i = 0; i < lam__rt.n_backends; i++) {
        lam__backend *b = lam__rt.backends[i];
        if (b->desc.struct_size > offsetof(lam_backend_desc, shutdown) && b->desc.shutdown) {
            b->desc.shutdown(b->desc.user);
        }
        backend_free(b);
    }
    index_clear(&backend_index);
    free(lam__rt.backends);
    lam__rt.backends = NULL;
    lam__rt.n_backends = 0;
    for (size_t i = 0; i < lam__rt.n_layers; i++) {
        layer_type_free(lam__rt.layers[i]);
    }
    index_clear(&layer_index);
    layers_cap = 0;
    free(lam__rt.layers);
    lam__rt.layers = NULL;
    lam__rt.n_layers = 0;
    for (size_t i = 0; i < lam__rt.n_plugins; i++) {
        plugin_free(lam__rt.plugins[i]);
    }
    free(lam__rt.plugins);
    lam__rt.plugins = NULL;
    lam__rt.n_plugins = 0;
    for (size_t i = 0; i < lam__rt.n_records; i++) {
        lam__record *r = &lam__rt.records[i];
        free(r->path);
        free(r->kind);
        free(r->names);
        free(r->version);
        free(r->message);
    }
    free(lam__rt.records);
    lam__rt.records = NULL;
    lam__rt.n_records = 0;
}
