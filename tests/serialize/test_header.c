/*
 * Header validation: every rule of the safetensors header is checked before any data is used,
 * and a broken file is an error that names the file and the rule it breaks. The files are made
 * by hand, byte for byte.
 */
#include "ser_util.h"

TestSuite(header, .fini = su_fini);

static const uint8_t zeros[64];

/* Loads a hand-made file and checks the exact message after "loading '<path>': ". */
static void expect(const char *json, size_t data_bytes, lam_status want, const char *problem) {
    const char *path = su_path("x.safetensors");
    su_write_st(path, json, zeros, data_bytes);
    lam_tensor_dict *d = (lam_tensor_dict *)(void *)&d;
    lam_status st = lam_load(path, NULL, &d);
    su_assert_error(st, want, su_fmt("loading '%s': %s", path, problem), json);
    cr_assert_null(d);
    cr_assert_eq(lam_tensor_live_count(), 0);
}

/* As expect, for messages whose tail comes from jansson: checks the start only. */
static void expect_prefix(const char *json, size_t data_bytes, const char *problem) {
    const char *path = su_path("x.safetensors");
    su_write_st(path, json, zeros, data_bytes);
    lam_tensor_dict *d = NULL;
    lam_status st = lam_load(path, NULL, &d);
    cr_assert_eq(st, LAM_ERR_FORMAT, "%s: %s", json, lam_last_error());
    const char *want = su_fmt("loading '%s': %s", path, problem);
    cr_assert(strncmp(lam_last_error(), want, strlen(want)) == 0,
              "%s:\n  got:      %s\n  expected: %s...", json, lam_last_error(), want);
}

Test(header, the_example_of_the_issue) {
    expect("{\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,12]}}", 12,
           LAM_ERR_FORMAT,
           "Corrupt header, tensor 'w' has data_offsets [0, 12] but shape (2, 2) of F32 needs 16 "
           "bytes");
    su_cleanup();
}

Test(header, length_must_lie_inside_the_file_and_under_the_cap) {
    const char *path = su_path("x.safetensors");
    uint8_t buf[12] = {100, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' '};
    su_write_file(path, buf, sizeof buf);
    lam_tensor_dict *d = NULL;
    su_assert_error(lam_load(path, NULL, &d), LAM_ERR_FORMAT,
                    su_fmt("loading '%s': Corrupt header, header length 100 exceeds the 4 bytes "
                           "after the length field (truncated file?)",
                           path),
                    "beyond the file");
    uint8_t big[12] = {0x00, 0xC2, 0xEB, 0x0B, 0, 0, 0, 0, '{', '}', ' ', ' '}; /* 200000000 */
    su_write_file(path, big, sizeof big);
    su_assert_error(
        lam_load(path, NULL, &d), LAM_ERR_FORMAT,
        su_fmt("loading '%s': Corrupt header, header length 200000000 exceeds the limit "
               "of 100000000",
               path),
        "over the cap");
    uint8_t huge[8] = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
    su_write_file(path, huge, sizeof huge);
    su_assert_error(lam_load(path, NULL, &d), LAM_ERR_FORMAT,
                    su_fmt("loading '%s': Corrupt header, header length 18446744073709551615 "
                           "exceeds the limit of 100000000",
                           path),
                    "2^64 - 1");
    su_cleanup();
}

Test(header, json_must_be_valid_utf8_and_an_object) {
    expect_prefix("{\"w\": ", 0, "Corrupt header, invalid JSON at byte ");
    expect_prefix("{\"caf\xe9\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}", 4,
                  "Corrupt header, invalid JSON at byte ");
    expect_prefix("{\"w\\u0000\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}", 4,
                  "Corrupt header, invalid JSON at byte ");
    expect_prefix("{\"w\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},"
                  "\"w\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[4,8]}}",
                  8, "Corrupt header, invalid JSON at byte ");
    expect_prefix("{\"w\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,"
                  "99999999999999999999]}}",
                  4, "Corrupt header, invalid JSON at byte ");
    expect("[1, 2]", 0, LAM_ERR_FORMAT, "Corrupt header, the JSON is not an object");
    su_cleanup();
}

Test(header, entries_need_a_known_dtype_a_shape_and_offsets) {
    expect("{\"w\":1}", 0, LAM_ERR_FORMAT, "Corrupt header, tensor 'w' is not an object");
    expect("{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, LAM_ERR_FORMAT,
           "Corrupt header, tensor 'w' has no dtype string");
    expect("{\"w\":{\"dtype\":\"F33\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, LAM_ERR_FORMAT,
           "Corrupt header, tensor 'w' has an unknown dtype 'F33'");
    expect("{\"w\":{\"dtype\":\"F32\",\"shape\":\"(1,)\",\"data_offsets\":[0,4]}}", 4,
           LAM_ERR_FORMAT, "Corrupt header, tensor 'w' has no shape array");
    expect("{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, LAM_ERR_FORMAT,
           "Corrupt header, tensor 'w' has a shape entry that is not a non-negative integer");
    expect("{\"w\":{\"dtype\":\"F32\",\"shape\":[1.0],\"data_offsets\":[0,4]}}", 4, LAM_ERR_FORMAT,
           "Corrupt header, tensor 'w' has a shape entry that is not a non-negative integer");
    expect("{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4,
           LAM_ERR_UNSUPPORTED, "Unsupported tensor, 'w' has 9 dims, Lamina supports at most 8");
    expect("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4, LAM_ERR_FORMAT,
           "Corrupt header, tensor 'w' has no data_offsets [begin, end] of non-negative integers");
    expect("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 4, LAM_ERR_FORMAT,
           "Corrupt header, tensor 'w' has no data_offsets [begin, end] of non-negative integers");
    expect("{\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,0]}}", 4, LAM_ERR_FORMAT,
           "Corrupt header, tensor 'w' has data_offsets [4, 0] that end before they begin");
    expect("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"crc\":1}}", 4,
           LAM_ERR_FORMAT, "Corrupt header, tensor 'w' has an unknown field 'crc'");
    su_cleanup();
}

Test(header, sizes_must_match_without_overflow) {
    expect("{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4],\"data_offsets\":[0,4]}}",
           4, LAM_ERR_FORMAT,
           "Corrupt header, tensor 'w' has shape (4294967296, 4294967296, 4) whose byte size "
           "overflows");
    expect("{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,2147483648,0],\"data_offsets\":[0,0]}}",
           0, LAM_ERR_FORMAT,
           "Corrupt header, tensor 'w' has shape (4294967296, 2147483648, 0) whose byte size "
           "overflows");
    expect("{\"w\":{\"dtype\":\"F64\",\"shape\":[2305843009213693952],\"data_offsets\":[0,4]}}", 4,
           LAM_ERR_FORMAT,
           "Corrupt header, tensor 'w' has shape (2305843009213693952,) whose byte size "
           "overflows");
    expect("{\"w\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, LAM_ERR_FORMAT,
           "Corrupt header, tensor 'w' has data_offsets [0, 8] but shape (3,) of BF16 needs 6 "
           "bytes");
    su_cleanup();
}

Test(header, offsets_must_tile_the_data_area_exactly) {
    expect("{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8, LAM_ERR_FORMAT,
           "Corrupt header, tensor 'w' has data_offsets [0, 16] beyond the data area of 8 bytes");
    expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
           "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
           12, LAM_ERR_FORMAT,
           "Corrupt header, tensor 'b' (data_offsets [4, 12]) overlaps tensor 'a' (data_offsets "
           "[0, 8])");
    expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, LAM_ERR_FORMAT,
           "Corrupt header, 4 unused bytes before tensor 'a' (data_offsets [4, 8])");
    expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8, LAM_ERR_FORMAT,
           "Corrupt header, 4 bytes of data after the last tensor");
    expect("{}", 3, LAM_ERR_FORMAT, "Corrupt header, 3 bytes of data after the last tensor");
    su_cleanup();
}

Test(header, metadata_must_be_an_object_of_strings) {
    expect("{\"__metadata__\":[]}", 0, LAM_ERR_FORMAT,
           "Corrupt header, __metadata__ is not an object");
    expect("{\"__metadata__\":{\"epoch\":3}}", 0, LAM_ERR_FORMAT,
           "Corrupt header, __metadata__ value of 'epoch' is not a string");
    expect("{\"__metadata__\":{\"lamina.kind\":\"list\"},"
           "\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
           4, LAM_ERR_FORMAT,
           "Corrupt header, saved as a list of 1 tensors but a tensor is named 'x' instead of an "
           "index 0..0");
    expect("{\"__metadata__\":{\"lamina.crc32c\":\"xyz\"}}", 0, LAM_ERR_FORMAT,
           "Corrupt header, metadata lamina.crc32c is 'xyz', expected 8 hex digits");
    su_cleanup();
}

/* What the rules allow: tensors listed out of data order, empty tensors anywhere, a header
 * padded with spaces, a list stored out of index order. */
Test(header, valid_unusual_files_load) {
    const char *path = su_path("ok.safetensors");
    const float data[3] = {1.0f, 2.0f, 3.0f};
    su_write_st(path,
                "{\"__metadata__\":{\"lamina.kind\":\"list\"},"
                "\"1\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]},"
                "\"2\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[4,4]},"
                "\"0\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}      ",
                data, sizeof data);
    lam_tensor_dict *d = NULL;
    SU_OK(lam_load(path, NULL, &d));
    cr_assert(lam_tensor_dict_is_list(d));
    cr_assert_eq(lam_tensor_dict_count(d), 3);
    cr_assert_str_eq(lam_tensor_dict_name(d, 0), "0");
    cr_assert_str_eq(lam_tensor_dict_name(d, 1), "1");
    cr_assert_str_eq(lam_tensor_dict_name(d, 2), "2");
    su_assert_bits(lam_tensor_dict_get(d, 0), data, 1, "0");
    su_assert_bits(lam_tensor_dict_get(d, 1), data + 1, 2, "1");
    cr_assert_eq(lam_tensor_numel(lam_tensor_dict_get(d, 2)), 0);
    lam_tensor_dict_destroy(d);
    su_cleanup();
}

/* The header's JSON reader and writer (core/st_json.c): escapes and non-ASCII names survive a
 * round trip byte for byte, \u escapes (a surrogate pair included) decode to UTF-8, and what
 * RFC 8259 forbids is refused with the byte it was found at. */
Test(header, json_escapes_and_unicode_round_trip) {
    const char *path = su_path("names.safetensors");
    const char *names[3] = {"q\"uote\\back/slash", "tab\tnl\nctl\x01",
                            "caf\xc3\xa9 \xf0\x9f\x98\x80"};
    float v[3][1] = {{1}, {2}, {3}};
    lam_tensor *t[3];
    for (int i = 0; i < 3; i++) {
        t[i] = su_tensor(0, NULL, v[i]);
    }
    SU_OK(lam_save_dict(path, names, t, 3));
    lam_tensor_dict *d = NULL;
    SU_OK(lam_load(path, NULL, &d));
    cr_assert_eq(lam_tensor_dict_count(d), 3);
    for (int i = 0; i < 3; i++) {
        cr_assert_str_eq(lam_tensor_dict_name(d, (size_t)i), names[i]);
        su_assert_bits(lam_tensor_dict_get(d, (size_t)i), v[i], 1, names[i]);
        lam_tensor_release(t[i]);
    }
    lam_tensor_dict_destroy(d);
    /* Written by hand: escapes decode, a surrogate pair becomes one 4-byte character. */
    su_write_st(path,
                "{\"\\u0063af\\u00e9\\ud83d\\ude00\\/\": {\"dtype\": \"F32\", \"shape\": [1], "
                "\"data_offsets\": [0, 4]}}",
                zeros, 4);
    SU_OK(lam_load(path, NULL, &d));
    cr_assert_str_eq(lam_tensor_dict_name(d, 0), "caf\xc3\xa9\xf0\x9f\x98\x80/");
    lam_tensor_dict_destroy(d);
    expect_prefix("{\"\\ud83d\":{}}", 0, "Corrupt header, invalid JSON at byte ");
    expect_prefix("{\"w\":01}", 0, "Corrupt header, invalid JSON at byte ");
    expect_prefix("{\"w\":1.}", 0, "Corrupt header, invalid JSON at byte ");
    expect_prefix("{\"w\":[1,]}", 0, "Corrupt header, invalid JSON at byte ");
    expect_prefix("{\"w\":tru}", 0, "Corrupt header, invalid JSON at byte ");
    expect_prefix("{\"w\":\"a\tb\"}", 0, "Corrupt header, invalid JSON at byte ");
    expect_prefix("{\"w\":99999999999999999999}", 0, "Corrupt header, invalid JSON at byte ");
    expect_prefix("{} x", 0, "Corrupt header, invalid JSON at byte 3: end of input expected");
    expect_prefix("{\"a\":1,\"a\":2}", 0,
                  "Corrupt header, invalid JSON at byte 10: duplicate object key");
    expect_prefix("\"w\"", 0, "Corrupt header, invalid JSON at byte 0: '[' or '{' expected");
    su_cleanup();
}
