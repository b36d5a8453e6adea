/*
 * Section 4.1, model construction: a custom block (MLP), a hand-made Sequential, FancyMLP with a
 * constant weight, a shared layer and control flow on a scalar, and NestMLP mixing them.
 */
#include "example_util.h"

#include <math.h>

/* ---- MLP: hidden = Dense(256, relu), output = Dense(10); forward = output(hidden(x)) ---- */

static lam_status mlp_forward(lam_block *self, void *state, uint32_t n, lam_tensor *const *in,
                              lam_tensor **out) {
    (void)state, (void)n;
    lam_tensor *h;
    lam_status st = lam_block_call(lam_block_child(self, "hidden"), in[0], &h);
    if (st != LAM_OK) {
        return st;
    }
    st = lam_block_call(lam_block_child(self, "output"), h, out);
    lam_tensor_release(h);
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
    lam_tensor *x = lam_tensor_retain(in[0]);
    for (size_t i = 0; i < lam_block_child_count(self); i++) {
        lam_tensor *y;
        lam_status st = lam_block_call(lam_block_child_at(self, i), x, &y);
        lam_tensor_release(x);
        if (st != LAM_OK) {
            return st;
        }
        x = y;
    }
    *out = x;
    return LAM_OK;
}

/* ---- FancyMLP: a constant weight, one Dense used twice, a loop on a scalar ---- */

static lam_status fancy_forward(lam_block *self, void *state, uint32_t n, lam_tensor *const *in,
                                lam_tensor **out) {
    (void)state, (void)n;
    lam_block *dense = lam_block_child(self, "dense");
    lam_tensor *w, *x, *t;
    lam_status st = lam_param_data(lam_block_param(self, "rand_weight"), &w);
    if (st != LAM_OK) {
        return st;
    }
    /* x = dense(x); x = relu(dot(x, rand_weight) + 1); x = dense(x)  (shared parameters) */
    if ((st = lam_block_call(dense, in[0], &x)) != LAM_OK) {
        lam_tensor_release(w);
        return st;
    }
    st = lam_op_dot(x, w, &t);
    lam_tensor_release(x);
    lam_tensor_release(w);
    if (st != LAM_OK) {
        return st;
    }
    st = lam_op_add_scalar(t, 1.0f, &x);
    lam_tensor_release(t);
    if (st != LAM_OK || (st = lam_op_relu(x, &t)) != LAM_OK) {
        lam_tensor_release(x);
        return st;
    }
    lam_tensor_release(x);
    st = lam_block_call(dense, t, &x);
    lam_tensor_release(t);
    if (st != LAM_OK) {
        return st;
    }
    /* while x.norm() > 1: x /= 2;  if x.norm() < 0.8: x *= 10  (control flow on a scalar) */
    for (;;) {
        lam_tensor *sq, *sum;
        float norm;
        if ((st = lam_op_square(x, &sq)) != LAM_OK) {
            break;
        }
        st = lam_op_sum(sq, NULL, 0, 0, &sum);
        lam_tensor_release(sq);
        if (st != LAM_OK) {
            break;
        }
        st = lam_tensor_scalar(sum, &norm);
        lam_tensor_release(sum);
        if (st != LAM_OK) {
            break;
        }
        norm = sqrtf(norm);
        float factor = norm > 1.0f ? 0.5f : norm < 0.8f ? 10.0f : 1.0f;
        if (factor == 1.0f) {
            break;
        }
        if ((st = lam_op_mul_scalar(x, factor, &t)) != LAM_OK) {
            break;
        }
        lam_tensor_release(x);
        x = t;
        if (factor == 10.0f) {
            break; /* the if runs once, after the loop */
        }
    }
    if (st != LAM_OK) {
        lam_tensor_release(x);
        return st;
    }
    st = lam_op_sum(x, NULL, 0, 0, out);
    lam_tensor_release(x);
    return st;
}

static lam_block *make_fancy(void) {
    lam_block *fancy, *dense;
    CHECK(lam_block_create("FancyMLP", fancy_forward, NULL, NULL, &fancy));
    lam_tensor *rand = example_uniform(20, 20, 0.0f, 1.0f, 7);
    CHECK(lam_block_constant_new(fancy, "rand_weight", rand, NULL));
    lam_tensor_release(rand);
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
    lam_status st = lam_block_call(lam_block_child(self, "net"), in[0], &h);
    if (st != LAM_OK) {
        return st;
    }
    st = lam_block_call(lam_block_child(self, "dense"), h, out);
    lam_tensor_release(h);
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
    lam_tensor *x = example_uniform(2, 20, 0.0f, 1.0f, 1), *y;

    printf("== MLP\n");
    lam_block *mlp = make_mlp();
    CHECK(lam_block_initialize(mlp, NULL, NULL, 0));
    CHECK(lam_block_call(mlp, x, &y));
    example_summary(mlp);
    example_print("net(X)", y, 4);
    lam_tensor_release(y);

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
    lam_tensor_release(y);

    printf("== FancyMLP\n");
    lam_block *fancy = make_fancy();
    CHECK(lam_block_initialize(fancy, NULL, NULL, 0));
    CHECK(lam_block_call(fancy, x, &y));
    example_print("net(X)", y, 4);
    lam_tensor_release(y);

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
    lam_tensor_release(y);

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
    lam_tensor_release(x);
    lam_shutdown();
    return 0;
}
