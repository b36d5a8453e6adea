/*
 * Deferred initialization of a custom block (lam_block_create): a parameter declared with
 * unknown dims gets its shape from the block's infer-shape callback at the first call, is
 * initialized then (bit-identically to an eager initialization with the same seed and key) and
 * trains. Expected values are worked by hand from the weights read back: y = x W^T + b, and for
 * the loss sum(y) the gradients dW[j][k] = sum_i x[i][k], db[j] = batch.
 */
#include "block_util.h"

TestSuite(custom_deferred, .fini = bu_fini);

/* A hand-written dense layer: weight (units, None), bias (units). */
typedef struct lin_state {
    int64_t units;
    int infer_calls, forward_calls;
    int leave_unknown; /* a buggy callback that fills nothing */
} lin_state;

static lam_status lin_infer(lam_block *self, void *state, uint32_t n, const lam_shape *in) {
    lin_state *s = state;
    s->infer_calls++;
    if (s->leave_unknown) {
        return LAM_OK;
    }
    if (n != 1 || in[0].ndim != 2) {
        return lam_set_error(LAM_ERR_SHAPE, "%s: Bad input, expected one 2-D input",
                             lam_block_name(self));
    }
    int64_t dims[2] = {s->units, in[0].dims[1]};
    lam_shape w;
    lam_status st = lam_shape_init(&w, 2, dims);
    return st == LAM_OK ? lam_param_infer_shape(lam_block_param(self, "weight"), &w) : st;
}

static lam_status lin_forward(lam_block *self, void *state, uint32_t n, lam_tensor *const *in,
                              lam_tensor **out) {
    (void)n;
    lin_state *s = state;
    s->forward_calls++;
    lam_tensor *w = NULL, *b = NULL, *xw = NULL;
    lam_status st = lam_param_data(lam_block_param(self, "weight"), &w);
    if (st == LAM_OK) {
        st = lam_param_data(lam_block_param(self, "bias"), &b);
    }
    if (st == LAM_OK) {
        st = lam_op_matmul(in[0], w, 0, 1, &xw);
    }
    if (st == LAM_OK) {
        st = lam_op_add(xw, b, out);
    }
    lam_tensor_release(w);
    lam_tensor_release(b);
    lam_tensor_release(xw);
    return st;
}

/* Lin with `units` outputs and `in_units` inputs (LAM_DIM_UNKNOWN: deferred). */
static lam_block *make_lin(lin_state *s, int64_t in_units, int with_infer) {
    lam_block *b = NULL;
    BU_OK(lam_block_create("Lin", lin_forward, s, NULL, &b));
    if (with_infer) {
        BU_OK(lam_block_set_infer_shape(b, lin_infer));
    }
    lam_shape ws = BU_SHAPE(s->units, in_units), bs = BU_SHAPE(s->units);
    BU_OK(lam_block_param_new(b, "weight", &ws, NULL, NULL));
    BU_OK(lam_block_param_new(b, "bias", &bs, NULL, NULL));
    return b;
}

Test(custom_deferred, first_call_infers_initializes_like_eager_and_trains) {
    lin_state sd = {.units = 3}, se = {.units = 3};
    lam_block *deferred = make_lin(&sd, LAM_DIM_UNKNOWN, 1);
    lam_block *eager = make_lin(&se, 5, 0);
    lam_initializer *init = NULL;
    BU_OK(lam_init_xavier(LAM_XAVIER_UNIFORM, LAM_XAVIER_AVG, 3.0f, &init));
    lam_seed(1234);
    BU_OK(lam_block_initialize(deferred, init, NULL, 0));
    BU_OK(lam_block_initialize(eager, init, NULL, 0));
    lam_initializer_release(init);

    lam_param *w = bu_param(deferred, "weight"), *b = bu_param(deferred, "bias");
    cr_assert(!lam_param_is_initialized(w));
    cr_assert(lam_param_is_initialized(b), "the bias has a known shape: initialized at once");
    lam_tensor *t = NULL;
    bu_assert_error(lam_param_data(w, &t), LAM_ERR_DEFERRED_INIT,
                    bu_fmt("%s: Deferred initialization, shape (3, None) is not known yet; run a "
                           "forward pass first, or give the layer its input size (e.g. in_units) "
                           "so it is initialized at once",
                           lam_param_name(w)),
                    "weight before the first call");
    cr_assert_eq(sd.infer_calls, 0);

    /* x (2, 5) */
    lam_tensor *x = bu_ramp(BU_SHAPE(2, 5), -1.0f, 1.0f), *y = NULL;
    BU_OK(lam_block_call(deferred, x, &y));
    cr_assert_eq(sd.infer_calls, 1);
    cr_assert_eq(sd.forward_calls, 1);
    lam_shape ws = BU_SHAPE(3, 5), ys = BU_SHAPE(2, 3);
    bu_assert_shape(lam_param_shape(w), &ws, "weight after the first call");
    bu_assert_shape(lam_tensor_shape(y), &ys, "y");

    /* Bit-identical to the eager block's weights: same seed, same key, same initializer. */
    size_t nw, ne, nx, ny, nb;
    float *wv = bu_param_values(w, &nw), *ev = bu_param_values(bu_param(eager, "weight"), &ne);
    cr_assert_eq(nw, 15);
    cr_assert_eq(ne, 15);
    cr_assert(memcmp(wv, ev, nw * sizeof *wv) == 0, "deferred and eager weights differ");
    /* Xavier uniform, avg, 3: scale sqrt(3 / ((5 + 3) / 2)) = 0.8660254; not all zero. */
    float maxabs = 0.0f;
    for (size_t i = 0; i < nw; i++) {
        cr_assert(fabsf(wv[i]) < 0.8660255f, "weight[%zu] = %g beyond the Xavier scale", i,
                  (double)wv[i]);
        maxabs = fmaxf(maxabs, fabsf(wv[i]));
    }
    cr_assert_gt(maxabs, 0.1f);
    float *bv = bu_param_values(b, &nb);
    float *xv = bu_values(x, &nx), *yv = bu_values(y, &ny);
    for (size_t i = 0; i < 2; i++) {
        for (size_t j = 0; j < 3; j++) {
            double want = bv[j];
            for (size_t k = 0; k < 5; k++) {
                want += (double)xv[i * 5 + k] * wv[j * 5 + k];
            }
            cr_assert(bu_close(yv[i * 3 + j], (float)want, BU_RTOL, BU_ATOL),
                      "y[%zu][%zu] %g != %g", i, j, (double)yv[i * 3 + j], want);
        }
    }
    lam_tensor_release(y);

    /* One SGD step (lr 0.5, batch 1) on sum(y). */
    lam_param_list *params = NULL;
    lam_trainer *tr = NULL;
    BU_OK(lam_block_collect_params(deferred, NULL, &params));
    cr_assert_eq(lam_param_list_count(params), 2);
    BU_OK(lam_trainer_create(params, "sgd", "learning_rate=0.5", &tr));
    lam_tensor *loss = NULL;
    lam_autograd_set_recording(1);
    BU_OK(lam_block_call(deferred, x, &y));
    BU_OK(lam_op_sum(y, NULL, 0, 0, &loss));
    lam_autograd_set_recording(0);
    BU_OK(lam_autograd_backward(loss, NULL));
    BU_OK(lam_trainer_step(tr, 1));
    cr_assert_eq(sd.infer_calls, 1, "the callback runs only while a dim is unknown");
    float *w2 = bu_param_values(w, &nw), *b2 = bu_param_values(b, &nb);
    for (size_t j = 0; j < 3; j++) {
        for (size_t k = 0; k < 5; k++) {
            float want = wv[j * 5 + k] - 0.5f * (xv[k] + xv[5 + k]);
            cr_assert(bu_close(w2[j * 5 + k], want, BU_RTOL, BU_ATOL), "w[%zu][%zu] %g != %g", j, k,
                      (double)w2[j * 5 + k], (double)want);
        }
        cr_assert(bu_close(b2[j], bv[j] - 0.5f * 2.0f, BU_RTOL, BU_ATOL), "b[%zu] %g", j,
                  (double)b2[j]);
    }
    free(wv);
    free(ev);
    free(bv);
    free(xv);
    free(yv);
    free(w2);
    free(b2);
    lam_tensor_release(loss);
    lam_tensor_release(y);
    lam_tensor_release(x);
    lam_trainer_destroy(tr);
    lam_param_list_destroy(params);
    lam_block_release(deferred);
    lam_block_release(eager);
    bu_assert_released();
}

/* Inside a Sequential, the callback gets the shape of the previous layer's output. */
Test(custom_deferred, nested_in_sequential_infers_from_the_previous_layer) {
    lin_state s = {.units = 2};
    lam_block *net = bu_sequential();
    bu_add_layer(net, "Dense", "units=4");
    lam_block *lin = make_lin(&s, LAM_DIM_UNKNOWN, 1);
    BU_OK(lam_sequential_add(net, lin));
    lam_block_release(lin);
    BU_OK(lam_block_initialize(net, NULL, NULL, 0));
    lam_tensor *x = bu_ramp(BU_SHAPE(3, 7), -1.0f, 1.0f), *y = NULL;
    BU_OK(lam_block_call(net, x, &y));
    lam_shape ws = BU_SHAPE(2, 4), ys = BU_SHAPE(3, 2);
    bu_assert_shape(lam_param_shape(bu_param(lin, "weight")), &ws, "Lin weight");
    bu_assert_shape(lam_tensor_shape(y), &ys, "net(x)");
    lam_tensor_release(y);
    lam_tensor_release(x);
    lam_block_release(net);
    bu_assert_released();
}

Test(custom_deferred, without_callback_forward_names_the_parameter) {
    lin_state s = {.units = 3};
    lam_block *b = make_lin(&s, LAM_DIM_UNKNOWN, 0);
    BU_OK(lam_block_initialize(b, NULL, NULL, 0));
    lam_tensor *x = bu_ramp(BU_SHAPE(2, 5), -1.0f, 1.0f), *y = NULL;
    bu_assert_error(lam_block_call(b, x, &y), LAM_ERR_DEFERRED_INIT,
                    bu_fmt("%s: Deferred initialization, %s_weight has shape (3, None) and the "
                           "block has no infer-shape callback to fill it; set one with "
                           "lam_block_set_infer_shape, or declare the full shape",
                           lam_block_name(b), lam_block_name(b)),
                    "no callback");
    cr_assert_null(y);
    cr_assert_eq(s.forward_calls, 0);
    /* Set one, and the same call works. */
    BU_OK(lam_block_set_infer_shape(b, lin_infer));
    BU_OK(lam_block_call(b, x, &y));
    cr_assert_eq(s.forward_calls, 1);
    lam_tensor_release(y);
    lam_tensor_release(x);
    lam_block_release(b);
    bu_assert_released();
}

Test(custom_deferred, failed_inference_keeps_the_block_waiting) {
    lin_state s = {.units = 3};
    lam_block *b = make_lin(&s, LAM_DIM_UNKNOWN, 1);
    BU_OK(lam_block_initialize(b, NULL, NULL, 0));
    lam_param *w = bu_param(b, "weight");
    lam_shape unknown = BU_SHAPE(3, LAM_DIM_UNKNOWN);

    /* The callback refuses the input: its error, nothing changed. */
    lam_tensor *x3 = bu_ramp(BU_SHAPE(2, 5, 1), -1.0f, 1.0f), *y = NULL;
    bu_assert_error(lam_block_call(b, x3, &y), LAM_ERR_SHAPE,
                    bu_fmt("%s: Bad input, expected one 2-D input", lam_block_name(b)),
                    "3-D input");
    bu_assert_shape(lam_param_shape(w), &unknown, "weight after a refused input");

    /* The callback fills nothing: the forward says so. */
    s.leave_unknown = 1;
    lam_tensor *x = bu_ramp(BU_SHAPE(2, 5), -1.0f, 1.0f);
    bu_assert_error(lam_block_call(b, x, &y), LAM_ERR_SHAPE,
                    bu_fmt("%s: Shape inference incomplete, %s still has shape (3, None) after "
                           "the infer-shape callback",
                           lam_block_name(b), lam_param_name(w)),
                    "callback leaving a dim unknown");
    cr_assert_eq(s.forward_calls, 0);
    cr_assert(!lam_param_is_initialized(w));

    /* A good callback and input: initialized now. */
    s.leave_unknown = 0;
    BU_OK(lam_block_call(b, x, &y));
    cr_assert(lam_param_is_initialized(w));
    lam_tensor_release(y);
    /* Known shapes are only checked. */
    lam_shape other = BU_SHAPE(3, 6);
    bu_assert_error(
        lam_param_infer_shape(w, &other), LAM_ERR_SHAPE,
        bu_fmt("%s: Shape inconsistent, provided (3, 5), inferred (3, 6)", lam_param_name(w)),
        "infer on a known shape");
    lam_shape same = BU_SHAPE(3, 5);
    BU_OK(lam_param_infer_shape(w, &same));
    bu_assert_error(lam_param_infer_shape(NULL, &same), LAM_ERR_INVALID_ARGUMENT,
                    "lam_param_infer_shape: Invalid argument, NULL parameter or shape", "NULL");
    lam_tensor_release(x3);
    lam_tensor_release(x);
    lam_block_release(b);
    bu_assert_released();
}

Test(custom_deferred, only_custom_blocks_take_the_callback) {
    lam_block *d = bu_layer("Dense", "units=2");
    bu_assert_error(lam_block_set_infer_shape(d, lin_infer), LAM_ERR_INVALID_ARGUMENT,
                    bu_fmt("%s: Invalid argument, only a custom block (lam_block_create) takes an "
                           "infer-shape callback; a layer infers its shapes itself",
                           lam_block_name(d)),
                    "Dense");
    lam_block *seq = bu_sequential();
    bu_assert_error(lam_block_set_infer_shape(seq, lin_infer), LAM_ERR_INVALID_ARGUMENT,
                    bu_fmt("%s: Invalid argument, only a custom block (lam_block_create) takes an "
                           "infer-shape callback; a Sequential's children infer their own shapes",
                           lam_block_name(seq)),
                    "Sequential");
    bu_assert_error(lam_block_set_infer_shape(NULL, lin_infer), LAM_ERR_INVALID_ARGUMENT,
                    "lam_block_set_infer_shape: Invalid argument, NULL block", "NULL");
    lam_block_release(d);
    lam_block_release(seq);
}
