/*
 * The ABI fingerprint: FNV-1a 64 over the size and field offsets of every struct that crosses
 * the plugin boundary and the count of every pinned enum. The value computed here from the
 * layout this core was compiled with must equal LAM_ABI_FINGERPRINT in plugin.h (a test and
 * a build step check it), so a layout change that forgets to update the header is caught.
 */
#include "abi.h"

#include "lamina/lamina.h"

#include <stddef.h>
#include <string.h>

typedef struct hash {
    uint64_t h;
} hash;

static void mix_bytes(hash *s, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        s->h ^= b[i];
        s->h *= 0x100000001b3ULL;
    }
}

static void mix_u64(hash *s, uint64_t v) {
    unsigned char b[8];
    for (int i = 0; i < 8; i++) {
        b[i] = (unsigned char)(v >> (8 * i));
    }
    mix_bytes(s, b, sizeof b);
}

static void mix_name(hash *s, const char *name) {
    mix_bytes(s, name, strlen(name) + 1);
}

#define STRUCT(T)         (mix_name(&s, #T), mix_u64(&s, sizeof(T)))
#define FIELD(T, f)       (mix_name(&s, #f), mix_u64(&s, offsetof(T, f)))
#define ENUM(name, count) (mix_name(&s, name), mix_u64(&s, (uint64_t)(count)))

/* Over 100 lines on purpose: one line per boundary struct, field and enum, in header order, so
 * the list can be checked against plugin.h by reading both side by side. */
uint64_t lam__abi_fingerprint(void) {
    hash s = {0xcbf29ce484222325ULL};
    mix_u64(&s, LAM_ABI_VERSION);

    ENUM("lam_status", 15);
    ENUM("lam_dtype", LAM_DTYPE_COUNT);
    ENUM("lam_log_level", 5);
    ENUM("lam_device_kind", LAM_DEVICE_KIND_COUNT);
    ENUM("lam_op", LAM_OP_COUNT);
    ENUM("lam_attr_type", LAM_ATTR_TYPE_COUNT);
    ENUM("lam_random_kind", LAM_RANDOM_KIND_COUNT);
    ENUM("lam_domain_kind", LAM_DOMAIN_KIND_COUNT);
    ENUM("lam_max_dims", LAM_MAX_DIMS);

    STRUCT(lam_shape);
    FIELD(lam_shape, ndim);
    FIELD(lam_shape, dims);

    STRUCT(lam_device_info);
    FIELD(lam_device_info, struct_size);
    FIELD(lam_device_info, abi_version);
    FIELD(lam_device_info, kind);
    FIELD(lam_device_info, memory_bytes);
    FIELD(lam_device_info, compute_units);
    FIELD(lam_device_info, name);
    FIELD(lam_device_info, driver);
    FIELD(lam_device_info, details);

    STRUCT(lam_tensor_view);
    FIELD(lam_tensor_view, struct_size);
    FIELD(lam_tensor_view, dtype);
    FIELD(lam_tensor_view, buffer);
    FIELD(lam_tensor_view, offset);
    FIELD(lam_tensor_view, ndim);
    FIELD(lam_tensor_view, dims);
    FIELD(lam_tensor_view, strides);

    STRUCT(lam_scalar_params);
    FIELD(lam_scalar_params, struct_size);
    FIELD(lam_scalar_params, a);
    FIELD(lam_scalar_params, b);

    STRUCT(lam_gemm_params);
    FIELD(lam_gemm_params, struct_size);
    FIELD(lam_gemm_params, flags);
    FIELD(lam_gemm_params, alpha);
    FIELD(lam_gemm_params, beta);
    FIELD(lam_gemm_params, act);

    STRUCT(lam_window_params);
    FIELD(lam_window_params, struct_size);
    FIELD(lam_window_params, n_spatial);
    FIELD(lam_window_params, kernel);
    FIELD(lam_window_params, stride);
    FIELD(lam_window_params, pad_before);
    FIELD(lam_window_params, pad_after);
    FIELD(lam_window_params, dilation);
    FIELD(lam_window_params, flags);

    STRUCT(lam_pad_params);
    FIELD(lam_pad_params, struct_size);
    FIELD(lam_pad_params, value);
    FIELD(lam_pad_params, before);
    FIELD(lam_pad_params, after);

    STRUCT(lam_random_params);
    FIELD(lam_random_params, struct_size);
    FIELD(lam_random_params, kind);
    FIELD(lam_random_params, seed);
    FIELD(lam_random_params, key);
    FIELD(lam_random_params, offset);
    FIELD(lam_random_params, a);
    FIELD(lam_random_params, b);

    STRUCT(lam_reduce_params);
    FIELD(lam_reduce_params, struct_size);
    FIELD(lam_reduce_params, n_axes);
    FIELD(lam_reduce_params, axes);
    FIELD(lam_reduce_params, keepdims);

    STRUCT(lam_cast_params);
    FIELD(lam_cast_params, struct_size);
    FIELD(lam_cast_params, dtype);

    STRUCT(lam_op_call);
    FIELD(lam_op_call, struct_size);
    FIELD(lam_op_call, abi_version);
    FIELD(lam_op_call, op);
    FIELD(lam_op_call, flags);
    FIELD(lam_op_call, n_inputs);
    FIELD(lam_op_call, n_outputs);
    FIELD(lam_op_call, inputs);
    FIELD(lam_op_call, outputs);
    FIELD(lam_op_call, params);

    STRUCT(lam_backend_caps);
    FIELD(lam_backend_caps, struct_size);
    FIELD(lam_backend_caps, abi_version);
    FIELD(lam_backend_caps, flags);
    FIELD(lam_backend_caps, max_buffer_bytes);
    FIELD(lam_backend_caps, memory_budget);
    FIELD(lam_backend_caps, buffer_alignment);
    FIELD(lam_backend_caps, dtypes);

    STRUCT(lam_backend_desc);
    FIELD(lam_backend_desc, struct_size);
    FIELD(lam_backend_desc, abi_version);
    FIELD(lam_backend_desc, abi_fingerprint);
    FIELD(lam_backend_desc, name);
    FIELD(lam_backend_desc, version);
    FIELD(lam_backend_desc, doc);
    FIELD(lam_backend_desc, user);
    FIELD(lam_backend_desc, probe);
    FIELD(lam_backend_desc, device_info);
    FIELD(lam_backend_desc, device_open);
    FIELD(lam_backend_desc, device_close);
    FIELD(lam_backend_desc, device_caps);
    FIELD(lam_backend_desc, buffer_alloc);
    FIELD(lam_backend_desc, buffer_free);
    FIELD(lam_backend_desc, buffer_write);
    FIELD(lam_backend_desc, buffer_read);
    FIELD(lam_backend_desc, buffer_copy);
    FIELD(lam_backend_desc, supports);
    FIELD(lam_backend_desc, execute);
    FIELD(lam_backend_desc, synchronize);
    FIELD(lam_backend_desc, shutdown);
    FIELD(lam_backend_desc, buffer_host_ptr);
    FIELD(lam_backend_desc, buffer_from_host_ptr);
    FIELD(lam_backend_desc, native_handle);
    FIELD(lam_backend_desc, run_kernel);

    STRUCT(lam_tensor_info);
    FIELD(lam_tensor_info, struct_size);
    FIELD(lam_tensor_info, dtype);
    FIELD(lam_tensor_info, ndim);
    FIELD(lam_tensor_info, dims);

    STRUCT(lam_example_input);
    FIELD(lam_example_input, struct_size);
    FIELD(lam_example_input, domain);
    FIELD(lam_example_input, info);
    FIELD(lam_example_input, low);
    FIELD(lam_example_input, high);
    FIELD(lam_example_input, bound_attr);

    STRUCT(lam_attr_desc);
    FIELD(lam_attr_desc, struct_size);
    FIELD(lam_attr_desc, type);
    FIELD(lam_attr_desc, name);
    FIELD(lam_attr_desc, default_value);
    FIELD(lam_attr_desc, choices);
    FIELD(lam_attr_desc, doc);
    FIELD(lam_attr_desc, count);

    STRUCT(lam_layer_desc);
    FIELD(lam_layer_desc, struct_size);
    FIELD(lam_layer_desc, abi_version);
    FIELD(lam_layer_desc, abi_fingerprint);
    FIELD(lam_layer_desc, name);
    FIELD(lam_layer_desc, prefix);
    FIELD(lam_layer_desc, version);
    FIELD(lam_layer_desc, doc);
    FIELD(lam_layer_desc, user);
    FIELD(lam_layer_desc, flags);
    FIELD(lam_layer_desc, n_attrs);
    FIELD(lam_layer_desc, attrs);
    FIELD(lam_layer_desc, min_inputs);
    FIELD(lam_layer_desc, max_inputs);
    FIELD(lam_layer_desc, n_outputs);
    FIELD(lam_layer_desc, n_examples);
    FIELD(lam_layer_desc, examples);
    FIELD(lam_layer_desc, example_attrs);
    FIELD(lam_layer_desc, create);
    FIELD(lam_layer_desc, destroy);
    FIELD(lam_layer_desc, infer_shape);
    FIELD(lam_layer_desc, forward);
    FIELD(lam_layer_desc, backward);
    FIELD(lam_layer_desc, describe);

    STRUCT(lam_kernel_operand);
    FIELD(lam_kernel_operand, struct_size);
    FIELD(lam_kernel_operand, view);
    FIELD(lam_kernel_operand, data);

    STRUCT(lam_kernel_args);
    FIELD(lam_kernel_args, struct_size);
    FIELD(lam_kernel_args, n_inputs);
    FIELD(lam_kernel_args, n_outputs);
    FIELD(lam_kernel_args, inputs);
    FIELD(lam_kernel_args, outputs);

    STRUCT(lam_kernel_impl);
    FIELD(lam_kernel_impl, struct_size);
    FIELD(lam_kernel_impl, abi_version);
    FIELD(lam_kernel_impl, backend);
    FIELD(lam_kernel_impl, run);
    FIELD(lam_kernel_impl, spirv);
    FIELD(lam_kernel_impl, spirv_size);
    FIELD(lam_kernel_impl, spirv_entry);
    FIELD(lam_kernel_impl, local_size_x);
    FIELD(lam_kernel_impl, supports);

    STRUCT(lam_kernel_desc);
    FIELD(lam_kernel_desc, struct_size);
    FIELD(lam_kernel_desc, abi_version);
    FIELD(lam_kernel_desc, abi_fingerprint);
    FIELD(lam_kernel_desc, name);
    FIELD(lam_kernel_desc, doc);
    FIELD(lam_kernel_desc, user);
    FIELD(lam_kernel_desc, n_inputs);
    FIELD(lam_kernel_desc, n_outputs);
    FIELD(lam_kernel_desc, params_size);
    FIELD(lam_kernel_desc, n_impls);
    FIELD(lam_kernel_desc, impls);
    FIELD(lam_kernel_desc, shape);
    FIELD(lam_kernel_desc, reference);
    FIELD(lam_kernel_desc, backward);

    STRUCT(lam_host_op);
    FIELD(lam_host_op, struct_size);
    FIELD(lam_host_op, abi_version);
    FIELD(lam_host_op, op);
    FIELD(lam_host_op, flags);
    FIELD(lam_host_op, n_inputs);
    FIELD(lam_host_op, n_outputs);
    FIELD(lam_host_op, inputs);
    FIELD(lam_host_op, outputs);
    FIELD(lam_host_op, params);
    FIELD(lam_host_op, ctx);
    FIELD(lam_host_op, out_shape);
    FIELD(lam_host_op, out_dtype);

    STRUCT(lam_rng_key);
    FIELD(lam_rng_key, struct_size);
    FIELD(lam_rng_key, seed);
    FIELD(lam_rng_key, key);
    FIELD(lam_rng_key, offset);

    STRUCT(lam_host_api);
    FIELD(lam_host_api, struct_size);
    FIELD(lam_host_api, abi_version);
    FIELD(lam_host_api, abi_fingerprint);
    FIELD(lam_host_api, set_error_fmt);
    FIELD(lam_host_api, set_error);
    FIELD(lam_host_api, log);
    FIELD(lam_host_api, get_proc_address);
    FIELD(lam_host_api, register_backend);
    FIELD(lam_host_api, register_layer);
    FIELD(lam_host_api, register_kernel);
    FIELD(lam_host_api, alloc);
    FIELD(lam_host_api, free);
    FIELD(lam_host_api, tensor_create);
    FIELD(lam_host_api, tensor_retain);
    FIELD(lam_host_api, tensor_release);
    FIELD(lam_host_api, tensor_shape);
    FIELD(lam_host_api, tensor_dtype);
    FIELD(lam_host_api, tensor_ctx);
    FIELD(lam_host_api, tensor_read);
    FIELD(lam_host_api, tensor_write);
    FIELD(lam_host_api, tensor_reshape);
    FIELD(lam_host_api, tensor_slice);
    FIELD(lam_host_api, tensor_permute);
    FIELD(lam_host_api, tensor_contiguous);
    FIELD(lam_host_api, tensor_detach);
    FIELD(lam_host_api, op);
    FIELD(lam_host_api, kernel_call);
    FIELD(lam_host_api, is_recording);
    FIELD(lam_host_api, is_training);
    FIELD(lam_host_api, attr_int);
    FIELD(lam_host_api, attr_float);
    FIELD(lam_host_api, attr_bool);
    FIELD(lam_host_api, attr_string);
    FIELD(lam_host_api, attr_ints);
    FIELD(lam_host_api, layer_declare_param);
    FIELD(lam_host_api, layer_param_infer_shape);
    FIELD(lam_host_api, layer_param_shape);
    FIELD(lam_host_api, layer_param_data);
    FIELD(lam_host_api, layer_param_add_grad);
    FIELD(lam_host_api, layer_param_assign);
    FIELD(lam_host_api, layer_name);
    FIELD(lam_host_api, layer_input_needs_grad);
    FIELD(lam_host_api, layer_rng);

    /* since 2.1 */
    ENUM("lam_comm_reduce", LAM_COMM_REDUCE_COUNT);
    FIELD(lam_host_api, register_comm);
    STRUCT(lam_comm_desc);
    FIELD(lam_comm_desc, struct_size);
    FIELD(lam_comm_desc, abi_version);
    FIELD(lam_comm_desc, abi_fingerprint);
    FIELD(lam_comm_desc, name);
    FIELD(lam_comm_desc, version);
    FIELD(lam_comm_desc, doc);
    FIELD(lam_comm_desc, user);
    FIELD(lam_comm_desc, detect);
    FIELD(lam_comm_desc, open);
    FIELD(lam_comm_desc, close);
    FIELD(lam_comm_desc, rank);
    FIELD(lam_comm_desc, size);
    FIELD(lam_comm_desc, barrier);
    FIELD(lam_comm_desc, broadcast);
    FIELD(lam_comm_desc, allreduce);
    FIELD(lam_comm_desc, allgather);
    FIELD(lam_comm_desc, allreduce_start);
    FIELD(lam_comm_desc, wait);
    FIELD(lam_comm_desc, test);
    FIELD(lam_comm_desc, shutdown);
    FIELD(lam_comm_desc, supports_backend);
    FIELD(lam_comm_desc, allreduce_device);

    /* since 2.2 (LAM_OP_COUNT above grew from 55 to 60) */
    STRUCT(lam_conv_params);
    FIELD(lam_conv_params, struct_size);
    FIELD(lam_conv_params, groups);
    FIELD(lam_conv_params, window);
    return s.h;
}

uint64_t lam_abi_fingerprint(void) {
    return lam__abi_fingerprint();
}

/*
 * What this host knows of each minor of its major, written as literal numbers: a row is the
 * layout that minor had when it was released and never changes (a test checks that the current
 * minor's row equals what this core was compiled with). When a minor is added, its row is
 * appended, so plugins built for older minors still load.
 */
typedef struct minor_layout {
    uint32_t backend_desc_size;
    uint32_t layer_desc_size;
    uint32_t kernel_desc_size;
    uint64_t fingerprint;
    uint32_t comm_desc_size; /* 0: the minor has no communicators (before 2.1) */
} minor_layout;

static const minor_layout layouts[] = {
    /* 2.0 */ {192, 152, 88, 0x60a1c6a0d8bb9eefULL, 0},
    /* 2.1 */ {192, 152, 88, 0x527afc359ad79e8cULL, 168},
    /* 2.2 */ {192, 152, 88, 0x8c3995a7c705b3adULL, 168},
};

#define N_LAYOUTS (sizeof layouts / sizeof layouts[0])

uint32_t lam__backend_desc_size(uint32_t minor) {
    return minor < N_LAYOUTS ? layouts[minor].backend_desc_size : 0;
}

uint32_t lam__layer_desc_size(uint32_t minor) {
    return minor < N_LAYOUTS ? layouts[minor].layer_desc_size : 0;
}

uint32_t lam__kernel_desc_size(uint32_t minor) {
    return minor < N_LAYOUTS ? layouts[minor].kernel_desc_size : 0;
}

uint32_t lam__comm_desc_size(uint32_t minor) {
    return minor < N_LAYOUTS ? layouts[minor].comm_desc_size : 0;
}

uint64_t lam__abi_fingerprint_for_minor(uint32_t minor) {
    return minor < N_LAYOUTS ? layouts[minor].fingerprint : 0;
}

uint32_t lam__abi_known_minors(void) {
    return (uint32_t)N_LAYOUTS;
}
