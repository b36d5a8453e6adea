/*
 * The host against plugins and plugin files that lie: files that are no plugins (a FIFO
 * would block dlopen for ever), descriptor strings that die after registration, unknown
 * statuses, errors without messages, device names without their NUL, and a plugin with
 * 100,000 layers.
 */
#define _POSIX_C_SOURCE 200809L
#include "lamina/lamina.h"

#include <criterion/criterion.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define P(name) ABI_PLUGIN_DIR "/lamina_test_" name ".so"

static void fini(void) {
    lam_shutdown();
}

TestSuite(boundary, .fini = fini);

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

static void expect_not_a_file(const char *path, const char *text) {
    lam_plugin_record r = find(path);
    cr_expect_eq(r.decision, LAM_PLUGIN_SKIPPED, "%s: decision %d (%s)", path, r.decision,
                 r.message);
    cr_expect_eq(r.reason, LAM_REASON_NOT_A_FILE, "%s: reason %s", path,
                 lam_plugin_reason_string(r.reason));
    cr_expect_str_eq(r.message, text, "%s", path);
    cr_expect_str_eq(lam_plugin_reason_string(r.reason), "not-a-file");
}

/* A temporary directory holding a FIFO, a directory and a dangling link, each named like a
 * plugin. */
typedef struct junk {
    char dir[64], fifo[128], sub[128], dangling[128];
} junk;

static void junk_make(junk *j) {
    snprintf(j->dir, sizeof j->dir, "/tmp/lamina-boundary-XXXXXX");
    cr_assert_not_null(mkdtemp(j->dir));
    snprintf(j->fifo, sizeof j->fifo, "%s/lamina_layer_x.so", j->dir);
    snprintf(j->sub, sizeof j->sub, "%s/lamina_layer_dir.so", j->dir);
    snprintf(j->dangling, sizeof j->dangling, "%s/lamina_layer_dangling.so", j->dir);
    cr_assert_eq(mkfifo(j->fifo, 0644), 0);
    cr_assert_eq(mkdir(j->sub, 0755), 0);
    cr_assert_eq(symlink("/nonexistent/lamina_layer_gone.so", j->dangling), 0);
}

static void junk_remove(const junk *j) {
    remove(j->fifo);
    rmdir(j->sub);
    remove(j->dangling);
    rmdir(j->dir);
}

/* Before the fix dlopen blocked on the FIFO for ever: the alarm turns that into a failure (a
 * SIGALRM crash) instead of a hang. (Criterion's .timeout is not used: its runner leaks when
 * tests with different timeouts run in parallel, which the ASan suite reports.) */
Test(boundary, fifo_directory_and_dangling_link_in_a_directory_are_skipped) {
    alarm(60);
    junk j;
    junk_make(&j);
    char path[512];
    snprintf(path, sizeof path, "%s:%s", j.dir, P("good_layer"));
    start(path, 0);
    expect_not_a_file(j.fifo, "a FIFO, not a regular file");
    expect_not_a_file(j.sub, "a directory, not a regular file");
    expect_not_a_file(j.dangling,
                      "a dangling symbolic link (its target: No such file or directory)");
    lam_plugin_record good = find("lamina_test_good_layer.so");
    cr_expect_eq(good.decision, LAM_PLUGIN_LOADED, "%s", good.message);
    cr_expect_eq(lam_plugin_report_count(), 4u);
    junk_remove(&j);
}

Test(boundary, non_files_named_directly_in_the_path_get_a_row) {
    alarm(60);
    junk j;
    junk_make(&j);
    char missing[160], path[1024];
    snprintf(missing, sizeof missing, "%s/absent", j.dir);
    snprintf(path, sizeof path, "%s:%s:%s", j.fifo, j.dangling, missing);
    start(path, 0);
    expect_not_a_file(j.fifo, "a FIFO, not a regular file");
    expect_not_a_file(j.dangling,
                      "a dangling symbolic link (its target: No such file or directory)");
    expect_not_a_file(missing, "cannot be examined: No such file or directory");
    cr_expect_eq(lam_plugin_report_count(), 3u);
    junk_remove(&j);
}

Test(boundary, bare_file_name_in_the_path_is_that_file) {
    cr_assert_eq(chdir(ABI_PLUGIN_DIR), 0);
    start("lamina_test_good_layer.so", 0);
    cr_assert_eq(lam_plugin_report_count(), 1u);
    lam_plugin_record r = find("lamina_test_good_layer.so");
    cr_expect_eq(r.decision, LAM_PLUGIN_LOADED, "%s", r.message);
    cr_expect_str_eq(r.path, "./lamina_test_good_layer.so");
    cr_expect_str_eq(r.names, "GoodLayer");
}

Test(boundary, descriptor_strings_are_copied_at_registration) {
    start(P("heap_strings"), 0);
    lam_plugin_record r = find("lamina_test_heap_strings.so");
    cr_assert_eq(r.decision, LAM_PLUGIN_LOADED, "%s", r.message);
    cr_expect_str_eq(r.names, "HeapStrings");
    cr_expect_str_eq(r.version, "3.1.4");
    cr_assert_eq(lam_layer_type_count(), 1u);
    cr_expect_str_eq(lam_layer_type_name(0), "HeapStrings");
    lam_block *b = NULL;
    cr_assert_eq(lam_layer_create("HeapStrings", "mode=slow,gain=1.5", &b), LAM_OK, "%s",
                 lam_last_error());
    cr_expect_str_eq(lam_block_name(b), "heapstr0");
    lam_block_release(b);
    cr_expect_eq(lam_layer_create("HeapStrings", "mode=medium", &b), LAM_ERR_INVALID_ARGUMENT);
    cr_expect_str_eq(lam_last_error(),
                     "HeapStrings: Invalid value for 'mode', expected one of fast|slow, got "
                     "'medium'");
    cr_expect_eq(lam_layer_create("HeapStrings", "colour=red", &b), LAM_ERR_INVALID_ARGUMENT);
    cr_expect(strstr(lam_last_error(), "Unknown attribute 'colour', valid attributes:") != NULL,
              "%s", lam_last_error());
    cr_expect(strstr(lam_last_error(), "gain") != NULL, "%s", lam_last_error());
    cr_expect(strstr(lam_last_error(), "mode") != NULL, "%s", lam_last_error());
    cr_expect_eq(lam_layer_create("HeapStrings", "gain=abc", &b), LAM_ERR_INVALID_ARGUMENT);
    cr_expect_str_eq(lam_last_error(),
                     "HeapStrings: Invalid value for 'gain', expected a number, got 'abc'");
}

/* ---- statuses ---- */

static lam_tensor *input(lam_ctx *ctx) {
    int64_t d[2] = {2, 3};
    lam_shape s;
    lam_shape_init(&s, 2, d);
    float x[6] = {1, -2, 3, -4, 5, -6};
    lam_tensor *t;
    cr_assert_eq(lam_tensor_from_data(ctx, &s, x, 6, &t), LAM_OK, "%s", lam_last_error());
    return t;
}

/* Runs a Liar layer with the given attributes; returns the status and leaves the message. */
static lam_status run_liar(const char *attrs, lam_tensor **out) {
    lam_ctx *ctx;
    cr_assert_eq(lam_ctx_get("cpu", &ctx), LAM_OK, "%s", lam_last_error());
    lam_block *b;
    cr_assert_eq(lam_layer_create("Liar", attrs, &b), LAM_OK, "%s", lam_last_error());
    lam_tensor *x = input(ctx);
    *out = NULL;
    lam_status st = lam_block_call(b, x, out);
    lam_tensor_release(x);
    lam_block_release(b);
    return st;
}

static void expect_liar(const char *attrs, lam_status want, const char *text) {
    lam_tensor *y;
    lam_status st = run_liar(attrs, &y);
    cr_expect_eq(st, want, "%s: status %d (%s)", attrs, st, lam_last_error());
    cr_expect_str_eq(lam_last_error(), text, "%s", attrs);
    cr_expect_null(y, "%s", attrs);
}

Test(boundary, unknown_layer_status_becomes_internal_naming_the_plugin) {
    start(P("liar"), 1);
    expect_liar("lie=big,where=forward", LAM_ERR_INTERNAL,
                "liar0: Invalid status, forward returned 12345, which is not a lam_status (a "
                "bug in layer type 'Liar' of plugin lamina_test_liar.so)");
    expect_liar("lie=min,where=forward", LAM_ERR_INTERNAL,
                "liar1: Invalid status, forward returned -2147483648, which is not a "
                "lam_status (a bug in layer type 'Liar' of plugin lamina_test_liar.so)");
    expect_liar("lie=positive,where=forward", LAM_ERR_INTERNAL,
                "liar2: Invalid status, forward returned 7, which is not a lam_status (a bug in "
                "layer type 'Liar' of plugin lamina_test_liar.so)");
    expect_liar("lie=big,where=infer_shape", LAM_ERR_INTERNAL,
                "liar3: Invalid status, infer_shape returned 12345, which is not a lam_status "
                "(a bug in layer type 'Liar' of plugin lamina_test_liar.so)");
}

Test(boundary, layer_error_without_message_gets_one_from_the_host) {
    start(P("liar"), 1);
    expect_liar("lie=nomsg,where=forward", LAM_ERR_SHAPE,
                "liar0: shape error (the plugin set no message)");
    expect_liar("lie=empty,where=forward", LAM_ERR_BACKEND,
                "liar1: backend error (the plugin set no message)");
    expect_liar("lie=nomsg,where=infer_shape", LAM_ERR_SHAPE,
                "liar2: shape error (the plugin set no message)");
}

Test(boundary, unknown_status_from_a_fused_backward_becomes_internal) {
    start(P("liar"), 1);
    lam_ctx *ctx;
    cr_assert_eq(lam_ctx_get("cpu", &ctx), LAM_OK, "%s", lam_last_error());
    lam_block *b;
    cr_assert_eq(lam_layer_create("Liar", "lie=min,where=backward", &b), LAM_OK, "%s",
                 lam_last_error());
    lam_tensor *x = input(ctx), *y = NULL;
    cr_assert_eq(lam_tensor_attach_grad(x), LAM_OK, "%s", lam_last_error());
    int was = lam_autograd_set_recording(1);
    cr_assert_eq(lam_block_call(b, x, &y), LAM_OK, "%s", lam_last_error());
    lam_autograd_set_recording(was);
    lam_status st = lam_autograd_backward(y, NULL);
    cr_expect_eq(st, LAM_ERR_INTERNAL, "status %d (%s)", st, lam_last_error());
    cr_expect(strstr(lam_last_error(),
                     "liar0: Invalid status, backward returned -2147483648, which is not a "
                     "lam_status (a bug in layer type 'Liar' of plugin lamina_test_liar.so)") !=
                  NULL,
              "%s", lam_last_error());
    lam_tensor_release(y);
    lam_tensor_release(x);
    lam_block_release(b);
}

static void expect_op(lam_status (*op)(const lam_tensor *, lam_tensor **), lam_tensor *x,
                      lam_status want, const char *text) {
    lam_tensor *y = NULL;
    lam_status st = op(x, &y);
    cr_expect_eq(st, want, "status %d (%s)", st, lam_last_error());
    cr_expect_str_eq(lam_last_error(), text);
    cr_expect_null(y);
}

Test(boundary, backend_statuses_are_checked_at_the_boundary) {
    start(P("liar_backend"), 0);
    lam_ctx *ctx;
    cr_assert_eq(lam_ctx_get("liar", &ctx), LAM_OK, "%s", lam_last_error());
    lam_tensor *x = input(ctx);
    expect_op(lam_op_relu, x, LAM_ERR_INTERNAL,
              "relu on liar(0): Invalid status, execute returned 12345, which is not a "
              "lam_status (a bug in backend 'liar' of plugin lamina_test_liar_backend.so)");
    expect_op(lam_op_abs, x, LAM_ERR_INTERNAL,
              "abs on liar(0): Invalid status, execute returned -2147483648, which is not a "
              "lam_status (a bug in backend 'liar' of plugin lamina_test_liar_backend.so)");
    expect_op(lam_op_neg, x, LAM_ERR_BACKEND,
              "neg on liar(0): backend error (the plugin set no message)");
    lam_tensor_release(x);
}

static void expect_filled(const char *s, size_t cap, char c) {
    size_t n = strnlen(s, cap);
    cr_expect_eq(n, cap - 1, "length %zu, expected %zu", n, cap - 1);
    for (size_t i = 0; i < n; i++) {
        if (s[i] != c) {
            cr_expect_fail("byte %zu is %d, expected '%c'", i, s[i], c);
            return;
        }
    }
}

Test(boundary, device_strings_without_nul_are_terminated_by_the_host) {
    start(P("liar_backend"), 0);
    cr_assert_eq(lam_backend_count(), 1u);
    lam_device_info info = LAM_DEVICE_INFO_INIT;
    cr_assert_eq(lam_backend_device_info(0, 0, &info), LAM_OK, "%s", lam_last_error());
    expect_filled(info.name, sizeof info.name, 'A');
    expect_filled(info.driver, sizeof info.driver, 'B');
    expect_filled(info.details, sizeof info.details, 'C');
    cr_expect_eq(info.struct_size, sizeof info);
}

/* `lamina plugins` printed the name until some NUL beyond it (into the driver and past the
 * struct: a stack overflow under ASan). */
Test(boundary, cli_prints_an_unterminated_device_name_bounded) {
    cr_assert_eq(setenv("LAMINA_PLUGIN_PATH", P("liar_backend"), 1), 0);
    FILE *f = popen("'" LAMINA_CLI "' plugins --devices 2>&1", "r");
    cr_assert_not_null(f);
    char line[4096], want[256];
    memset(want, 0, sizeof want);
    memcpy(want, "  liar(0): ", 11);
    memset(want + 11, 'A', 127);
    int found = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "  liar(0): ", 11) == 0) {
            line[strcspn(line, "\n")] = '\0';
            cr_expect_str_eq(line, want);
            found = 1;
        }
    }
    int st = pclose(f);
    cr_expect(found, "no line for liar(0)");
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) <= 1, "lamina plugins ended with status %d", st);
}

/* `lamina plugins` probes only the default context's backend (cpu): another backend is listed
 * as not probed, with the flag that probes it; `--devices` probes and lists it. */
Test(boundary, cli_lists_other_backends_unprobed_unless_asked) {
    cr_assert_eq(setenv("LAMINA_PLUGIN_PATH", P("liar_backend"), 1), 0);
    cr_assert_eq(unsetenv("LAMINA_BACKEND"), 0);
    for (int devices = 0; devices < 2; devices++) {
        FILE *f = popen(devices ? "'" LAMINA_CLI "' plugins --devices 2>&1"
                                : "'" LAMINA_CLI "' plugins 2>&1",
                        "r");
        cr_assert_not_null(f);
        char line[4096];
        int unprobed = 0, hint = 0, listed = 0, cpu = 0;
        while (fgets(line, sizeof line, f) != NULL) {
            unprobed += strcmp(line, "  liar: not probed\n") == 0;
            hint += strstr(line, "`lamina plugins --devices` probes every backend") != NULL;
            listed += strncmp(line, "  liar(0): ", 11) == 0;
            cpu += strncmp(line, "  cpu(0): ", 10) == 0;
        }
        int st = pclose(f);
        cr_expect(WIFEXITED(st) && WEXITSTATUS(st) <= 1, "status %d", st);
        cr_expect_eq(unprobed, devices ? 0 : 1, "devices=%d: 'liar: not probed' lines", devices);
        cr_expect_eq(hint, devices ? 0 : 1, "devices=%d: hint lines", devices);
        cr_expect_eq(listed, devices ? 1 : 0, "devices=%d: liar(0) lines", devices);
        cr_expect_eq(cpu, 1, "devices=%d: the default context's backend is listed", devices);
    }
    FILE *f = popen("'" LAMINA_CLI "' plugins --bogus 2>&1", "r");
    cr_assert_not_null(f);
    char line[512] = "";
    cr_assert_not_null(fgets(line, sizeof line, f));
    cr_expect_str_eq(line, "lamina plugins: unknown option '--bogus' (usage: lamina plugins "
                           "[--devices])\n");
    int st = pclose(f);
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 2, "status %d", st);
}

/* ---- scale ---- */

/*
 * Registering n layers was O(n^2) in the duplicate-name check (33-45 s for 10^5). The bound
 * is no timing test: a linear registry takes well under a second here even under ASan; the
 * generous 20 s only turns the old quadratic behaviour into a failure instead of a hang (it
 * took 196 s in a release build before; the ASan build also copied the whole layer array on
 * every registration until it grew by doubling).
 */
Test(boundary, hundred_thousand_layers_load_and_are_all_found) {
    alarm(300);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    start(P("many_layers"), 0);
    lam_plugin_record r = find("lamina_test_many_layers.so");
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    cr_expect_lt(s, 20.0, "loading took %.1f s", s);
    cr_assert_eq(r.decision, LAM_PLUGIN_LOADED, "%s", r.message);
    cr_assert_eq(lam_layer_type_count(), 100000u);
    cr_expect_eq(strncmp(r.names, "L000000,L000001,", 16), 0);
    cr_expect_str_eq(lam_layer_type_name(99999), "L099999");
    char name[16];
    for (int i = 0; i < 100000; i += 997) {
        snprintf(name, sizeof name, "L%06d", i);
        lam_block *b = NULL;
        cr_assert_eq(lam_layer_create(name, NULL, &b), LAM_OK, "%s: %s", name, lam_last_error());
        lam_block_release(b);
    }
    lam_block *b = NULL;
    cr_expect_eq(lam_layer_create("L100000", NULL, &b), LAM_ERR_NOT_FOUND);
    cr_expect_null(b);
}
