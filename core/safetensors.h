/*
 * The safetensors file format (st_parse.c, st_read.c, st_write.c, st_json.c, crc32c.c):
 * validating a file held in memory, converting its tensors to float32, and writing a file
 * atomically. Core-internal; depends only
 * on error.c, util.c and jansson, so the fuzz target can link it alone.
 */
#ifndef LAMINA_CORE_SAFETENSORS_H
#define LAMINA_CORE_SAFETENSORS_H

#include "lamina/lamina.h"

#include <stdbool.h>
#include <stddef.h>
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

/*
 * Where a file's bytes come from: a buffer in memory (the fuzzer, tests) or an open file read
 * with pread. Every read copies into the caller's buffer, and a file that shrinks while it is
 * read (another process truncating or rewriting it) gives a short read, which is an error,
 * never a signal. The zero-copy loads (map_load.c) are the exception: lam_load_mapped_verified
 * reads a mapping of the file as a buffer (mem, with the file's fd), and a file truncated in
 * place while it is read raises SIGBUS there, as its documentation says.
 */
typedef struct lam__st_source {
    const uint8_t *mem; /* non-NULL: the whole file in memory, read (and checksummed) there */
    int fd;             /* mem NULL: an open regular file, read with pread; with mem: -1, or
                         * the file mem maps (lam_load_mapped_verified), whose identity is
                         * still checked after reading */
    uint64_t size;      /* the file's size when it was opened */
    /* Identity of the fd's file when opened: a change seen after reading is an error. */
    uint64_t dev, ino;
    int64_t mtime_sec, mtime_nsec;
} lam__st_source;

typedef struct lam__st_file {
    lam__st_source src; /* borrowed: the fd stays the caller's */
    uint64_t data_at;   /* offset of the data area in the file (8 + header length) */
    uint64_t data_size;
    lam__st_entry *entries; /* list files: by index; others: in data order */
    size_t n;
    char **meta_keys, **meta_values;
    size_t n_meta;
    bool is_list;
} lam__st_file;

/*
 * Reads the header of the file src describes and validates it against the file's size (header
 * length, JSON, every entry, offsets, metadata, list keys, the alias table); no tensor data is
 * read. The checksum, when the metadata has one, is verified by lam__st_read_tensors.
 * Errors: LAM_ERR_FORMAT ("Corrupt header, ..."), LAM_ERR_IO (a read failed or came short),
 * LAM_ERR_OUT_OF_MEMORY; the message has no file prefix (the caller adds "loading '<file>'").
 */
lam_status lam__st_open(const lam__st_source *src, lam__st_file *out);
/* lam__st_open on a file held in memory (buf must outlive *out). */
lam_status lam__st_parse(const uint8_t *buf, size_t size, lam__st_file *out);
void lam__st_file_fini(lam__st_file *f);
const char *lam__st_metadata(const lam__st_file *f, const char *key);
/* Index of the entry named `name`, or -1. */
long lam__st_find(const lam__st_file *f, const char *name);

/* Copies n bytes at offset `at` of the file. Errors: LAM_ERR_IO (a short read says the file
 * shrank while it was read). */
lam_status lam__st_read_at(const lam__st_source *src, uint64_t at, void *dst, size_t n);

/*
 * Where lam__st_read_tensors puts the tensors. begin(user, i) runs for every wanted tensor, in
 * data order, before any data is read (the place for allocating its destination); then
 * values(user, i, first, values, count) receives its values as float32 in consecutive pieces
 * (elements [first, first + count), borrowed for the call; a tensor with no element gets none).
 * place (optional, NULL: none) runs right after begin(user, i), on the same thread: it returns
 * host memory for the tensor's numel float32 values, which nobody else touches until
 * lam__st_read_tensors returns, or NULL. A tensor placed so is read straight into that memory
 * (float32 data; other dtypes are converted into it), each piece checksummed right after it
 * lands, while it is still in the cache, and values() is never called for it: one copy of the
 * data instead of two. What that memory holds after a failure is unspecified.
 */
typedef struct lam__st_sink {
    lam_status (*begin)(void *user, size_t i);
    lam_status (*values)(void *user, size_t i, size_t first, const float *values, size_t count);
    void *user;
    float *(*place)(void *user, size_t i);
} lam__st_sink;

/*
 * Reads the data area front to back once, in pieces of at most 256 KiB that stay in the cache:
 * tensor i, when want[i] (want NULL: every tensor), is converted to float32 and handed to the
 * sink (or read into the memory its place() gave); the others are read only to verify the
 * checksum. An area of 4 MiB or more is cut into slices of about 8 MiB (at least one per
 * thread) that up to 4 threads, one per CPU this process may use, take in turn; their
 * checksums are combined in order, and the sink is then called from those threads at once, for
 * disjoint ranges. The checksum covers the whole area and is
 * compared at the end, so a caller must not commit what the sink received before this
 * returns LAM_OK. Before anything is allocated or read, the float32 size of the wanted tensors
 * is checked against the machine's memory. Memory used: two 256 KiB buffers per thread, never a
 * copy of a tensor or of the file. A source in memory is checksummed (and converted into a
 * place) where it lies, without the buffers.
 * Errors: LAM_ERR_DTYPE (a wanted tensor does not convert), LAM_ERR_FORMAT (checksum
 * mismatch), LAM_ERR_IO (the file shrank or changed while it was read),
 * LAM_ERR_OUT_OF_MEMORY, or the sink's error; no file prefix.
 */
lam_status lam__st_read_tensors(const lam__st_file *f, const bool *want, const lam__st_sink *sink);

/* Whether tensors a and b hold the same dtype, shape and bytes (false when reading fails). */
bool lam__st_same_data(const lam__st_file *f, size_t a, size_t b);

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

/* Whether s is UTF-8 as JSON strings (and jansson) require: checked before a name goes into a
 * header, so that a jansson call failing afterwards can only mean out of memory. */
bool lam__st_utf8_valid(const char *s);

/* JSON text <-> jansson values (st_json.c): jansson's own parser and dumper (2.14) mishandle
 * allocation failures (a lexer reading past its buffer, a dump missing a quote that still
 * succeeds), so headers are read and written there on top of jansson's value API. */
typedef struct json_t json_t;
typedef struct lam__st_json_error {
    bool oom;        /* out of memory: text and position are not set */
    size_t position; /* byte offset of a syntax error */
    char text[80];
} lam__st_json_error;
/* Parses len bytes of JSON text (an object or an array at the top, duplicate keys and NUL
 * refused); NULL with *err filled on failure. */
json_t *lam__st_json_parse(const char *text, size_t len, lam__st_json_error *err);
/* Compact JSON text of v (free() it); NULL only when out of memory. */
char *lam__st_json_dump(const json_t *v);

/* Fills float32 values [first, first + count) of tensor i for the writer (pieces of a tensor
 * are asked for in order). */
typedef lam_status (*lam__st_fill_fn)(void *user, size_t i, size_t first, float *dst, size_t count);

/*
 * Writes a float32 safetensors file atomically: a temporary file
 * ".<name>.lamina-tmp.<pid>.<random>" in the target's directory (O_CLOEXEC), fsync, rename,
 * fsync of the directory. A path that is a symbolic link is followed: the link's target is
 * replaced and the link kept. A file that exists and is not writable (0444) is refused. Stale
 * temporaries of the same target left by a killed save (their process is gone) are removed
 * first. On any failure the temporary file is removed and an existing file at path is
 * untouched. Adds the LAM__ST_META_CRC checksum. Errors carry the prefix "saving '<path>'".
 */
lam_status lam__st_write(const char *path, size_t n, const char *const *names,
                         const lam_shape *const *shapes, lam__st_fill_fn fill, void *user,
                         size_t n_meta, const char *const *meta_keys,
                         const char *const *meta_values);

/* The checksum a "lamina.crc32c" metadata value states (8 hex digits); an error otherwise. */
lam_status lam__st_parse_crc(const char *text, uint32_t *want);

/* CRC32C of n bytes, continuing from crc (0 to start). */
uint32_t lam__crc32c(uint32_t crc, const void *buf, size_t n);
/* CRC32C of A followed by B, from crc1 = CRC32C of A, crc2 = CRC32C of B and B's length. */
uint32_t lam__crc32c_combine(uint32_t crc1, uint32_t crc2, uint64_t len2);

#endif
