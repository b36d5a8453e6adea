/*
 * Saving and loading tensors (Gluon's nd.save / nd.load): lists and dicts round-trip bit for
 * bit, the bytes on disk are the safetensors layout worked out by hand, files written by NumPy
 * load with the values NumPy meant, and what cannot be converted is refused by name.
 */
#include "ser_util.h"

#include <math.h>

TestSuite(tensors, .fini = su_fini);

/* Bit patterns a lossy path would change: a NaN payload, -0, the smallest denormal, infinities,
 * the largest float. */
static const uint32_t special_bits[8] = {0x7FC00001u, 0x80000000u, 0x00000001u, 0x7F800000u,
                                         0xFF800000u, 0x7F7FFFFFu, 0x3F800000u, 0xC0490FDBu};

Test(tensors, list_round_trip_is_bit_exact) {
    float a[8];
    for (int i = 0; i < 8; i++) {
        a[i] = su_from_bits(special_bits[i]);
    }
    float b[1] = {42.5f}, c[1] = {0};
    float d[5] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f};
    int64_t sa[2] = {2, 4}, sc[2] = {0, 4}, sd[1] = {5};
    lam_tensor *t[4] = {su_tensor(2, sa, a), su_tensor(0, NULL, b), su_tensor(2, sc, c),
                        su_tensor(1, sd, d)};
    const char *path = su_path("list.safetensors");
    SU_OK(lam_save_list(path, t, 4));

    lam_tensor_dict *dict = NULL;
    SU_OK(lam_load(path, NULL, &dict));
    cr_assert(lam_tensor_dict_is_list(dict));
    cr_assert_eq(lam_tensor_dict_count(dict), 4);
    const char *names[4] = {"0", "1", "2", "3"};
    for (size_t i = 0; i < 4; i++) {
        cr_assert_str_eq(lam_tensor_dict_name(dict, i), names[i]);
        cr_assert_eq(lam_tensor_dict_find(dict, names[i]), lam_tensor_dict_get(dict, i));
    }
    su_assert_shape(lam_tensor_dict_get(dict, 0), 2, sa, "0");
    su_assert_bits(lam_tensor_dict_get(dict, 0), a, 8, "0");
    su_assert_shape(lam_tensor_dict_get(dict, 1), 0, NULL, "1");
    su_assert_bits(lam_tensor_dict_get(dict, 1), b, 1, "1");
    su_assert_shape(lam_tensor_dict_get(dict, 2), 2, sc, "2");
    cr_assert_eq(lam_tensor_numel(lam_tensor_dict_get(dict, 2)), 0);
    su_assert_bits(lam_tensor_dict_get(dict, 3), d, 5, "3");
    cr_assert_str_eq(lam_tensor_dict_metadata(dict, "lamina.kind"), "list");
    cr_assert_null(lam_tensor_dict_get(dict, 4));
    cr_assert_null(lam_tensor_dict_name(dict, 4));
    cr_assert_null(lam_tensor_dict_find(dict, "4"));
    cr_assert_null(lam_tensor_dict_metadata(dict, "absent"));
    lam_tensor_dict_destroy(dict);
    for (int i = 0; i < 4; i++) {
        lam_tensor_release(t[i]);
    }
    cr_assert_eq(lam_tensor_live_count(), 0);
    su_cleanup();
}

Test(tensors, dict_round_trip_keeps_names_and_order) {
    float x[3] = {1, 2, 3}, y[4] = {-1.5f, 0.25f, 1e-30f, -7};
    int64_t sx[1] = {3}, sy[2] = {2, 2};
    lam_tensor *t[2] = {su_tensor(1, sx, x), su_tensor(2, sy, y)};
    const char *names[2] = {"zeta", "alpha.weight"};
    const char *path = su_path("dict.safetensors");
    SU_OK(lam_save_dict(path, names, t, 2));
    lam_tensor_dict *d = NULL;
    SU_OK(lam_load(path, NULL, &d));
    cr_assert_not(lam_tensor_dict_is_list(d));
    cr_assert_eq(lam_tensor_dict_count(d), 2);
    cr_assert_str_eq(lam_tensor_dict_name(d, 0), "zeta");
    cr_assert_str_eq(lam_tensor_dict_name(d, 1), "alpha.weight");
    su_assert_bits(lam_tensor_dict_find(d, "zeta"), x, 3, "zeta");
    su_assert_shape(lam_tensor_dict_find(d, "alpha.weight"), 2, sy, "alpha.weight");
    su_assert_bits(lam_tensor_dict_find(d, "alpha.weight"), y, 4, "alpha.weight");
    cr_assert_str_eq(lam_tensor_dict_metadata(d, "lamina.kind"), "dict");
    lam_tensor_dict_destroy(d);
    lam_tensor_release(t[0]);
    lam_tensor_release(t[1]);
    su_cleanup();
}

Test(tensors, empty_list_round_trips) {
    const char *path = su_path("empty.safetensors");
    SU_OK(lam_save_list(path, NULL, 0));
    lam_tensor_dict *d = NULL;
    SU_OK(lam_load(path, NULL, &d));
    cr_assert(lam_tensor_dict_is_list(d));
    cr_assert_eq(lam_tensor_dict_count(d), 0);
    lam_tensor_dict_destroy(d);
    su_cleanup();
}

/*
 * The bytes of a one-tensor file, worked out by hand: the JSON header (compact, metadata first,
 * padded with spaces to a multiple of 8), its length as 8 little-endian bytes, then 1.0f and
 * 2.0f little-endian. The CRC32C 28c0c9b1 of those 8 data bytes was computed with a bitwise
 * Python implementation (checked against the standard vector crc32c("123456789") = e3069283).
 */
Test(tensors, file_bytes_are_the_safetensors_layout) {
    float v[2] = {1.0f, 2.0f};
    int64_t s[1] = {2};
    lam_tensor *t = su_tensor(1, s, v);
    const char *name = "w";
    const char *path = su_path("w.safetensors");
    SU_OK(lam_save_dict(path, &name, &t, 1));
    const char *json =
        "{\"__metadata__\":{\"lamina.kind\":\"dict\",\"lamina.crc32c\":\"28c0c9b1\"},"
        "\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    size_t jl = strlen(json), padded = (jl + 7) / 8 * 8;
    size_t n;
    uint8_t *buf = su_read_file(path, &n);
    cr_assert_eq(n, 8 + padded + 8, "file has %zu bytes, expected %zu", n, 8 + padded + 8);
    uint64_t h = 0;
    for (int i = 7; i >= 0; i--) {
        h = (h << 8) | buf[i];
    }
    cr_assert_eq(h, padded);
    cr_assert(memcmp(buf + 8, json, jl) == 0, "header is %.*s", (int)padded, (char *)buf + 8);
    for (size_t i = jl; i < padded; i++) {
        cr_assert_eq(buf[8 + i], ' ');
    }
    const uint8_t data[8] = {0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0x40};
    cr_assert(memcmp(buf + 8 + padded, data, 8) == 0);
    struct stat sb;
    cr_assert_eq(stat(path, &sb), 0);
    cr_assert_eq(sb.st_mode & 0777, 0644, "mode %o", sb.st_mode & 0777);
    free(buf);
    lam_tensor_release(t);
    su_cleanup();
}

Test(tensors, save_rejects_bad_names_and_arguments) {
    float v[1] = {1};
    int64_t s[1] = {1};
    lam_tensor *t[2] = {su_tensor(1, s, v), su_tensor(1, s, v)};
    const char *path = su_path("bad.safetensors");
    const char *dup[2] = {"a", "a"};
    su_assert_error(lam_save_dict(path, dup, t, 2), LAM_ERR_INVALID_ARGUMENT,
                    su_fmt("saving '%s': Duplicate name 'a', tensors 0 and 1", path), "duplicate");
    const char *empty[2] = {"a", ""};
    su_assert_error(lam_save_dict(path, empty, t, 2), LAM_ERR_INVALID_ARGUMENT,
                    su_fmt("saving '%s': Invalid name, tensor 1 has an empty name", path), "empty");
    const char *reserved[1] = {"__metadata__"};
    su_assert_error(
        lam_save_dict(path, reserved, t, 1), LAM_ERR_INVALID_ARGUMENT,
        su_fmt("saving '%s': Invalid name, '__metadata__' is reserved by the format", path),
        "reserved");
    const char *bad_utf8[1] = {"caf\xe9"};
    su_assert_error(lam_save_dict(path, bad_utf8, t, 1), LAM_ERR_INVALID_ARGUMENT,
                    su_fmt("saving '%s': Invalid name, 'caf\xe9' is not valid UTF-8", path),
                    "utf-8");
    lam_tensor *with_null[2] = {t[0], NULL};
    su_assert_error(lam_save_list(path, with_null, 2), LAM_ERR_INVALID_ARGUMENT,
                    su_fmt("saving '%s': Invalid argument, tensor 1 is NULL", path), "NULL tensor");
    cr_assert_eq(su_dir_count(), 0, "a failed save left a file behind");
    lam_tensor_release(t[0]);
    lam_tensor_release(t[1]);
    su_cleanup();
}

Test(tensors, load_errors_name_the_file) {
    lam_tensor_dict *d = (lam_tensor_dict *)(void *)&d;
    const char *missing = su_path("nope.safetensors");
    su_assert_error(
        lam_load(missing, NULL, &d), LAM_ERR_NOT_FOUND,
        su_fmt("loading '%s': Cannot open the file, No such file or directory", missing),
        "missing file");
    cr_assert_null(d);
    su_assert_error(lam_load(su_tmpdir(), NULL, &d), LAM_ERR_IO,
                    su_fmt("loading '%s': Not a regular file", su_tmpdir()), "directory");
    const char *tiny = su_path("tiny.safetensors");
    su_write_file(tiny, "\x02\0\0", 3);
    su_assert_error(
        lam_load(tiny, NULL, &d), LAM_ERR_FORMAT,
        su_fmt("loading '%s': File too small, 3 bytes, a safetensors file has at least 8", tiny),
        "tiny file");
    su_cleanup();
}

/* Values of data/numpy_dtypes.safetensors (written by interop/write_numpy.py), as float32,
 * worked out by hand: F16 65504 is its largest value and 2^-24 its smallest subnormal; BF16
 * keeps the top 16 bits of a float32; F64 0.1 and 1/3 round to the nearest float32 (bits
 * 3dcccccd and 3eaaaaab) and -1e300 overflows to -inf; I32 2147483647 rounds to 2^31 and I64
 * 16777217 = 2^24 + 1 to 2^24 (ties to even). */
Test(tensors, numpy_file_converts_every_dtype) {
    lam_tensor_dict *d = NULL;
    SU_OK(lam_load(SU_DATA_DIR "/numpy_dtypes.safetensors", NULL, &d));
    cr_assert_not(lam_tensor_dict_is_list(d));
    cr_assert_eq(lam_tensor_dict_count(d), 9);
    const char *order[9] = {"f32", "f16", "bf16", "f64", "i32", "i64", "u8", "scalar", "empty"};
    for (size_t i = 0; i < 9; i++) {
        cr_assert_str_eq(lam_tensor_dict_name(d, i), order[i]);
    }
    float f32[6] = {1.5f,
                    -2.25f,
                    0.0f,
                    su_from_bits(0x80000000u),
                    su_from_bits(0x7F61B1E6u),
                    su_from_bits(0x00000001u)};
    int64_t s23[2] = {2, 3}, s4[1] = {4}, s22[2] = {2, 2}, s3[1] = {3}, s2[1] = {2},
            s03[2] = {0, 3};
    su_assert_shape(lam_tensor_dict_find(d, "f32"), 2, s23, "f32");
    su_assert_bits(lam_tensor_dict_find(d, "f32"), f32, 6, "f32");
    float f16[4] = {1.0f, -0.5f, 65504.0f, 5.9604644775390625e-08f};
    su_assert_shape(lam_tensor_dict_find(d, "f16"), 1, s4, "f16");
    su_assert_bits(lam_tensor_dict_find(d, "f16"), f16, 4, "f16");
    float bf16[4] = {1.0f, -2.5f, 3.140625f, -1.2676506002282294e30f};
    su_assert_shape(lam_tensor_dict_find(d, "bf16"), 2, s22, "bf16");
    su_assert_bits(lam_tensor_dict_find(d, "bf16"), bf16, 4, "bf16");
    float f64[3] = {su_from_bits(0x3DCCCCCDu), -INFINITY, su_from_bits(0x3EAAAAABu)};
    su_assert_shape(lam_tensor_dict_find(d, "f64"), 1, s3, "f64");
    su_assert_bits(lam_tensor_dict_find(d, "f64"), f64, 3, "f64");
    float i32[3] = {-7.0f, 0.0f, 2147483648.0f};
    su_assert_bits(lam_tensor_dict_find(d, "i32"), i32, 3, "i32");
    float i64[2] = {-1099511627776.0f, 16777216.0f};
    su_assert_shape(lam_tensor_dict_find(d, "i64"), 1, s2, "i64");
    su_assert_bits(lam_tensor_dict_find(d, "i64"), i64, 2, "i64");
    float u8[4] = {0, 1, 128, 255};
    su_assert_shape(lam_tensor_dict_find(d, "u8"), 2, s22, "u8");
    su_assert_bits(lam_tensor_dict_find(d, "u8"), u8, 4, "u8");
    float scalar[1] = {42.5f};
    su_assert_shape(lam_tensor_dict_find(d, "scalar"), 0, NULL, "scalar");
    su_assert_bits(lam_tensor_dict_find(d, "scalar"), scalar, 1, "scalar");
    su_assert_shape(lam_tensor_dict_find(d, "empty"), 2, s03, "empty");
    cr_assert_str_eq(lam_tensor_dict_metadata(d, "creator"), "write_numpy.py");
    cr_assert_str_eq(lam_tensor_dict_metadata(d, "note"), "caf\xc3\xa9 \xe2\x9c\x93");
    cr_assert_null(lam_tensor_dict_metadata(d, "lamina.kind"));
    lam_tensor_dict_destroy(d);
}

Test(tensors, unsupported_dtype_is_refused_by_name) {
    lam_tensor_dict *d = NULL;
    const char *path = SU_DATA_DIR "/numpy_unsupported.safetensors";
    su_assert_error(lam_load(path, NULL, &d), LAM_ERR_DTYPE,
                    su_fmt("loading '%s': tensor 'mask': Unsupported dtype, BOOL does not convert "
                           "to float32 (F32, F16, BF16, F64, I32, I64 and U8 do)",
                           path),
                    "BOOL");
    cr_assert_null(d);
    cr_assert_eq(lam_tensor_live_count(), 0);
}

Test(tensors, load_puts_tensors_on_the_given_context) {
    lam_ctx *ctx = NULL;
    SU_OK(lam_ctx_get("cpu:0", &ctx));
    lam_tensor_dict *d = NULL;
    SU_OK(lam_load(SU_DATA_DIR "/numpy_dtypes.safetensors", ctx, &d));
    for (size_t i = 0; i < lam_tensor_dict_count(d); i++) {
        cr_assert_eq(lam_tensor_ctx(lam_tensor_dict_get(d, i)), ctx);
    }
    lam_tensor_dict_destroy(d);
}

Test(tensors, checksum_mismatch_names_the_file) {
    float v[2] = {1.0f, 2.0f};
    int64_t s[1] = {2};
    lam_tensor *t = su_tensor(1, s, v);
    const char *path = su_path("crc.safetensors");
    SU_OK(lam_save_list(path, &t, 1));
    size_t n;
    uint8_t *buf = su_read_file(path, &n);
    buf[n - 1] ^= 0x01; /* 2.0f (40000000) becomes 8.0f (41000000): valid, but wrong */
    su_write_file(path, buf, n);
    lam_tensor_dict *d = NULL;
    /* daab4ab2: CRC32C of the changed bytes, by the same Python implementation. */
    su_assert_error(lam_load(path, NULL, &d), LAM_ERR_FORMAT,
                    su_fmt("loading '%s': Checksum mismatch, the data has CRC32C daab4ab2 but the "
                           "metadata says 28c0c9b1 (the file is corrupt)",
                           path),
                    "checksum");
    cr_assert_null(d);
    free(buf);
    lam_tensor_release(t);
    su_cleanup();
}

Test(tensors, null_arguments_are_refused) {
    su_assert_error(lam_load("x", NULL, NULL), LAM_ERR_INVALID_ARGUMENT,
                    "lam_load: Invalid argument, out is NULL", "out NULL");
    lam_tensor_dict *d = NULL;
    su_assert_error(lam_load(NULL, NULL, &d), LAM_ERR_INVALID_ARGUMENT,
                    "loading: Invalid argument, path is NULL", "path NULL");
    cr_assert_eq(lam_tensor_dict_count(NULL), 0);
    cr_assert_not(lam_tensor_dict_is_list(NULL));
    lam_tensor_dict_destroy(NULL);
}
