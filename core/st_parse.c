/* The safetensors format, reading: every header rule checked before any data is used. */
#define _GNU_SOURCE
#include "safetensors.h"
#include "error.h"
#include "util.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct dtype_info {
    const char *name;
    size_t size;
    bool convertible;
} dtype_info;

static const dtype_info dtypes[LAM__ST_DTYPE_COUNT] = {
    [LAM__ST_BOOL] = {"BOOL", 1, false},       [LAM__ST_U8] = {"U8", 1, true},
    [LAM__ST_I8] = {"I8", 1, false},           [LAM__ST_F8_E5M2] = {"F8_E5M2", 1, false},
    [LAM__ST_F8_E4M3] = {"F8_E4M3", 1, false}, [LAM__ST_I16] = {"I16", 2, false},
    [LAM__ST_U16] = {"U16", 2, false},         [LAM__ST_F16] = {"F16", 2, true},
    [LAM__ST_BF16] = {"BF16", 2, true},        [LAM__ST_I32] = {"I32", 4, true},
    [LAM__ST_U32] = {"U32", 4, false},         [LAM__ST_F32] = {"F32", 4, true},
    [LAM__ST_F64] = {"F64", 8, true},          [LAM__ST_I64] = {"I64", 8, true},
    [LAM__ST_U64] = {"U64", 8, false},
};

const char *lam__st_dtype_name(lam__st_dtype dt) {
    return (unsigned)dt < LAM__ST_DTYPE_COUNT ? dtypes[dt].name : "?";
}

size_t lam__st_dtype_size(lam__st_dtype dt) {
    return (unsigned)dt < LAM__ST_DTYPE_COUNT ? dtypes[dt].size : 0;
}

bool lam__st_dtype_convertible(lam__st_dtype dt) {
    return (unsigned)dt < LAM__ST_DTYPE_COUNT && dtypes[dt].convertible;
}

/* ---- reading ---- */

static uint64_t load_le64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

void lam__st_file_fini(lam__st_file *f) {
    if (f == NULL) {
        return;
    }
    for (size_t i = 0; i < f->n; i++) {
        free(f->entries[i].name);
    }
    free(f->entries);
    for (size_t i = 0; i < f->n_meta; i++) {
        free(f->meta_keys[i]);
        free(f->meta_values[i]);
    }
    free(f->meta_keys);
    free(f->meta_values);
    memset(f, 0, sizeof *f);
}

const char *lam__st_metadata(const lam__st_file *f, const char *key) {
    for (size_t i = 0; key != NULL && i < f->n_meta; i++) {
        if (strcmp(f->meta_keys[i], key) == 0) {
            return f->meta_values[i];
        }
    }
    return NULL;
}

long lam__st_find(const lam__st_file *f, const char *name) {
    for (size_t i = 0; name != NULL && i < f->n; i++) {
        if (strcmp(f->entries[i].name, name) == 0) {
            return (long)i;
        }
    }
    return -1;
}

static lam_status oom(void) {
    return lam__error(LAM_ERR_OUT_OF_MEMORY, "Out of memory, reading the header");
}

static lam_status parse_metadata(json_t *meta, lam__st_file *f) {
    if (!json_is_object(meta)) {
        return lam__error(LAM_ERR_FORMAT, "Corrupt header, __metadata__ is not an object");
    }
    size_t n = json_object_size(meta);
    f->meta_keys = calloc(n ? n : 1, sizeof *f->meta_keys);
    f->meta_values = calloc(n ? n : 1, sizeof *f->meta_values);
    if (f->meta_keys == NULL || f->meta_values == NULL) {
        return oom();
    }
    const char *key;
    json_t *value;
    json_object_foreach(meta, key, value) {
        if (!json_is_string(value)) {
            return lam__error(LAM_ERR_FORMAT,
                              "Corrupt header, __metadata__ value of '%s' is not a string", key);
        }
        f->meta_keys[f->n_meta] = lam__strdup(key);
        f->meta_values[f->n_meta] = lam__strdup(json_string_value(value));
        f->n_meta++;
        if (f->meta_keys[f->n_meta - 1] == NULL || f->meta_values[f->n_meta - 1] == NULL) {
            return oom();
        }
    }
    return LAM_OK;
}

static bool get_uint(json_t *v, uint64_t *out) {
    if (!json_is_integer(v) || json_integer_value(v) < 0) {
        return false;
    }
    *out = (uint64_t)json_integer_value(v);
    return true;
}

static lam_status parse_entry(const char *name, json_t *obj, uint64_t data_size, lam__st_entry *e) {
    if (!json_is_object(obj)) {
        return lam__error(LAM_ERR_FORMAT, "Corrupt header, tensor '%s' is not an object", name);
    }
    const char *key;
    json_t *value;
    json_object_foreach(obj, key, value) {
        if (strcmp(key, "dtype") != 0 && strcmp(key, "shape") != 0 &&
            strcmp(key, "data_offsets") != 0) {
            return lam__error(LAM_ERR_FORMAT,
                              "Corrupt header, tensor '%s' has an unknown field '%s'", name, key);
        }
    }
    json_t *dt = json_object_get(obj, "dtype");
    if (!json_is_string(dt)) {
        return lam__error(LAM_ERR_FORMAT, "Corrupt header, tensor '%s' has no dtype string", name);
    }
    int found = -1;
    for (int i = 0; i < LAM__ST_DTYPE_COUNT; i++) {
        if (strcmp(json_string_value(dt), dtypes[i].name) == 0) {
            found = i;
        }
    }
    if (found < 0) {
        return lam__error(LAM_ERR_FORMAT, "Corrupt header, tensor '%s' has an unknown dtype '%s'",
                          name, json_string_value(dt));
    }
    e->dtype = (lam__st_dtype)found;

    json_t *shape = json_object_get(obj, "shape");
    if (!json_is_array(shape)) {
        return lam__error(LAM_ERR_FORMAT, "Corrupt header, tensor '%s' has no shape array", name);
    }
    if (json_array_size(shape) > LAM_MAX_DIMS) {
        return lam__error(LAM_ERR_UNSUPPORTED,
                          "Unsupported tensor, '%s' has %zu dims, Lamina supports at most %d", name,
                          json_array_size(shape), LAM_MAX_DIMS);
    }
    e->shape.ndim = (uint32_t)json_array_size(shape);
    uint64_t numel = 1;
    bool overflow = false;
    for (uint32_t i = 0; i < e->shape.ndim; i++) {
        uint64_t d;
        if (!get_uint(json_array_get(shape, i), &d)) {
            return lam__error(LAM_ERR_FORMAT,
                              "Corrupt header, tensor '%s' has a shape entry that is not a "
                              "non-negative integer",
                              name);
        }
        e->shape.dims[i] = (int64_t)d;
        /* Every partial product must fit in int64_t: lam_shape_numel multiplies in order. */
        if (d != 0 && numel > (uint64_t)INT64_MAX / d) {
            overflow = true;
        }
        numel *= d;
    }
    char sb[200];
    lam_shape_format(&e->shape, sb, sizeof sb);
    size_t isz = dtypes[e->dtype].size;
    if (overflow || numel > (uint64_t)INT64_MAX / isz) {
        return lam__error(LAM_ERR_FORMAT,
                          "Corrupt header, tensor '%s' has shape %s whose byte size overflows",
                          name, sb);
    }
    e->numel = numel;

    json_t *offs = json_object_get(obj, "data_offsets");
    if (!json_is_array(offs) || json_array_size(offs) != 2 ||
        !get_uint(json_array_get(offs, 0), &e->begin) ||
        !get_uint(json_array_get(offs, 1), &e->end)) {
        return lam__error(LAM_ERR_FORMAT,
                          "Corrupt header, tensor '%s' has no data_offsets [begin, end] of "
                          "non-negative integers",
                          name);
    }
    if (e->begin > e->end) {
        return lam__error(LAM_ERR_FORMAT,
                          "Corrupt header, tensor '%s' has data_offsets [%llu, %llu] that end "
                          "before they begin",
                          name, (unsigned long long)e->begin, (unsigned long long)e->end);
    }
    if (numel * isz != e->end - e->begin) {
        return lam__error(LAM_ERR_FORMAT,
                          "Corrupt header, tensor '%s' has data_offsets [%llu, %llu] but shape %s "
                          "of %s needs %llu bytes",
                          name, (unsigned long long)e->begin, (unsigned long long)e->end, sb,
                          dtypes[e->dtype].name, (unsigned long long)(numel * isz));
    }
    if (e->end > data_size) {
        return lam__error(LAM_ERR_FORMAT,
                          "Corrupt header, tensor '%s' has data_offsets [%llu, %llu] beyond the "
                          "data area of %llu bytes",
                          name, (unsigned long long)e->begin, (unsigned long long)e->end,
                          (unsigned long long)data_size);
    }
    e->name = lam__strdup(name);
    return e->name ? LAM_OK : oom();
}

/* Data order; ties (empty tensors) keep the header order, which `numel` no longer needs, so
 * the header position is carried in the stable index below. */
typedef struct order_item {
    lam__st_entry e;
    size_t index;
} order_item;

static int by_begin(const void *a, const void *b) {
    const order_item *x = a, *y = b;
    if (x->e.begin != y->e.begin) {
        return x->e.begin < y->e.begin ? -1 : 1;
    }
    if (x->e.end != y->e.end) {
        return x->e.end < y->e.end ? -1 : 1;
    }
    return x->index < y->index ? -1 : x->index > y->index;
}

static lam_status check_layout(lam__st_file *f) {
    order_item *items = malloc((f->n ? f->n : 1) * sizeof *items);
    if (items == NULL) {
        return oom();
    }
    for (size_t i = 0; i < f->n; i++) {
        items[i].e = f->entries[i];
        items[i].index = i;
    }
    qsort(items, f->n, sizeof *items, by_begin);
    uint64_t pos = 0;
    lam_status st = LAM_OK;
    for (size_t i = 0; i < f->n && st == LAM_OK; i++) {
        const lam__st_entry *e = &items[i].e;
        if (e->begin > pos) {
            st = lam__error(LAM_ERR_FORMAT,
                            "Corrupt header, %llu unused bytes before tensor '%s' (data_offsets "
                            "[%llu, %llu])",
                            (unsigned long long)(e->begin - pos), e->name,
                            (unsigned long long)e->begin, (unsigned long long)e->end);
        } else if (e->begin < pos) {
            const lam__st_entry *p = &items[i - 1].e;
            st = lam__error(LAM_ERR_FORMAT,
                            "Corrupt header, tensor '%s' (data_offsets [%llu, %llu]) overlaps "
                            "tensor '%s' (data_offsets [%llu, %llu])",
                            e->name, (unsigned long long)e->begin, (unsigned long long)e->end,
                            p->name, (unsigned long long)p->begin, (unsigned long long)p->end);
        }
        pos = e->end;
    }
    if (st == LAM_OK && pos != f->data_size) {
        st = lam__error(LAM_ERR_FORMAT, "Corrupt header, %llu bytes of data after the last tensor",
                        (unsigned long long)(f->data_size - pos));
    }
    if (st == LAM_OK) {
        for (size_t i = 0; i < f->n; i++) {
            f->entries[i] = items[i].e;
        }
    }
    free(items);
    return st;
}

/* "0", "1", ... without leading zeros; -1 otherwise. */
static long list_index(const char *s, size_t n) {
    if (s[0] == '\0' || (s[0] == '0' && s[1] != '\0') || strlen(s) > 18) {
        return -1;
    }
    long v = 0;
    for (const char *c = s; *c; c++) {
        if (*c < '0' || *c > '9') {
            return -1;
        }
        v = v * 10 + (*c - '0');
    }
    return (size_t)v < n ? v : -1;
}

static lam_status order_list(lam__st_file *f) {
    lam__st_entry *sorted = calloc(f->n ? f->n : 1, sizeof *sorted);
    if (sorted == NULL) {
        return oom();
    }
    for (size_t i = 0; i < f->n; i++) {
        long k = list_index(f->entries[i].name, f->n);
        if (k < 0 || sorted[k].name != NULL) {
            free(sorted);
            return lam__error(LAM_ERR_FORMAT,
                              "Corrupt header, saved as a list of %zu tensors but a tensor is "
                              "named '%s' instead of an index 0..%zu",
                              f->n, f->entries[i].name, f->n - 1);
        }
        sorted[k] = f->entries[i];
    }
    free(f->entries);
    f->entries = sorted;
    return LAM_OK;
}

/* The checksum the metadata states; an error when the text is not 8 hex digits. */
lam_status lam__st_parse_crc(const char *text, uint32_t *want) {
    *want = 0;
    bool ok = strlen(text) == 8;
    for (int i = 0; ok && i < 8; i++) {
        char c = text[i];
        int d = (c >= '0' && c <= '9')   ? c - '0'
                : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                         : -1;
        ok = d >= 0;
        *want = (*want << 4) | (uint32_t)(d & 0xF);
    }
    if (!ok) {
        return lam__error(LAM_ERR_FORMAT,
                          "Corrupt header, metadata %s is '%s', expected 8 hex digits",
                          LAM__ST_META_CRC, text);
    }
    return LAM_OK;
}

lam_status lam__st_read_at(const lam__st_source *src, uint64_t at, void *dst, size_t n) {
    if (src->mem != NULL) {
        if (at > src->size || n > src->size - at) {
            return lam__error(LAM_ERR_IO, "Read failed, bytes %llu..%llu lie beyond the end",
                              (unsigned long long)at, (unsigned long long)(at + n));
        }
        if (n > 0) {
            memcpy(dst, src->mem + at, n);
        }
        return LAM_OK;
    }
    uint8_t *p = dst;
    while (n > 0) {
        ssize_t r = pread(src->fd, p, n, (off_t)at);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            return lam__error(LAM_ERR_IO, "Read failed, %s", strerror(errno));
        }
        if (r == 0) {
            return lam__error(LAM_ERR_IO,
                              "File changed while reading, it ends at byte %llu but had %llu "
                              "bytes when opened (truncated by another process?)",
                              (unsigned long long)at, (unsigned long long)src->size);
        }
        p += r;
        n -= (size_t)r;
        at += (uint64_t)r;
    }
    return LAM_OK;
}

lam_status lam__st_parse(const uint8_t *buf, size_t size, lam__st_file *out) {
    lam__st_source src = {.mem = buf, .fd = -1, .size = size};
    return lam__st_open(&src, out);
}

/* Reads the JSON text of the header (8-byte length, then the text) into a buffer. */
static lam_status read_header(const lam__st_source *src, char **text, uint64_t *hlen) {
    *text = NULL;
    *hlen = 0;
    if (src->size < 8) {
        return lam__error(LAM_ERR_FORMAT,
                          "File too small, %llu bytes, a safetensors file has at least 8",
                          (unsigned long long)src->size);
    }
    uint8_t len[8];
    lam_status st = lam__st_read_at(src, 0, len, sizeof len);
    if (st != LAM_OK) {
        return st;
    }
    uint64_t n = load_le64(len);
    if (n > LAM__ST_MAX_HEADER) {
        return lam__error(LAM_ERR_FORMAT,
                          "Corrupt header, header length %llu exceeds the limit of %u",
                          (unsigned long long)n, LAM__ST_MAX_HEADER);
    }
    if (n > src->size - 8) {
        return lam__error(LAM_ERR_FORMAT,
                          "Corrupt header, header length %llu exceeds the %llu bytes after the "
                          "length field (truncated file?)",
                          (unsigned long long)n, (unsigned long long)(src->size - 8));
    }
    char *buf = malloc(n ? (size_t)n : 1);
    if (buf == NULL) {
        return oom();
    }
    st = lam__st_read_at(src, 8, buf, (size_t)n);
    if (st != LAM_OK) {
        free(buf);
        return st;
    }
    *text = buf;
    *hlen = n;
    return LAM_OK;
}

lam_status lam__st_open(const lam__st_source *src, lam__st_file *out) {
    memset(out, 0, sizeof *out);
    out->src = *src;
    char *text;
    uint64_t hlen;
    lam_status st = read_header(src, &text, &hlen);
    if (st != LAM_OK) {
        return st;
    }
    lam__st_json_error jerr;
    json_t *root = lam__st_json_parse(text, (size_t)hlen, &jerr);
    free(text);
    if (root == NULL) {
        if (jerr.oom) {
            return oom();
        }
        return lam__error(LAM_ERR_FORMAT, "Corrupt header, invalid JSON at byte %zu: %s",
                          jerr.position, jerr.text);
    }
    if (!json_is_object(root)) {
        st = lam__error(LAM_ERR_FORMAT, "Corrupt header, the JSON is not an object");
    }
    out->data_at = 8 + hlen;
    out->data_size = src->size - 8 - hlen;
    size_t cap = json_object_size(root);
    out->entries = calloc(cap ? cap : 1, sizeof *out->entries);
    if (st == LAM_OK && out->entries == NULL) {
        st = oom();
    }
    const char *key;
    json_t *value;
    json_object_foreach(root, key, value) {
        if (st != LAM_OK) {
            break;
        }
        if (strcmp(key, "__metadata__") == 0) {
            st = parse_metadata(value, out);
        } else {
            st = parse_entry(key, value, out->data_size, &out->entries[out->n]);
            if (st == LAM_OK) {
                out->n++;
            }
        }
    }
    json_decref(root);
    if (st == LAM_OK) {
        st = check_layout(out);
    }
    const char *kind = st == LAM_OK ? lam__st_metadata(out, LAM__ST_META_KIND) : NULL;
    if (kind != NULL && strcmp(kind, "list") == 0) {
        out->is_list = true;
        st = order_list(out);
    }
    const char *crc = st == LAM_OK ? lam__st_metadata(out, LAM__ST_META_CRC) : NULL;
    uint32_t want;
    if (crc != NULL) {
        st = lam__st_parse_crc(crc, &want);
    }
    if (st == LAM_OK) {
        /* The alias table is part of the header: a file with a broken one is refused by every
         * reader, not only by parameter loading. */
        lam__st_alias *aliases;
        size_t n_aliases;
        st = lam__st_aliases(out, &aliases, &n_aliases);
        lam__st_aliases_free(aliases, n_aliases);
    }
    if (st != LAM_OK) {
        lam__st_file_fini(out);
    }
    return st;
}

void lam__st_aliases_free(lam__st_alias *a, size_t n) {
    for (size_t i = 0; a != NULL && i < n; i++) {
        free(a[i].key);
    }
    free(a);
}

lam_status lam__st_aliases(const lam__st_file *f, lam__st_alias **out, size_t *n) {
    *out = NULL;
    *n = 0;
    const char *text = lam__st_metadata(f, LAM__ST_META_ALIASES);
    if (text == NULL) {
        return LAM_OK;
    }
    lam__st_json_error jerr;
    json_t *root = lam__st_json_parse(text, strlen(text), &jerr);
    if (root == NULL && jerr.oom) {
        return oom();
    }
    if (!json_is_object(root)) {
        json_decref(root);
        return lam__error(LAM_ERR_FORMAT, "Corrupt header, metadata %s is not a JSON object",
                          LAM__ST_META_ALIASES);
    }
    size_t cap = json_object_size(root);
    lam__st_alias *a = calloc(cap ? cap : 1, sizeof *a);
    lam_status st = a ? LAM_OK : oom();
    const char *key;
    json_t *value;
    json_object_foreach(root, key, value) {
        if (st != LAM_OK) {
            break;
        }
        long target = json_is_string(value) ? lam__st_find(f, json_string_value(value)) : -1;
        if (target < 0) {
            st = lam__error(LAM_ERR_FORMAT,
                            "Corrupt header, metadata %s maps '%s' to something that is not a "
                            "tensor of the file",
                            LAM__ST_META_ALIASES, key);
        } else if (key[0] == '\0' || lam__st_find(f, key) >= 0) {
            st = lam__error(LAM_ERR_FORMAT,
                            "Corrupt header, metadata %s has an alias '%s' that is empty or also "
                            "a tensor",
                            LAM__ST_META_ALIASES, key);
        } else if ((a[*n].key = lam__strdup(key)) == NULL) {
            st = oom();
        } else {
            a[*n].target = (size_t)target;
            (*n)++;
        }
    }
    json_decref(root);
    if (st != LAM_OK) {
        lam__st_aliases_free(a, *n);
        *n = 0;
        return st;
    }
    *out = a;
    return LAM_OK;
}
