/*
 * A plugin's own kernel (ABI 2.0): the GELU example plugin (sdk/examples/gelu) registers the
 * kernel "gelu.tanh" (reference, CPU AVX2 implementation, Vulkan SPIR-V) and the layer "GELU".
 * Values and gradients against float64 NumPy (ref/gelu_ref.py, output committed as
 * ref/gelu_ref.h), on the context LAMINA_BACKEND names (the suite runs on the CPU and on
 * Vulkan).
 */
#include "lamina/lamina.h"
#include "ref/gelu_ref.h"

#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

static void near(double got, double want, double tol, const char *what, int i) {
    cr_expect(fabs(got - want) <= tol * (1.0 + fabs(want)), "%s[%d]: got %.9g, want %.9g", what, i,
              got, want);
}

static lam_tensor *input(void) {
    float x[GELU_N];
    for (int i = 0; i < GELU_N; i++) {
        x[i] = (float)gelu_x[i];
    }
    lam_shape s = {.ndim = 1, .dims = {GELU_N}};
    lam_tensor *t = NULL;
    cr_assert_eq(lam_tensor_from_data(NULL, &s, x, GELU_N, &t), LAM_OK, "%s", lam_last_error());
    return t;
}

Test(gelu_kernel, values_match_numpy) {
    lam_tensor *x = input(), *y = NULL;
    cr_assert_eq(lam_kernel_call("gelu.tanh", NULL, 1, &x, 1, &y), LAM_OK, "%s", lam_last_error());
    float got[GELU_N];
    cr_assert_eq(lam_tensor_read(y, got, GELU_N), LAM_OK);
    for (int i = 0; i < GELU_N; i++) {
        near(got[i], gelu_y[i], 2e-6, "gelu", i);
    }
    lam_tensor_release(x);
    lam_tensor_release(y);
}

Test(gelu_kernel, layer_gradient_matches_numpy) {
    lam_block *g = NULL;
    cr_assert_eq(lam_layer_create("GELU", NULL, &g), LAM_OK, "%s", lam_last_error());
    lam_tensor *x = input(), *y = NULL, *loss = NULL;
    cr_assert_eq(lam_tensor_attach_grad(x), LAM_OK, "%s", lam_last_error());
    int was = lam_autograd_record_begin(1);
    cr_assert_eq(lam_block_forward(g, 1, &x, &y), LAM_OK, "%s", lam_last_error());
    cr_assert_eq(lam_op_sum(y, NULL, 0, 0, &loss), LAM_OK, "%s", lam_last_error());
    lam_autograd_record_end(was);
    cr_assert_eq(lam_autograd_backward(loss, NULL), LAM_OK, "%s", lam_last_error());
    float dx[GELU_N];
    lam_tensor *gx = NULL;
    cr_assert_eq(lam_tensor_grad(x, &gx), LAM_OK, "%s", lam_last_error());
    cr_assert_eq(lam_tensor_read(gx, dx, GELU_N), LAM_OK);
    lam_tensor_release(gx);
    for (int i = 0; i < GELU_N; i++) {
        near(dx[i], gelu_dy[i], 2e-5, "dgelu", i);
    }
    lam_tensor_release(loss);
    lam_tensor_release(y);
    lam_tensor_release(x);
    lam_block_release(g);
}

Test(gelu_kernel, nan_stays_in_its_element) {
    float x[20];
    for (int i = 0; i < 20; i++) {
        x[i] = (float)i * 0.25f - 2.0f;
    }
    x[9] = NAN;
    lam_shape s = {.ndim = 2, .dims = {2, 10}};
    lam_tensor *t = NULL, *y = NULL;
    cr_assert_eq(lam_tensor_from_data(NULL, &s, x, 20, &t), LAM_OK);
    cr_assert_eq(lam_kernel_call("gelu.tanh", NULL, 1, &t, 1, &y), LAM_OK, "%s", lam_last_error());
    float got[20];
    cr_assert_eq(lam_tensor_read(y, got, 20), LAM_OK);
    for (int i = 0; i < 20; i++) {
        if (i == 9) {
            cr_expect(isnan(got[i]), "NaN input 9 gave %g", got[i]);
        } else {
            double v = x[i], u = 0.7978845608028654 * (v + 0.044715 * v * v * v);
            near(got[i], 0.5 * v * (1.0 + tanh(u)), 2e-6, "gelu", i);
        }
    }
    lam_tensor_release(t);
    lam_tensor_release(y);
}

Test(gelu_kernel, unknown_kernel_and_wrong_arity) {
    lam_tensor *x = input(), *y = (lam_tensor *)1;
    cr_assert_eq(lam_kernel_call("gelu.nope", NULL, 1, &x, 1, &y), LAM_ERR_NOT_FOUND);
    cr_expect_str_eq(lam_last_error(), "lam_kernel_call: Not found, no kernel named 'gelu.nope'");
    lam_tensor *two[2] = {x, x};
    cr_assert_eq(lam_kernel_call("gelu.tanh", NULL, 2, two, 1, &y), LAM_ERR_INVALID_ARGUMENT);
    cr_expect_str_eq(lam_last_error(),
                     "gelu.tanh: Invalid argument, 2 inputs and 1 outputs given, it takes 1 and 1");
    lam_tensor_release(x);
}
