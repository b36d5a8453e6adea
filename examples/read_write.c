/*
 * Section 4.5, reading and writing: saving and loading tensors (a list, a dict) and a model's
 * parameters, after one training step of the chapter's MLP. Files go to the working directory
 * and are removed at the end. Tensors live in one tensor scope (lam_scope_begin).
 */
#include "example_util.h"

#include <string.h>

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
    lam_block_release(hidden);
    lam_block_release(output);
    return mlp;
}

/* The mean softmax cross-entropy of net(x) against labels (to report the loss). */
static float mean_loss(lam_block *net, lam_tensor *x, lam_tensor *labels) {
    lam_tensor *y, *loss, *m;
    float v;
    CHECK(lam_block_call(net, x, &y));
    CHECK(lam_loss_softmax_cross_entropy(y, labels, &loss));
    CHECK(lam_op_mean(loss, NULL, 0, 0, &m));
    CHECK(lam_tensor_scalar(m, &v));
    return v;
}

int main(void) {
    lam_seed(0);
    CHECK(lam_scope_begin()); /* every tensor below is released by lam_scope_end */
    printf("== a tensor, a list, a dict\n");
    lam_shape s4 = {.ndim = 1, .dims = {4}};
    lam_tensor *x, *y, *xy[2];
    CHECK(lam_tensor_from_data(NULL, &s4, (const float[]){0, 1, 2, 3}, 4, &x));
    CHECK(lam_tensor_create(NULL, &s4, &y));
    lam_tensor_dict *d;
    CHECK(lam_save_list("x-file.safetensors", &x, 1));
    CHECK(lam_load("x-file.safetensors", NULL, &d));
    example_print("x2", lam_tensor_dict_get(d, 0), 4);
    lam_tensor_dict_destroy(d);
    xy[0] = x, xy[1] = y;
    CHECK(lam_save_list("x-files.safetensors", xy, 2));
    CHECK(lam_load("x-files.safetensors", NULL, &d));
    printf("list: %s, %zu tensors\n", lam_tensor_dict_is_list(d) ? "yes" : "no",
           lam_tensor_dict_count(d));
    example_print("x2", lam_tensor_dict_get(d, 0), 4);
    example_print("y2", lam_tensor_dict_get(d, 1), 4);
    lam_tensor_dict_destroy(d);
    CHECK(lam_save_dict("mydict.safetensors", (const char *const[]){"x", "y"}, xy, 2));
    CHECK(lam_load("mydict.safetensors", NULL, &d));
    printf("dict: %s then %s\n", lam_tensor_dict_name(d, 0), lam_tensor_dict_name(d, 1));
    example_print("mydict2['x']", lam_tensor_dict_find(d, "x"), 4);
    lam_tensor_dict_destroy(d);

    printf("== one training step of the MLP, then save and load its parameters\n");
    lam_shape s2 = {.ndim = 1, .dims = {2}};
    lam_tensor *X = example_uniform(2, 20, 0.0f, 1.0f, 1), *labels;
    CHECK(lam_tensor_from_data(NULL, &s2, (const float[]){3, 7}, 2, &labels));
    lam_block *net = make_mlp();
    CHECK(lam_block_initialize(net, NULL, NULL, 0));
    float before = mean_loss(net, X, labels);
    lam_param_list *params;
    lam_trainer *trainer;
    lam_tensor *out, *loss;
    CHECK(lam_block_collect_params(net, NULL, &params));
    lam_sgd_options sgd = LAM_SGD_OPTIONS_INIT;
    sgd.learning_rate = 0.5;
    CHECK(lam_trainer_create_sgd(params, &sgd, &trainer));
    int was = lam_autograd_record_begin(1);
    CHECK(lam_block_call(net, X, &out));
    CHECK(lam_loss_softmax_cross_entropy(out, labels, &loss));
    lam_autograd_record_end(was);
    CHECK(lam_autograd_backward(loss, NULL));
    CHECK(lam_trainer_step(trainer, 2));
    CHECK(lam_block_save_parameters(net, "mlp.params.safetensors"));
    printf("the loss went down: %s\n", mean_loss(net, X, labels) < before ? "yes" : "no");
    lam_block *clone = make_mlp();
    CHECK(lam_block_load_parameters(clone, "mlp.params.safetensors", NULL));
    lam_tensor *y2;
    float v1[20], v2[20];
    CHECK(lam_block_call(net, X, &out));
    CHECK(lam_block_call(clone, X, &y2));
    CHECK(lam_tensor_read(out, v1, 20));
    CHECK(lam_tensor_read(y2, v2, 20));
    printf("clone(X) == net(X): %s\n", memcmp(v1, v2, sizeof v1) == 0 ? "yes" : "no");
    const char *files[] = {"x-file.safetensors", "x-files.safetensors", "mydict.safetensors",
                           "mlp.params.safetensors"};
    for (size_t i = 0; i < 4; i++) {
        remove(files[i]);
    }
    lam_trainer_destroy(trainer);
    lam_param_list_destroy(params);
    lam_block_release(net);
    lam_block_release(clone);
    CHECK(lam_scope_end());
    lam_shutdown();
    return 0;
}
