/*
 * `lamina train`: reaches the stated accuracy on the built-in data set and shows progress; the
 * data set is not linearly separable (a linear model trained the same way stays far below).
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

static void fini(void) {
    lam_shutdown();
}

TestSuite(train, .fini = fini, .timeout = 300);

static char *run(const char *cmd, int *status) {
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    size_t cap = 1 << 16, n = 0;
    char *out = malloc(cap);
    size_t r;
    while ((r = fread(out + n, 1, cap - n - 1, p)) > 0) {
        n += r;
    }
    out[n] = '\0';
    *status = pclose(p);
    return out;
}

/* Test accuracy in a `lamina train` output, or -1 when it has none. */
static double test_accuracy(const char *out) {
    const char *acc = strstr(out, "test accuracy ");
    return acc ? atof(acc + strlen("test accuracy ")) : -1.0;
}

Test(train, reaches_95_percent_test_accuracy_with_progress) {
    int status;
    char *out = run(LAMINA_TEST_BINARY_DIR "/bin/lamina train 2>&1", &status);
    cr_assert_eq(status, 0, "lamina train failed:\n%s", out);
    int epochs = 0;
    for (char *l = strstr(out, "epoch "); l; l = strstr(l + 1, "\nepoch ")) {
        epochs++;
    }
    cr_expect_eq(epochs, 10, "one progress line per epoch expected:\n%s", out);
    cr_expect(strstr(out, "samples/s") != NULL);
    double a = test_accuracy(out);
    cr_assert_geq(a, 0.0, "no test accuracy:\n%s", out);
    cr_expect_geq(a, 95.0, "test accuracy %.2f%% below 95%%:\n%s", a, out);
    const char *re = strstr(out, "reloaded into a fresh model: test accuracy ");
    cr_assert_not_null(re, "the parameters are saved and reloaded:\n%s", out);
    double b = atof(re + strlen("reloaded into a fresh model: test accuracy "));
    cr_expect_eq(a, b, "the reloaded model scores %.2f%%, the trained one %.2f%%", b, a);
    free(out);
}

/*
 * The default recipe holds for every seed, not only the default one: with a constant learning
 * rate of 0.1 and momentum 0.9, seed 7 ended on a loss spike at 94.56% with OpenBLAS's Haswell
 * kernels (other rounding orders hit other seeds). The run uses --backend cpu whatever
 * LAMINA_BACKEND says (the recipe is what is checked; the test above covers the chosen
 * backend), once with OpenBLAS's own kernel choice and once with the Haswell kernels where
 * the CPU has them.
 */
/* The sanitizer build runs ~15x slower: there only seed 7 (the one that fell to 94.56% without
 * the schedule) is trained, for memory checking; the normal build sweeps all ten seeds. */
#if defined(__SANITIZE_ADDRESS__)
#define SEED_FIRST 7
#define SEED_LAST  7
#else
#define SEED_FIRST 0
#define SEED_LAST  9
#endif

Test(train, every_seed_0_to_9_reaches_97_percent) {
    __builtin_cpu_init();
    int haswell = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    for (int kernels = 0; kernels < 1 + haswell; kernels++) {
        for (int seed = SEED_FIRST; seed <= SEED_LAST; seed++) {
            char cmd[512];
            snprintf(cmd, sizeof cmd,
                     "%s" LAMINA_TEST_BINARY_DIR "/bin/lamina train --backend cpu --seed %d 2>&1",
                     kernels ? "OPENBLAS_CORETYPE=Haswell " : "", seed);
            int status;
            char *out = run(cmd, &status);
            cr_assert_eq(status, 0, "%s failed:\n%s", cmd, out);
            cr_assert(strstr(out, "cosine schedule") != NULL, "%s", out);
            double a = test_accuracy(out);
            cr_expect_geq(a, 97.0, "seed %d%s: test accuracy %.2f%% below 97%%:\n%s", seed,
                          kernels ? " (Haswell kernels)" : "", a, out);
            free(out);
        }
    }
}

Test(train, help_describes_save_and_schedule) {
    int status;
    char *out = run(LAMINA_TEST_BINARY_DIR "/bin/lamina train --help 2>&1", &status);
    cr_assert_eq(status, 0, "%s", out);
    cr_expect(strstr(out, "--save FILE        save the trained parameters to FILE (safetensors) "
                          "and keep\n") != NULL,
              "%s", out);
    cr_expect(strstr(out, "not available") == NULL, "--help still says something is missing:\n%s",
              out);
    cr_expect(strstr(out, "--schedule NAME    learning rate schedule: cosine") != NULL, "%s", out);
    free(out);
    out = run(LAMINA_TEST_BINARY_DIR "/bin/lamina train --schedule linear 2>&1", &status);
    cr_expect_neq(status, 0);
    cr_expect(strstr(out, "lamina train: --schedule must be cosine or constant, got 'linear'") !=
                  NULL,
              "%s", out);
    free(out);
}

/* The learning rate reaches the trainer with every digit: the header line prints the value the
 * trainer holds (before the typed options, a "%g" option string rounded it to 0.123457). */
Test(train, learning_rate_is_kept_exactly) {
    const char *opt[2] = {"sgd", "adam"};
    for (int i = 0; i < 2; i++) {
        char cmd[512];
        snprintf(cmd, sizeof cmd,
                 LAMINA_TEST_BINARY_DIR "/bin/lamina train --backend cpu --optimizer %s --lr "
                                        "0.123456789 --momentum 0.987654321 --epochs 1 "
                                        "--train-size 100 --hidden 8 2>&1",
                 opt[i]);
        int status;
        char *out = run(cmd, &status);
        cr_assert_eq(status, 0, "%s", out);
        cr_expect(strstr(out, i == 0 ? "sgd learning_rate=0.123456789, momentum=0.987654321,"
                                     : "adam learning_rate=0.123456789,") != NULL,
                  "%s", out);
        free(out);
    }
}

/* --save keeps the file, and it holds the trained model (the reload scores the same). */
Test(train, save_keeps_the_file) {
    char dir[] = "/tmp/lamina-train-save-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char path[600], cmd[1024];
    snprintf(path, sizeof path, "%s/mlp.safetensors", dir);
    snprintf(cmd, sizeof cmd,
             LAMINA_TEST_BINARY_DIR "/bin/lamina train --backend cpu --epochs 1 --train-size 2000 "
                                    "--save %s 2>&1",
             path);
    int status;
    char *out = run(cmd, &status);
    cr_assert_eq(status, 0, "%s", out);
    char want[700];
    snprintf(want, sizeof want, "saved to %s; reloaded into a fresh model: test accuracy ", path);
    cr_expect(strstr(out, want) != NULL, "%s", out);
    lam_tensor_dict *d = NULL;
    cr_assert_eq(lam_load(path, NULL, &d), LAM_OK, "%s", lam_last_error());
    cr_expect_eq(lam_tensor_dict_count(d), 4, "two Dense layers, weight and bias each");
    lam_tensor *w = lam_tensor_dict_find(d, "0.weight");
    cr_assert_not_null(w);
    cr_expect_eq(lam_tensor_shape(w)->dims[0], 256);
    cr_expect_eq(lam_tensor_shape(w)->dims[1], 20);
    lam_tensor_dict_destroy(d);
    remove(path);
    remove(dir);
    free(out);
}

Test(train, bad_option_is_an_error_with_usage) {
    int status;
    char *out = run(LAMINA_TEST_BINARY_DIR "/bin/lamina train --epochs zero 2>&1", &status);
    cr_expect_neq(status, 0);
    cr_expect(strstr(out, "--epochs needs an integer >= 1, got 'zero'") != NULL, "%s", out);
    free(out);
}

Test(train, unknown_backend_names_what_is_available) {
    int status;
    char *out = run(LAMINA_TEST_BINARY_DIR "/bin/lamina train --backend nosuch 2>&1", &status);
    cr_expect_neq(status, 0);
    cr_expect(strstr(out, "nosuch: Backend not found, no plugin provides 'nosuch'; available: "
                          "cpu (1 device)") != NULL,
              "%s", out);
    free(out);
}

Test(train, csv_data_trains_and_reports) {
    char path[] = "/tmp/lamina-train-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    FILE *f = fdopen(fd, "w");
    fprintf(f, "label,a,b\n");
    for (int i = 0; i < 400; i++) { /* class = which side of a line, easy to learn */
        float a = (float)((i * 37) % 100) / 50.0f - 1.0f,
              b = (float)((i * 61) % 100) / 50.0f - 1.0f;
        fprintf(f, "%d,%g,%g\n", a + b > 0 ? 1 : 0, a, b);
    }
    fclose(f);
    char cmd[512];
    snprintf(cmd, sizeof cmd, LAMINA_TEST_BINARY_DIR "/bin/lamina train --data %s --epochs 20 2>&1",
             path);
    int status;
    char *out = run(cmd, &status);
    remove(path);
    cr_assert_eq(status, 0, "%s", out);
    cr_expect(strstr(out, "MLP 2 -> 256 (relu) -> 2") != NULL, "%s", out);
    const char *acc = strstr(out, "test accuracy ");
    cr_assert_not_null(acc, "%s", out);
    cr_expect_geq(atof(acc + strlen("test accuracy ")), 90.0, "%s", out);
    free(out);
}

/* A linear model (one Dense layer) trained like the MLP stays far below: not separable. */
Test(train, builtin_data_is_not_linearly_separable) {
    dataset tr, te;
    char err[256];
    cr_assert_eq(dataset_rings(8000, 20, 0, &tr, err, sizeof err), 0);
    cr_assert_eq(dataset_rings(2000, 20, 1000003, &te, err, sizeof err), 0);
    lam_block *lin;
    cr_assert_eq(lam_layer_create("Dense", "units=10", &lin), LAM_OK);
    cr_assert_eq(lam_block_initialize(lin, NULL, NULL, 0), LAM_OK);
    lam_param_list *pl;
    cr_assert_eq(lam_block_collect_params(lin, NULL, &pl), LAM_OK);
    lam_trainer *t;
    cr_assert_eq(lam_trainer_create(pl, "sgd", "learning_rate=0.1, momentum=0.9", &t), LAM_OK);
    const int64_t batch = 64;
    for (int epoch = 0; epoch < 10; epoch++) {
        for (int64_t s = 0; s + batch <= tr.n; s += batch) {
            int64_t xd[2] = {batch, 20};
            lam_shape xs, ys;
            lam_shape_init(&xs, 2, xd);
            lam_shape_init(&ys, 1, &batch);
            lam_tensor *x, *y, *out, *loss;
            cr_assert_eq(lam_tensor_from_data(NULL, &xs, tr.x + s * 20, (size_t)(batch * 20), &x),
                         LAM_OK);
            cr_assert_eq(lam_tensor_from_data(NULL, &ys, tr.y + s, (size_t)batch, &y), LAM_OK);
            lam_autograd_set_recording(1);
            cr_assert_eq(lam_block_call(lin, x, &out), LAM_OK);
            cr_assert_eq(lam_loss_softmax_cross_entropy(out, y, &loss), LAM_OK);
            lam_autograd_set_recording(0);
            cr_assert_eq(lam_autograd_backward(loss, NULL), LAM_OK);
            cr_assert_eq(lam_trainer_step(t, batch), LAM_OK);
            lam_tensor_release(x);
            lam_tensor_release(y);
            lam_tensor_release(out);
            lam_tensor_release(loss);
        }
    }
    int64_t xd[2] = {te.n, 20};
    lam_shape xs;
    lam_shape_init(&xs, 2, xd);
    lam_tensor *x, *out, *am;
    cr_assert_eq(lam_tensor_from_data(NULL, &xs, te.x, (size_t)(te.n * 20), &x), LAM_OK);
    cr_assert_eq(lam_block_call(lin, x, &out), LAM_OK);
    cr_assert_eq(lam_op_argmax(out, 1, &am), LAM_OK);
    float *p = malloc((size_t)te.n * sizeof *p);
    cr_assert_eq(lam_tensor_read(am, p, (size_t)te.n), LAM_OK);
    int64_t correct = 0;
    for (int64_t i = 0; i < te.n; i++) {
        correct += p[i] == te.y[i];
    }
    double acc = 100.0 * (double)correct / (double)te.n;
    cr_expect_lt(acc, 75.0, "a linear model reached %.2f%%", acc);
    free(p);
    lam_tensor_release(x);
    lam_tensor_release(out);
    lam_tensor_release(am);
    lam_trainer_destroy(t);
    lam_param_list_destroy(pl);
    lam_block_release(lin);
    dataset_free(&tr);
    dataset_free(&te);
}

/* ---- The UCI digits and the CNN ---- */

/* Skips (naming the package) when the digits are not installed. */
static void need_digits(void) {
    const char *path = digits_path(NULL);
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        cr_skip("%s is missing: install Debian's python3-sklearn (tools/install-deps.sh does)",
                path);
    }
    fclose(f);
}

/* The numbers come from tests/tools/digits_reference.py, which reads the file with Python's
 * gzip module and re-implements the split (its output: tests/tools/data/digits_reference.txt). */
Test(train, digits_reader_matches_the_python_reference) {
    need_digits();
    dataset tr, te;
    char err[512];
    cr_assert_eq(dataset_digits(NULL, &tr, &te, err, sizeof err), 0, "%s", err);
    cr_expect_eq(tr.n, 1437);
    cr_expect_eq(te.n, 360);
    cr_expect_eq(tr.dim, 64);
    cr_expect_eq(tr.classes, 10);
    cr_expect_eq(tr.image[0], 1);
    cr_expect_eq(tr.image[1], 8);
    cr_expect_eq(tr.image[2], 8);
    double total = 0;
    int labels[10] = {0}, test_labels[10] = {0};
    for (int64_t i = 0; i < tr.n * 64; i++) {
        total += tr.x[i] * 16.0;
    }
    for (int64_t i = 0; i < te.n * 64; i++) {
        total += te.x[i] * 16.0;
    }
    for (int64_t i = 0; i < tr.n; i++) {
        labels[(int)tr.y[i]]++;
    }
    for (int64_t i = 0; i < te.n; i++) {
        labels[(int)te.y[i]]++;
        test_labels[(int)te.y[i]]++;
    }
    cr_expect_eq(total, 561718.0, "pixel total %.1f", total);
    const int want_labels[10] = {178, 182, 177, 183, 181, 182, 181, 179, 174, 180};
    const int want_test[10] = {30, 38, 50, 35, 42, 34, 30, 38, 29, 34};
    for (int c = 0; c < 10; c++) {
        cr_expect_eq(labels[c], want_labels[c], "class %d", c);
        cr_expect_eq(test_labels[c], want_test[c], "test class %d", c);
    }
    const int first[64] = {0, 2,  6, 10, 12, 1,  0,  0, 0, 14, 13, 10, 5,  1,  0,  0,
                           0, 10, 6, 0,  0,  0,  0,  0, 0, 10, 13, 12, 12, 5,  0,  0,
                           0, 2,  8, 5,  7,  14, 8,  0, 0, 0,  0,  0,  0,  5,  12, 0,
                           0, 0,  2, 2,  1,  10, 10, 0, 0, 0,  5,  16, 16, 14, 1,  0};
    for (int k = 0; k < 64; k++) {
        cr_expect_eq(te.x[k], (float)first[k] / 16.0f, "test image 0, pixel %d", k);
    }
    cr_expect_eq(te.y[0], 5.0f);
    dataset_free(&tr);
    dataset_free(&te);
}

Test(train, missing_digits_name_the_package_and_the_path) {
    int status;
    char *out = run("LAMINA_DIGITS=/nonexistent/digits.csv.gz " LAMINA_TEST_BINARY_DIR
                    "/bin/lamina train --model cnn 2>&1",
                    &status);
    cr_expect_neq(status, 0);
    cr_expect(strstr(out, "lamina train: /nonexistent/digits.csv.gz (LAMINA_DIGITS): cannot open "
                          "the UCI handwritten digits, No such file or directory; they come with "
                          "Debian's python3-sklearn package (apt-get install python3-sklearn, "
                          "or sh tools/install-deps.sh)") != NULL,
              "%s", out);
    free(out);
    out =
        run(LAMINA_TEST_BINARY_DIR "/bin/lamina train --data digits --data-file /nonexistent/d.gz "
                                   "2>&1",
            &status);
    cr_expect_neq(status, 0);
    cr_expect(strstr(out, "/nonexistent/d.gz (--data-file): cannot open the UCI handwritten "
                          "digits") != NULL,
              "%s", out);
    free(out);
    /* Without --data-file and LAMINA_DIGITS, the default path is the one named. */
    char err[512];
    dataset tr, te;
    cr_assert_eq(setenv("LAMINA_DIGITS", "", 1), 0);
    cr_expect_str_eq(digits_path(NULL), DIGITS_DEFAULT_PATH);
    cr_assert_eq(setenv("LAMINA_DIGITS", "/nonexistent/x.gz", 1), 0);
    cr_expect_str_eq(digits_path(NULL), "/nonexistent/x.gz");
    cr_expect_str_eq(digits_path("/a/b.gz"), "/a/b.gz");
    cr_expect_eq(dataset_digits(NULL, &tr, &te, err, sizeof err), -1);
    cr_expect(strstr(err, "python3-sklearn") != NULL, "%s", err);
    cr_assert_eq(unsetenv("LAMINA_DIGITS"), 0);
}

/* A gzip'ed file that is not the digits: each problem named with its line. */
static void write_gz(const char *path, const char *text) {
    gzFile f = gzopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(gzputs(f, text), (int)strlen(text));
    cr_assert_eq(gzclose(f), Z_OK);
}

Test(train, digits_reader_refuses_other_files) {
    char path[] = "/tmp/lamina-digits-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    char row[400] = "", err[512];
    for (int i = 0; i < 64; i++) {
        strcat(row, i == 4 ? "17," : "3,");
    }
    strcat(row, "7\n");
    char text[1200];
    snprintf(text, sizeof text, "%s%s", row, row);
    write_gz(path, text);
    dataset tr, te;
    cr_expect_eq(dataset_digits(path, &tr, &te, err, sizeof err), -1);
    char want[600];
    snprintf(want, sizeof want,
             "%s:1: column 5 is not a pixel value 0..16 (a digits row is 64 pixels 0..16 and a "
             "label 0..9)",
             path);
    cr_expect_str_eq(err, want);
    row[9] = '3'; /* "17" -> "13": two good rows are still not the digits */
    snprintf(text, sizeof text, "%s\n%s", row, row);
    write_gz(path, text);
    cr_expect_eq(dataset_digits(path, &tr, &te, err, sizeof err), -1);
    snprintf(want, sizeof want, "%s: 2 rows, the UCI digits have 1797", path);
    cr_expect_str_eq(err, want);
    remove(path);
}

Test(train, cnn_needs_images) {
    char path[] = "/tmp/lamina-train-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    FILE *f = fdopen(fd, "w");
    for (int i = 0; i < 20; i++) {
        fprintf(f, "%d,%d,%d\n", i % 2, i, -i);
    }
    fclose(f);
    char cmd[512];
    snprintf(cmd, sizeof cmd, LAMINA_TEST_BINARY_DIR "/bin/lamina train --model cnn --data %s 2>&1",
             path);
    int status;
    char *out = run(cmd, &status);
    remove(path);
    cr_expect_neq(status, 0);
    char want[600];
    snprintf(want, sizeof want,
             "lamina train: --model cnn needs images of at least 4x4 (--data digits, or a "
             "directory of IDX files); %s holds feature vectors",
             path);
    cr_expect(strstr(out, want) != NULL, "%s", out);
    free(out);
}
