/*
 * Zero-copy loading (lam_load_mapped): float32 tensors are views of a private mapping of the
 * file, seen in /proc/self/maps while a tensor over it lives; values equal lam_load's; writing
 * a tensor never changes the file (copy-on-write); a file replaced by a save keeps the mapped
 * tensors' values; dtypes that need a conversion are read as lam_load reads them; a failed load
 * leaves nothing behind.
 * Verified (lam_load_mapped_verified): the same tensors, after the data area's CRC32C over the
 * mapping matched the metadata; a byte flipped anywhere in the data (a mapped tensor, a
 * converted one, an unaligned float32 one that is copied) is lam_load's checksum mismatch, with
 * nothing left behind; a file without a checksum loads unverified, as lam_load loads it.
 * Expected checksums come from the tests' own table CRC (ref_crc32c.h).
 */
#include "ser_util.h"
#include "ref_crc32c.h"

#include <stdbool.h>
#include <stddef.h>

TestSuite(mapped, .fini = su_fini);

/* Whether this process maps the file at `path`. */
static bool file_mapped(const char *path) {
    FILE *f = fopen("/proc/self/maps", "r");
    cr_assert_not_null(f);
    char line[4096];
    bool found = false;
    size_t n = strlen(path);
    while (!found && fgets(line, sizeof line, f) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        size_t k = strlen(line);
        found = k >= n && strcmp(line + k - n, path) == 0;
    }
    fclose(f);
    return found;
}

static const int64_t big_dims[2] = {25, 40}; /* 1000 floats: spans a page boundary */

/* Saves {"w": i * 0.5 - 3 for i < 1000, "b": 7 values} at path; the values in *w, *b. */
static void save_two(const char *path, float scale, float *w, float *b) {
    for (int i = 0; i < 1000; i++) {
        w[i] = scale * ((float)i * 0.5f - 3.0f);
    }
    for (int i = 0; i < 7; i++) {
        b[i] = scale * (float)(i + 1);
    }
    int64_t bd[1] = {7};
    lam_tensor *t[2] = {su_tensor(2, big_dims, w), su_tensor(1, bd, b)};
    const char *names[2] = {"w", "b"};
    SU_OK(lam_save_dict(path, names, t, 2));
    lam_tensor_release(t[0]);
    lam_tensor_release(t[1]);
}

Test(mapped, values_equal_lam_load_and_the_file_stays_mapped_while_a_tensor_lives) {
    if (getenv("LAMINA_BACKEND") != NULL && strcmp(getenv("LAMINA_BACKEND"), "cpu") != 0) {
        cr_skip("zero-copy needs a backend that wraps host memory (the CPU backend)");
    }
    const char *path = su_path("two.safetensors");
    float w[1000], b[7];
    save_two(path, 1.0f, w, b);
    lam_tensor_dict *d = NULL;
    SU_OK(lam_load_mapped(path, NULL, &d));
    cr_assert_eq(lam_tensor_dict_count(d), 2);
    su_assert_shape(lam_tensor_dict_find(d, "w"), 2, big_dims, "w");
    su_assert_bits(lam_tensor_dict_find(d, "w"), w, 1000, "w");
    su_assert_bits(lam_tensor_dict_find(d, "b"), b, 7, "b");
    cr_assert(file_mapped(path), "lam_load_mapped did not map %s", path);
    lam_tensor *keep = lam_tensor_dict_find(d, "w");
    lam_tensor_retain(keep);
    lam_tensor_dict_destroy(d);
    cr_assert(file_mapped(path), "the mapping went while a tensor over it lives");
    su_assert_bits(keep, w, 1000, "w after the dict went");
    lam_tensor_release(keep);
    cr_assert_not(file_mapped(path), "the mapping outlived its last tensor");
    cr_assert_eq(lam_tensor_live_count(), 0);
    su_cleanup();
}

typedef lam_status (*load_fn)(const char *path, lam_ctx *ctx, lam_tensor_dict **out);

/*
 * Loads a file with `load`, writes both tensors (lam_tensor_write, and an in-place op as an
 * optimizer step does) and checks that the tensors hold the new values while the file and a
 * fresh load of it keep the saved ones: the mapping is copy-on-write.
 */
static void writes_leave_the_file(load_fn load, const char *name) {
    const char *path = su_path(name);
    float w[1000], b[7];
    save_two(path, 1.0f, w, b);
    size_t n0 = 0;
    uint8_t *before = su_read_file(path, &n0);
    lam_tensor_dict *d = NULL;
    SU_OK(load(path, NULL, &d));
    lam_tensor *tw = lam_tensor_dict_find(d, "w");
    float neww[1000];
    for (int i = 0; i < 1000; i++) {
        neww[i] = -(float)i;
    }
    SU_OK(lam_tensor_write(tw, neww, 1000));
    lam_tensor *tb = lam_tensor_dict_find(d, "b");
    lam_tensor *twice = NULL;
    SU_OK(lam_op_add(tb, tb, &twice));
    SU_OK(lam_op_assign(tb, twice));
    lam_tensor_release(twice);
    su_assert_bits(tw, neww, 1000, "w written");
    float b2[7];
    for (int i = 0; i < 7; i++) {
        b2[i] = 2.0f * b[i];
    }
    su_assert_bits(tb, b2, 7, "b doubled in place");
    size_t n1 = 0;
    uint8_t *after = su_read_file(path, &n1);
    cr_assert_eq(n1, n0);
    cr_assert(memcmp(before, after, n0) == 0, "writing a mapped tensor changed the file");
    lam_tensor_dict *again = NULL;
    SU_OK(load(path, NULL, &again));
    su_assert_bits(lam_tensor_dict_find(again, "w"), w, 1000, "w in the file");
    su_assert_bits(lam_tensor_dict_find(again, "b"), b, 7, "b in the file");
    lam_tensor_dict_destroy(again);
    lam_tensor_dict_destroy(d);
    free(before);
    free(after);
    cr_assert_eq(lam_tensor_live_count(), 0);
    su_cleanup();
}

Test(mapped, writing_a_mapped_tensor_leaves_the_file_unchanged) {
    writes_leave_the_file(lam_load_mapped, "cow.safetensors");
}

Test(mapped, a_file_replaced_by_a_save_leaves_mapped_tensors_as_loaded) {
    const char *path = su_path("replaced.safetensors");
    float w[1000], b[7], w2[1000], b2[7];
    save_two(path, 1.0f, w, b);
    lam_tensor_dict *d = NULL;
    SU_OK(lam_load_mapped(path, NULL, &d));
    save_two(path, -2.0f, w2, b2); /* a new file renamed over the mapped one */
    su_assert_bits(lam_tensor_dict_find(d, "w"), w, 1000, "mapped w after the save");
    su_assert_bits(lam_tensor_dict_find(d, "b"), b, 7, "mapped b after the save");
    lam_tensor_dict *now = NULL;
    SU_OK(lam_load_mapped(path, NULL, &now));
    su_assert_bits(lam_tensor_dict_find(now, "w"), w2, 1000, "the new file's w");
    lam_tensor_dict_destroy(now);
    lam_tensor_dict_destroy(d);
    cr_assert_eq(lam_tensor_live_count(), 0);
    su_cleanup();
}

/* Every dtype of the NumPy file: F32 mapped, the others converted; the values are lam_load's. */
Test(mapped, converted_dtypes_load_as_lam_load_loads_them) {
    const char *path = SU_DATA_DIR "/numpy_dtypes.safetensors";
    lam_tensor_dict *a = NULL, *b = NULL;
    SU_OK(lam_load(path, NULL, &a));
    SU_OK(lam_load_mapped(path, NULL, &b));
    cr_assert_eq(lam_tensor_dict_count(b), lam_tensor_dict_count(a));
    for (size_t i = 0; i < lam_tensor_dict_count(a); i++) {
        cr_assert_str_eq(lam_tensor_dict_name(b, i), lam_tensor_dict_name(a, i));
        lam_tensor *x = lam_tensor_dict_get(a, i);
        lam_tensor *y = lam_tensor_dict_get(b, i);
        const lam_shape *sx = lam_tensor_shape(x);
        su_assert_shape(y, sx->ndim, sx->dims, lam_tensor_dict_name(a, i));
        float *vx = su_values(x);
        su_assert_bits(y, vx, (size_t)lam_tensor_numel(x), lam_tensor_dict_name(a, i));
        free(vx);
    }
    cr_assert_str_eq(lam_tensor_dict_metadata(b, "lamina.kind") ? "has" : "none",
                     lam_tensor_dict_metadata(a, "lamina.kind") ? "has" : "none");
    lam_tensor_dict_destroy(a);
    lam_tensor_dict_destroy(b);
    cr_assert_eq(lam_tensor_live_count(), 0);
}

Test(mapped, a_failed_load_leaves_nothing_behind) {
    lam_tensor_dict *d = (lam_tensor_dict *)(uintptr_t)1;
    const char *missing = su_path("missing.safetensors");
    su_assert_error(
        lam_load_mapped(missing, NULL, &d), LAM_ERR_NOT_FOUND,
        su_fmt("loading '%s': Cannot open the file, No such file or directory", missing),
        "missing file");
    cr_assert_null(d);
    /* a data area shorter than the header says */
    const char *bad = su_path("short.safetensors");
    su_write_st(bad, "{\"x\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}      ",
                "\0\0\0\0\0\0\0\0", 8);
    d = (lam_tensor_dict *)(uintptr_t)1;
    lam_status st = lam_load_mapped(bad, NULL, &d);
    cr_assert_neq(st, LAM_OK);
    cr_assert_null(d);
    cr_assert(strstr(lam_last_error(), "short.safetensors") != NULL, "%s", lam_last_error());
    cr_assert_not(file_mapped(bad), "a failed load left the file mapped");
    cr_assert_eq(lam_tensor_live_count(), 0);
    su_assert_error(lam_load_mapped(bad, NULL, NULL), LAM_ERR_INVALID_ARGUMENT,
                    "lam_load_mapped: Invalid argument, out is NULL", "out NULL");
    su_cleanup();
}

/* ---- lam_load_mapped_verified ---- */

static bool cpu_backend(void) {
    return getenv("LAMINA_BACKEND") == NULL || strcmp(getenv("LAMINA_BACKEND"), "cpu") == 0;
}

/* Where the data area of the file's bytes begins (8 + the header length). */
static size_t data_start(const uint8_t *bytes, size_t n) {
    cr_assert_geq(n, 8);
    uint64_t h = 0;
    for (int i = 7; i >= 0; i--) {
        h = (h << 8) | bytes[i];
    }
    cr_assert_leq(8 + h, n);
    return (size_t)(8 + h);
}

/* Flips every bit of the data byte `at` (from the data area's start) of the file at path and
 * returns the message a verified load gives: the CRC32C of the data as it is now and of the data
 * as it was (what the metadata says), both from the tests' own CRC. */
static const char *flip_data_byte(const char *path, size_t at) {
    size_t n = 0;
    uint8_t *bytes = su_read_file(path, &n);
    size_t d0 = data_start(bytes, n);
    cr_assert_lt(d0 + at, n, "byte %zu beyond the data of %s", at, path);
    uint32_t was = ref_crc32c(bytes + d0, n - d0);
    bytes[d0 + at] ^= 0xFFu;
    uint32_t now = ref_crc32c(bytes + d0, n - d0);
    su_write_file(path, bytes, n);
    free(bytes);
    return su_fmt("loading '%s': Checksum mismatch, the data has CRC32C %08x but the metadata "
                  "says %08x (the file is corrupt)",
                  path, now, was);
}

/* A verified load of path fails with the checksum mismatch `msg`, leaving nothing behind. */
static void assert_mismatch(const char *path, const char *msg, const char *what) {
    lam_tensor_dict *d = (lam_tensor_dict *)(uintptr_t)1;
    su_assert_error(lam_load_mapped_verified(path, NULL, &d), LAM_ERR_FORMAT, msg, what);
    cr_assert_null(d, "%s: *out not NULL after a failure", what);
    cr_assert_not(file_mapped(path), "%s: a failed load left the file mapped", what);
    cr_assert_eq(lam_tensor_live_count(), 0, "%s: tensors left alive", what);
}

Test(mapped, verified_values_equal_the_saved_ones_over_the_mapping) {
    const char *path = su_path("verified.safetensors");
    float w[1000], b[7];
    save_two(path, 1.0f, w, b);
    size_t n = 0;
    uint8_t *bytes = su_read_file(path, &n);
    size_t d0 = data_start(bytes, n);
    const char *crc = su_fmt("%08x", ref_crc32c(bytes + d0, n - d0));
    free(bytes);
    lam_tensor_dict *d = NULL;
    SU_OK(lam_load_mapped_verified(path, NULL, &d));
    cr_assert_eq(lam_tensor_dict_count(d), 2);
    su_assert_shape(lam_tensor_dict_find(d, "w"), 2, big_dims, "w");
    su_assert_bits(lam_tensor_dict_find(d, "w"), w, 1000, "w");
    su_assert_bits(lam_tensor_dict_find(d, "b"), b, 7, "b");
    cr_assert_str_eq(lam_tensor_dict_metadata(d, "lamina.crc32c"), crc, "the checksum verified");
    if (cpu_backend()) {
        cr_assert(file_mapped(path), "lam_load_mapped_verified did not map %s", path);
    }
    lam_tensor_dict_destroy(d);
    cr_assert_not(file_mapped(path), "the mapping outlived its tensors");
    cr_assert_eq(lam_tensor_live_count(), 0);
    su_cleanup();
}

Test(mapped, verified_a_flipped_byte_in_a_mapped_tensor_is_a_checksum_mismatch) {
    const char *path = su_path("flipped.safetensors");
    float w[1000], b[7];
    save_two(path, 1.0f, w, b);
    /* data order is b (28 bytes) then w? whichever: byte 2000 is inside w's 4000 bytes */
    const char *msg = flip_data_byte(path, 2000);
    assert_mismatch(path, msg, "a byte of w flipped");
    /* lam_load gives the same status and message; the unverified mapped load does not look
     * (on the CPU backend: where nothing is mapped it reads, and so checks, every byte) */
    lam_tensor_dict *d = NULL;
    su_assert_error(lam_load(path, NULL, &d), LAM_ERR_FORMAT, msg, "lam_load");
    if (cpu_backend()) {
        SU_OK(lam_load_mapped(path, NULL, &d));
        lam_tensor_dict_destroy(d);
    }
    /* flipped back: verified again */
    flip_data_byte(path, 2000);
    SU_OK(lam_load_mapped_verified(path, NULL, &d));
    su_assert_bits(lam_tensor_dict_find(d, "w"), w, 1000, "w");
    lam_tensor_dict_destroy(d);
    /* the very last byte of the data area */
    size_t n = 0;
    uint8_t *bytes = su_read_file(path, &n);
    size_t last = n - data_start(bytes, n) - 1;
    free(bytes);
    assert_mismatch(path, flip_data_byte(path, last), "the last data byte flipped");
    su_assert_error(lam_load_mapped_verified(path, NULL, NULL), LAM_ERR_INVALID_ARGUMENT,
                    "lam_load_mapped_verified: Invalid argument, out is NULL", "out NULL");
    su_cleanup();
}

/* A float32 tensor "a" [4] at data bytes 0..16 (aligned: mapped), a float16 "h" [3] at 16..22
 * (converted) and a float32 "u" [2] at 22..30 (not at a multiple of 8: copied), with the
 * checksum in the metadata when `with_crc`. The header is padded so the data starts at a
 * multiple of 8. */
static const float mixed_a[4] = {1.5f, -2.0f, 3.25f, 4.0f};
static const float mixed_h[3] = {1.0f, -2.0f, 0.5f}; /* F16 0x3C00, 0xC000, 0x3800 */
static const float mixed_u[2] = {7.0f, -0.125f};

static void write_mixed(const char *path, bool with_crc) {
    uint8_t data[30];
    memcpy(data, mixed_a, 16);
    const uint16_t h[3] = {0x3C00u, 0xC000u, 0x3800u};
    for (int i = 0; i < 3; i++) {
        data[16 + 2 * i] = (uint8_t)(h[i] & 0xFFu);
        data[17 + 2 * i] = (uint8_t)(h[i] >> 8);
    }
    memcpy(data + 22, mixed_u, 8);
    char meta[80] = "";
    if (with_crc) {
        snprintf(meta, sizeof meta, "\"__metadata__\":{\"lamina.crc32c\":\"%08x\"},",
                 ref_crc32c(data, sizeof data));
    }
    char json[512];
    int len = snprintf(json, sizeof json,
                       "{%s\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                       "\"h\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[16,22]},"
                       "\"u\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[22,30]}}",
                       meta);
    while ((8 + len) % 8 != 0) {
        json[len++] = ' ';
    }
    json[len] = '\0';
    su_write_st(path, json, data, sizeof data);
}

static void assert_mixed(lam_tensor_dict *d) {
    cr_assert_eq(lam_tensor_dict_count(d), 3);
    su_assert_bits(lam_tensor_dict_find(d, "a"), mixed_a, 4, "a");
    su_assert_bits(lam_tensor_dict_find(d, "h"), mixed_h, 3, "h");
    su_assert_bits(lam_tensor_dict_find(d, "u"), mixed_u, 2, "u");
}

Test(mapped, verified_converted_and_copied_tensors_are_covered_by_the_checksum) {
    const char *path = su_path("mixed.safetensors");
    write_mixed(path, true);
    lam_tensor_dict *d = NULL;
    SU_OK(lam_load_mapped_verified(path, NULL, &d));
    assert_mixed(d);
    if (cpu_backend()) {
        cr_assert(file_mapped(path), "'a' is not over a mapping of %s", path);
    }
    lam_tensor_dict_destroy(d);
    cr_assert_eq(lam_tensor_live_count(), 0);
    /* a byte of the float16 tensor (converted), then of the unaligned float32 one (copied) */
    const char *msg = flip_data_byte(path, 18);
    assert_mismatch(path, msg, "a byte of h flipped");
    flip_data_byte(path, 18);
    msg = flip_data_byte(path, 25);
    assert_mismatch(path, msg, "a byte of u flipped");
    su_cleanup();
}

/*
 * lam_load_mapped as lamina.h documents it: with every tensor mapped nothing is read, so a
 * flipped byte loads; with some tensor copied the whole data area is read and checked, so the
 * same flip in a mapped tensor is the checksum mismatch.
 */
Test(mapped, unverified_checks_the_checksum_only_when_it_reads_the_data) {
    if (!cpu_backend()) {
        cr_skip("another backend copies every tensor");
    }
    const char *all = su_path("allmapped.safetensors");
    float w[1000], b[7];
    save_two(all, 1.0f, w, b);
    const char *all_msg = flip_data_byte(all, 0);
    lam_tensor_dict *d = NULL;
    SU_OK(lam_load_mapped(all, NULL, &d)); /* nothing read, nothing checked */
    cr_assert_not_null(lam_tensor_dict_find(d, "w"));
    lam_tensor_dict_destroy(d);
    d = NULL;
    su_assert_error(lam_load(all, NULL, &d), LAM_ERR_FORMAT, all_msg, "lam_load of the same");
    const char *mixed = su_path("mixedflip.safetensors");
    write_mixed(mixed, true);
    const char *msg = flip_data_byte(mixed, 0); /* a byte of 'a', a mapped tensor */
    lam_tensor_dict *e = (lam_tensor_dict *)(uintptr_t)1;
    su_assert_error(lam_load_mapped(mixed, NULL, &e), LAM_ERR_FORMAT, msg, "mixed, a flipped");
    cr_assert_null(e);
    cr_assert_eq(lam_tensor_live_count(), 0);
    su_cleanup();
}

Test(mapped, verified_a_file_without_a_checksum_loads_unverified_as_lam_load_does) {
    const char *path = su_path("nocrc.safetensors");
    write_mixed(path, false);
    lam_tensor_dict *d = NULL, *c = NULL;
    SU_OK(lam_load_mapped_verified(path, NULL, &d));
    assert_mixed(d);
    cr_assert_null(lam_tensor_dict_metadata(d, "lamina.crc32c"));
    lam_tensor_dict_destroy(d);
    /* nothing to check against: a flipped byte of 'a' (bits of 1.5f's low byte) loads, as
     * lam_load loads it */
    flip_data_byte(path, 0);
    SU_OK(lam_load_mapped_verified(path, NULL, &d));
    SU_OK(lam_load(path, NULL, &c));
    float a[4];
    memcpy(a, mixed_a, sizeof a);
    uint32_t bits = su_bits(a[0]) ^ 0xFFu;
    a[0] = su_from_bits(bits);
    su_assert_bits(lam_tensor_dict_find(d, "a"), a, 4, "a, flipped, verified load");
    su_assert_bits(lam_tensor_dict_find(c, "a"), a, 4, "a, flipped, lam_load");
    lam_tensor_dict_destroy(d);
    lam_tensor_dict_destroy(c);
    cr_assert_eq(lam_tensor_live_count(), 0);
    su_cleanup();
}

Test(mapped, verified_writing_a_tensor_leaves_the_file_unchanged) {
    writes_leave_the_file(lam_load_mapped_verified, "vcow.safetensors");
}

/* 12 MiB of data: checksummed in slices by several threads (one per CPU, when there are
 * several), combined in order; a flipped byte in any slice is found. */
Test(mapped, verified_a_large_file_is_checked_in_slices) {
    const char *path = su_path("large.safetensors");
    const int64_t dims[1] = {3 << 20};
    float *v = malloc((size_t)dims[0] * sizeof *v);
    cr_assert_not_null(v);
    for (int64_t i = 0; i < dims[0]; i++) {
        v[i] = (float)(i % 4099) * 0.5f - 7.0f;
    }
    lam_tensor *t = su_tensor(1, dims, v);
    const char *name = "big";
    SU_OK(lam_save_dict(path, &name, &t, 1));
    lam_tensor_release(t);
    lam_tensor_dict *d = NULL;
    SU_OK(lam_load_mapped_verified(path, NULL, &d));
    su_assert_bits(lam_tensor_dict_find(d, "big"), v, (size_t)dims[0], "big");
    lam_tensor_dict_destroy(d);
    const size_t at[3] = {5, ((size_t)6 << 20) + 3, ((size_t)12 << 20) - 2};
    for (int k = 0; k < 3; k++) {
        const char *msg = flip_data_byte(path, at[k]);
        assert_mismatch(path, msg, su_fmt("byte %zu flipped", at[k]));
        flip_data_byte(path, at[k]);
    }
    free(v);
    su_cleanup();
}

/* ---- lam_block_load_parameters with options.mapped ---- */

/* Dense(300, in 20) -> Dense(10, in 300), initialized; parameter k, element i holds
 * base + k + i / 64 (exact in float32). */
static lam_block *mlp(float base) {
    lam_block *net = NULL, *l = NULL;
    SU_OK(lam_sequential_create(&net));
    SU_OK(lam_layer_create("Dense", "units=300, in_units=20", &l));
    SU_OK(lam_sequential_add(net, l));
    lam_block_release(l);
    SU_OK(lam_layer_create("Dense", "units=10, in_units=300", &l));
    SU_OK(lam_sequential_add(net, l));
    lam_block_release(l);
    SU_OK(lam_block_initialize(net, NULL, NULL, 0));
    lam_param_list *ps = NULL;
    SU_OK(lam_block_collect_params(net, NULL, &ps));
    cr_assert_eq(lam_param_list_count(ps), 4);
    for (size_t k = 0; k < lam_param_list_count(ps); k++) {
        lam_tensor *t = NULL;
        SU_OK(lam_param_data(lam_param_list_get(ps, k), &t));
        size_t n = (size_t)lam_tensor_numel(t);
        float *v = malloc(n * sizeof *v);
        for (size_t i = 0; i < n; i++) {
            v[i] = base + (float)k + (float)(i % 4096) / 64.0f;
        }
        SU_OK(lam_tensor_write(t, v, n));
        free(v);
        lam_tensor_release(t);
    }
    lam_param_list_destroy(ps);
    return net;
}

/* Every parameter of net holds base + k + i / 64. */
static void assert_mlp(lam_block *net, float base, const char *what) {
    lam_param_list *ps = NULL;
    SU_OK(lam_block_collect_params(net, NULL, &ps));
    for (size_t k = 0; k < lam_param_list_count(ps); k++) {
        lam_tensor *t = NULL;
        SU_OK(lam_param_data(lam_param_list_get(ps, k), &t));
        size_t n = (size_t)lam_tensor_numel(t);
        float *v = malloc(n * sizeof *v);
        for (size_t i = 0; i < n; i++) {
            v[i] = base + (float)k + (float)(i % 4096) / 64.0f;
        }
        su_assert_bits(t, v, n, su_fmt("%s: %s", what, lam_param_list_key(ps, k)));
        free(v);
        lam_tensor_release(t);
    }
    lam_param_list_destroy(ps);
}

Test(mapped, parameters_load_over_a_verified_mapping) {
    const char *path = su_path("params.safetensors");
    lam_block *a = mlp(1.0f), *b = mlp(-50.0f);
    SU_OK(lam_block_save_parameters(a, path));
    size_t n0 = 0;
    uint8_t *before = su_read_file(path, &n0);
    lam_load_options o = LAM_LOAD_OPTIONS_INIT;
    cr_assert_eq(o.mapped, 0, "LAM_LOAD_OPTIONS_INIT sets mapped");
    o.mapped = 1;
    SU_OK(lam_block_load_parameters(b, path, &o));
    assert_mlp(b, 1.0f, "loaded mapped");
    if (cpu_backend()) {
        cr_assert(file_mapped(path), "the parameters are not over a mapping of %s", path);
    }
    /* writing a mapped parameter (as an optimizer does) leaves the file as it was */
    lam_tensor *w = NULL;
    SU_OK(lam_param_data(lam_block_param(lam_block_child_at(b, 0), "weight"), &w));
    lam_tensor *twice = NULL;
    SU_OK(lam_op_add(w, w, &twice));
    SU_OK(lam_op_assign(w, twice));
    lam_tensor_release(twice);
    lam_tensor_release(w);
    size_t n1 = 0;
    uint8_t *after = su_read_file(path, &n1);
    cr_assert_eq(n1, n0);
    cr_assert(memcmp(before, after, n0) == 0, "writing a mapped parameter changed the file");
    lam_block *c = mlp(7.0f);
    SU_OK(lam_block_load_parameters(c, path, NULL));
    assert_mlp(c, 1.0f, "the file, loaded again");
    lam_block_release(c);
    lam_block_release(b);
    cr_assert_not(file_mapped(path), "the mapping outlived the model");
    lam_block_release(a);
    free(before);
    free(after);
    cr_assert_eq(lam_tensor_live_count(), 0);
    su_cleanup();
}

Test(mapped, parameters_from_a_corrupt_mapping_change_nothing) {
    const char *path = su_path("params_bad.safetensors");
    lam_block *a = mlp(1.0f), *b = mlp(-50.0f);
    SU_OK(lam_block_save_parameters(a, path));
    size_t n = 0;
    uint8_t *bytes = su_read_file(path, &n);
    size_t last = n - data_start(bytes, n) - 1;
    free(bytes);
    const char *msg = flip_data_byte(path, last - 5000);
    lam_load_options o = LAM_LOAD_OPTIONS_INIT;
    o.mapped = 1;
    su_assert_error(lam_block_load_parameters(b, path, &o), LAM_ERR_FORMAT, msg, "mapped");
    assert_mlp(b, -50.0f, "after the failed load");
    cr_assert_not(file_mapped(path), "a failed load left the file mapped");
    lam_block_release(a);
    lam_block_release(b);
    cr_assert_eq(lam_tensor_live_count(), 0);
    su_cleanup();
}

/* A caller built before the field existed passes the shorter struct: whatever lies after it is
 * not read, and the load copies. */
Test(mapped, parameters_options_without_the_field_copy) {
    if (!cpu_backend()) {
        cr_skip("whether the file is mapped is only seen on the CPU backend");
    }
    const char *path = su_path("params_old.safetensors");
    lam_block *a = mlp(1.0f), *b = mlp(-50.0f);
    SU_OK(lam_block_save_parameters(a, path));
    lam_load_options o = LAM_LOAD_OPTIONS_INIT;
    o.struct_size = (uint32_t)offsetof(lam_load_options, mapped);
    o.mapped = 1;
    SU_OK(lam_block_load_parameters(b, path, &o));
    assert_mlp(b, 1.0f, "loaded with the old struct");
    cr_assert_not(file_mapped(path), "an old caller's load mapped the file");
    o.struct_size = (uint32_t)sizeof o;
    SU_OK(lam_block_load_parameters(b, path, &o));
    cr_assert(file_mapped(path), "mapped = 1 did not map the file");
    lam_block_release(a);
    lam_block_release(b);
    su_cleanup();
}
