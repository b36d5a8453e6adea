/*
 * `lamina inspect FILE`: one line per tensor (name, dtype as stored, shape, bytes, min, max,
 * mean) and the metadata; a file Lamina refuses is an error message and exit status 1;
 * `lamina inspect --verify FILE`: the checksum checked, one line of verdict.
 * Expected figures are worked out by hand from the values write_numpy.py stores.
 */
#include "ser_util.h"
#include "ref_crc32c.h"

#include <math.h>
#include <sys/wait.h>

TestSuite(inspect, .fini = su_fini);

static char *run(const char *cmd, int *status) {
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    size_t cap = 1 << 16, n = 0, r;
    char *out = malloc(cap);
    while ((r = fread(out + n, 1, cap - n - 1, p)) > 0) {
        n += r;
    }
    out[n] = '\0';
    int st = pclose(p);
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return out;
}

typedef struct row {
    const char *name, *dtype, *shape;
    double bytes, min, max, mean; /* NAN: printed as "-" */
} row;

static bool close_to(double got, double want) {
    if (isinf(want)) {
        return got == want;
    }
    return fabs(got - want) <= 1e-5 * fabs(want) + 1e-9;
}

static void check_row(const char *out, const row *r) {
    const char *line = out;
    size_t nl = strlen(r->name);
    while (line && !(strncmp(line, r->name, nl) == 0 && line[nl] == ' ')) {
        line = strchr(line, '\n');
        line = line ? line + 1 : NULL;
    }
    cr_assert_not_null(line, "no line for %s in:\n%s", r->name, out);
    char buf[512];
    size_t len = strcspn(line, "\n");
    snprintf(buf, sizeof buf, "%.*s", (int)len, line);
    cr_assert(strstr(buf, su_fmt(" %s ", r->dtype)) != NULL, "%s: dtype: %s", r->name, buf);
    cr_assert(strstr(buf, su_fmt(" %s ", r->shape)) != NULL, "%s: shape: %s", r->name, buf);
    /* The last four fields: bytes, min, max, mean. */
    char *tok[64];
    int nt = 0;
    for (char *t = strtok(buf, " "); t && nt < 64; t = strtok(NULL, " ")) {
        tok[nt++] = t;
    }
    cr_assert_geq(nt, 7);
    double want[4] = {r->bytes, r->min, r->max, r->mean};
    for (int i = 0; i < 4; i++) {
        const char *t = tok[nt - 4 + i];
        if (isnan(want[i])) {
            cr_assert_str_eq(t, "-", "%s field %d", r->name, i);
        } else {
            cr_assert(close_to(strtod(t, NULL), want[i]), "%s field %d: %s, expected %g", r->name,
                      i, t, want[i]);
        }
    }
}

Test(inspect, lists_every_tensor_and_the_metadata) {
    int status;
    char *out = run(LAMINA_TEST_BINARY_DIR "/bin/lamina inspect " SU_DATA_DIR
                                           "/numpy_dtypes.safetensors 2>&1",
                    &status);
    cr_assert_eq(status, 0, "%s", out);
    const row rows[] = {
        {"f32", "F32", "(2, 3)", 24, -2.25, 3e38, 0.5e38},
        {"f16", "F16", "(4,)", 8, -0.5, 65504, 16376.125},
        {"bf16", "BF16", "(2, 2)", 8, -1.2676506e30, 3.140625, -1.2676506e30 / 4},
        {"f64", "F64", "(3,)", 24, -INFINITY, 1.0 / 3, -INFINITY},
        {"i32", "I32", "(3,)", 12, -7, 2147483648.0, 2147483641.0 / 3},
        {"i64", "I64", "(2,)", 16, -1099511627776.0, 16777216, (-1099511627776.0 + 16777216) / 2},
        {"u8", "U8", "(2, 2)", 4, 0, 255, 96},
        {"scalar", "F32", "()", 4, 42.5, 42.5, 42.5},
        {"empty", "F32", "(0, 3)", 0, NAN, NAN, NAN},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        check_row(out, &rows[i]);
    }
    cr_assert(strstr(out, "9 tensors") != NULL, "%s", out);
    cr_assert(strstr(out, "total: 100 bytes of data") != NULL, "%s", out);
    cr_assert(strstr(out, "\n  creator = write_numpy.py\n") != NULL, "%s", out);
    cr_assert(strstr(out, "\n  note = caf\xc3\xa9 \xe2\x9c\x93\n") != NULL, "%s", out);
    free(out);
}

Test(inspect, a_refused_file_is_an_error_with_exit_status_1) {
    int status;
    const char *path = SU_DATA_DIR "/numpy_unsupported.safetensors";
    char *out = run(su_fmt(LAMINA_TEST_BINARY_DIR "/bin/lamina inspect %s 2>&1", path), &status);
    cr_assert_eq(status, 1, "%s", out);
    cr_assert_str_eq(out, su_fmt("lamina inspect: loading '%s': tensor 'mask': Unsupported dtype, "
                                 "BOOL does not convert to float32 (F32, F16, BF16, F64, I32, I64 "
                                 "and U8 do)\n",
                                 path));
    free(out);
    out = run(LAMINA_TEST_BINARY_DIR "/bin/lamina inspect 2>&1", &status);
    cr_assert_eq(status, 2, "%s", out);
    cr_assert(strncmp(out, "usage: lamina inspect FILE", 26) == 0, "%s", out);
    free(out);
}

/* --verify: OK (0) for a file Lamina saved, CORRUPT with lam_load's checksum message (1) after
 * one data byte is flipped, NOT VERIFIED (3) for a file without a checksum; the checksums in
 * the expected lines come from the tests' own CRC (ref_crc32c.h). */
Test(inspect, verify_checks_every_byte_against_the_checksum) {
    const char *path = su_path("verify.safetensors");
    float v[3000];
    for (int i = 0; i < 3000; i++) {
        v[i] = (float)i * 0.25f - 100.0f;
    }
    int64_t dims[2] = {30, 100}, bd[1] = {1};
    float one = 1.0f;
    lam_tensor *t[2] = {su_tensor(2, dims, v), su_tensor(1, bd, &one)};
    const char *names[2] = {"w", "b"};
    SU_OK(lam_save_dict(path, names, t, 2));
    lam_tensor_release(t[0]);
    lam_tensor_release(t[1]);
    size_t n = 0;
    uint8_t *bytes = su_read_file(path, &n);
    uint64_t h = 0;
    for (int i = 7; i >= 0; i--) {
        h = (h << 8) | bytes[i];
    }
    size_t d0 = (size_t)(8 + h);
    uint32_t crc = ref_crc32c(bytes + d0, n - d0);
    const char *cmd = su_fmt(LAMINA_TEST_BINARY_DIR "/bin/lamina inspect --verify %s 2>&1", path);
    int status;
    char *out = run(cmd, &status);
    cr_assert_eq(status, 0, "%s", out);
    cr_assert_str_eq(
        out,
        su_fmt("%s: OK, every byte of the data (2 tensors) matches its CRC32C %08x\n", path, crc));
    free(out);
    /* one byte in the middle of w's data flipped */
    bytes[d0 + 6001] ^= 0xFFu;
    uint32_t now = ref_crc32c(bytes + d0, n - d0);
    su_write_file(path, bytes, n);
    out = run(cmd, &status);
    cr_assert_eq(status, 1, "%s", out);
    cr_assert_str_eq(out, su_fmt("%s: CORRUPT, loading '%s': Checksum mismatch, the data has "
                                 "CRC32C %08x but the metadata says %08x (the file is corrupt)\n",
                                 path, path, now, crc));
    free(out);
    free(bytes);
    const char *other = SU_DATA_DIR "/numpy_dtypes.safetensors";
    out =
        run(su_fmt(LAMINA_TEST_BINARY_DIR "/bin/lamina inspect --verify %s 2>&1", other), &status);
    cr_assert_eq(status, 3, "%s", out);
    cr_assert_str_eq(out, su_fmt("%s: NOT VERIFIED, the metadata has no lamina.crc32c checksum (a "
                                 "file Lamina did not write?)\n",
                                 other));
    free(out);
    /* a FIFO given by mistake is refused at once, not waited on */
    const char *fifo = su_path("fifo");
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    out = run(
        su_fmt("timeout 20 " LAMINA_TEST_BINARY_DIR "/bin/lamina inspect --verify %s 2>&1", fifo),
        &status);
    cr_assert_eq(status, 1, "%s", out);
    cr_assert_str_eq(out, su_fmt("lamina inspect: loading '%s': Not a regular file\n", fifo));
    free(out);
    out = run(LAMINA_TEST_BINARY_DIR "/bin/lamina inspect --verify 2>&1", &status);
    cr_assert_eq(status, 2, "%s", out);
    cr_assert(strncmp(out, "lamina inspect: --verify takes one FILE\n", 40) == 0, "%s", out);
    free(out);
    su_cleanup();
}
