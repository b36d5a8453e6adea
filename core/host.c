/* The host table handed to plugins: the core's functions behind the ABI. */
#include "internal.h"

#include <stdio.h>

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

/* Layer instances arrive with blocks; until a layer instance exists these have no subject. */
static lam_status no_layer(const char *fn) {
    return lam__error(LAM_ERR_STATE, "%s: Invalid state, not called from a layer instance", fn);
}
static lam_status host_attr_int(const lam_attrs *a, const char *name, int64_t *v) {
    (void)a, (void)name, (void)v;
    return no_layer("attr_int");
}
static lam_status host_attr_float(const lam_attrs *a, const char *name, double *v) {
    (void)a, (void)name, (void)v;
    return no_layer("attr_float");
}
static lam_status host_attr_bool(const lam_attrs *a, const char *name, int32_t *v) {
    (void)a, (void)name, (void)v;
    return no_layer("attr_bool");
}
static lam_status host_attr_string(const lam_attrs *a, const char *name, const char **v) {
    (void)a, (void)name, (void)v;
    return no_layer("attr_string");
}
static lam_status host_declare_param(lam_layer *l, const char *name, const lam_shape *shape,
                                     const char *init, uint32_t flags) {
    (void)l, (void)name, (void)shape, (void)init, (void)flags;
    return no_layer("layer_declare_param");
}
static lam_status host_param_infer_shape(lam_layer *l, const char *name, const lam_shape *shape) {
    (void)l, (void)name, (void)shape;
    return no_layer("layer_param_infer_shape");
}
static const lam_shape *host_param_shape(lam_layer *l, const char *name) {
    (void)l, (void)name;
    no_layer("layer_param_shape");
    return NULL;
}
static lam_status host_param_data(lam_layer *l, const char *name, const lam_tensor *like,
                                  lam_tensor **data) {
    (void)l, (void)name, (void)like;
    if (data) {
        *data = NULL;
    }
    return no_layer("layer_param_data");
}
static lam_status host_param_add_grad(lam_layer *l, const char *name, const lam_tensor *g) {
    (void)l, (void)name, (void)g;
    return no_layer("layer_param_add_grad");
}

void lam__host_table_init_registry(lam_host_api *host);

void lam__host_table_init(lam_host_api *h) {
    h->struct_size = (uint32_t)sizeof *h;
    h->abi_version = LAM_ABI_VERSION;
    h->abi_fingerprint = LAM_ABI_FINGERPRINT;
    h->set_error = host_set_error;
    h->log = host_log;
    lam__host_table_init_registry(h);
    h->tensor_create = host_tensor_create;
    h->tensor_retain = lam_tensor_retain;
    h->tensor_release = lam_tensor_release;
    h->tensor_shape = lam_tensor_shape;
    h->tensor_ctx = lam_tensor_ctx;
    h->tensor_read = lam_tensor_read;
    h->tensor_write = lam_tensor_write;
    h->tensor_reshape = host_tensor_reshape;
    h->op_matmul = lam_op_matmul;
    h->op_add = lam_op_add;
    h->op_sub = lam_op_sub;
    h->op_mul = lam_op_mul;
    h->op_div = lam_op_div;
    h->op_unary = lam__op_unary;
    h->op_scalar = lam__op_scalar;
    h->op_reduce = lam__op_reduce;
    h->op_softmax = lam__op_softmax;
    h->attr_int = host_attr_int;
    h->attr_float = host_attr_float;
    h->attr_bool = host_attr_bool;
    h->attr_string = host_attr_string;
    h->layer_declare_param = host_declare_param;
    h->layer_param_infer_shape = host_param_infer_shape;
    h->layer_param_shape = host_param_shape;
    h->layer_param_data = host_param_data;
    h->layer_param_add_grad = host_param_add_grad;
}
