/* The safetensors format: every header rule checked before any data is used; atomic writes. */
#define _GNU_SOURCE /* mkostemp (O_CLOEXEC temporaries), _SC_PHYS_PAGES */
#include "safetensors.h"
#include "error.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

char *lam__st_shape_format(const lam_shape *s, char *buf, size_t cap) {
    size_t pos = 0;
    int n = snprintf(buf, cap, "(");
    pos = n > 0 ? (size_t)n : 0;
    for (uint32_t i = 0; i < s->ndim && pos < cap; i++) {
        if (s->dims[i] < 0) {
            n = snprintf(buf + pos, cap - pos, "%sNone", i ? ", " : "");
        } else {
            n = snprintf(buf + pos, cap - pos, "%s%lld", i ? ", " : "", (long long)s->dims[i]);
        }
        pos += n > 0 ? (size_t)n : 0;
    }
    if (pos < cap) {
        snprintf(buf + pos, cap - pos, "%s)", s->ndim == 1 ? "," : "");
    }
    return buf;
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
    lam__st_shape_format(&e->shape, sb, sizeof sb);
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

/* The checksum the metadata states; false when the text is not 8 hex digits. */
static lam_status parse_crc(const char *text, uint32_t *want) {
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
        st = parse_crc(crc, &want);
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

static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1Fu, mant = h & 0x3FFu, bits;
    if (exp == 0 && mant == 0) {
        bits = sign;
    } else if (exp == 0) {
        /* Subnormal half: normal as a float once shifted. */
        exp = 127 - 15 + 1;
        while ((mant & 0x400u) == 0) {
            mant <<= 1;
            exp--;
        }
        bits = sign | (exp << 23) | ((mant & 0x3FFu) << 13);
    } else if (exp == 31) {
        bits = sign | 0x7F800000u | (mant << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static uint64_t load_le(const uint8_t *p, size_t n) {
    uint64_t v = 0;
    for (size_t i = n; i-- > 0;) {
        v = (v << 8) | p[i];
    }
    return v;
}

/* Converts count values of a convertible dtype, stored little-endian at p, to float32. */
static void convert(lam__st_dtype dt, const uint8_t *p, float *dst, size_t count) {
    size_t isz = dtypes[dt].size;
    for (size_t i = 0; i < count; i++, p += isz) {
        uint64_t v = load_le(p, isz);
        switch (dt) {
        case LAM__ST_F32: {
            uint32_t b = (uint32_t)v;
            memcpy(&dst[i], &b, sizeof b);
            break;
        }
        case LAM__ST_F16:
            dst[i] = half_to_float((uint16_t)v);
            break;
        case LAM__ST_BF16: {
            uint32_t b = (uint32_t)v << 16;
            memcpy(&dst[i], &b, sizeof b);
            break;
        }
        case LAM__ST_F64: {
            double d;
            memcpy(&d, &v, sizeof d);
            dst[i] = (float)d;
            break;
        }
        case LAM__ST_I32:
            dst[i] = (float)(int32_t)(uint32_t)v;
            break;
        case LAM__ST_I64:
            dst[i] = (float)(int64_t)v;
            break;
        default: /* LAM__ST_U8: the only other convertible dtype */
            dst[i] = (float)v;
            break;
        }
    }
}

#define CHUNK ((size_t)1 << 20)

/* Memory the machine has, in bytes (0 when unknown). */
static uint64_t physical_memory(void) {
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : 0;
}

typedef struct data_pos {
    uint64_t begin;
    size_t index;
} data_pos;

static int by_data(const void *a, const void *b) {
    const data_pos *x = a, *y = b;
    if (x->begin != y->begin) {
        return x->begin < y->begin ? -1 : 1;
    }
    return x->index < y->index ? -1 : x->index > y->index;
}

/* The order the entries' data lies in the file (entries of a list file are by index). */
static size_t *data_order(const lam__st_file *f) {
    size_t n = f->n ? f->n : 1;
    size_t *order = malloc(n * sizeof *order);
    data_pos *pos = malloc(n * sizeof *pos);
    if (order == NULL || pos == NULL) {
        free(order);
        free(pos);
        return NULL;
    }
    for (size_t i = 0; i < f->n; i++) {
        pos[i] = (data_pos){f->entries[i].begin, i};
    }
    qsort(pos, f->n, sizeof *pos, by_data);
    for (size_t i = 0; i < f->n; i++) {
        order[i] = pos[i].index;
    }
    free(pos);
    return order;
}

/* The file behind fd is still the one that was opened, unchanged; else an error. */
static lam_status check_unchanged(const lam__st_source *src) {
    if (src->mem != NULL) {
        return LAM_OK;
    }
    struct stat sb;
    if (fstat(src->fd, &sb) != 0) {
        return lam__error(LAM_ERR_IO, "Cannot stat the file, %s", strerror(errno));
    }
    if ((uint64_t)sb.st_size != src->size || (uint64_t)sb.st_ino != src->ino ||
        (uint64_t)sb.st_dev != src->dev || (int64_t)sb.st_mtim.tv_sec != src->mtime_sec ||
        (int64_t)sb.st_mtim.tv_nsec != src->mtime_nsec) {
        return lam__error(LAM_ERR_IO,
                          "File changed while reading, another process wrote it "
                          "(%llu bytes when opened, %llu now); try again",
                          (unsigned long long)src->size, (unsigned long long)sb.st_size);
    }
    return LAM_OK;
}

/* Reads tensor e into dst (NULL: only for the checksum) through the scratch buffer. */
static lam_status read_entry(const lam__st_file *f, const lam__st_entry *e, float *dst,
                             uint8_t *scratch, uint32_t *crc) {
    uint64_t at = f->data_at + e->begin, bytes = e->end - e->begin;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (dst != NULL && e->dtype == LAM__ST_F32) {
        /* Straight into the destination: no conversion needed. */
        lam_status st = lam__st_read_at(&f->src, at, dst, (size_t)bytes);
        if (st == LAM_OK) {
            *crc = lam__crc32c(*crc, dst, (size_t)bytes);
        }
        return st;
    }
#endif
    size_t isz = dtypes[e->dtype].size, done = 0;
    while (bytes > 0) {
        size_t n = bytes < CHUNK ? (size_t)bytes : CHUNK; /* CHUNK is a multiple of isz */
        lam_status st = lam__st_read_at(&f->src, at, scratch, n);
        if (st != LAM_OK) {
            return st;
        }
        *crc = lam__crc32c(*crc, scratch, n);
        if (dst != NULL) {
            convert(e->dtype, scratch, dst + done, n / isz);
        }
        done += n / isz;
        at += n;
        bytes -= n;
    }
    return LAM_OK;
}

lam_status lam__st_read_tensors(const lam__st_file *f, const bool *want, lam__st_tensor_fn fn,
                                void *user) {
    const char *crc_text = lam__st_metadata(f, LAM__ST_META_CRC);
    uint32_t want_crc = 0, crc = 0;
    lam_status st = crc_text ? parse_crc(crc_text, &want_crc) : LAM_OK;
    /* The header's claims were checked against the file size; what they ask of memory is
     * checked against the machine before a byte of data is read (a huge sparse file is
     * refused at once, not after reading it). */
    uint64_t need = 0, mem = physical_memory();
    for (size_t i = 0; st == LAM_OK && i < f->n; i++) {
        const lam__st_entry *e = &f->entries[i];
        if (want != NULL && !want[i]) {
            continue;
        }
        if (!lam__st_dtype_convertible(e->dtype)) {
            st = lam__error(LAM_ERR_DTYPE,
                            "tensor '%s': Unsupported dtype, %s does not convert to float32 "
                            "(F32, F16, BF16, F64, I32, I64 and U8 do)",
                            e->name, lam__st_dtype_name(e->dtype));
        } else if (e->numel > UINT64_MAX / 4 || need + e->numel * 4 < need ||
                   (mem > 0 && need + e->numel * 4 > mem) ||
                   e->numel * 4 > (uint64_t)SIZE_MAX / 2) {
            st = lam__error(LAM_ERR_OUT_OF_MEMORY,
                            "tensor '%s': Too large, the file's tensors need at least %llu bytes "
                            "as float32 and this machine has %llu bytes of memory",
                            e->name, (unsigned long long)(need + e->numel * 4),
                            (unsigned long long)mem);
        }
        need += e->numel * 4;
    }
    if (st != LAM_OK) {
        return st;
    }
    size_t *order = data_order(f);
    uint8_t *scratch = malloc(CHUNK);
    if (order == NULL || scratch == NULL) {
        free(order);
        free(scratch);
        return lam__error(LAM_ERR_OUT_OF_MEMORY, "Out of memory, reading the data");
    }
    for (size_t k = 0; st == LAM_OK && k < f->n; k++) {
        size_t i = order[k];
        const lam__st_entry *e = &f->entries[i];
        bool wanted = want == NULL || want[i];
        if (!wanted && crc_text == NULL) {
            continue; /* nothing to check, nothing to read */
        }
        float *dst = NULL;
        if (wanted && (dst = malloc((size_t)(e->numel ? e->numel : 1) * sizeof *dst)) == NULL) {
            st = lam__error(LAM_ERR_OUT_OF_MEMORY, "tensor '%s': Out of memory, %llu elements",
                            e->name, (unsigned long long)e->numel);
            break;
        }
        st = read_entry(f, e, dst, scratch, &crc);
        if (st == LAM_OK && wanted) {
            st = fn(user, i, dst, (size_t)e->numel);
        }
        free(dst);
    }
    free(order);
    free(scratch);
    if (st == LAM_OK) {
        st = check_unchanged(&f->src);
    }
    if (st == LAM_OK && crc_text != NULL && crc != want_crc) {
        st = lam__error(LAM_ERR_FORMAT,
                        "Checksum mismatch, the data has CRC32C %08x but the metadata says "
                        "%08x (the file is corrupt)",
                        (unsigned)crc, (unsigned)want_crc);
    }
    return st;
}

bool lam__st_same_data(const lam__st_file *f, size_t a, size_t b) {
    const lam__st_entry *x = &f->entries[a], *y = &f->entries[b];
    /* Shapes compared here: this file links without tensor.c (the fuzz target). */
    bool same = x->dtype == y->dtype && x->shape.ndim == y->shape.ndim;
    for (uint32_t i = 0; same && i < x->shape.ndim; i++) {
        same = x->shape.dims[i] == y->shape.dims[i];
    }
    if (!same) {
        return false;
    }
    enum { PART = 64 * 1024 };
    uint8_t *bx = malloc(PART), *by = malloc(PART);
    same = bx != NULL && by != NULL;
    for (uint64_t at = 0, n = x->end - x->begin; same && at < n; at += PART) {
        size_t k = n - at < PART ? (size_t)(n - at) : PART;
        same = lam__st_read_at(&f->src, f->data_at + x->begin + at, bx, k) == LAM_OK &&
               lam__st_read_at(&f->src, f->data_at + y->begin + at, by, k) == LAM_OK &&
               memcmp(bx, by, k) == 0;
    }
    free(bx);
    free(by);
    return same;
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

/* ---- writing ---- */

static lam_status write_all(int fd, const void *buf, size_t n, off_t at, const char *path) {
    const uint8_t *p = buf;
    while (n > 0) {
        ssize_t w = pwrite(fd, p, n, at);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return lam__error(LAM_ERR_IO, "saving '%s': Write failed, %s", path,
                              w < 0 ? strerror(errno) : "no progress");
        }
        p += w;
        n -= (size_t)w;
        at += (off_t)w;
    }
    return LAM_OK;
}

/* Jansson's own rule for strings (RFC 3629: no overlong forms, surrogates or values past
 * U+10FFFF), checked here so that a failing jansson call that follows can only mean out of
 * memory. */
bool lam__st_utf8_valid(const char *s) {
    const uint8_t *p = (const uint8_t *)s;
    while (*p) {
        uint8_t c = *p++;
        int extra;
        uint32_t v, min;
        if (c < 0x80) {
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            extra = 1, v = c & 0x1Fu, min = 0x80;
        } else if (c >= 0xE0 && c <= 0xEF) {
            extra = 2, v = c & 0x0Fu, min = 0x800;
        } else if (c >= 0xF0 && c <= 0xF4) {
            extra = 3, v = c & 0x07u, min = 0x10000;
        } else {
            return false;
        }
        for (int i = 0; i < extra; i++, p++) {
            if ((*p & 0xC0u) != 0x80u) {
                return false;
            }
            v = (v << 6) | (*p & 0x3Fu);
        }
        if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) {
            return false;
        }
    }
    return true;
}

static lam_status write_oom(const char *path) {
    return lam__error(LAM_ERR_OUT_OF_MEMORY, "saving '%s': Out of memory", path);
}

/* The header JSON with the checksum given, padded with spaces to a multiple of 8 bytes so the
 * data is aligned (as the safetensors library does). NULL: out of memory. */
static char *header_text(json_t *root, json_t *meta, uint32_t crc, size_t *len) {
    char hex[9];
    snprintf(hex, sizeof hex, "%08x", (unsigned)crc);
    if (json_object_set_new_nocheck(meta, LAM__ST_META_CRC, json_string_nocheck(hex)) != 0) {
        return NULL;
    }
    char *text = lam__st_json_dump(root);
    if (text == NULL) {
        return NULL;
    }
    size_t n = strlen(text), padded = (n + 7) & ~(size_t)7;
    char *out = malloc(8 + padded);
    if (out == NULL) {
        free(text);
        return NULL;
    }
    uint64_t le = padded;
    for (int i = 0; i < 8; i++) {
        out[i] = (char)(uint8_t)(le >> (8 * i));
    }
    memcpy(out + 8, text, n);
    memset(out + 8 + n, ' ', padded - n);
    free(text);
    *len = 8 + padded;
    return out;
}

/* Every jansson call's result is checked: a header missing a dim or an entry must never be
 * written as if it were whole. */
static json_t *build_header(const char *path, size_t n, const char *const *names,
                            const lam_shape *const *shapes, size_t n_meta,
                            const char *const *meta_keys, const char *const *meta_values,
                            json_t **meta_out, uint64_t *offsets, lam_status *st) {
    *st = LAM_OK;
    *meta_out = NULL;
    for (size_t i = 0; *st == LAM_OK && i < n_meta; i++) {
        if (!lam__st_utf8_valid(meta_keys[i]) || !lam__st_utf8_valid(meta_values[i])) {
            *st = lam__error(LAM_ERR_INVALID_ARGUMENT,
                             "saving '%s': Invalid metadata, '%s' is not valid UTF-8", path,
                             meta_keys[i]);
        }
    }
    for (size_t i = 0; *st == LAM_OK && i < n; i++) {
        if (!lam__st_utf8_valid(names[i])) {
            *st = lam__error(LAM_ERR_INVALID_ARGUMENT,
                             "saving '%s': Invalid name, '%s' is not valid UTF-8", path, names[i]);
        }
    }
    if (*st != LAM_OK) {
        return NULL;
    }
    json_t *root = json_object(), *meta = json_object();
    if (root == NULL || meta == NULL || json_object_set_nocheck(root, "__metadata__", meta) != 0) {
        *st = write_oom(path);
    }
    for (size_t i = 0; *st == LAM_OK && i < n_meta; i++) {
        if (json_object_set_new_nocheck(meta, meta_keys[i], json_string_nocheck(meta_values[i])) !=
            0) {
            *st = write_oom(path);
        }
    }
    uint64_t pos = 0;
    for (size_t i = 0; *st == LAM_OK && i < n; i++) {
        const lam_shape *s = shapes[i];
        json_t *shape = json_array();
        uint64_t numel = 1;
        bool ok = shape != NULL;
        for (uint32_t d = 0; d < s->ndim && ok; d++) {
            numel *= (uint64_t)s->dims[d];
            ok = json_array_append_new(shape, json_integer((json_int_t)s->dims[d])) == 0;
        }
        offsets[i] = pos;
        uint64_t end = pos + numel * 4;
        pos = end;
        json_t *e = NULL;
        if (ok) {
            /* "o" hands the shape array over, on failure too. */
            e = json_pack("{s:s, s:o, s:[I, I]}", "dtype", "F32", "shape", shape, "data_offsets",
                          (json_int_t)offsets[i], (json_int_t)end);
        } else {
            json_decref(shape);
        }
        if (e == NULL || json_object_set_new_nocheck(root, names[i], e) != 0) {
            *st = write_oom(path);
        }
    }
    json_decref(meta); /* root holds it */
    if (*st != LAM_OK) {
        json_decref(root);
        return NULL;
    }
    *meta_out = meta;
    return root;
}

static char *dir_of(const char *path) {
    const char *slash = strrchr(path, '/');
    if (slash == NULL) {
        return lam__strdup(".");
    }
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    char *d = malloc(n + 1);
    if (d != NULL) {
        memcpy(d, path, n);
        d[n] = '\0';
    }
    return d;
}

/* The file a save replaces: path itself, or, through symbolic links, the file they point to
 * (which need not exist yet), as editors do. NULL with *err set: errno of the failure. */
static char *resolve_target(const char *path, int *err) {
    char *cur = lam__strdup(path);
    *err = ENOMEM;
    for (int hops = 0; cur != NULL; hops++) {
        struct stat sb;
        if (lstat(cur, &sb) != 0 || !S_ISLNK(sb.st_mode)) {
            return cur; /* a missing file is created; other errors show at the rename */
        }
        if (hops == 40) {
            free(cur);
            *err = ELOOP;
            return NULL;
        }
        size_t cap = (size_t)(sb.st_size > 0 ? sb.st_size : 255) + 1;
        char *link = malloc(cap);
        ssize_t len = link ? readlink(cur, link, cap) : -1;
        if (len < 0 || (size_t)len >= cap) {
            *err = link == NULL ? ENOMEM : len < 0 ? errno : EAGAIN; /* changed under us */
            free(link);
            free(cur);
            return NULL;
        }
        link[len] = '\0';
        char *next = NULL;
        if (link[0] == '/') {
            next = link;
        } else {
            char *dir = dir_of(cur);
            size_t dl = dir ? strlen(dir) : 0;
            next = dir ? malloc(dl + 1 + (size_t)len + 1) : NULL;
            if (next != NULL) {
                memcpy(next, dir, dl);
                next[dl] = '/';
                memcpy(next + dl + 1, link, (size_t)len + 1);
            }
            free(dir);
            free(link);
        }
        free(cur);
        cur = next;
    }
    return NULL;
}

#define TMP_TAG ".lamina-tmp."

/* "<dir>/.<base>.lamina-tmp.<pid>.XXXXXX" for mkostemp. */
static char *temp_template(const char *target) {
    const char *slash = strrchr(target, '/');
    size_t dl = slash ? (size_t)(slash - target) + 1 : 0;
    const char *base = target + dl;
    char pid[24];
    snprintf(pid, sizeof pid, "%ld", (long)getpid());
    size_t cap = dl + 1 + strlen(base) + strlen(TMP_TAG) + strlen(pid) + sizeof ".XXXXXX";
    char *t = malloc(cap);
    if (t != NULL) {
        snprintf(t, cap, "%.*s.%s" TMP_TAG "%s.XXXXXX", (int)dl, target, base, pid);
    }
    return t;
}

/* Removes the temporaries of earlier saves of target whose process is gone (killed during a
 * save): ".<base>.lamina-tmp.<pid>.<6 characters>" with no process <pid> on this machine. A
 * temporary of a live process (this one included: another thread may be saving) is kept. */
static void remove_stale_temps(const char *dir, const char *target) {
    const char *slash = strrchr(target, '/');
    const char *base = slash ? slash + 1 : target;
    size_t bl = strlen(base), tl = strlen(TMP_TAG);
    DIR *d = opendir(dir);
    if (d == NULL) {
        return;
    }
    int dfd = dirfd(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *n = de->d_name;
        if (n[0] != '.' || strncmp(n + 1, base, bl) != 0 || strncmp(n + 1 + bl, TMP_TAG, tl) != 0) {
            continue;
        }
        const char *p = n + 1 + bl + tl;
        char *end;
        errno = 0;
        long pid = strtol(p, &end, 10);
        if (errno != 0 || end == p || pid <= 0 || *end != '.' || strlen(end + 1) != 6 ||
            pid == (long)getpid()) {
            continue;
        }
        if (kill((pid_t)pid, 0) != 0 && errno == ESRCH) {
            (void)unlinkat(dfd, n, 0);
        }
    }
    closedir(d);
}

static lam_status write_body(int fd, const char *path, size_t n, const lam_shape *const *shapes,
                             lam__st_fill_fn fill, void *user, off_t data_at,
                             const uint64_t *offsets, uint32_t *crc) {
    *crc = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t numel = 1;
        for (uint32_t d = 0; d < shapes[i]->ndim; d++) {
            numel *= shapes[i]->dims[d];
        }
        float *buf = malloc((size_t)(numel > 0 ? numel : 1) * sizeof *buf);
        if (buf == NULL) {
            return lam__error(LAM_ERR_OUT_OF_MEMORY, "saving '%s': Out of memory, %lld elements",
                              path, (long long)numel);
        }
        lam_status st = fill(user, i, buf, (size_t)numel);
        if (st != LAM_OK) {
            free(buf);
            return lam__error_prefix(st, "saving '%s'", path);
        }
        size_t bytes = (size_t)numel * sizeof *buf;
#if !(defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__)
        for (size_t k = 0; k < (size_t)numel; k++) {
            uint32_t b;
            memcpy(&b, &buf[k], 4);
            b = __builtin_bswap32(b);
            memcpy(&buf[k], &b, 4);
        }
#endif
        *crc = lam__crc32c(*crc, buf, bytes);
        st = write_all(fd, buf, bytes, data_at + (off_t)offsets[i], path);
        free(buf);
        if (st != LAM_OK) {
            return st;
        }
    }
    return LAM_OK;
}

/* Writes the whole file into the open temporary fd. */
static lam_status write_file(int fd, const char *path, json_t *root, json_t *meta, size_t n,
                             const lam_shape *const *shapes, lam__st_fill_fn fill, void *user,
                             const uint64_t *offsets, mode_t mode) {
    size_t hlen = 0, hlen2 = 0;
    char *header = header_text(root, meta, 0, &hlen);
    if (header == NULL) {
        return write_oom(path);
    }
    uint32_t crc = 0;
    lam_status st = write_all(fd, header, hlen, 0, path);
    if (st == LAM_OK) {
        st = write_body(fd, path, n, shapes, fill, user, (off_t)hlen, offsets, &crc);
    }
    free(header);
    header = NULL;
    if (st == LAM_OK) {
        /* Same length as before: the checksum is always 8 hex digits. */
        header = header_text(root, meta, crc, &hlen2);
        if (header == NULL || hlen2 != hlen) {
            st = write_oom(path);
        } else {
            st = write_all(fd, header, hlen, 0, path);
        }
    }
    free(header);
    if (st == LAM_OK && fchmod(fd, mode) != 0) {
        st = lam__error(LAM_ERR_IO, "saving '%s': Cannot set the file mode, %s", path,
                        strerror(errno));
    }
    if (st == LAM_OK && fsync(fd) != 0) {
        st = lam__error(LAM_ERR_IO, "saving '%s': fsync failed, %s", path, strerror(errno));
    }
    return st;
}

lam_status lam__st_write(const char *path, size_t n, const char *const *names,
                         const lam_shape *const *shapes, lam__st_fill_fn fill, void *user,
                         size_t n_meta, const char *const *meta_keys,
                         const char *const *meta_values) {
    lam_status st;
    uint64_t *offsets = malloc((n ? n : 1) * sizeof *offsets);
    if (offsets == NULL) {
        return write_oom(path);
    }
    json_t *meta = NULL;
    json_t *root =
        build_header(path, n, names, shapes, n_meta, meta_keys, meta_values, &meta, offsets, &st);
    if (root == NULL) {
        free(offsets);
        return st;
    }
    int err = 0;
    char *target = resolve_target(path, &err);
    char *tmp = target ? temp_template(target) : NULL;
    char *dir = target ? dir_of(target) : NULL;
    if (target == NULL && err != ENOMEM) {
        st = lam__error(LAM_ERR_IO, "saving '%s': Cannot follow the symbolic link, %s", path,
                        strerror(err));
    } else if (tmp == NULL || dir == NULL) {
        st = write_oom(path);
    }
    /* mkostemp makes the file private (0600); a saved model is an ordinary file, and a
     * replaced one keeps its mode. */
    struct stat old;
    mode_t mode = 0644;
    if (st == LAM_OK && stat(target, &old) == 0 && S_ISREG(old.st_mode)) {
        mode = old.st_mode & 07777;
        /* Replacing a file the user made read-only (or may not write) would silently undo
         * that decision; root passes access(), so the mode bits are checked too. */
        if ((mode & 0222) == 0 || faccessat(AT_FDCWD, target, W_OK, AT_EACCESS) != 0) {
            st = lam__error(LAM_ERR_IO,
                            "saving '%s': Permission denied, '%s' is read-only (mode %04o); "
                            "make it writable (chmod u+w) to replace it",
                            path, target, (unsigned)mode);
        }
    }
    int fd = -1;
    if (st == LAM_OK) {
        remove_stale_temps(dir, target);
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0) {
            st = lam__error(LAM_ERR_IO, "saving '%s': Cannot create a temporary file in '%s', %s",
                            path, dir, strerror(errno));
        }
    }
    if (st == LAM_OK) {
        st = write_file(fd, path, root, meta, n, shapes, fill, user, offsets, mode);
        if (close(fd) != 0 && st == LAM_OK) {
            st = lam__error(LAM_ERR_IO, "saving '%s': close failed, %s", path, strerror(errno));
        }
        if (st == LAM_OK && rename(tmp, target) != 0) {
            st = lam__error(LAM_ERR_IO, "saving '%s': Cannot replace the file, %s", path,
                            strerror(errno));
        }
        if (st != LAM_OK) {
            unlink(tmp);
        } else {
            /* Makes the rename itself durable; a file system that cannot sync a directory has
             * still replaced the file, so a failure here is not reported. */
            int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (dfd >= 0) {
                (void)fsync(dfd);
                close(dfd);
            }
        }
    }
    free(target);
    free(tmp);
    free(dir);
    free(offsets);
    json_decref(root);
    return st;
}
