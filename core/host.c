/* The host table handed to plugins: the core's functions behind the ABI, filled in one place. */
#include "host.h"
#include "error.h"
#include "host_op.h"
#include "kernel.h"
#include "layer.h"
#include "log.h"
#include "ops.h"
#include "views.h"
#include "registry.h"
#include "registry_comm.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static lam_status host_set_error_fmt(lam_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    lam__verror(status, fmt, ap);
    va_end(ap);
    return status;
}

static lam_status host_set_error(lam_status status, const char *message) {
    return lam__error(status, "%s", message != NULL ? message : "");
}

static void host_log(lam_log_level level, const char *message) {
    lam__log(level, "%s", message != NULL ? message : "");
}

static void *host_alloc(size_t bytes) {
    return malloc(bytes);
}

static void host_free(void *p) {
    free(p);
}

static lam_status host_tensor_create(lam_ctx *ctx, lam_dtype dtype, const lam_shape *shape,
                                     lam_tensor **out) {
    return lam_tensor_create_dtype(ctx, dtype, shape, out);
}

static lam_status host_tensor_reshape(lam_tensor *t, const lam_shape *shape, lam_tensor **out) {
    return lam_tensor_reshape(t, shape, out);
}

static lam_status host_tensor_contiguous(lam_tensor *t, lam_tensor **out) {
    return lam_op_copy(t, out);
}

static int32_t host_is_recording(void) {
    return lam_autograd_is_recording();
}

static int32_t host_is_training(void) {
    return lam_autograd_is_training();
}

static void (*host_get_proc_address(const char *name))(void);

/* Filled here and nowhere else; constant, so a plugin may keep the pointer it was given. */
static const lam_host_api host_table = {
    .struct_size = (uint32_t)sizeof(lam_host_api),
    .abi_version = LAM_ABI_VERSION,
    .abi_fingerprint = LAM_ABI_FINGERPRINT,
    .set_error_fmt = host_set_error_fmt,
    .set_error = host_set_error,
    .log = host_log,
    .get_proc_address = host_get_proc_address,
    .register_backend = lam__host_register_backend,
    .register_layer = lam__host_register_layer,
    .register_kernel = lam__host_register_kernel,
    .alloc = host_alloc,
    .free = host_free,
    .tensor_create = host_tensor_create,
    .tensor_retain = lam_tensor_retain,
    .tensor_release = lam_tensor_release,
    .tensor_shape = lam_tensor_shape,
    .tensor_dtype = lam_tensor_dtype,
    .tensor_ctx = lam_tensor_ctx,
    .tensor_read = lam_tensor_read_bytes,
    .tensor_write = lam_tensor_write_bytes,
    .tensor_reshape = host_tensor_reshape,
    .tensor_slice = lam_tensor_slice,
    .tensor_permute = lam_tensor_permute,
    .tensor_contiguous = host_tensor_contiguous,
    .tensor_detach = lam_tensor_detach,
    .op = lam__host_op,
    .kernel_call = lam_kernel_call,
    .is_recording = host_is_recording,
    .is_training = host_is_training,
    .attr_int = lam__host_attr_int,
    .attr_float = lam__host_attr_float,
    .attr_bool = lam__host_attr_bool,
    .attr_string = lam__host_attr_string,
    .attr_ints = lam__host_attr_ints,
    .layer_declare_param = lam__host_declare_param,
    .layer_param_infer_shape = lam__host_param_infer_shape,
    .layer_param_shape = lam__host_param_shape,
    .layer_param_data = lam__host_param_data,
    .layer_param_add_grad = lam__host_param_add_grad,
    .layer_param_assign = lam__host_param_assign,
    .layer_name = lam__host_layer_name,
    .layer_input_needs_grad = lam__host_input_needs_grad,
    .layer_rng = lam__host_layer_rng,
    .register_comm = lam__host_register_comm,
};

typedef void (*proc)(void);

#define ENTRY(f)                                                                                   \
    { #f, (proc)host_table.f }

/* Every entry of the table by its field name (extensions are appended here too). */
static void (*host_get_proc_address(const char *name))(void) {
    const struct {
        const char *name;
        proc fn;
    } entries[] = {
        ENTRY(set_error_fmt),
        ENTRY(set_error),
        ENTRY(log),
        ENTRY(register_backend),
        ENTRY(register_layer),
        ENTRY(register_kernel),
        ENTRY(alloc),
        ENTRY(free),
        ENTRY(tensor_create),
        ENTRY(tensor_retain),
        ENTRY(tensor_release),
        ENTRY(tensor_shape),
        ENTRY(tensor_dtype),
        ENTRY(tensor_ctx),
        ENTRY(tensor_read),
        ENTRY(tensor_write),
        ENTRY(tensor_reshape),
        ENTRY(tensor_slice),
        ENTRY(tensor_permute),
        ENTRY(tensor_contiguous),
        ENTRY(tensor_detach),
        ENTRY(op),
        ENTRY(kernel_call),
        ENTRY(is_recording),
        ENTRY(is_training),
        ENTRY(attr_int),
        ENTRY(attr_float),
        ENTRY(attr_bool),
        ENTRY(attr_string),
        ENTRY(attr_ints),
        ENTRY(layer_declare_param),
        ENTRY(layer_param_infer_shape),
        ENTRY(layer_param_shape),
        ENTRY(layer_param_data),
        ENTRY(layer_param_add_grad),
        ENTRY(layer_param_assign),
        ENTRY(layer_name),
        ENTRY(layer_input_needs_grad),
        ENTRY(layer_rng),
        ENTRY(register_comm),
    };
    for (size_t i = 0; name != NULL && i < sizeof entries / sizeof entries[0]; i++) {
        if (strcmp(entries[i].name, name) == 0) {
            return entries[i].fn;
        }
    }
    return NULL;
}

const lam_host_api *lam__host_table(void) {
    return &host_table;
}
