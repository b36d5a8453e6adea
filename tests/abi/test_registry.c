/*
 * The registry against deliberately broken plugins: each is refused with its own reason and
 * message, and the host carries on (the CPU backend still computes).
 */
#define _POSIX_C_SOURCE 200809L
#include "lamina/lamina.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define P(name) ABI_PLUGIN_DIR "/lamina_test_" name ".so"

static void fini(void) {
    lam_shutdown();
}

TestSuite(registry, .fini = fini);

static void start(const char *path, int builtin) {
    lam_init_options o = LAM_INIT_OPTIONS_INIT;
    o.plugin_path = path;
    o.skip_builtin_dir = !builtin;
    cr_assert_eq(lam_init(&o), LAM_OK, "lam_init: %s", lam_last_error());
}

/* The record whose path ends with `suffix`. */
static lam_plugin_record find(const char *suffix) {
    size_t n = lam_plugin_report_count();
    for (size_t i = 0; i < n; i++) {
        lam_plugin_record r = LAM_PLUGIN_RECORD_INIT;
        cr_assert_eq(lam_plugin_report_get(i, &r), LAM_OK);
        size_t lp = strlen(r.path), ls = strlen(suffix);
        if (lp >= ls && strcmp(r.path + lp - ls, suffix) == 0) {
            return r;
        }
    }
    cr_assert_fail("no record for %s", suffix);
    lam_plugin_record none = LAM_PLUGIN_RECORD_INIT;
    return none;
}

static void expect_refused(const char *file, lam_plugin_reason reason, const char *text) {
    lam_plugin_record r = find(file);
    cr_expect_eq(r.decision, LAM_PLUGIN_REFUSED, "%s: decision %d", file, r.decision);
    cr_expect_eq(r.reason, reason, "%s: reason %s, expected %s (%s)", file,
                 lam_plugin_reason_string(r.reason), lam_plugin_reason_string(reason), r.message);
    cr_expect(strstr(r.message, text) != NULL, "%s: message '%s' lacks '%s'", file, r.message,
              text);
    cr_expect_str_empty(r.names, "a refused plugin registers nothing");
}

Test(registry, good_layer_plugin_loads) {
    start(P("good_layer"), 0);
    lam_plugin_record r = find("lamina_test_good_layer.so");
    cr_expect_eq(r.decision, LAM_PLUGIN_LOADED);
    cr_expect_eq(r.reason, LAM_REASON_OK);
    cr_expect_str_eq(r.kind, "layer");
    cr_expect_str_eq(r.names, "GoodLayer");
    cr_expect_str_eq(r.version, "0.0.1");
    cr_expect_eq(r.plugin_abi, LAM_ABI_VERSION);
}

Test(registry, missing_entry_symbol_is_refused) {
    start(P("no_entry"), 0);
    expect_refused("lamina_test_no_entry.so", LAM_REASON_NO_ENTRY,
                   "missing entry symbol 'lamina_plugin_entry'");
}

Test(registry, wrong_major_is_refused_naming_both_versions) {
    start(P("wrong_major"), 0);
    expect_refused("lamina_test_wrong_major.so", LAM_REASON_ABI_MAJOR,
                   "ABI major mismatch, plugin built for 3.0, host provides 2.2");
    cr_expect_eq(find("lamina_test_wrong_major.so").plugin_abi, LAM_MAKE_VERSION(3, 0));
}

Test(registry, abi_version_zero_is_refused) {
    start(P("abi_zero"), 0);
    expect_refused("lamina_test_abi_zero.so", LAM_REASON_ABI_MAJOR,
                   "ABI major mismatch, plugin built for 0.0, host provides 2.2");
}

Test(registry, zero_struct_size_is_refused) {
    start(P("size_zero"), 0);
    expect_refused("lamina_test_size_zero.so", LAM_REASON_STRUCT_SIZE,
                   "backend descriptor has struct_size 0");
}

Test(registry, newer_minor_with_larger_struct_is_refused) {
    start(P("newer_minor"), 0);
    expect_refused("lamina_test_newer_minor.so", LAM_REASON_ABI_MINOR_NEWER,
                   "ABI too new, plugin built for 2.3, host provides 2.2");
}

Test(registry, unknown_struct_size_is_refused) {
    start(P("unknown_size"), 0);
    char text[160];
    snprintf(text, sizeof text, "layer descriptor has unknown struct_size %zu, ABI 2.2 defines %zu",
             sizeof(lam_layer_desc) + 8, sizeof(lam_layer_desc));
    expect_refused("lamina_test_unknown_size.so", LAM_REASON_STRUCT_SIZE, text);
}

Test(registry, fingerprint_mismatch_is_refused) {
    start(P("bad_fingerprint"), 0);
    expect_refused("lamina_test_bad_fingerprint.so", LAM_REASON_ABI_FINGERPRINT,
                   "ABI fingerprint mismatch");
}

/* ---- versions: plugins built against frozen copies of the ABI headers (tests/abi/v*) ---- */

Test(registry, plugin_built_against_frozen_2_0_headers_loads_and_runs) {
    start(P("frozen_layer"), 1);
    lam_plugin_record r = find("lamina_test_frozen_layer.so");
    cr_expect_eq(r.decision, LAM_PLUGIN_LOADED, "%s", r.message);
    cr_expect_eq(r.reason, LAM_REASON_OK, "%s", r.message);
    cr_expect_str_eq(r.names, "Frozen20");
    cr_expect_eq(r.plugin_abi, LAM_MAKE_VERSION(2, 0));

    /* relu(x) * 3 + 0.5 for x = (1, -2, 3, -4, 5, -6), by hand */
    lam_ctx *ctx;
    cr_assert_eq(lam_ctx_get("cpu", &ctx), LAM_OK, "%s", lam_last_error());
    lam_block *b;
    cr_assert_eq(lam_layer_create("Frozen20", "scale=3", &b), LAM_OK, "%s", lam_last_error());
    int64_t d[2] = {2, 3};
    lam_shape s;
    lam_shape_init(&s, 2, d);
    float x[6] = {1, -2, 3, -4, 5, -6}, y[6];
    const float want[6] = {3.5f, 0.5f, 9.5f, 0.5f, 15.5f, 0.5f};
    lam_tensor *t, *out = NULL;
    cr_assert_eq(lam_tensor_from_data(ctx, &s, x, 6, &t), LAM_OK, "%s", lam_last_error());
    cr_assert_eq(lam_block_call(b, t, &out), LAM_OK, "%s", lam_last_error());
    cr_assert_eq(lam_tensor_read(out, y, 6), LAM_OK, "%s", lam_last_error());
    for (int i = 0; i < 6; i++) {
        cr_expect_eq(y[i], want[i], "y[%d] = %g, expected %g", i, (double)y[i], (double)want[i]);
    }
    lam_tensor_release(out);
    lam_tensor_release(t);
    lam_block_release(b);
}

Test(registry, abi_1_0_plugin_checking_the_host_is_refused_naming_both_versions) {
    /* The real 1.0 MyDense: its 1.0 lam_plugin_check_host refuses through the frozen slot. */
    start(P("mydense_v1"), 0);
    lam_plugin_record r = find("lamina_test_mydense_v1.so");
    cr_expect_eq(r.decision, LAM_PLUGIN_REFUSED);
    cr_expect_eq(r.reason, LAM_REASON_ENTRY_FAILED, "reason %s (%s)",
                 lam_plugin_reason_string(r.reason), r.message);
    cr_expect_str_eq(r.message, "entry returned ABI error: plugin: ABI mismatch, plugin built "
                                "for 1.0, host provides 2.2");
    cr_expect_str_empty(r.names, "a refused plugin registers nothing");
}

Test(registry, null_required_layer_callback_is_refused) {
    start(P("null_callback"), 0);
    expect_refused("lamina_test_null_callback.so", LAM_REASON_NULL_CALLBACK,
                   "layer 'NullForward': required callback 'forward' is NULL");
}

Test(registry, null_required_backend_callback_is_refused) {
    start(P("null_backend_callback"), 0);
    expect_refused("lamina_test_null_backend_callback.so", LAM_REASON_NULL_CALLBACK,
                   "backend 'noexec': required callback 'execute' is NULL");
    cr_expect_eq(lam_backend_count(), 0u);
}

Test(registry, duplicate_name_is_refused_naming_the_first) {
    start(P("dup_a") ":" P("dup_b"), 0);
    lam_plugin_record a = find("lamina_test_dup_a.so");
    cr_expect_eq(a.decision, LAM_PLUGIN_LOADED);
    cr_expect_str_eq(a.names, "Dup");
    expect_refused("lamina_test_dup_b.so", LAM_REASON_DUPLICATE_NAME,
                   "duplicate layer name 'Dup', already registered by " P("dup_a"));
    cr_expect_str_eq(find("lamina_test_dup_b.so").version, "0.0.2");
}

Test(registry, entry_error_is_refused_with_its_message) {
    start(P("entry_error"), 0);
    expect_refused("lamina_test_entry_error.so", LAM_REASON_ENTRY_FAILED,
                   "entry returned backend error: entry_error: Initialization failed, license "
                   "file /etc/fixture.lic missing");
}

Test(registry, plugin_registering_nothing_is_refused) {
    start(P("nothing"), 0);
    expect_refused("lamina_test_nothing.so", LAM_REASON_NOTHING_REGISTERED,
                   "registered no layer and no backend");
}

Test(registry, bad_name_is_refused) {
    start(P("bad_name"), 0);
    expect_refused("lamina_test_bad_name.so", LAM_REASON_BAD_DESCRIPTOR,
                   "backend name 'Bad Name!' is invalid");
}

Test(registry, refused_plugin_is_rolled_back_whole) {
    start(P("partial"), 0);
    expect_refused("lamina_test_partial.so", LAM_REASON_NULL_CALLBACK,
                   "layer 'PartialBad': required callback 'create' is NULL");
    cr_expect_eq(lam_backend_count(), 0u, "the good backend it registered first is rolled back");
}

Test(registry, backend_without_device_is_listed_with_why) {
    start(P("nodevice_backend"), 0);
    lam_plugin_record r = find("lamina_test_nodevice_backend.so");
    cr_expect_eq(r.decision, LAM_PLUGIN_LOADED);
    cr_expect_eq(r.reason, LAM_REASON_NO_DEVICE);
    cr_expect_str_eq(r.message, "nodevice: fixture backend has no device by design");
    cr_assert_eq(lam_backend_count(), 1u);
    const char *name, *why;
    uint32_t n;
    cr_assert_eq(lam_backend_get(0, &name, &n, &why), LAM_OK);
    cr_expect_str_eq(name, "nodevice");
    cr_expect_eq(n, 0u);
    lam_ctx *ctx;
    cr_expect_eq(lam_ctx_get("nodevice", &ctx), LAM_ERR_DEVICE_UNAVAILABLE);
    cr_expect_str_eq(lam_last_error(),
                     "nodevice: Device unavailable, fixture backend has no device by design; "
                     "available: nodevice (no device: fixture backend has no device by design)");
    cr_expect_null(ctx);
}

Test(registry, file_that_is_not_a_shared_object_is_refused_with_dlerror) {
    char dir[] = "/tmp/lamina-registry-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/lamina_layer_garbage.so", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("not an ELF file\n", f);
    fclose(f);
    start(dir, 0);
    expect_refused("lamina_layer_garbage.so", LAM_REASON_DLOPEN_FAILED, "lamina_layer_garbage.so");
    remove(path);
    rmdir(dir);
}

/* Copies a file byte for byte (a real second file, not a link to the first). */
static void copy_file(const char *from, const char *to) {
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    cr_assert(in && out, "cannot copy %s to %s", from, to);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0) {
        cr_assert_eq(fwrite(buf, 1, n, out), n);
    }
    fclose(in);
    fclose(out);
}

Test(registry, same_file_name_later_in_path_is_skipped) {
    char dir[] = "/tmp/lamina-registry-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char copy[256];
    snprintf(copy, sizeof copy, "%s/lamina_backend_cpu.so", dir);
    char builtin[512];
    snprintf(builtin, sizeof builtin, "%s/lamina_backend_cpu.so", lam_builtin_plugin_dir());
    copy_file(builtin, copy);
    start(dir, 1);
    lam_plugin_record first = find(copy);
    cr_expect_eq(first.decision, LAM_PLUGIN_LOADED, "%s", first.message);
    lam_plugin_record second = find(builtin);
    cr_expect_eq(second.decision, LAM_PLUGIN_SKIPPED);
    cr_expect_eq(second.reason, LAM_REASON_SHADOWED);
    char text[600];
    snprintf(text, sizeof text, "shadowed by %s earlier in the search path", copy);
    cr_expect_str_eq(second.message, text);
    lam_shutdown();
    remove(copy);
    rmdir(dir);
}

Test(registry, same_directory_twice_is_one_candidate) {
    char path[1100];
    snprintf(path, sizeof path, "%s:%s", lam_builtin_plugin_dir(), lam_builtin_plugin_dir());
    start(path, 1);
    size_t cpu = 0;
    for (size_t i = 0; i < lam_plugin_report_count(); i++) {
        lam_plugin_record r = LAM_PLUGIN_RECORD_INIT;
        cr_assert_eq(lam_plugin_report_get(i, &r), LAM_OK);
        cpu += strstr(r.path, "lamina_backend_cpu.so") != NULL;
        cr_expect_neq(r.decision, LAM_PLUGIN_SKIPPED, "%s: %s", r.path, r.message);
    }
    cr_expect_eq(cpu, 1u);
}

Test(registry, host_carries_on_after_every_refusal) {
    start(
        P("no_entry") ":" P("wrong_major") ":" P("abi_zero") ":" P("size_zero") ":" P(
            "newer_"
            "minor") ":" P("unknown_size") ":" P("bad_fingerprint") ":" P("null_callback") ":" P("n"
                                                                                                 "u"
                                                                                                 "l"
                                                                                                 "l"
                                                                                                 "_"
                                                                                                 "b"
                                                                                                 "a"
                                                                                                 "c"
                                                                                                 "k"
                                                                                                 "e"
                                                                                                 "n"
                                                                                                 "d"
                                                                                                 "_"
                                                                                                 "c"
                                                                                                 "a"
                                                                                                 "l"
                                                                                                 "l"
                                                                                                 "b"
                                                                                                 "a"
                                                                                                 "c"
                                                                                                 "k") ":" P("dup_a") ":" P("dup_b") ":" P("en"
                                                                                                                                          "tr"
                                                                                                                                          "y_"
                                                                                                                                          "er"
                                                                                                                                          "ro"
                                                                                                                                          "r") ":" P("nothing") ":" P("partial") ":" P("bad_name"),
        1);
    size_t refused = 0;
    for (size_t i = 0; i < lam_plugin_report_count(); i++) {
        lam_plugin_record r = LAM_PLUGIN_RECORD_INIT;
        cr_assert_eq(lam_plugin_report_get(i, &r), LAM_OK);
        refused += r.decision == LAM_PLUGIN_REFUSED;
    }
    cr_expect_eq(refused, 14u);
    lam_ctx *ctx;
    cr_assert_eq(lam_ctx_get("cpu", &ctx), LAM_OK, "%s", lam_last_error());
    lam_shape s;
    int64_t d[1] = {3};
    lam_shape_init(&s, 1, d);
    float x[3] = {1, -2, 3}, y[3];
    lam_tensor *a, *b;
    cr_assert_eq(lam_tensor_from_data(ctx, &s, x, 3, &a), LAM_OK);
    cr_assert_eq(lam_op_relu(a, &b), LAM_OK);
    cr_assert_eq(lam_tensor_read(b, y, 3), LAM_OK);
    cr_expect_eq(y[0], 1.0f);
    cr_expect_eq(y[1], 0.0f);
    cr_expect_eq(y[2], 3.0f);
    lam_tensor_release(a);
    lam_tensor_release(b);
}

Test(registry, report_index_out_of_range_is_not_found) {
    start(P("good_layer"), 0);
    lam_plugin_record r = LAM_PLUGIN_RECORD_INIT;
    cr_expect_eq(lam_plugin_report_get(5, &r), LAM_ERR_NOT_FOUND);
    cr_expect_str_eq(lam_last_error(),
                     "lam_plugin_report_get: Not found, index 5, the report has 1 records");
}

Test(registry, second_init_is_a_state_error) {
    start(P("good_layer"), 0);
    cr_expect_eq(lam_init(NULL), LAM_ERR_STATE);
    cr_expect_str_eq(lam_last_error(),
                     "lam_init: Already started, call lam_shutdown() before starting again");
}
