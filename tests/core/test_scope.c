/*
 * Tensor scopes (lam_scope_begin / lam_scope_end / lam_scope_keep): what a scope releases and
 * what it leaves alone (kept, retained, released by hand, the library's own tensors), nesting,
 * callbacks, threads, error paths and the tape. Leaks are counted with lam_tensor_live_count;
 * values are worked by hand.
 */
#include "test_util.h"

#include <pthread.h>

TestSuite(scope, .fini = tu_fini);

static lam_tensor *vec(float a, float b, float c) {
    float d[3] = {a, b, c};
    return tu_tensor(TU_SHAPE(3), d, 3);
}

static void assert_values(const lam_tensor *t, float a, float b, float c, const char *what) {
    const float *v = tu_read(t);
    cr_assert(v[0] == a && v[1] == b && v[2] == c, "%s: (%g, %g, %g), expected (%g, %g, %g)", what,
              v[0], v[1], v[2], a, b, c);
}

Test(scope, end_releases_every_returned_temporary) {
    lam_tensor *x = vec(1, 2, 3);
    size_t before = lam_tensor_live_count();
    cr_assert_eq(lam_scope_begin(), LAM_OK);
    lam_tensor *a = NULL, *b = NULL, *c = NULL;
    cr_assert_eq(lam_op_mul_scalar(x, 2.0f, &a), LAM_OK);
    cr_assert_eq(lam_op_add(a, x, &b), LAM_OK);
    cr_assert_eq(lam_op_square(b, &c), LAM_OK);
    assert_values(c, 9, 36, 81, "(2x + x)^2");
    cr_assert_eq(lam_tensor_live_count(), before + 3);
    cr_assert_eq(lam_scope_end(), LAM_OK);
    cr_assert_eq(lam_tensor_live_count(), before, "the scope's three tensors are released");
    assert_values(x, 1, 2, 3, "a tensor made before the scope is left alone");
    lam_tensor_release(x);
    tu_assert_released();
}

Test(scope, kept_tensor_outlives_the_scope) {
    lam_tensor *x = vec(1, 2, 3), *y = NULL;
    cr_assert_eq(lam_scope_begin(), LAM_OK);
    lam_tensor *h = NULL, *o = NULL;
    cr_assert_eq(lam_op_neg(x, &h), LAM_OK);
    cr_assert_eq(lam_op_relu(h, &o), LAM_OK);
    cr_assert_eq(lam_op_add_scalar(o, 5.0f, &y), LAM_OK);
    cr_assert_eq(lam_scope_keep(y), y);
    cr_assert_eq(lam_scope_end(), LAM_OK);
    assert_values(y, 5, 5, 5, "relu(-x) + 5");
    cr_assert_eq(lam_tensor_live_count(), 2, "x and y alive");
    cr_assert_null(lam_scope_keep(NULL));
    cr_assert_eq(lam_scope_keep(x), x, "a tensor no scope holds is returned unchanged");
    lam_tensor_release(y);
    lam_tensor_release(x);
    tu_assert_released();
}

Test(scope, nested_scopes_release_innermost_first_and_keep_moves_outward) {
    lam_tensor *x = vec(1, 2, 3);
    cr_assert_eq(lam_scope_begin(), LAM_OK);
    lam_tensor *outer = NULL, *inner = NULL, *moved = NULL;
    cr_assert_eq(lam_op_mul_scalar(x, 10.0f, &outer), LAM_OK);
    cr_assert_eq(lam_scope_begin(), LAM_OK);
    cr_assert_eq(lam_op_add(outer, x, &inner), LAM_OK);
    cr_assert_eq(lam_op_sub(inner, x, &moved), LAM_OK);
    lam_scope_keep(moved);
    cr_assert_eq(lam_tensor_live_count(), 4);
    cr_assert_eq(lam_scope_end(), LAM_OK);
    cr_assert_eq(lam_tensor_live_count(), 3, "the inner scope released `inner` only");
    assert_values(moved, 10, 20, 30, "kept into the outer scope");
    assert_values(outer, 10, 20, 30, "the outer scope's tensor");
    cr_assert_eq(lam_scope_end(), LAM_OK);
    cr_assert_eq(lam_tensor_live_count(), 1, "the outer scope released outer and moved");
    lam_tensor_release(x);
    tu_assert_released();
}

/* Code written without scopes (it releases its temporaries) runs unchanged inside one, also
 * when the tape keeps a temporary it released: the scope then releases nothing more of it. */
Test(scope, release_by_hand_inside_a_scope_with_the_tape) {
    lam_tensor *x = vec(1, 2, 3), *loss = NULL;
    cr_assert_eq(lam_tensor_attach_grad(x), LAM_OK);
    cr_assert_eq(lam_scope_begin(), LAM_OK);
    int was = lam_autograd_set_recording(1);
    lam_tensor *t = NULL, *u = NULL;
    cr_assert_eq(lam_op_mul_scalar(x, 2.0f, &t), LAM_OK);
    cr_assert_eq(lam_op_mul(t, t, &u), LAM_OK); /* the tape keeps t */
    lam_tensor_release(t);                      /* the caller's reference, by hand */
    cr_assert_eq(lam_op_sum(u, NULL, 0, 0, &loss), LAM_OK);
    lam_autograd_set_recording(was);
    lam_scope_keep(loss);
    cr_assert_eq(lam_scope_end(), LAM_OK);
    /* sum((2x)^2) = 4 * 14; d/dx = 8x */
    float v = 0;
    cr_assert_eq(lam_tensor_scalar(loss, &v), LAM_OK);
    cr_assert_eq(v, 56.0f);
    cr_assert_eq(lam_autograd_backward(loss, NULL), LAM_OK, "%s", lam_last_error());
    lam_tensor *g = NULL;
    cr_assert_eq(lam_tensor_grad(x, &g), LAM_OK);
    assert_values(g, 8, 16, 24, "gradient 8x through the released temporary");
    lam_tensor_release(g);
    lam_tensor_release(loss);
    lam_tensor_release(x);
    tu_assert_released();
}

Test(scope, retain_gives_an_own_reference_and_pairs_balance) {
    lam_tensor *x = vec(1, 2, 3), *kept = NULL;
    cr_assert_eq(lam_scope_begin(), LAM_OK);
    lam_tensor *a = NULL, *b = NULL;
    cr_assert_eq(lam_op_abs(x, &a), LAM_OK);
    cr_assert_eq(lam_op_neg(x, &b), LAM_OK);
    lam_tensor_retain(a); /* a retain-release pair: the scope still releases a */
    lam_tensor_release(a);
    kept = lam_tensor_retain(b); /* an own reference beyond the scope */
    cr_assert_eq(lam_scope_end(), LAM_OK);
    cr_assert_eq(lam_tensor_live_count(), 2, "x and the retained b");
    assert_values(kept, -1, -2, -3, "retained");
    lam_tensor_release(kept);
    lam_tensor_release(x);
    tu_assert_released();
}

/* A failing call adds nothing; one lam_scope_end on the error path frees what came before. */
static lam_status forward_that_fails(lam_tensor *x, lam_tensor *w, lam_tensor **out) {
    lam_status st = lam_scope_begin();
    if (st != LAM_OK) {
        return st;
    }
    lam_tensor *h = NULL, *y = NULL;
    st = lam_op_relu(x, &h);
    if (st == LAM_OK) {
        st = lam_op_add(h, w, &y); /* (3,) + (2,): a shape error */
    }
    if (st == LAM_OK) {
        *out = lam_scope_keep(y);
    }
    lam_scope_end();
    return st;
}

Test(scope, error_path_releases_what_the_scope_holds) {
    lam_tensor *x = vec(1, 2, 3), *w = tu_tensor(TU_SHAPE(2), (const float[]){1, 1}, 2);
    lam_tensor *out = NULL;
    tu_assert_status(forward_that_fails(x, w, &out), LAM_ERR_SHAPE, "forward");
    tu_assert_msg("(3,)", "the shapes are named");
    cr_assert_null(out);
    cr_assert_eq(lam_tensor_live_count(), 2, "relu's result was released by the scope");
    lam_tensor_release(x);
    lam_tensor_release(w);
    tu_assert_released();
}

Test(scope, end_without_a_scope_is_a_state_error) {
    tu_assert_status(lam_scope_end(), LAM_ERR_STATE, "lam_scope_end");
    tu_assert_msg("lam_scope_end: Bad state, no scope is open", "message");
}

/* The library's own tensors (a layer's parameters, made by deferred initialization inside a
 * forward called in the scope) stay; references to them returned in the scope are released. */
Test(scope, parameters_made_inside_a_scope_are_not_released) {
    lam_block *net = NULL;
    cr_assert_eq(lam_layer_create("Dense", "units=2", &net), LAM_OK, "%s", lam_last_error());
    cr_assert_eq(lam_block_initialize(net, NULL, NULL, 0), LAM_OK);
    lam_tensor *x = vec(1, 2, 3);
    lam_param *wp = lam_block_param(net, "weight");
    cr_assert_eq(lam_scope_begin(), LAM_OK);
    lam_tensor *y = NULL, *w = NULL, *w2 = NULL;
    lam_tensor *x2 = NULL;
    lam_shape row = TU_SHAPE(1, 3);
    cr_assert_eq(lam_tensor_reshape(x, &row, &x2), LAM_OK);
    cr_assert_eq(lam_block_call(net, x2, &y), LAM_OK, "%s", lam_last_error());
    cr_assert_eq(lam_param_data(wp, &w), LAM_OK);
    cr_assert_eq(lam_param_data(wp, &w2), LAM_OK); /* the same tensor twice: two references */
    cr_assert_eq(w, w2);
    cr_assert_eq(lam_scope_end(), LAM_OK);
    /* The weight is still there and usable: a second forward gives the same output. */
    lam_tensor *y2 = NULL, *x3 = NULL;
    cr_assert_eq(lam_tensor_reshape(x, &row, &x3), LAM_OK);
    cr_assert_eq(lam_block_call(net, x3, &y2), LAM_OK, "%s", lam_last_error());
    cr_assert_eq(lam_param_data(wp, &w), LAM_OK);
    float wv[6], yv[2];
    cr_assert_eq(lam_tensor_read(w, wv, 6), LAM_OK);
    cr_assert_eq(lam_tensor_read(y2, yv, 2), LAM_OK);
    for (int i = 0; i < 2; i++) { /* bias is zero-initialized */
        float want = wv[3 * i] + 2 * wv[3 * i + 1] + 3 * wv[3 * i + 2];
        cr_assert_float_eq(yv[i], want, 1e-5f);
    }
    lam_tensor_release(w);
    lam_tensor_release(y2);
    lam_tensor_release(x3);
    lam_tensor_release(x);
    lam_block_release(net);
    tu_assert_released();
}

/* A custom block's forward may open its own scope: it holds only what the forward's own calls
 * return; the outer scope (opened around the call) cannot be ended from inside. */
static lam_status scoped_forward(lam_block *self, void *state, uint32_t n,
                                 lam_tensor *const *inputs, lam_tensor **output) {
    (void)self, (void)n;
    int *checks = state;
    lam_status st = lam_scope_end(); /* the caller's scope: refused */
    if (st == LAM_ERR_STATE && tu_contains(lam_last_error(), "opened outside this callback")) {
        (*checks)++;
    }
    st = lam_scope_begin();
    if (st != LAM_OK) {
        return st;
    }
    lam_tensor *a = NULL, *b = NULL;
    st = lam_op_mul_scalar(inputs[0], 3.0f, &a);
    if (st == LAM_OK) {
        st = lam_op_add_scalar(a, 1.0f, &b);
    }
    if (st == LAM_OK) {
        *output = lam_scope_keep(b);
    }
    lam_scope_end();
    return st;
}

Test(scope, custom_forward_with_its_own_scope_inside_an_outer_one) {
    int checks = 0;
    lam_block *blk = NULL;
    cr_assert_eq(lam_block_create("Scoped", scoped_forward, &checks, NULL, &blk), LAM_OK);
    cr_assert_eq(lam_block_initialize(blk, NULL, NULL, 0), LAM_OK);
    lam_tensor *x = vec(1, 2, 3);
    cr_assert_eq(lam_scope_begin(), LAM_OK);
    lam_tensor *y = NULL, *z = NULL;
    cr_assert_eq(lam_block_call(blk, x, &y), LAM_OK, "%s", lam_last_error());
    cr_assert_eq(lam_op_neg(y, &z), LAM_OK);
    assert_values(z, -4, -7, -10, "-(3x + 1)");
    cr_assert_eq(checks, 1, "the outer scope could not be ended from the forward");
    cr_assert_eq(lam_tensor_live_count(), 3, "x, y (the outer scope's) and z");
    cr_assert_eq(lam_scope_end(), LAM_OK);
    cr_assert_eq(lam_tensor_live_count(), 1);
    lam_tensor_release(x);
    lam_block_release(blk);
    tu_assert_released();
}

/* Scopes are per thread: a thread's tensors go to its own scope, and a thread that exits with a
 * scope open has it ended. */
static void *thread_body(void *arg) {
    lam_tensor *x = arg, *a = NULL, *b = NULL;
    if (lam_scope_begin() != LAM_OK || lam_op_exp(x, &a) != LAM_OK || lam_op_log(a, &b) != LAM_OK) {
        return (void *)1;
    }
    return NULL; /* exits with the scope open */
}

Test(scope, per_thread_and_ended_at_thread_exit) {
    lam_tensor *x = vec(0, 0, 0);
    cr_assert_eq(lam_scope_begin(), LAM_OK);
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, thread_body, x), 0);
    void *ret = NULL;
    cr_assert_eq(pthread_join(th, &ret), 0);
    cr_assert_null(ret, "the thread's calls failed: %s", lam_last_error());
    cr_assert_eq(lam_tensor_live_count(), 1, "the thread's two tensors were released at its exit");
    cr_assert_eq(lam_scope_end(), LAM_OK, "this thread's scope is still open");
    cr_assert_eq(lam_tensor_live_count(), 1, "x was made outside any scope");
    lam_tensor_release(x);
    tu_assert_released();
}
