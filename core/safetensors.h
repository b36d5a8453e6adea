/*
 * The safetensors file format (safetensors.c, crc32c.c): validating a file held in memory,
 * converting its tensors to float32, and writing a file atomically. Core-internal; depends only
 * on error.c, util.c and jansson, so the fuzz target can link it alone.
 */
#ifndef LAMINA_CORE_SAFETENSORS_H
#define LAMINA_CORE_SAFETENSORS_H

#include "internal.h"

#include <stdint.h>

/* The largest JSON header accepted (the safetensors library's own limit). */
#define LAM__ST_MAX_HEADER 100000000u

/* Metadata keys Lamina writes. */
#define LAM__ST_META_KIND    "lamina.kind"    /* "list", "dict" or "parameters" */
#define LAM__ST_META_CRC     "lamina.crc32c"  /* CRC32C of the data area, 8 hex digits */
#define LAM__ST_META_ALIASES "lamina.aliases" /* JSON object: alias key -> stored key */

/* Every safetensors dtype Lamina knows by name; only some convert to float32. */
typedef enum lam__st_dtype {
    LAM__ST_BOOL,
    LAM__ST_U8,
    LAM__ST_I8,
    LAM__ST_F8_E5M2,
    LAM__ST_F8_E4M3,
    LAM__ST_I16,
    LAM__ST_U16,
    LAM__ST_F16,
    LAM__ST_BF16,
    LAM__ST_I32,
    LAM__ST_U32,
    LAM__ST_F32,
    LAM__ST_F64,
    LAM__ST_I64,
    LAM__ST_U64,
    LAM__ST_DTYPE_COUNT
} lam__st_dtype;

const char *lam__st_dtype_name(lam__st_dtype dt);
size_t lam__st_dtype_size(lam__st_dtype dt);
/* True for F32, F16, BF16, F64, I32, I64 and U8. */
bool lam__st_dtype_convertible(lam__st_dtype dt);

typedef struct lam__st_entry {
    char *name;
    lam__st_dtype dtype;
    lam_shape shape;
    uint64_t numel;
    uint64_t begin, end; /* byte range inside the data area */
} lam__st_entry;

typedef struct lam__st_file {
    const uint8_t *data; /* the data area (borrowed from the buffer given to parse) */
    uint64_t data_size;
    lam__st_entry *entries; /* list files: by index; others: in data order */
    size_t n;
    char **meta_keys, **meta_values;
    size_t n_meta;
    bool is_list;
} lam__st_file;

/*
 * Validates a whole file held in buf (header length, JSON, every entry, offsets, metadata,
 * list keys, the checksum when present) and describes it in *out, which borrows buf.
 * Errors: LAM_ERR_FORMAT ("Corrupt header, ..."), LAM_ERR_OUT_OF_MEMORY; the message has no
 * file prefix (the caller adds "loading '<file>'").
 */
lam_status lam__st_parse(const uint8_t *buf, size_t size, lam__st_file *out);
void lam__st_file_fini(lam__st_file *f);
const char *lam__st_metadata(const lam__st_file *f, const char *key);
/* Index of the entry named `name`, or -1. */
long lam__st_find(const lam__st_file *f, const char *name);

/*
 * Converts entry e to `count` (== numel) float32 values in dst.
 * Errors: LAM_ERR_DTYPE naming the tensor and dtype when it does not convert.
 */
lam_status lam__st_to_f32(const lam__st_file *f, const lam__st_entry *e, float *dst, size_t count);

/* The alias table of a parameters file: alias key -> index of the stored entry. */
typedef struct lam__st_alias {
    char *key;
    size_t target;
} lam__st_alias;

/*
 * Reads the LAM__ST_META_ALIASES table (none: *n = 0). Each alias must name a stored tensor and
 * must not itself be a tensor. Errors: LAM_ERR_FORMAT, LAM_ERR_OUT_OF_MEMORY.
 */
lam_status lam__st_aliases(const lam__st_file *f, lam__st_alias **out, size_t *n);
void lam__st_aliases_free(lam__st_alias *a, size_t n);

/* Fills `count` float32 values of tensor i for the writer. */
typedef lam_status (*lam__st_fill_fn)(void *user, size_t i, float *dst, size_t count);

/*
 * Writes a float32 safetensors file atomically: a temporary file "<path>.tmpXXXXXX" in the same
 * directory, fsync, rename, fsync of the directory. On any failure the temporary file is
 * removed and an existing file at path is untouched. Adds the LAM__ST_META_CRC checksum.
 * Errors carry the prefix "saving '<path>'".
 */
lam_status lam__st_write(const char *path, size_t n, const char *const *names,
                         const lam_shape *const *shapes, lam__st_fill_fn fill, void *user,
                         size_t n_meta, const char *const *meta_keys,
                         const char *const *meta_values);

/* Formats a shape as "(2, 20)", "(256,)" or "()" (None for unknown dims); returns buf. */
char *lam__st_shape_format(const lam_shape *s, char *buf, size_t cap);

/* CRC32C of n bytes, continuing from crc (0 to start). */
uint32_t lam__crc32c(uint32_t crc, const void *buf, size_t n);

#endif
