/*
 * Zero-copy loading (lam_load_mapped): float32 tensors are views of a private mapping of the
 * file, seen in /proc/self/maps while a tensor over it lives; values equal lam_load's; writing
 * a tensor never changes the file (copy-on-write); a file replaced by a save keeps the mapped
 * tensors' values; dtypes that need a conversion are read as lam_load reads them; a failed load
 * leaves nothing behind.
 */
#include "ser_util.h"

#include <stdbool.h>

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

Test(mapped, writing_a_mapped_tensor_leaves_the_file_unchanged) {
    const char *path = su_path("cow.safetensors");
    float w[1000], b[7];
    save_two(path, 1.0f, w, b);
    size_t n0 = 0;
    uint8_t *before = su_read_file(path, &n0);
    lam_tensor_dict *d = NULL;
    SU_OK(lam_load_mapped(path, NULL, &d));
    lam_tensor *tw = lam_tensor_dict_find(d, "w");
    float neww[1000];
    for (int i = 0; i < 1000; i++) {
        neww[i] = -(float)i;
    }
    SU_OK(lam_tensor_write(tw, neww, 1000));
    /* an in-place op too (what an optimizer step does) */
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
    SU_OK(lam_load(path, NULL, &again));
    su_assert_bits(lam_tensor_dict_find(again, "w"), w, 1000, "w in the file");
    su_assert_bits(lam_tensor_dict_find(again, "b"), b, 7, "b in the file");
    lam_tensor_dict_destroy(again);
    lam_tensor_dict_destroy(d);
    free(before);
    free(after);
    cr_assert_eq(lam_tensor_live_count(), 0);
    su_cleanup();
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
