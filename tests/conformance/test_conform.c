/*
 * `lamina conform` against the in-tree plugins (they pass) and the deliberately broken ones in
 * broken/ (each fails, caught by the check meant for it), read from its --format json report.
 */
#define _POSIX_C_SOURCE 200809L
#include "lamina/lamina.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

typedef struct report {
    json_t *root;
    int status;
} report;

/* Runs `lamina conform PLUGIN ARGS --format json` and parses its report. */
static report conform(const char *plugin, const char *args) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' conform '%s' %s --format json 2>/dev/null", LAMINA_CLI, plugin,
             args);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p, "popen %s", cmd);
    json_error_t err;
    report r;
    r.root = json_loadf(p, 0, &err);
    int st = pclose(p);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    cr_assert_not_null(r.root, "%s: the report is not JSON: %s (line %d)", cmd, err.text, err.line);
    return r;
}

static json_t *find_check(const report *r, const char *name) {
    json_t *checks = json_object_get(r->root, "checks");
    size_t i;
    json_t *c;
    json_array_foreach(checks, i, c) {
        if (strcmp(json_string_value(json_object_get(c, "name")), name) == 0) {
            return c;
        }
    }
    return NULL;
}

static const char *field(const json_t *check, const char *key) {
    const char *v = json_string_value(json_object_get(check, key));
    return v ? v : "";
}

/* The broken plugin fails as a whole, and `check` fails saying `finding`. */
static void expect_caught(const char *file, const char *check, const char *finding) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", CONFORM_BROKEN_DIR, file);
    report r = conform(path, "--seed 7");
    cr_expect_eq(r.status, 1, "%s: exit status %d, expected 1", file, r.status);
    cr_expect(json_is_false(json_object_get(r.root, "ok")));
    json_t *c = find_check(&r, check);
    cr_assert_not_null(c, "%s: no check %s in the report", file, check);
    cr_expect_str_eq(field(c, "status"), "fail", "%s: %s is %s: %s", file, check,
                     field(c, "status"), field(c, "message"));
    char all[4096];
    snprintf(all, sizeof all, "%s | %s | %s", field(c, "message"), field(c, "expected"),
             field(c, "found"));
    cr_expect(strstr(all, finding) != NULL, "%s: %s says '%s', expected it to mention '%s'", file,
              check, all, finding);
    char repro[512];
    snprintf(repro, sizeof repro, "--seed 7 --filter %s", check);
    cr_expect(strstr(field(c, "repro"), repro) != NULL, "repro '%s' lacks '%s'", field(c, "repro"),
              repro);
    json_decref(r.root);
}

Test(conform, wrong_fused_backward_is_caught_by_grad_checks) {
    expect_caught("lamina_broken_wrong_grad.so", "WrongGrad.grad.fused",
                  "fused backward differs from differentiating forward");
    expect_caught("lamina_broken_wrong_grad.so", "WrongGrad.grad.finite_diff",
                  "disagrees with central finite differences");
}

Test(conform, wrong_shape_inference_is_caught) {
    expect_caught("lamina_broken_wrong_shape.so", "WrongShape.shape.infer",
                  "output shape inference disagrees with forward");
}

Test(conform, crash_in_forward_is_reported_with_its_signal) {
    expect_caught("lamina_broken_crash_forward.so", "CrashForward.setup",
                  "crash: SIGSEGV in forward");
    /* The tool itself survived and ran the plugin-wide checks. */
    char path[1024];
    snprintf(path, sizeof path, "%s/lamina_broken_crash_forward.so", CONFORM_BROKEN_DIR);
    report r = conform(path, "");
    cr_expect_str_eq(field(find_check(&r, "plugin.exports"), "status"), "pass");
    cr_expect_str_eq(field(find_check(&r, "plugin.abi"), "status"), "pass");
    json_decref(r.root);
}

Test(conform, hang_in_forward_is_reported_as_a_timeout) {
    char path[1024];
    snprintf(path, sizeof path, "%s/lamina_broken_hang_forward.so", CONFORM_BROKEN_DIR);
    report r = conform(path, "--timeout 2 --filter HangForward.setup");
    cr_expect_eq(r.status, 1);
    json_t *c = find_check(&r, "HangForward.setup");
    cr_assert_not_null(c);
    cr_expect_str_eq(field(c, "status"), "fail");
    cr_expect(strstr(field(c, "message"), "timeout: no answer after 2s in forward") != NULL,
              "message: %s", field(c, "message"));
    json_decref(r.root);
}

Test(conform, attrs_option_overrides_synthesized_values) {
    char path[1024];
    snprintf(path, sizeof path, "%s/lamina_layer_dense.so", LAMINA_PLUGIN_DIR);
    report r = conform(path, "--attrs 'units=4, activation=tanh, in_units=6' --filter Dense.setup");
    json_t *c = find_check(&r, "Dense.setup");
    cr_assert_not_null(c);
    cr_expect_str_eq(field(c, "status"), "pass");
    cr_expect(strstr(field(c, "message"), "units=4, activation=tanh, in_units=6") != NULL,
              "message: %s", field(c, "message"));
    cr_expect(strstr(field(c, "message"), "takes input (2, 6)") != NULL, "message: %s",
              field(c, "message"));
    json_decref(r.root);
}

Test(conform, leaked_tensor_is_caught) {
    expect_caught("lamina_broken_leak.so", "Leaky.leaks", "leak: ");
}

Test(conform, out_of_bounds_write_is_caught_by_guards) {
    expect_caught("lamina_broken_oob_backend.so", "oob.op.add", "out-of-bounds write");
    char path[1024];
    snprintf(path, sizeof path, "%s/lamina_broken_oob_backend.so", CONFORM_BROKEN_DIR);
    report r = conform(path, "");
    /* its other ops are fine, and what it does not support is a skip that says so */
    cr_expect_str_eq(field(find_check(&r, "oob.op.mul"), "status"), "pass");
    cr_expect_str_eq(field(find_check(&r, "oob.op.gemm"), "status"), "skip");
    cr_expect_str_eq(field(find_check(&r, "oob.op.gemm"), "message"),
                     "not supported: backend oob does not support gemm for the calls tried");
    /* the same for an op new in ABI 2.0 */
    cr_expect_str_eq(field(find_check(&r, "oob.op.im2col"), "status"), "skip");
    cr_expect_str_eq(field(find_check(&r, "oob.op.im2col"), "message"),
                     "not supported: backend oob does not support im2col for the calls tried");
    json_decref(r.root);
}

Test(conform, extra_exported_symbols_are_caught) {
    expect_caught("lamina_broken_extra_exports.so", "plugin.exports", "extra_exports_helper");
}

/* Every in-tree plugin passes, with its key checks really run (not skipped). */
static void expect_passes(const char *file, const char *const *must_pass) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", LAMINA_PLUGIN_DIR, file);
    report r = conform(path, "--seed 11");
    cr_expect_eq(r.status, 0, "%s: exit status %d", file, r.status);
    json_t *checks = json_object_get(r.root, "checks");
    size_t i;
    json_t *c;
    json_array_foreach(checks, i, c) {
        cr_expect_str_neq(field(c, "status"), "fail", "%s: %s fails: %s (expected %s, found %s)",
                          file, field(c, "name"), field(c, "message"), field(c, "expected"),
                          field(c, "found"));
    }
    for (const char *const *m = must_pass; *m; m++) {
        json_t *k = find_check(&r, *m);
        cr_assert_not_null(k, "%s: no check %s", file, *m);
        cr_expect_str_eq(field(k, "status"), "pass", "%s: %s is %s: %s", file, *m,
                         field(k, "status"), field(k, "message"));
    }
    json_decref(r.root);
}

Test(conform, dense_passes) {
    static const char *const m[] = {
        "plugin.exports",    "plugin.abi",          "Dense.attrs.unknown",
        "Dense.shape.infer", "Dense.deferred_init", "Dense.grad.finite_diff",
        "Dense.grad.fused",  "Dense.leaks",         NULL};
    expect_passes("lamina_layer_dense.so", m);
}

Test(conform, mydense_activation_centered_pass) {
    static const char *const m1[] = {"MyDense.grad.finite_diff", "MyDense.init.deterministic",
                                     NULL};
    static const char *const m2[] = {"Activation.attrs.enum_choices", NULL};
    static const char *const m3[] = {"Centered.grad.finite_diff", NULL};
    expect_passes("lamina_layer_mydense.so", m1);
    expect_passes("lamina_layer_activation.so", m2);
    expect_passes("lamina_layer_centered.so", m3);
}

Test(conform, cpu_backend_passes) {
    static const char *const m[] = {"cpu.probe", "cpu.unsupported", "cpu.op.gemm", "cpu.op.softmax",
                                    NULL};
    expect_passes("lamina_backend_cpu.so", m);
}

Test(conform, filter_runs_only_the_named_check) {
    char path[1024];
    snprintf(path, sizeof path, "%s/lamina_layer_dense.so", LAMINA_PLUGIN_DIR);
    report r = conform(path, "--filter Dense.grad.fused");
    json_t *checks = json_object_get(r.root, "checks");
    cr_expect_eq(json_array_size(checks), 1);
    cr_expect_str_eq(field(json_array_get(checks, 0), "name"), "Dense.grad.fused");
    cr_expect_eq(r.status, 0);
    json_decref(r.root);
}

Test(conform, bad_usage_is_exit_status_2) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' conform --format yaml x.so >/dev/null 2>&1", LAMINA_CLI);
    int st = system(cmd);
    cr_expect_eq(WEXITSTATUS(st), 2);
    snprintf(cmd, sizeof cmd, "'%s' conform /nonexistent/plugin.so >/dev/null 2>&1", LAMINA_CLI);
    st = system(cmd);
    cr_expect_eq(WEXITSTATUS(st), 2);
}

/* leaks.alloc_failure runs its sweep in a process with liblamina_failalloc.so preloaded (the
 * lamina program defines no malloc), and says SKIP with the reason when the injector cannot
 * be active, never PASS over zero allocations. */
Test(conform, alloc_failure_sweep_runs_with_the_preloaded_injector) {
    char path[1024];
    snprintf(path, sizeof path, "%s/lamina_layer_dense.so", LAMINA_PLUGIN_DIR);
    report r = conform(path, "--filter Dense.leaks.alloc_failure");
    json_t *c = find_check(&r, "Dense.leaks.alloc_failure");
    cr_assert_not_null(c);
    if (LAMINA_SANITIZED) {
        cr_expect_str_eq(field(c, "status"), "skip");
        cr_expect(strstr(field(c, "message"), "AddressSanitizer owns malloc") != NULL, "%s",
                  field(c, "message"));
    } else {
        cr_expect_str_eq(field(c, "status"), "pass", "%s", field(c, "message"));
        cr_expect(strstr(field(c, "message"), "each of ") != NULL, "%s", field(c, "message"));
        cr_expect(strstr(field(c, "message"), "each of 0 ") == NULL, "%s", field(c, "message"));
    }
    json_decref(r.root);
}

Test(conform, alloc_failure_sweep_skips_without_its_injector) {
    if (LAMINA_SANITIZED) {
        cr_skip("the sanitizer build skips the sweep before looking for the injector");
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/lamina_layer_dense.so", LAMINA_PLUGIN_DIR);
    report r = conform(path, "--filter Dense.leaks.alloc_failure --failalloc /nonexistent/x.so");
    json_t *c = find_check(&r, "Dense.leaks.alloc_failure");
    cr_assert_not_null(c);
    cr_expect_str_eq(field(c, "status"), "skip");
    cr_expect_str_eq(field(c, "message"),
                     "the allocation-failure injector liblamina_failalloc.so was not found "
                     "(looked at /nonexistent/x.so); give it with --failalloc PATH");
    cr_expect_eq(r.status, 0);
    json_decref(r.root);
    /* A library that is not the injector: preloaded, but nothing counts allocations. */
    snprintf(path, sizeof path, "%s/lamina_layer_dense.so", LAMINA_PLUGIN_DIR);
    r = conform(path, "--filter Dense.leaks.alloc_failure --failalloc " LAMINA_PLUGIN_DIR
                      "/lamina_layer_centered.so");
    c = find_check(&r, "Dense.leaks.alloc_failure");
    cr_assert_not_null(c);
    cr_expect_str_eq(field(c, "status"), "skip");
    cr_expect(strstr(field(c, "message"), "not active although it was preloaded") != NULL, "%s",
              field(c, "message"));
    json_decref(r.root);
}

/* Issue 12.9: a bare file name that exists is the file, not a library-path search. */
Test(conform, bare_file_name_is_a_path) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' conform lamina_layer_dense.so --filter plugin.abi --format json "
             "2>/dev/null",
             LAMINA_PLUGIN_DIR, LAMINA_CLI);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    json_error_t err;
    report r = {json_loadf(p, 0, &err), 0};
    int st = pclose(p);
    cr_assert_not_null(r.root, "%s", err.text);
    cr_expect_eq(WEXITSTATUS(st), 0);
    cr_expect_str_eq(field(find_check(&r, "plugin.abi"), "status"), "pass", "%s",
                     field(find_check(&r, "plugin.abi"), "message"));
    cr_expect_str_eq(json_string_value(json_object_get(r.root, "names")), "Dense");
    json_decref(r.root);
}

/* Issue 12.9: a refused plugin's expectation reads as English, not "x <= 0". */
Test(conform, refused_plugin_says_which_abi_loads) {
    report r = conform(ABI_PLUGIN_DIR "/lamina_test_wrong_major.so", "--filter plugin.abi");
    json_t *c = find_check(&r, "plugin.abi");
    cr_assert_not_null(c);
    cr_expect_str_eq(field(c, "status"), "fail");
    char want[200];
    snprintf(want, sizeof want, "the registry loads it: built for ABI %u.0 to %u.%u",
             LAM_ABI_VERSION_MAJOR, LAM_ABI_VERSION_MAJOR, LAM_ABI_VERSION_MINOR);
    cr_expect(strstr(field(c, "expected"), want) != NULL, "expected: %s", field(c, "expected"));
    cr_expect(strstr(field(c, "expected"), "x <=") == NULL, "expected: %s", field(c, "expected"));
    json_decref(r.root);
}

/* Issue 12.10: --shape chooses the input shape; a malformed one is a usage error. */
Test(conform, shape_option_sets_the_input) {
    char path[1024];
    snprintf(path, sizeof path, "%s/lamina_layer_activation.so", LAMINA_PLUGIN_DIR);
    report r = conform(path, "--shape '(2,3,8,8)' --filter Activation.setup");
    json_t *c = find_check(&r, "Activation.setup");
    cr_assert_not_null(c);
    cr_expect_str_eq(field(c, "message"), "Activation(act_type=relu) takes input (2, 3, 8, 8)");
    json_decref(r.root);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' conform '%s' --shape '(2,x)' >/dev/null 2>&1", LAMINA_CLI,
             path);
    cr_expect_eq(WEXITSTATUS(system(cmd)), 2);
}

/* Issue 12.11: a layer of two inputs conforms, its arity found or given with --inputs. */
Test(conform, two_input_layer_conforms) {
    char path[1024];
    snprintf(path, sizeof path, "%s/lamina_test_gate.so", CONFORM_BROKEN_DIR);
    static const char *const args[] = {"--seed 5", "--seed 5 --inputs 2 --shape '(4, 6)'"};
    for (size_t k = 0; k < 2; k++) {
        report r = conform(path, args[k]);
        cr_expect_eq(r.status, 0, "%s: exit status %d", args[k], r.status);
        json_t *checks = json_object_get(r.root, "checks");
        size_t i;
        json_t *c;
        json_array_foreach(checks, i, c) {
            cr_expect_str_neq(field(c, "status"), "fail", "%s fails: %s", field(c, "name"),
                              field(c, "message"));
        }
        cr_expect_str_eq(field(find_check(&r, "Gate.setup"), "message"),
                         k == 0 ? "Gate() takes 2 inputs (2, 3), (2, 3)"
                                : "Gate() takes 2 inputs (4, 6), (4, 6)");
        cr_expect_str_eq(field(find_check(&r, "Gate.grad.finite_diff"), "status"), "pass");
        /* Its cosmetic attribute is reported as such, not failed. */
        json_t *e = find_check(&r, "Gate.attrs.effect");
        cr_expect_str_eq(field(e, "status"), "skip");
        cr_expect(strstr(field(e, "message"), "verbosity (declared cosmetic)") != NULL, "%s",
                  field(e, "message"));
        json_decref(r.root);
    }
}

/* Issue 12.12: temporary files go to $TMPDIR. */
Test(conform, temporary_files_honour_tmpdir) {
    char path[1024];
    snprintf(path, sizeof path, "%s/lamina_layer_dense.so", LAMINA_PLUGIN_DIR);
    setenv("TMPDIR", "/nonexistent/conform-tmp", 1);
    report r = conform(path, "--filter Dense.serialize.roundtrip");
    unsetenv("TMPDIR");
    json_t *c = find_check(&r, "Dense.serialize.roundtrip");
    cr_assert_not_null(c);
    cr_expect_str_eq(field(c, "status"), "skip");
    cr_expect(strstr(field(c, "message"),
                     "cannot make a temporary file in /nonexistent/conform-tmp (TMPDIR)") != NULL,
              "%s", field(c, "message"));
    json_decref(r.root);
}
