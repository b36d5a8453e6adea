/*
 * The last error message: lamina.h promises it stays valid until the next failing call, so
 * successful calls of every kind (tensor reads and writes, ops, copies, layers, initializers,
 * backward) must leave it alone.
 */
#include "test_util.h"

TestSuite(errors, .fini = tu_fini);

#define OK(call)                                                                                   \
    do {                                                                                           \
        lam_status st_ = (call);                                                                   \
        cr_assert_eq(st_, LAM_OK, "%s failed: %s (%s)", #call, lam_status_string(st_),             \
                     lam_last_error());                                                            \
    } while (0)

/* The message of the failure provoked at the start of each test. */
static char first[2048];

static void fail_once(void) {
    lam_shape s = TU_SHAPE(2, 3);
    lam_tensor *t = tu_tensor(s, (const float[]){1, 2, 3, 4, 5, 6}, 6);
    lam_shape bad = TU_SHAPE(4, 2);
    lam_tensor *r = TU_POISON;
    tu_assert_status(lam_tensor_reshape(t, &bad, &r), LAM_ERR_SHAPE, "reshape (2,3) to (4,2)");
    cr_assert_null(r);
    cr_assert_str_eq(lam_last_error(),
                     "reshape: Size mismatch, cannot reshape (2, 3) (6 elements) to (4, 2) "
                     "(8 elements)");
    snprintf(first, sizeof first, "%s", lam_last_error());
    lam_tensor_release(t);
}

#define STILL(what)                                                                                \
    cr_assert_str_eq(lam_last_error(), first, "after %s the message changed to \"%s\"", what,      \
                     lam_last_error())

Test(errors, last_error_survives_successful_tensor_calls) {
    lam_ctx *ctx = tu_ctx();
    fail_once();
    lam_shape s = TU_SHAPE(2, 2);
    lam_tensor *a = NULL, *b = NULL, *c = NULL, *d = NULL;
    OK(lam_tensor_create(ctx, &s, &a));
    STILL("lam_tensor_create");
    OK(lam_tensor_write(a, (const float[]){1, 2, 3, 4}, 4));
    STILL("lam_tensor_write");
    float got[4];
    OK(lam_tensor_read(a, got, 4));
    STILL("lam_tensor_read");
    cr_assert(got[0] == 1 && got[1] == 2 && got[2] == 3 && got[3] == 4);
    OK(lam_op_add(a, a, &b));
    STILL("lam_op_add");
    OK(lam_tensor_read(b, got, 4));
    cr_assert(got[0] == 2 && got[1] == 4 && got[2] == 6 && got[3] == 8);
    OK(lam_tensor_copyto(b, ctx, &c));
    STILL("lam_tensor_copyto");
    OK(lam_op_matmul(a, c, 0, 0, &d));
    STILL("lam_op_matmul");
    OK(lam_tensor_read(d, got, 4));
    /* [[1,2],[3,4]] x [[2,4],[6,8]] by hand */
    cr_assert(got[0] == 14 && got[1] == 20 && got[2] == 30 && got[3] == 44);
    OK(lam_ctx_synchronize(ctx));
    STILL("lam_ctx_synchronize");
    float v;
    lam_tensor *e = NULL;
    OK(lam_op_sum(d, NULL, 0, 0, &e));
    OK(lam_tensor_scalar(e, &v));
    STILL("lam_op_sum and lam_tensor_scalar");
    cr_assert_eq(v, 108.0f);
    lam_tensor_release(a);
    lam_tensor_release(b);
    lam_tensor_release(c);
    lam_tensor_release(d);
    lam_tensor_release(e);
    STILL("lam_tensor_release");
    tu_assert_released();
}

static lam_status fill_halves(const char *name, const lam_shape *shape, float *data, size_t count,
                              lam_rng *rng, void *user) {
    (void)name, (void)shape, (void)rng, (void)user;
    for (size_t i = 0; i < count; i++) {
        data[i] = 0.5f;
    }
    return LAM_OK;
}

Test(errors, last_error_survives_successful_layer_calls) {
    lam_ctx *ctx = tu_ctx();
    fail_once();
    lam_block *dense = NULL;
    OK(lam_layer_create("Dense", "units=1", &dense));
    STILL("lam_layer_create");
    lam_initializer *init = NULL;
    OK(lam_init_custom("Halves", fill_halves, NULL, &init));
    OK(lam_block_initialize(dense, init, ctx, 0));
    STILL("lam_block_initialize with a custom initializer");
    lam_initializer_release(init);
    lam_tensor *x = tu_tensor(TU_SHAPE(1, 2), (const float[]){1, 3}, 2);
    OK(lam_tensor_attach_grad(x));
    int was = lam_autograd_set_recording(1);
    lam_tensor *y = NULL;
    OK(lam_block_call(dense, x, &y));
    lam_autograd_set_recording(was);
    STILL("lam_block_call of a Dense layer (infer_shape and forward)");
    float out;
    OK(lam_tensor_scalar(y, &out));
    cr_assert_eq(out, 2.0f, "0.5*1 + 0.5*3 + 0 (bias) is 2, got %g", (double)out);
    OK(lam_autograd_backward(y, NULL));
    STILL("lam_autograd_backward");
    lam_tensor *g = NULL;
    OK(lam_tensor_grad(x, &g));
    float gx[2];
    OK(lam_tensor_read(g, gx, 2));
    cr_assert(gx[0] == 0.5f && gx[1] == 0.5f, "dy/dx is the weight (0.5, 0.5)");
    lam_tensor_release(g);
    lam_tensor_release(y);
    lam_tensor_release(x);
    lam_block_release(dense);
    STILL("lam_block_release");
}

Test(errors, next_failure_replaces_the_message_and_clear_empties_it) {
    fail_once();
    lam_tensor *t = TU_POISON;
    tu_assert_status(lam_tensor_create(NULL, NULL, &t), LAM_ERR_INVALID_ARGUMENT,
                     "lam_tensor_create with a NULL shape");
    cr_assert_str_eq(lam_last_error(), "lam_tensor_create: Invalid argument, shape is NULL");
    lam_clear_error();
    cr_assert_str_eq(lam_last_error(), "");
}
