/*
 * lam_block_summary_table (Gluon's summary()): the whole table's text for the chapter's MLP,
 * a nested block with a shared layer and a BatchNorm, and its errors. Parameter counts by
 * hand: Dense(in -> u) has in*u + u; BatchNorm(C) has 4C, of which 2C (running mean and
 * variance) are not trained.
 */
#include "block_util.h"

TestSuite(summary, .fini = bu_fini);

static lam_block *layer(const char *type, const char *attrs) {
    lam_block *b = NULL;
    BU_OK(lam_layer_create(type, attrs, &b));
    return b;
}

static void add(lam_block *seq, lam_block *child) {
    BU_OK(lam_sequential_add(seq, child));
    lam_block_release(child);
}

Test(summary, mlp_table_text) {
    lam_block *net = NULL;
    BU_OK(lam_sequential_create(&net));
    add(net, layer("Dense", "units=256, activation=relu"));
    add(net, layer("Dense", "units=10"));
    BU_OK(lam_block_initialize(net, NULL, NULL, 0));
    lam_shape in = BU_SHAPE(1, 20);
    char *t = NULL;
    BU_OK(lam_block_summary_table(net, 1, &in, &t));
    /* Display names count per process: this test runs in a process of its own. */
    cr_expect_str_eq(t, "----------------------------------------\n"
                        "Layer (type)    Output Shape     Param #\n"
                        "========================================\n"
                        "Input                (1, 20)           0\n"
                        "dense0 (Dense)      (1, 256)        5376\n"
                        "dense1 (Dense)       (1, 10)        2570\n"
                        "========================================\n"
                        "Parameters in forward computation graph, duplicate included\n"
                        "   Total params: 7946\n"
                        "   Trainable params: 7946\n"
                        "   Non-trainable params: 0\n"
                        "Shared params in forward computation graph: 0\n"
                        "Unique parameters in model: 7946\n"
                        "----------------------------------------\n");
    free(t);
    /* Another batch size changes the shapes only. */
    in = BU_SHAPE(7, 20);
    BU_OK(lam_block_summary_table(net, 1, &in, &t));
    cr_expect(strstr(t, "dense0 (Dense)      (7, 256)        5376\n") != NULL, "%s", t);
    free(t);
    lam_block_release(net);
}

/* Dense(8) -> [Dense(8) and its shared twin in an inner Sequential] -> BatchNorm -> Dense(2):
 * the inner rows are indented, the twin's 72 parameters count again in the "duplicate
 * included" total and as shared, once in the model. */
Test(summary, nested_shared_and_batchnorm) {
    lam_block *net = NULL, *inner = NULL;
    BU_OK(lam_sequential_create(&net));
    BU_OK(lam_sequential_create(&inner));
    add(net, layer("Dense", "units=8, in_units=4"));
    lam_block *a = layer("Dense", "units=8"), *twin = NULL;
    BU_OK(lam_layer_create_shared("Dense", "units=8", a, &twin));
    add(inner, a);
    add(inner, twin);
    add(net, inner);
    add(net, layer("BatchNorm", NULL));
    add(net, layer("Dense", "units=2"));
    BU_OK(lam_block_initialize(net, NULL, NULL, 0));
    lam_shape in = BU_SHAPE(3, 4);
    char *t = NULL;
    BU_OK(lam_block_summary_table(net, 1, &in, &t));
    cr_expect_str_eq(t, "--------------------------------------------------\n"
                        "Layer (type)              Output Shape     Param #\n"
                        "==================================================\n"
                        "Input                           (3, 4)           0\n"
                        "dense0 (Dense)                  (3, 8)          40\n"
                        "sequential1 (Sequential)        (3, 8)           0\n"
                        "  dense1 (Dense)                (3, 8)          72\n"
                        "  dense2 (Dense)                (3, 8)          72\n"
                        "batchnorm0 (BatchNorm)          (3, 8)          32\n"
                        "dense3 (Dense)                  (3, 2)          18\n"
                        "==================================================\n"
                        "Parameters in forward computation graph, duplicate included\n"
                        "   Total params: 234\n"
                        "   Trainable params: 218\n"
                        "   Non-trainable params: 16\n"
                        "Shared params in forward computation graph: 72\n"
                        "Unique parameters in model: 162\n"
                        "--------------------------------------------------\n");
    free(t);
    lam_block_release(net);
}

/* A single layer is its own row. */
Test(summary, single_layer_is_its_row) {
    lam_block *d = layer("Dense", "units=3, in_units=2");
    BU_OK(lam_block_initialize(d, NULL, NULL, 0));
    lam_shape in = BU_SHAPE(1, 2);
    char *t = NULL;
    BU_OK(lam_block_summary_table(d, 1, &in, &t));
    cr_expect(strstr(t, "\nInput                 (1, 2)           0\n"
                        "dense0 (Dense)        (1, 3)           9\n") != NULL,
              "%s", t);
    free(t);
    lam_block_release(d);
}

Test(summary, errors) {
    lam_block *d = layer("Dense", "units=3, in_units=2");
    lam_shape in = BU_SHAPE(1, 2);
    char *t = (char *)"x";
    bu_assert_error_prefix(lam_block_summary_table(d, 1, &in, &t), LAM_ERR_STATE,
                           "dense0: Not initialized, call lam_block_initialize()", "uninitialized");
    cr_expect_null(t);
    BU_OK(lam_block_initialize(d, NULL, NULL, 0));
    lam_shape bad = BU_SHAPE(1, 5);
    bu_assert_error_prefix(lam_block_summary_table(d, 1, &bad, &t), LAM_ERR_SHAPE,
                           "dense0: ", "wrong input width");
    lam_shape unknown = BU_SHAPE(LAM_DIM_UNKNOWN, 2);
    bu_assert_error(lam_block_summary_table(d, 1, &unknown, &t), LAM_ERR_SHAPE,
                    "lam_block_summary_table: Bad shape, input 0 is (None, 2); every dim must be "
                    "known",
                    "unknown dim");
    bu_assert_error(lam_block_summary_table(d, 0, &in, &t), LAM_ERR_INVALID_ARGUMENT,
                    "lam_block_summary_table: Invalid argument, NULL block, output or input "
                    "shapes, or no input",
                    "no input");
    /* A failed summary leaves later forwards unobserved and working. */
    lam_tensor *x = NULL, *y = NULL;
    BU_OK(lam_tensor_full(NULL, &in, 1.0f, &x));
    BU_OK(lam_block_call(d, x, &y));
    lam_tensor_release(x);
    lam_tensor_release(y);
    lam_block_release(d);
}
