/*
 * Section 4.1, model construction: a custom block (MLP), a hand-made Sequential, FancyMLP with a
 * constant weight, a shared layer and control flow on a scalar, and NestMLP mixing them.
 * Forwards run inside a tensor scope (lam_scope_begin): temporaries are released at its end.
 */
#include "example_util.h"

/* ---- MLP: hidden = Dense(256, relu), output = Dense(10); forward = output(hidden(x)) ---- */

static lam_status mlp_forward(lam_block *self, void *state, uint32_t n, lam_tensor *const *in,
                              lam_tensor **out) {
    (void)state, (void)n;
    lam_tensor *h;
    lam_status st = lam_scope_begin();
    TRY(lam_block_call(lam_block_child(self, "hidden"), in[0], &h));
    TRY(lam_block_call(lam_block_child(self, "output"), h, out));
    lam_scope_keep(*out);
    lam_scope_end();
    return st;
}

static lam_block *make_mlp(void) {
    lam_block *mlp, *hidden, *output;
    CHECK(lam_block_create("MLP", mlp_forward, NULL, NULL, &mlp));
    CHECK(lam_layer_create("Dense", "units=256, activation=relu", &hidden));
    CHECK(lam_layer_create("Dense", "units=10", &output));
    CHECK(lam_block_register_child(mlp, "hidden", hidden));
    CHECK(lam_block_register_child(mlp, "output", output));
    lam_block_release(hidden); /* the MLP holds them now */
    lam_block_release(output);
    return mlp;
}

/* ---- MySequential: children kept in registration order, run one after another ---- */

static lam_status myseq_forward(lam_block *self, void *state, uint32_t n, lam_tensor *const *in,
                                lam_tensor **out) {
    (void)state, (void)n;
    lam_tensor *x = in[0];
    lam_status st = lam_scope_begin();
    for (size_t i = 0; i < lam_block_child_count(self); i++) {
        TRY(lam_block_call(lam_block_child_at(self, i), x, &x));
    }
    *out = st == LAM_OK ? lam_tensor_retain(x) : NULL; /* x may be the input: a reference */
    lam_scope_end();
    return st;
}

/* ---- FancyMLP: a constant weight, one Dense used twice, a loop on a scalar ---- */

/* x.norm().asscalar() */
static lam_status norm_of(const lam_tensor *x, float *value) {
    lam_tensor *norm;
    lam_status st = lam_op_norm(x, NULL, 0, 0, &norm);
    return TRY(lam_tensor_scalar(norm, value));
}

static lam_status fancy_forward(lam_block *self, void *state, uint32_t n, lam_tensor *const *in,
                                lam_tensor **out) {
    (void)state, (void)n;
    lam_block *dense = lam_block_child(self, "dense");
    lam_tensor *w, *x;
    float norm = 0;
    lam_status st = lam_scope_begin();
    /* x = dense(x); x = relu(dot(x, rand_weight) + 1); x = dense(x)  (shared parameters) */
    TRY(lam_param_data(lam_block_param(self, "rand_weight"), &w));
    TRY(lam_block_call(dense, in[0], &x));
    TRY(lam_op_dot(x, w, &x));
    TRY(lam_op_add_scalar(x, 1.0f, &x));
    TRY(lam_op_relu(x, &x));
    TRY(lam_block_call(dense, x, &x));
    /* while x.norm() > 1: x /= 2;  if x.norm() < 0.8: x *= 10  (control flow on a scalar) */
    while (TRY(norm_of(x, &norm)) == LAM_OK && norm > 1.0f) {
        TRY(lam_op_div_scalar(x, 2.0f, &x));
    }
    if (TRY(norm_of(x, &norm)) == LAM_OK && norm < 0.8f) {
        TRY(lam_op_mul_scalar(x, 10.0f, &x));
    }
    TRY(lam_op_sum(x, NULL, 0, 0, out));
    lam_scope_keep(*out);
    lam_scope_end();
    return st;
}

static lam_block *make_fancy(void) {
    lam_block *fancy, *dense;
    CHECK(lam_block_create("FancyMLP", fancy_forward, NULL, NULL, &fancy));
    lam_tensor *rand = example_uniform(20, 20, 0.0f, 1.0f, 7);
    CHECK(lam_block_constant_new(fancy, "rand_weight", rand, NULL));
    CHECK(lam_layer_create("Dense", "units=20, activation=relu", &dense));
    CHECK(lam_block_register_child(fancy, "dense", dense));
    lam_block_release(dense);
    return fancy;
}

/* ---- NestMLP: a Sequential inside a custom block ---- */

static lam_status nest_forward(lam_block *self, void *state, uint32_t n, lam_tensor *const *in,
                               lam_tensor **out) {
    (void)state, (void)n;
    lam_tensor *h;
    lam_status st = lam_scope_begin();
    TRY(lam_block_call(lam_block_child(self, "net"), in[0], &h));
    TRY(lam_block_call(lam_block_child(self, "dense"), h, out));
    lam_scope_keep(*out);
    lam_scope_end();
    return st;
}

static lam_block *make_nest(void) {
    lam_block *nest, *seq, *a, *b, *dense;
    CHECK(lam_block_create("NestMLP", nest_forward, NULL, NULL, &nest));
    CHECK(lam_sequential_create(&seq));
    CHECK(lam_layer_create("Dense", "units=64, activation=relu", &a));
    CHECK(lam_layer_create("Dense", "units=32, activation=relu", &b));
    CHECK(lam_sequential_add(seq, a));
    CHECK(lam_sequential_add(seq, b));
    CHECK(lam_layer_create("Dense", "units=16, activation=relu", &dense));
    CHECK(lam_block_register_child(nest, "net", seq));
    CHECK(lam_block_register_child(nest, "dense", dense));
    lam_block_release(a);
    lam_block_release(b);
    lam_block_release(seq);
    lam_block_release(dense);
    return nest;
}

int main(void) {
    lam_seed(0);
    CHECK(lam_scope_begin()); /* every tensor below is released by lam_scope_end */
    lam_tensor *x = example_uniform(2, 20, 0.0f, 1.0f, 1), *y;

    printf("== MLP\n");
    lam_block *mlp = make_mlp();
    CHECK(lam_block_initialize(mlp, NULL, NULL, 0));
    CHECK(lam_block_call(mlp, x, &y));
    example_summary(mlp);
    example_print("net(X)", y, 4);

    printf("== MySequential\n");
    lam_block *myseq, *d1, *d2;
    CHECK(lam_block_create("MySequential", myseq_forward, NULL, NULL, &myseq));
    CHECK(lam_layer_create("Dense", "units=256, activation=relu", &d1));
    CHECK(lam_layer_create("Dense", "units=10", &d2));
    CHECK(lam_sequential_add(myseq, d1));
    CHECK(lam_sequential_add(myseq, d2));
    lam_block_release(d1);
    lam_block_release(d2);
    CHECK(lam_block_initialize(myseq, NULL, NULL, 0));
    CHECK(lam_block_call(myseq, x, &y));
    example_print("net(X)", y, 4);

    printf("== FancyMLP\n");
    lam_block *fancy = make_fancy();
    CHECK(lam_block_initialize(fancy, NULL, NULL, 0));
    CHECK(lam_block_call(fancy, x, &y));
    example_print("net(X)", y, 4);

    printf("== NestMLP + Dense + FancyMLP in a Sequential\n");
    lam_block *chimera, *nest = make_nest(), *mid, *fancy2 = make_fancy();
    CHECK(lam_sequential_create(&chimera));
    CHECK(lam_layer_create("Dense", "units=20", &mid));
    CHECK(lam_sequential_add(chimera, nest));
    CHECK(lam_sequential_add(chimera, mid));
    CHECK(lam_sequential_add(chimera, fancy2));
    lam_block_release(nest);
    lam_block_release(mid);
    lam_block_release(fancy2);
    CHECK(lam_block_initialize(chimera, NULL, NULL, 0));
    CHECK(lam_block_call(chimera, x, &y));
    example_summary(chimera);
    example_print("chimera(X)", y, 4);

    printf("== A child that was never registered\n");
    lam_block *orphan;
    CHECK(lam_layer_create("Dense", "units=4", &orphan));
    if (lam_block_call(orphan, x, &y) != LAM_OK) {
        printf("error: %s\n", lam_last_error());
    }
    lam_block_release(orphan);

    lam_block_release(mlp);
    lam_block_release(myseq);
    lam_block_release(fancy);
    lam_block_release(chimera);
    CHECK(lam_scope_end());
    lam_shutdown();
    return 0;
}
