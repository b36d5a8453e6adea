/* The host table handed to plugins: the core's functions behind the ABI. */
#include "host.h"
#include "error.h"
#include "layer.h"
#include "log.h"
#include "ops.h"
#include "registry.h"

#include <stdio.h>
#include <string.h>

static lam_status host_set_error(lam_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    lam__verror(status, fmt, ap);
    va_end(ap);
    return status;
}

static void host_log(lam_log_level level, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    lam__vlog(level, fmt, ap);
    va_end(ap);
}

static lam_status host_tensor_create(lam_ctx *ctx, const lam_shape *shape, lam_tensor **out) {
    return lam_tensor_create(ctx, shape, out);
}

static lam_status host_tensor_reshape(lam_tensor *t, const lam_shape *shape, lam_tensor **out) {
    return lam_tensor_reshape(t, shape, out);
}

/* Filled here and nowhere else; constant, so a plugin may keep the pointer it was given. */
static const lam_host_api host_table = {
    .struct_size = (uint32_t)sizeof(lam_host_api),
    .abi_version = LAM_ABI_VERSION,
    .abi_fingerprint = LAM_ABI_FINGERPRINT,
    .set_error = host_set_error,
    .log = host_log,
    .register_backend = lam__host_register_backend,
    .register_layer = lam__host_register_layer,
    .tensor_create = host_tensor_create,
    .tensor_retain = lam_tensor_retain,
    .tensor_release = lam_tensor_release,
    .tensor_shape = lam_tensor_shape,
    .tensor_ctx = lam_tensor_ctx,
    .tensor_read = lam_tensor_read,
    .tensor_write = lam_tensor_write,
    .tensor_reshape = host_tensor_reshape,
    .op_matmul = lam_op_matmul,
    .op_add = lam_op_add,
    .op_sub = lam_op_sub,
    .op_mul = lam_op_mul,
    .op_div = lam_op_div,
    .op_unary = lam__op_unary,
    .op_scalar = lam__op_scalar,
    .op_reduce = lam__op_reduce,
    .op_softmax = lam__op_softmax,
    .attr_int = lam__host_attr_int,
    .attr_float = lam__host_attr_float,
    .attr_bool = lam__host_attr_bool,
    .attr_string = lam__host_attr_string,
    .layer_declare_param = lam__host_declare_param,
    .layer_param_infer_shape = lam__host_param_infer_shape,
    .layer_param_shape = lam__host_param_shape,
    .layer_param_data = lam__host_param_data,
    .layer_param_add_grad = lam__host_param_add_grad,
    .layer_name = lam__host_layer_name,
    .layer_input_needs_grad = lam__host_input_needs_grad,
    .op_linear = lam_op_linear,
};

const lam_host_api *lam__host_table(void) {
    return &host_table;
}
