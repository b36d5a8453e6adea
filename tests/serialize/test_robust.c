/*
 * Damaged files and failed writes: a file truncated at every byte, or with any header byte
 * changed, is refused cleanly (or, when the change leaves a valid file, loads as one); every
 * input the fuzzer ever found is refused cleanly; a save that fails at any point leaves an
 * existing file exactly as it was and no temporary file behind. The CI runs this under ASan.
 */
#include "ser_util.h"

#include <dirent.h>
#include <signal.h>
#include <sys/resource.h>

TestSuite(robust, .fini = su_fini, .timeout = 300);

/* A file with the usual variety: metadata, a checksum, a scalar, an empty tensor. */
static const char *make_dict_file(void) {
    float a[6] = {1, -2, 3.5f, 0, 1e-3f, -1e3f}, b[1] = {7}, c[1] = {0};
    int64_t sa[2] = {2, 3}, sc[2] = {0, 2};
    lam_tensor *t[3] = {su_tensor(2, sa, a), su_tensor(0, NULL, b), su_tensor(2, sc, c)};
    const char *names[3] = {"layer.weight", "s", "e"};
    const char *path = su_path("valid.safetensors");
    SU_OK(lam_save_dict(path, names, t, 3));
    for (int i = 0; i < 3; i++) {
        lam_tensor_release(t[i]);
    }
    return path;
}

/* What a successful load of a damaged file must still satisfy. */
static void assert_valid(lam_tensor_dict *d) {
    for (size_t i = 0; i < lam_tensor_dict_count(d); i++) {
        lam_tensor *t = lam_tensor_dict_get(d, i);
        cr_assert_not_null(t);
        cr_assert_not_null(lam_tensor_dict_name(d, i));
        cr_assert_eq(lam_tensor_numel(t), lam_shape_numel(lam_tensor_shape(t)));
        free(su_values(t));
    }
}

static void assert_fails_cleanly(lam_status st, const char *path, const char *what) {
    cr_assert_neq(st, LAM_OK, "%s loaded", what);
    const char *want = su_fmt("loading '%s': ", path);
    cr_assert(strncmp(lam_last_error(), want, strlen(want)) == 0, "%s: message %s", what,
              lam_last_error());
    cr_assert_eq(lam_tensor_live_count(), 0, "%s: tensors leaked", what);
}

Test(robust, truncation_at_every_byte_fails_cleanly) {
    const char *src = make_dict_file();
    size_t n;
    uint8_t *buf = su_read_file(src, &n);
    const char *path = su_path("cut.safetensors");
    lam_block *net = NULL;
    SU_OK(lam_sequential_create(&net));
    for (size_t len = 0; len < n; len++) {
        su_write_file(path, buf, len);
        lam_tensor_dict *d = NULL;
        assert_fails_cleanly(lam_load(path, NULL, &d), path, su_fmt("cut at %zu", len));
        cr_assert_null(d);
        assert_fails_cleanly(lam_block_load_parameters(net, path, NULL), path,
                             su_fmt("parameters cut at %zu", len));
    }
    lam_block_release(net);
    free(buf);
    su_cleanup();
}

Test(robust, changed_header_bytes_fail_cleanly_or_load_a_valid_file) {
    const char *src = make_dict_file();
    size_t n;
    uint8_t *buf = su_read_file(src, &n);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) {
        hlen = (hlen << 8) | buf[i];
    }
    cr_assert_lt(hlen, n);
    const char *path = su_path("flip.safetensors");
    size_t loaded = 0, refused = 0;
    for (size_t at = 0; at < 8 + hlen; at++) {
        const uint8_t orig = buf[at];
        const uint8_t values[8] = {(uint8_t)(orig ^ 0x01u),
                                   (uint8_t)(orig ^ 0x20u),
                                   (uint8_t)(orig ^ 0x80u),
                                   0x00,
                                   0xFF,
                                   '"',
                                   '9',
                                   '}'};
        for (int k = 0; k < 8; k++) {
            if (values[k] == orig) {
                continue;
            }
            buf[at] = values[k];
            su_write_file(path, buf, n);
            lam_tensor_dict *d = NULL;
            lam_status st = lam_load(path, NULL, &d);
            if (st == LAM_OK) {
                assert_valid(d);
                lam_tensor_dict_destroy(d);
                loaded++;
            } else {
                assert_fails_cleanly(st, path, su_fmt("byte %zu set to %02x", at, values[k]));
                refused++;
            }
            cr_assert_eq(lam_tensor_live_count(), 0);
        }
        buf[at] = orig;
    }
    /* Some changes keep the file valid (a letter of a name, a metadata value)... */
    cr_assert_gt(loaded, 0);
    cr_assert_gt(refused, loaded);
    free(buf);
    su_cleanup();
}

Test(robust, any_changed_data_byte_fails_the_checksum) {
    const char *src = make_dict_file();
    size_t n;
    uint8_t *buf = su_read_file(src, &n);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) {
        hlen = (hlen << 8) | buf[i];
    }
    const char *path = su_path("data.safetensors");
    for (size_t at = 8 + hlen; at < n; at++) {
        buf[at] ^= 0x10;
        su_write_file(path, buf, n);
        lam_tensor_dict *d = NULL;
        lam_status st = lam_load(path, NULL, &d);
        assert_fails_cleanly(st, path, su_fmt("data byte %zu", at));
        cr_assert(strstr(lam_last_error(), "Checksum mismatch") != NULL, "%s", lam_last_error());
        buf[at] ^= 0x10;
    }
    free(buf);
    su_cleanup();
}

/* Every input that ever crashed or hung the fuzz target (tests/fuzz/regressions/). */
Test(robust, fuzz_regressions_fail_cleanly) {
    const char *dir = LAMINA_TEST_SOURCE_DIR "/tests/fuzz/regressions";
    DIR *dh = opendir(dir);
    cr_assert_not_null(dh, "cannot open %s", dir);
    struct dirent *e;
    int count = 0;
    lam_block *net = NULL;
    SU_OK(lam_sequential_create(&net));
    while ((e = readdir(dh)) != NULL) {
        if (e->d_name[0] == '.' || strcmp(e->d_name, "README.md") == 0) {
            continue;
        }
        const char *path = su_fmt("%s/%s", dir, e->d_name);
        char copy[1024];
        snprintf(copy, sizeof copy, "%s", path);
        lam_tensor_dict *d = NULL;
        assert_fails_cleanly(lam_load(copy, NULL, &d), copy, e->d_name);
        assert_fails_cleanly(lam_block_load_parameters(net, copy, NULL), copy, e->d_name);
        count++;
    }
    closedir(dh);
    lam_block_release(net);
    cr_assert_gt(count, 0, "no regression files in %s", dir);
}

static void assert_same_file(const char *path, const uint8_t *want, size_t n) {
    size_t m;
    uint8_t *got = su_read_file(path, &m);
    cr_assert(m == n && memcmp(got, want, n) == 0, "%s changed", path);
    free(got);
}

Test(robust, a_save_with_bad_input_leaves_the_old_file_intact) {
    const char *path = make_dict_file();
    size_t n;
    uint8_t *old = su_read_file(path, &n);
    lam_block *net = NULL;
    SU_OK(lam_sequential_create(&net));
    lam_block *dense = NULL;
    SU_OK(lam_layer_create("Dense", "units=2, in_units=2", &dense));
    SU_OK(lam_sequential_add(net, dense));
    lam_block_release(dense);
    cr_assert_eq(lam_block_save_parameters(net, path), LAM_ERR_STATE, "%s", lam_last_error());
    assert_same_file(path, old, n);
    lam_tensor *with_null[1] = {NULL};
    cr_assert_eq(lam_save_list(path, with_null, 1), LAM_ERR_INVALID_ARGUMENT);
    assert_same_file(path, old, n);
    cr_assert_eq(su_dir_count(), 1, "a temporary file was left behind");
    lam_block_release(net);
    free(old);
    su_cleanup();
}

/* A write that fails halfway (the file size limit stops it after the header) must not touch
 * the file being replaced and must remove the temporary file. */
Test(robust, a_write_failing_midway_leaves_the_old_file_intact) {
    const char *path = make_dict_file();
    size_t n;
    uint8_t *old = su_read_file(path, &n);
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl = {4096, 4096};
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
    int64_t s[1] = {10000};
    lam_tensor *big = NULL;
    lam_shape sh = su_shape(1, s);
    SU_OK(lam_tensor_full(NULL, &sh, 1.0f, &big));
    su_assert_error(lam_save_list(path, &big, 1), LAM_ERR_IO,
                    su_fmt("saving '%s': Write failed, File too large", path), "file size limit");
    assert_same_file(path, old, n);
    cr_assert_eq(su_dir_count(), 1, "a temporary file was left behind");
    lam_tensor_release(big);
    free(old);
    su_cleanup();
}

Test(robust, unwritable_targets_are_io_errors) {
    float v[1] = {1};
    int64_t s[1] = {1};
    lam_tensor *t = su_tensor(1, s, v);
    const char *dir = su_path("a_directory");
    cr_assert_eq(mkdir(dir, 0755), 0);
    su_assert_error(lam_save_list(dir, &t, 1), LAM_ERR_IO,
                    su_fmt("saving '%s': Cannot replace the file, Is a directory", dir),
                    "target is a directory");
    cr_assert_eq(su_dir_count(), 1, "a temporary file was left behind");
    const char *nowhere = su_path("no/such/dir/x.safetensors");
    su_assert_error(lam_save_list(nowhere, &t, 1), LAM_ERR_IO,
                    su_fmt("saving '%s': Cannot create a temporary file in '%s/no/such/dir', No "
                           "such file or directory",
                           nowhere, su_tmpdir()),
                    "missing directory");
    lam_tensor_release(t);
    su_cleanup();
}
