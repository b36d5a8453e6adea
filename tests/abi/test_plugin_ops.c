/*
 * lamina/plugin_ops.h against a recording host table: every helper must build exactly the
 * lam_host_op its documentation promises (op, operand order, counts, parameter struct with its
 * size, context / shape / dtype for the ops without inputs) and hand back the host's results
 * and status. The real host runs the same calls in the layer tests (Dense, Centered, MyDense).
 */
#include "lamina/plugin_ops.h"

#include <criterion/criterion.h>
#include <string.h>

/* Fake tensors: distinct addresses, never dereferenced by the helpers. */
static char tx, ty, tz, tr0, tr1;
#define X  ((lam_tensor *)(void *)&tx)
#define Y  ((lam_tensor *)(void *)&ty)
#define Z  ((lam_tensor *)(void *)&tz)
#define R0 ((lam_tensor *)(void *)&tr0)
#define R1 ((lam_tensor *)(void *)&tr1)

/* What the last host->op call carried. */
static lam_host_op g_call;
static lam_tensor *g_in[4];
static unsigned char g_params[512];
static lam_shape g_out_shape;
static lam_status g_result = LAM_OK;
static char g_msg[256];
static int g_calls;
static lam_shape g_x_shape = {3, 0, {2, 3, 4}};

static lam_status fake_op(const lam_host_op *call) {
    g_calls++;
    g_call = *call;
    memset(g_in, 0, sizeof g_in);
    for (uint32_t i = 0; i < call->n_inputs && i < 4; i++) {
        g_in[i] = call->inputs[i];
    }
    memset(g_params, 0, sizeof g_params);
    if (call->params != NULL) {
        uint32_t size = *(const uint32_t *)call->params;
        memcpy(g_params, call->params, size < sizeof g_params ? size : sizeof g_params);
    }
    if (call->out_shape != NULL) {
        g_out_shape = *call->out_shape;
    }
    if (g_result != LAM_OK) {
        return g_result; /* outputs left NULL, as the host does on failure */
    }
    call->outputs[0] = R0;
    if (call->n_outputs > 1) {
        call->outputs[1] = R1;
    }
    return LAM_OK;
}

static lam_status fake_set_error(lam_status st, const char *msg) {
    snprintf(g_msg, sizeof g_msg, "%s", msg);
    return st;
}

static const lam_shape *fake_shape(const lam_tensor *t) {
    return t == X ? &g_x_shape : NULL;
}

static lam_host_api g_host;

static void setup(void) {
    memset(&g_host, 0, sizeof g_host);
    g_host.struct_size = (uint32_t)sizeof g_host;
    g_host.abi_version = LAM_ABI_VERSION;
    g_host.op = fake_op;
    g_host.set_error = fake_set_error;
    g_host.tensor_shape = fake_shape;
    g_result = LAM_OK;
    g_calls = 0;
    g_msg[0] = '\0';
}

TestSuite(plugin_ops, .init = setup);

static void expect_call(lam_op op, uint32_t n_in, uint32_t n_out) {
    cr_expect_eq(g_call.struct_size, sizeof(lam_host_op));
    cr_expect_eq(g_call.abi_version, LAM_ABI_VERSION);
    cr_expect_eq(g_call.op, op, "op %d, expected %d", (int)g_call.op, (int)op);
    cr_expect_eq(g_call.n_inputs, n_in);
    cr_expect_eq(g_call.n_outputs, n_out);
}

Test(plugin_ops, binary_ops_pass_both_inputs_in_order) {
    lam_tensor *out = X;
    cr_assert_eq(lam_p_sub(&g_host, X, Y, &out), LAM_OK);
    expect_call(LAM_OP_SUB, 2, 1);
    cr_expect_eq(g_in[0], X);
    cr_expect_eq(g_in[1], Y);
    cr_expect_null(g_call.params);
    cr_expect_eq(out, R0);
    cr_assert_eq(lam_p_binary(&g_host, LAM_OP_EQUAL, Y, X, &out), LAM_OK);
    expect_call(LAM_OP_EQUAL, 2, 1);
    cr_expect_eq(g_in[0], Y);
}

Test(plugin_ops, matmul_and_linear_carry_gemm_params) {
    lam_tensor *out = NULL;
    cr_assert_eq(lam_p_matmul(&g_host, X, Y, LAM_GEMM_TRANS_B, &out), LAM_OK);
    expect_call(LAM_OP_GEMM, 2, 1);
    const lam_gemm_params *g = (const lam_gemm_params *)(void *)g_params;
    cr_expect_eq(g->struct_size, sizeof(lam_gemm_params));
    cr_expect_eq(g->flags, LAM_GEMM_TRANS_B);
    cr_expect_eq(g->alpha, 1.0);
    cr_expect_eq(g->beta, 0.0);

    cr_assert_eq(lam_p_linear(&g_host, X, Y, NULL, LAM_GEMM_TRANS_B, LAM_OP_TANH, &out), LAM_OK);
    expect_call(LAM_OP_LINEAR, 2, 1); /* no bias: two inputs */
    cr_expect_eq(g->act, LAM_OP_TANH);
    cr_assert_eq(lam_p_linear(&g_host, X, Y, Z, 0, LAM_OP_INVALID, &out), LAM_OK);
    expect_call(LAM_OP_LINEAR, 3, 1);
    cr_expect_eq(g_in[2], Z);
    cr_expect_eq(g->flags, 0u);

    cr_assert_eq(lam_p_matmul_batched(&g_host, X, Y, LAM_GEMM_TRANS_A, &out), LAM_OK);
    expect_call(LAM_OP_GEMM_BATCHED, 2, 1);
    cr_expect_eq(g->flags, LAM_GEMM_TRANS_A);
}

Test(plugin_ops, scalar_ops_carry_a_and_b) {
    lam_tensor *out = NULL;
    const lam_scalar_params *p = (const lam_scalar_params *)(void *)g_params;
    cr_assert_eq(lam_p_scalar(&g_host, LAM_OP_RSUB_SCALAR, X, 1.5, &out), LAM_OK);
    expect_call(LAM_OP_RSUB_SCALAR, 1, 1);
    cr_expect_eq(p->struct_size, sizeof(lam_scalar_params));
    cr_expect_eq(p->a, 1.5);
    cr_assert_eq(lam_p_clamp(&g_host, X, -0.5, 2.0, &out), LAM_OK);
    expect_call(LAM_OP_CLAMP, 1, 1);
    cr_expect_eq(p->a, -0.5);
    cr_expect_eq(p->b, 2.0);
    cr_assert_eq(lam_p_axpby(&g_host, 0.25, X, -3.0, Y, &out), LAM_OK);
    expect_call(LAM_OP_AXPBY, 2, 1);
    cr_expect_eq(p->a, 0.25);
    cr_expect_eq(p->b, -3.0);
    cr_expect_eq(g_in[0], X);
    cr_expect_eq(g_in[1], Y);
    cr_assert_eq(lam_p_where(&g_host, Z, X, Y, &out), LAM_OK);
    expect_call(LAM_OP_WHERE, 3, 1);
    cr_expect(g_in[0] == Z && g_in[1] == X && g_in[2] == Y, "cond, then x, then y");
}

Test(plugin_ops, reductions_carry_axes_and_keepdims) {
    lam_tensor *out = NULL;
    const lam_reduce_params *p = (const lam_reduce_params *)(void *)g_params;
    cr_assert_eq(lam_p_reduce(&g_host, LAM_OP_REDUCE_SUM, X, -1, 1, &out), LAM_OK);
    expect_call(LAM_OP_REDUCE_SUM, 1, 1);
    cr_expect_eq(p->struct_size, sizeof(lam_reduce_params));
    cr_expect_eq(p->n_axes, 1u);
    cr_expect_eq(p->axes[0], -1);
    cr_expect_eq(p->keepdims, 1);
    cr_assert_eq(lam_p_reduce_all(&g_host, LAM_OP_REDUCE_MEAN, X, 0, &out), LAM_OK);
    expect_call(LAM_OP_REDUCE_MEAN, 1, 1);
    cr_expect_eq(p->n_axes, 0u, "every axis");
    cr_expect_eq(p->keepdims, 0);
    const int32_t axes[2] = {0, 2};
    cr_assert_eq(lam_p_reduce_axes(&g_host, LAM_OP_REDUCE_MAX, X, axes, 2, 0, &out), LAM_OK);
    cr_expect(p->n_axes == 2 && p->axes[0] == 0 && p->axes[1] == 2);
    cr_assert_eq(lam_p_softmax(&g_host, X, 1, 1, &out), LAM_OK);
    expect_call(LAM_OP_LOG_SOFTMAX, 1, 1);
    cr_expect(p->n_axes == 1 && p->axes[0] == 1);
    lam_tensor *mean = NULL, *var = NULL;
    cr_assert_eq(lam_p_moments(&g_host, X, axes, 2, 1, &mean, &var), LAM_OK);
    expect_call(LAM_OP_MOMENTS, 1, 2);
    cr_expect(p->n_axes == 2 && p->keepdims == 1);
    cr_expect_eq(mean, R0);
    cr_expect_eq(var, R1);
}

Test(plugin_ops, ops_without_inputs_take_ctx_shape_and_dtype) {
    lam_ctx *ctx = (lam_ctx *)(void *)&tz;
    lam_shape s = {2, 0, {5, 7}};
    lam_tensor *out = NULL;
    cr_assert_eq(lam_p_fill(&g_host, ctx, LAM_DTYPE_F32, &s, 2.5, &out), LAM_OK);
    expect_call(LAM_OP_FILL, 0, 1);
    cr_expect_eq(g_call.ctx, ctx);
    cr_expect_eq(g_call.out_dtype, LAM_DTYPE_F32);
    cr_expect(g_out_shape.ndim == 2 && g_out_shape.dims[0] == 5 && g_out_shape.dims[1] == 7);
    cr_expect_eq(((const lam_scalar_params *)(void *)g_params)->a, 2.5);

    lam_rng_key key = {(uint32_t)sizeof key, 0, 11, 22, 33};
    cr_assert_eq(
        lam_p_random(&g_host, ctx, LAM_DTYPE_F32, &s, LAM_RANDOM_NORMAL, 0.5, 2.0, &key, &out),
        LAM_OK);
    expect_call(LAM_OP_RANDOM, 0, 1);
    const lam_random_params *r = (const lam_random_params *)(void *)g_params;
    cr_expect_eq(r->struct_size, sizeof(lam_random_params));
    cr_expect_eq(r->kind, LAM_RANDOM_NORMAL);
    cr_expect(r->seed == 11 && r->key == 22 && r->offset == 33);
    cr_expect(r->a == 0.5 && r->b == 2.0);
    cr_expect_eq(g_call.ctx, ctx);
}

Test(plugin_ops, cast_names_the_dtype_both_ways) {
    lam_tensor *out = NULL;
    cr_assert_eq(lam_p_cast(&g_host, X, LAM_DTYPE_I32, &out), LAM_OK);
    expect_call(LAM_OP_CAST, 1, 1);
    cr_expect_eq(g_call.out_dtype, LAM_DTYPE_I32);
    const lam_cast_params *p = (const lam_cast_params *)(void *)g_params;
    cr_expect_eq(p->struct_size, sizeof(lam_cast_params));
    cr_expect_eq(p->dtype, LAM_DTYPE_I32);
}

Test(plugin_ops, pad_copies_one_pair_per_axis) {
    const int64_t before[3] = {1, 0, 2}, after[3] = {0, 3, 1};
    lam_tensor *out = NULL;
    cr_assert_eq(lam_p_pad(&g_host, X, before, after, -1.0, &out), LAM_OK);
    expect_call(LAM_OP_PAD, 1, 1);
    const lam_pad_params *p = (const lam_pad_params *)(void *)g_params;
    cr_expect_eq(p->struct_size, sizeof(lam_pad_params));
    cr_expect_eq(p->value, -1.0);
    for (int i = 0; i < 3; i++) {
        cr_expect(p->before[i] == before[i] && p->after[i] == after[i], "axis %d", i);
    }
    cr_expect(p->before[3] == 0 && p->after[3] == 0, "axes past the rank stay 0");
    /* A tensor without a shape never reaches the host. */
    cr_expect_eq(lam_p_pad(&g_host, Y, before, after, 0.0, &out), LAM_ERR_INVALID_ARGUMENT);
    cr_expect_str_eq(g_msg, "lam_p_pad: Invalid argument, x is NULL");
    cr_expect_null(out);
}

Test(plugin_ops, index_ops_pass_table_indices_and_target) {
    lam_tensor *out = NULL;
    cr_assert_eq(lam_p_gather_rows(&g_host, X, Y, &out), LAM_OK);
    expect_call(LAM_OP_GATHER_ROWS, 2, 1);
    cr_expect(g_in[0] == X && g_in[1] == Y);
    cr_assert_eq(lam_p_scatter_add_rows(&g_host, X, Y, Z, &out), LAM_OK);
    expect_call(LAM_OP_SCATTER_ADD_ROWS, 3, 1);
    cr_expect(g_in[0] == X && g_in[1] == Y && g_in[2] == Z, "values, indices, then the target");
}

Test(plugin_ops, window_ops) {
    lam_window_params w;
    lam_p_window_2d(&w, 3, 2, 2, 1, 1, 0);
    cr_expect_eq(w.struct_size, sizeof w);
    cr_expect_eq(w.n_spatial, 2u);
    cr_expect(w.kernel[0] == 3 && w.kernel[1] == 2 && w.stride[0] == 2 && w.stride[1] == 1);
    cr_expect(w.pad_before[0] == 1 && w.pad_after[0] == 1 && w.pad_before[1] == 0);
    cr_expect(w.dilation[0] == 1 && w.dilation[1] == 1 && w.flags == 0);
    lam_tensor *out = NULL, *idx = NULL;
    cr_assert_eq(lam_p_im2col(&g_host, X, &w, &out), LAM_OK);
    expect_call(LAM_OP_IM2COL, 1, 1);
    cr_expect_eq(g_call.params, &w);
    const lam_shape img = {4, 0, {2, 3, 7, 6}};
    cr_assert_eq(lam_p_col2im(&g_host, X, &w, &img, &out), LAM_OK);
    expect_call(LAM_OP_COL2IM, 1, 1);
    cr_expect(g_out_shape.ndim == 4 && g_out_shape.dims[2] == 7 && g_out_shape.dims[3] == 6);
    cr_assert_eq(lam_p_max_pool(&g_host, X, &w, &out, &idx), LAM_OK);
    expect_call(LAM_OP_MAX_POOL, 1, 2);
    cr_expect(out == R0 && idx == R1);
    cr_assert_eq(lam_p_max_pool_backward(&g_host, Y, Z, &w, &img, &out), LAM_OK);
    expect_call(LAM_OP_MAX_POOL_BACKWARD, 2, 1);
    cr_expect(g_in[0] == Y && g_in[1] == Z, "gradient, then indices");
    cr_assert_eq(lam_p_avg_pool(&g_host, X, &w, &out), LAM_OK);
    expect_call(LAM_OP_AVG_POOL, 1, 1);
    cr_assert_eq(lam_p_avg_pool_backward(&g_host, Y, &w, &img, &out), LAM_OK);
    expect_call(LAM_OP_AVG_POOL_BACKWARD, 1, 1);
    cr_expect(g_out_shape.dims[1] == 3);
}

Test(plugin_ops, host_errors_pass_through_with_null_results) {
    g_result = LAM_ERR_SHAPE;
    lam_tensor *out = X, *a = X, *b = X;
    cr_expect_eq(lam_p_add(&g_host, X, Y, &out), LAM_ERR_SHAPE);
    cr_expect_null(out);
    cr_expect_eq(lam_p_max_pool(&g_host, X, NULL, &a, &b), LAM_ERR_SHAPE);
    cr_expect(a == NULL && b == NULL);
    const int32_t axis = 0;
    cr_expect_eq(lam_p_moments(&g_host, X, &axis, 1, 0, &a, &b), LAM_ERR_SHAPE);
    cr_expect(a == NULL && b == NULL);
    cr_expect_eq(g_calls, 3);
}
