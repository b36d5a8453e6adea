/*
 * Large files, read and written in pieces: a load splits the data area between threads (at an
 * element boundary of whatever tensor the split falls in) and combines their checksums; a save
 * streams each tensor through one small buffer. The values and the CRC32C here are computed by
 * the test itself (a table-driven CRC32C written from the polynomial), never by the code under
 * test.
 */
#include "ser_util.h"
#include "ref_crc32c.h"

TestSuite(streaming, .fini = su_fini, .timeout = 300);

Test(streaming, crc32c_reference_matches_the_published_check_value) {
    /* The check value of CRC-32C (RFC 3720, and every CRC catalogue): "123456789". */
    cr_assert_eq(ref_crc32c((const uint8_t *)"123456789", 9), 0xE3069283u);
}

/* Sizes of the mixed file's tensors: a U8 of 3 bytes puts every later tensor off its natural
 * alignment, and the split points of 2, 3 or 4 threads fall inside the F64, BF16 and F32 ones. */
#define N_U8       3
#define N_F64      600000  /* 4.8 MB */
#define N_BF16     1000001 /* 2 MB */
#define N_F32      1500000 /* 6 MB */
#define DATA_BYTES ((size_t)N_U8 + 8 * (size_t)N_F64 + 2 * (size_t)N_BF16 + 4 * (size_t)N_F32)

/* Every value is exact in float32, so the loaded tensors must hold exactly these. */
static float value_of(int tensor, size_t i) {
    switch (tensor) {
    case 0:
        return (float)(i + 1);
    case 1:
        return (float)i * 0.5f - 1000.0f;
    case 2:
        return (float)((int)(i % 256) - 128);
    default:
        return (float)i * 0.25f;
    }
}

static void put_le(uint8_t *p, uint64_t v, int n) {
    for (int k = 0; k < n; k++) {
        p[k] = (uint8_t)(v >> (8 * k));
    }
}

/* The data area of the mixed file, little-endian as the format says. */
static uint8_t *mixed_data(void) {
    uint8_t *d = malloc(DATA_BYTES), *p = d;
    cr_assert_not_null(d);
    for (size_t i = 0; i < N_U8; i++) {
        *p++ = (uint8_t)value_of(0, i);
    }
    for (size_t i = 0; i < N_F64; i++, p += 8) {
        double v = value_of(1, i);
        uint64_t b;
        memcpy(&b, &v, sizeof b);
        put_le(p, b, 8);
    }
    for (size_t i = 0; i < N_BF16; i++, p += 2) {
        put_le(p, su_bits(value_of(2, i)) >> 16, 2); /* small integers: exact in bfloat16 */
    }
    for (size_t i = 0; i < N_F32; i++, p += 4) {
        put_le(p, su_bits(value_of(3, i)), 4);
    }
    cr_assert_eq((size_t)(p - d), DATA_BYTES);
    return d;
}

static void write_mixed(const char *path, const uint8_t *data, uint32_t crc) {
    size_t o1 = N_U8, o2 = o1 + 8 * (size_t)N_F64, o3 = o2 + 2 * (size_t)N_BF16;
    const char *json =
        su_fmt("{\"__metadata__\":{\"lamina.crc32c\":\"%08x\"},"
               "\"a\":{\"dtype\":\"U8\",\"shape\":[%d],\"data_offsets\":[0,%zu]},"
               "\"b\":{\"dtype\":\"F64\",\"shape\":[%d],\"data_offsets\":[%zu,%zu]},"
               "\"c\":{\"dtype\":\"BF16\",\"shape\":[%d],\"data_offsets\":[%zu,%zu]},"
               "\"d\":{\"dtype\":\"F32\",\"shape\":[%d],\"data_offsets\":[%zu,%zu]}}",
               (unsigned)crc, N_U8, o1, N_F64, o1, o2, N_BF16, o2, o3, N_F32, o3, DATA_BYTES);
    su_write_st(path, json, data, DATA_BYTES);
}

static void assert_mixed(const lam_tensor_dict *d) {
    static const char *const names[4] = {"a", "b", "c", "d"};
    static const size_t counts[4] = {N_U8, N_F64, N_BF16, N_F32};
    cr_assert_eq(lam_tensor_dict_count(d), 4);
    for (int t = 0; t < 4; t++) {
        lam_tensor *x = lam_tensor_dict_find(d, names[t]);
        cr_assert_not_null(x, "tensor %s missing", names[t]);
        cr_assert_eq((size_t)lam_tensor_numel(x), counts[t]);
        float *v = su_values(x);
        for (size_t i = 0; i < counts[t]; i++) {
            if (v[i] != value_of(t, i)) {
                cr_assert_fail("%s[%zu] is %g, expected %g", names[t], i, (double)v[i],
                               (double)value_of(t, i));
            }
        }
        free(v);
    }
}

Test(streaming, a_large_file_of_mixed_dtypes_loads_exactly_with_its_checksum_verified) {
    uint8_t *data = mixed_data();
    const char *path = su_path("mixed.safetensors");
    write_mixed(path, data, ref_crc32c(data, DATA_BYTES));
    lam_tensor_dict *d = NULL;
    SU_OK(lam_load(path, NULL, &d));
    assert_mixed(d);
    lam_tensor_dict_destroy(d);
    free(data);
    su_cleanup();
}

Test(streaming, a_changed_byte_anywhere_in_a_large_file_fails_the_checksum) {
    uint8_t *data = mixed_data();
    uint32_t good = ref_crc32c(data, DATA_BYTES);
    const char *path = su_path("mixed.safetensors");
    /* The first and last bytes, and the bytes on both sides of where 2, 3 and 4 threads split
     * the data (an equal share each, moved down to an element boundary at most 7 bytes). */
    size_t at[32], n_at = 0;
    at[n_at++] = 0;
    at[n_at++] = DATA_BYTES - 1;
    for (size_t parts = 2; parts <= 4; parts++) {
        for (size_t p = 1; p < parts; p++) {
            size_t split = DATA_BYTES / parts * p;
            at[n_at++] = split - 9;
            at[n_at++] = split - 1;
            at[n_at++] = split;
            at[n_at++] = split + 1;
        }
    }
    for (size_t k = 0; k < n_at; k++) {
        data[at[k]] ^= 0x01;
        uint32_t bad = ref_crc32c(data, DATA_BYTES);
        write_mixed(path, data, good);
        data[at[k]] ^= 0x01;
        lam_tensor_dict *d = NULL;
        su_assert_error(lam_load(path, NULL, &d), LAM_ERR_FORMAT,
                        su_fmt("loading '%s': Checksum mismatch, the data has CRC32C %08x but the "
                               "metadata says %08x (the file is corrupt)",
                               path, (unsigned)bad, (unsigned)good),
                        su_fmt("byte %zu changed", at[k]));
        cr_assert_null(d);
    }
    free(data);
    su_cleanup();
}

Test(streaming, a_saved_file_holds_the_values_and_their_crc32c) {
    /* 12 MB: many pieces of the writer's buffer, and more than its early-writeback step. */
    enum { BIG = 3000001 };
    float *big = malloc(BIG * sizeof *big), small[5] = {1.5f, -2, 0, 1e-30f, 3e30f};
    cr_assert_not_null(big);
    for (size_t i = 0; i < BIG; i++) {
        big[i] = (float)i * 0.25f - 7.0f;
    }
    int64_t dbig[2] = {3, 1000000}, dlast[1] = {1}, dsmall[1] = {5};
    lam_tensor *t[3] = {su_tensor(1, dsmall, small), su_tensor(2, dbig, big),
                        su_tensor(1, dlast, big + BIG - 1)};
    const char *names[3] = {"small", "big", "last"};
    const char *path = su_path("saved.safetensors");
    SU_OK(lam_save_dict(path, names, t, 3));
    size_t n;
    uint8_t *file = su_read_file(path, &n);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) {
        hlen = (hlen << 8) | file[i];
    }
    size_t data_at = 8 + (size_t)hlen, want_bytes = (5 + 3000000 + 1) * sizeof(float);
    cr_assert_eq(n - data_at, want_bytes, "data area of %zu bytes, expected %zu", n - data_at,
                 want_bytes);
    /* The tensors lie in the order they were given, each little-endian float32. */
    const float *parts[3] = {small, big, big + BIG - 1};
    const size_t counts[3] = {5, 3000000, 1};
    const uint8_t *p = file + data_at;
    for (int k = 0; k < 3; k++) {
        for (size_t i = 0; i < counts[k]; i++, p += 4) {
            uint32_t b =
                (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
            if (b != su_bits(parts[k][i])) {
                cr_assert_fail("%s[%zu]: bits %08x in the file, expected %08x", names[k], i, b,
                               su_bits(parts[k][i]));
            }
        }
    }
    char want[64];
    snprintf(want, sizeof want, "\"lamina.crc32c\":\"%08x\"",
             (unsigned)ref_crc32c(file + data_at, n - data_at));
    file[data_at - 1] = '\0'; /* the header is padded with spaces: this ends its text */
    cr_assert(strstr((const char *)file + 8, want) != NULL, "header %s lacks %s",
              (const char *)file + 8, want);
    free(file);
    for (int k = 0; k < 3; k++) {
        lam_tensor_release(t[k]);
    }
    free(big);
    su_cleanup();
}

/* A file written before the checksum went through ISA-L: the same CRC32C, so it still loads
 * (the bytes below were saved by the previous version and are reproduced here by hand). */
Test(streaming, a_file_of_the_previous_version_loads) {
    const uint8_t data[8] = {0x00, 0x00, 0xc0, 0x3f, 0x00, 0x00, 0x00, 0xc0}; /* 1.5, -2 */
    const char *path = su_path("old.safetensors");
    su_write_st(path,
                "{\"__metadata__\":{\"lamina.kind\":\"list\",\"lamina.crc32c\":\"a432a922\"},"
                "\"0\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
                data, sizeof data);
    cr_assert_eq(ref_crc32c(data, sizeof data), 0xa432a922u);
    lam_tensor_dict *d = NULL;
    SU_OK(lam_load(path, NULL, &d));
    float want[2] = {1.5f, -2.0f};
    su_assert_bits(lam_tensor_dict_get(d, 0), want, 2, "0");
    lam_tensor_dict_destroy(d);
    su_cleanup();
}

/* ---- parameters read straight into a CPU model ---- */

/* Dense(1000, in 1500) -> Dense(1500, in 1000) on the CPU backend: 12 MB of parameters, so a
 * load splits the file between threads, and each piece is read straight into the new
 * parameter memory (the CPU backend's buffers are host memory). Parameter i, element j holds
 * base + i + (j % 1024) / 1024, exact in float32. */
static lam_ctx *cpu_ctx(void) {
    lam_ctx *ctx = NULL;
    SU_OK(lam_ctx_get("cpu", &ctx));
    return ctx;
}

static float big_value(float base, size_t i, size_t j) {
    return base + (float)i + (float)(j % 1024) / 1024.0f;
}

static lam_block *big_net(float base) {
    lam_block *net = NULL;
    SU_OK(lam_sequential_create(&net));
    const char *attrs[2] = {"units=1000, in_units=1500", "units=1500, in_units=1000"};
    for (int k = 0; k < 2; k++) {
        lam_block *l = NULL;
        SU_OK(lam_layer_create("Dense", attrs[k], &l));
        SU_OK(lam_sequential_add(net, l));
        lam_block_release(l);
    }
    SU_OK(lam_block_initialize(net, NULL, cpu_ctx(), 0));
    lam_param_list *l = NULL;
    SU_OK(lam_block_collect_params(net, NULL, &l));
    cr_assert_eq(lam_param_list_count(l), 4);
    for (size_t i = 0; i < 4; i++) {
        lam_tensor *t = NULL;
        SU_OK(lam_param_data(lam_param_list_get(l, i), &t));
        size_t n = (size_t)lam_tensor_numel(t);
        float *v = malloc(n * sizeof *v);
        cr_assert_not_null(v);
        for (size_t j = 0; j < n; j++) {
            v[j] = big_value(base, i, j);
        }
        SU_OK(lam_tensor_write(t, v, n));
        free(v);
        lam_tensor_release(t);
    }
    lam_param_list_destroy(l);
    return net;
}

/* Every parameter of net holds big_value(base, ...) and lives on the CPU backend. */
static void assert_big(lam_block *net, float base, const char *what) {
    static const size_t counts[4] = {1500000, 1000, 1500000, 1500};
    lam_param_list *l = NULL;
    SU_OK(lam_block_collect_params(net, NULL, &l));
    cr_assert_eq(lam_param_list_count(l), 4);
    for (size_t i = 0; i < 4; i++) {
        lam_tensor *t = NULL;
        SU_OK(lam_param_data(lam_param_list_get(l, i), &t));
        cr_assert_eq(lam_tensor_ctx(t), cpu_ctx(), "%s: parameter %zu left the CPU", what, i);
        cr_assert_eq((size_t)lam_tensor_numel(t), counts[i]);
        float *v = su_values(t);
        for (size_t j = 0; j < counts[i]; j++) {
            if (su_bits(v[j]) != su_bits(big_value(base, i, j))) {
                cr_assert_fail("%s: parameter %zu [%zu] is %g, expected %g", what, i, j,
                               (double)v[j], (double)big_value(base, i, j));
            }
        }
        free(v);
        lam_tensor_release(t);
    }
    lam_param_list_destroy(l);
}

Test(streaming, parameters_load_straight_into_a_cpu_model_and_a_corrupt_file_changes_nothing) {
    const char *path = su_path("big.safetensors");
    lam_block *saved = big_net(1.0f);
    SU_OK(lam_block_save_parameters(saved, path));
    lam_block_release(saved);

    lam_block *net = big_net(5.0f);
    SU_OK(lam_block_load_parameters(net, path, NULL));
    assert_big(net, 1.0f, "loaded");
    /* Loaded again into the model that holds the file's values already: the same values. */
    SU_OK(lam_block_load_parameters(net, path, NULL));
    assert_big(net, 1.0f, "loaded twice");
    lam_block_release(net);

    /* One byte changed in the middle of the data area (where two threads split it), inside
     * the first weight: the load fails on the checksum and the model keeps its values. */
    size_t n;
    uint8_t *file = su_read_file(path, &n);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) {
        hlen = (hlen << 8) | file[i];
    }
    size_t data_at = 8 + (size_t)hlen;
    uint32_t good = ref_crc32c(file + data_at, n - data_at);
    file[data_at + (n - data_at) / 2] ^= 0x04;
    uint32_t bad = ref_crc32c(file + data_at, n - data_at);
    su_write_file(path, file, n);
    free(file);
    net = big_net(5.0f);
    su_assert_error(lam_block_load_parameters(net, path, NULL), LAM_ERR_FORMAT,
                    su_fmt("loading '%s': Checksum mismatch, the data has CRC32C %08x but the "
                           "metadata says %08x (the file is corrupt)",
                           path, (unsigned)bad, (unsigned)good),
                    "corrupt file");
    assert_big(net, 5.0f, "after the failed load");
    lam_block_release(net);
    su_cleanup();
}
