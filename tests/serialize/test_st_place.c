/*
 * The in-place read of lam__st_read_tensors (core/st_read.c), the one copy a load makes on
 * the CPU backend: a sink that gives a tensor's memory (place) gets the file's values written
 * there (float32 read straight in, other dtypes converted into it), each piece checksummed
 * where it landed, and is never handed those values through values(); a tensor without a
 * place still is. Built from the format's sources, as those functions are internal (hidden).
 * The values and the CRC32C are computed here (a table-driven CRC32C from the polynomial),
 * never by the code under test.
 */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>

#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "safetensors.h"
#include "ref_crc32c.h"

TestSuite(st_place, .timeout = 300);

static void put_le(uint8_t *p, uint64_t v, int n) {
    for (int k = 0; k < n; k++) {
        p[k] = (uint8_t)(v >> (8 * k));
    }
}

static uint32_t bits_of(float f) {
    uint32_t b;
    memcpy(&b, &f, sizeof b);
    return b;
}

/* ---- a file of up to 4 tensors, built in memory ---- */

#define MAX_T 4

typedef struct spec {
    const char *name;
    const char *dtype; /* "U8", "F16", "BF16" or "F32" */
    size_t n;
} spec;

static size_t dsize(const char *dt) {
    return strcmp(dt, "U8") == 0 ? 1 : strcmp(dt, "F32") == 0 ? 4 : 2;
}

/* Value i of tensor t: exact in every dtype used (small integers and halves). */
static float value_of(int t, size_t i) {
    switch (t) {
    case 0:
        return (float)(i % 200);
    case 1:
        return (float)((int)(i % 512) - 256) * 0.5f;
    case 2:
        return (float)((int)(i % 256) - 128);
    default:
        return (float)(i % 100000) * 0.25f - 7.0f;
    }
}

/* Stores value v in dtype dt at p (little-endian). */
static void store(const char *dt, uint8_t *p, float v) {
    if (strcmp(dt, "U8") == 0) {
        *p = (uint8_t)v;
    } else if (strcmp(dt, "F32") == 0) {
        put_le(p, bits_of(v), 4);
    } else if (strcmp(dt, "BF16") == 0) {
        put_le(p, bits_of(v) >> 16, 2);
    } else { /* F16 of a half-integer below 2048: sign, exponent, 10 mantissa bits */
        uint32_t b = bits_of(v), sign = (b >> 16) & 0x8000u;
        int32_t exp = (int32_t)((b >> 23) & 0xFFu) - 127 + 15;
        uint16_t h = v == 0.0f ? (uint16_t)sign
                               : (uint16_t)(sign | ((uint32_t)exp << 10) | ((b >> 13) & 0x3FFu));
        put_le(p, h, 2);
    }
}

typedef struct file {
    uint8_t *bytes; /* the whole file */
    size_t size, data_at, data_size;
} file;

/* A safetensors file of the tensors in s (data in that order), with the CRC32C of its data
 * area in the metadata; `flip` (when < data size) is a byte changed after the checksum. */
static file make_file(const spec *s, int nt, size_t flip) {
    size_t off[MAX_T + 1] = {0};
    for (int t = 0; t < nt; t++) {
        off[t + 1] = off[t] + s[t].n * dsize(s[t].dtype);
    }
    size_t data_size = off[nt];
    uint8_t *data = malloc(data_size ? data_size : 1);
    cr_assert_not_null(data);
    for (int t = 0; t < nt; t++) {
        for (size_t i = 0; i < s[t].n; i++) {
            store(s[t].dtype, data + off[t] + i * dsize(s[t].dtype), value_of(t, i));
        }
    }
    uint32_t crc = ref_crc32c(data, data_size);
    if (flip < data_size) {
        data[flip] ^= 0x10;
    }
    char json[1024];
    int len = snprintf(json, sizeof json, "{\"__metadata__\":{\"lamina.crc32c\":\"%08x\"}",
                       (unsigned)crc);
    for (int t = 0; t < nt; t++) {
        len += snprintf(json + len, sizeof json - (size_t)len,
                        ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%zu],\"data_offsets\":[%zu,%zu]}",
                        s[t].name, s[t].dtype, s[t].n, off[t], off[t + 1]);
    }
    len += snprintf(json + len, sizeof json - (size_t)len, "}");
    file f = {NULL, 8 + (size_t)len + data_size, 8 + (size_t)len, data_size};
    f.bytes = malloc(f.size);
    cr_assert_not_null(f.bytes);
    put_le(f.bytes, (uint64_t)len, 8);
    memcpy(f.bytes + 8, json, (size_t)len);
    memcpy(f.bytes + f.data_at, data, data_size);
    free(data);
    return f;
}

/* ---- a sink that records what it is given ---- */

typedef struct rec {
    const lam__st_file *f;
    const spec *s;
    bool placeable[MAX_T]; /* by spec index */
    float *mem[MAX_T];     /* the memory place() gave, else NULL */
    float *got[MAX_T];     /* what values() delivered (no place) */
    atomic_int begins[MAX_T], places[MAX_T], calls[MAX_T];
    atomic_size_t elems[MAX_T];
} rec;

/* Spec index of file entry i. */
static int spec_of(const rec *r, size_t i) {
    for (int t = 0; t < MAX_T; t++) {
        if (r->s[t].name != NULL && strcmp(r->s[t].name, r->f->entries[i].name) == 0) {
            return t;
        }
    }
    cr_assert_fail("entry %zu (%s) is not in the spec", i, r->f->entries[i].name);
    return -1;
}

static lam_status rec_begin(void *user, size_t i) {
    rec *r = user;
    int t = spec_of(r, i);
    atomic_fetch_add(&r->begins[t], 1);
    r->got[t] = calloc(r->s[t].n ? r->s[t].n : 1, sizeof(float));
    cr_assert_not_null(r->got[t]);
    return LAM_OK;
}

static float *rec_place(void *user, size_t i) {
    rec *r = user;
    int t = spec_of(r, i);
    atomic_fetch_add(&r->places[t], 1);
    if (!r->placeable[t]) {
        return NULL;
    }
    /* Filled with a pattern no file value has, so an element never written shows. */
    r->mem[t] = malloc((r->s[t].n ? r->s[t].n : 1) * sizeof(float));
    cr_assert_not_null(r->mem[t]);
    for (size_t k = 0; k < r->s[t].n; k++) {
        r->mem[t][k] = -12345.0f;
    }
    return r->mem[t];
}

static lam_status rec_values(void *user, size_t i, size_t first, const float *values,
                             size_t count) {
    rec *r = user;
    int t = spec_of(r, i);
    atomic_fetch_add(&r->calls[t], 1);
    atomic_fetch_add(&r->elems[t], count);
    memcpy(r->got[t] + first, values, count * sizeof *values);
    return LAM_OK;
}

static void rec_fini(rec *r) {
    for (int t = 0; t < MAX_T; t++) {
        free(r->mem[t]);
        free(r->got[t]);
    }
}

static void assert_values(const float *v, int t, size_t n, const char *what) {
    for (size_t i = 0; i < n; i++) {
        if (bits_of(v[i]) != bits_of(value_of(t, i))) {
            cr_assert_fail("%s[%zu] is %g, expected %g", what, i, (double)v[i],
                           (double)value_of(t, i));
        }
    }
}

/* Reads file fl (parsed from memory) with the wanted and placeable tensors given. */
static lam_status read_file(const file *fl, const spec *s, const bool *wanted_spec,
                            const bool *placeable, rec *r, lam__st_file *f) {
    lam_status st = lam__st_parse(fl->bytes, fl->size, f);
    cr_assert_eq(st, LAM_OK, "parse: %s", lam_last_error());
    memset(r, 0, sizeof *r);
    r->f = f;
    r->s = s;
    bool want[MAX_T] = {false};
    for (size_t i = 0; i < f->n; i++) {
        int t = spec_of(r, i);
        want[i] = wanted_spec[t];
        r->placeable[t] = placeable[t];
    }
    lam__st_sink sink = {rec_begin, rec_values, r, rec_place};
    return lam__st_read_tensors(f, want, &sink);
}

Test(st_place, placed_tensors_are_read_into_their_memory_and_never_handed_to_values) {
    /* F32 read straight in, F16 converted in, F32 without a place through values(), and a U8
     * not wanted (read only for the checksum). */
    spec s[MAX_T] = {{"a", "F32", 1000}, {"b", "F16", 300}, {"c", "F32", 50}, {"d", "U8", 7}};
    bool wanted[MAX_T] = {true, true, true, false}, placeable[MAX_T] = {true, true, false, true};
    file fl = make_file(s, 4, SIZE_MAX);
    rec r;
    lam__st_file f;
    lam_status st = read_file(&fl, s, wanted, placeable, &r, &f);
    cr_assert_eq(st, LAM_OK, "read: %s", lam_last_error());
    assert_values(r.mem[0], 0, 1000, "a (placed F32)");
    assert_values(r.mem[1], 1, 300, "b (placed F16)");
    assert_values(r.got[2], 2, 50, "c (values)");
    cr_assert_eq(atomic_load(&r.calls[0]), 0, "values() called for the placed a");
    cr_assert_eq(atomic_load(&r.calls[1]), 0, "values() called for the placed b");
    cr_assert_eq(atomic_load(&r.elems[2]), 50);
    for (int t = 0; t < 3; t++) {
        cr_assert_eq(atomic_load(&r.begins[t]), 1, "begin of %s", s[t].name);
        cr_assert_eq(atomic_load(&r.places[t]), 1, "place of %s", s[t].name);
    }
    cr_assert_eq(atomic_load(&r.begins[3]) + atomic_load(&r.places[3]) + atomic_load(&r.calls[3]),
                 0, "d is not wanted");
    rec_fini(&r);
    lam__st_file_fini(&f);
    free(fl.bytes);
}

/* A data area of 10 MB: read by up to 4 threads (one per CPU), split inside tensors; the U8
 * first puts every later tensor off its natural alignment. */
static const spec large[MAX_T] = {
    {"u", "U8", 3}, {"h", "BF16", 1000001}, {"f", "F32", 2000000}, {"g", "F32", 1}};

Test(st_place, a_large_area_split_between_threads_lands_exactly_in_place) {
    bool wanted[MAX_T] = {true, true, true, true}, placeable[MAX_T] = {true, true, true, false};
    file fl = make_file(large, 4, SIZE_MAX);
    rec r;
    lam__st_file f;
    lam_status st = read_file(&fl, large, wanted, placeable, &r, &f);
    cr_assert_eq(st, LAM_OK, "read: %s", lam_last_error());
    for (int t = 0; t < 3; t++) {
        assert_values(r.mem[t], t, large[t].n, large[t].name);
        cr_assert_eq(atomic_load(&r.calls[t]), 0, "values() called for the placed %s",
                     large[t].name);
    }
    assert_values(r.got[3], 3, 1, "g (values)");
    rec_fini(&r);
    lam__st_file_fini(&f);
    free(fl.bytes);
}

Test(st_place, a_changed_byte_in_a_placed_tensor_fails_the_checksum) {
    bool wanted[MAX_T] = {true, true, true, true}, placeable[MAX_T] = {true, true, true, true};
    file good = make_file(large, 4, SIZE_MAX);
    uint32_t want = ref_crc32c(good.bytes + good.data_at, good.data_size);
    /* In the F32 tensor: its first byte, the middle of the area (where 2 threads split it),
     * its last byte. */
    size_t f_at = 3 + 2 * (size_t)1000001, at[3] = {f_at, good.data_size / 2, f_at + 7999999};
    for (int k = 0; k < 3; k++) {
        file fl = make_file(large, 4, at[k]);
        uint32_t got = ref_crc32c(fl.bytes + fl.data_at, fl.data_size);
        rec r;
        lam__st_file f;
        lam_status st = read_file(&fl, large, wanted, placeable, &r, &f);
        cr_assert_eq(st, LAM_ERR_FORMAT, "byte %zu: status %d (%s)", at[k], (int)st,
                     lam_last_error());
        char msg[200];
        snprintf(msg, sizeof msg,
                 "Checksum mismatch, the data has CRC32C %08x but the metadata says %08x (the "
                 "file is corrupt)",
                 (unsigned)got, (unsigned)want);
        cr_assert_str_eq(lam_last_error(), msg, "byte %zu", at[k]);
        rec_fini(&r);
        lam__st_file_fini(&f);
        free(fl.bytes);
    }
    free(good.bytes);
}

Test(st_place, a_file_truncated_while_it_is_read_in_place_gives_an_error) {
    spec s[MAX_T] = {{"a", "F32", 40000}, {"b", "F32", 40000}};
    file fl = make_file(s, 2, SIZE_MAX);
    char path[64];
    snprintf(path, sizeof path, "/tmp/lamina-st-place-XXXXXX");
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, fl.bytes, fl.size), (ssize_t)fl.size);
    struct stat sb;
    cr_assert_eq(fstat(fd, &sb), 0);
    lam__st_source src = {.mem = NULL,
                          .fd = fd,
                          .size = (uint64_t)sb.st_size,
                          .dev = (uint64_t)sb.st_dev,
                          .ino = (uint64_t)sb.st_ino,
                          .mtime_sec = (int64_t)sb.st_mtim.tv_sec,
                          .mtime_nsec = (int64_t)sb.st_mtim.tv_nsec};
    lam__st_file f;
    cr_assert_eq(lam__st_open(&src, &f), LAM_OK, "open: %s", lam_last_error());
    /* Another process cuts the file in the middle of b after its header was read. */
    size_t cut = fl.data_at + 4 * 40000 + 4 * 1000;
    cr_assert_eq(ftruncate(fd, (off_t)cut), 0);
    rec r;
    memset(&r, 0, sizeof r);
    r.f = &f;
    r.s = s;
    r.placeable[0] = r.placeable[1] = true;
    lam__st_sink sink = {rec_begin, rec_values, &r, rec_place};
    lam_status st = lam__st_read_tensors(&f, NULL, &sink);
    cr_assert_eq(st, LAM_ERR_IO, "status %d (%s)", (int)st, lam_last_error());
    char msg[200];
    snprintf(msg, sizeof msg,
             "File changed while reading, it ends at byte %zu but had %zu bytes when opened "
             "(truncated by another process?)",
             cut, fl.size);
    cr_assert_str_eq(lam_last_error(), msg);
    assert_values(r.mem[0], 0, 40000, "a (placed, before the cut)");
    cr_assert_eq(atomic_load(&r.calls[0]) + atomic_load(&r.calls[1]), 0);
    rec_fini(&r);
    lam__st_file_fini(&f);
    close(fd);
    unlink(path);
    free(fl.bytes);
}

/* 44 MB: more slices of the area than threads (about 8 MiB each), taken in turn by the
 * threads; the checksums of the slices combine in order, and a byte changed in a late slice
 * still fails the whole file. */
static const spec huge[MAX_T] = {
    {"u", "U8", 5}, {"f", "F32", 10000000}, {"h", "F16", 2000001}, {"g", "F32", 3}};

Test(st_place, an_area_of_many_slices_lands_in_place_and_checks_as_one) {
    bool wanted[MAX_T] = {true, true, true, true}, placeable[MAX_T] = {false, true, true, true};
    file fl = make_file(huge, 4, SIZE_MAX);
    rec r;
    lam__st_file f;
    lam_status st = read_file(&fl, huge, wanted, placeable, &r, &f);
    cr_assert_eq(st, LAM_OK, "read: %s", lam_last_error());
    assert_values(r.got[0], 0, huge[0].n, "u (values)");
    for (int t = 1; t < 4; t++) {
        assert_values(r.mem[t], t, huge[t].n, huge[t].name);
        cr_assert_eq(atomic_load(&r.calls[t]), 0, "values() called for the placed %s",
                     huge[t].name);
    }
    rec_fini(&r);
    lam__st_file_fini(&f);
    uint32_t want = ref_crc32c(fl.bytes + fl.data_at, fl.data_size);
    size_t at = 5 + 4 * (size_t)9000000; /* the sixth 8 MiB slice, inside f */
    fl.bytes[fl.data_at + at] ^= 0x01;
    uint32_t got = ref_crc32c(fl.bytes + fl.data_at, fl.data_size);
    st = read_file(&fl, huge, wanted, placeable, &r, &f);
    cr_assert_eq(st, LAM_ERR_FORMAT, "status %d (%s)", (int)st, lam_last_error());
    char msg[200];
    snprintf(msg, sizeof msg,
             "Checksum mismatch, the data has CRC32C %08x but the metadata says %08x (the file "
             "is corrupt)",
             (unsigned)got, (unsigned)want);
    cr_assert_str_eq(lam_last_error(), msg);
    rec_fini(&r);
    lam__st_file_fini(&f);
    free(fl.bytes);
}
