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
    FIELD(lam_tensor_view, buffer);
    FIELD(lam_tensor_view, offset);
    FIELD(lam_tensor_view, dtype);
    FIELD(lam_tensor_view, ndim);
    FIELD(lam_tensor_view, dims);
    FIELD(lam_tensor_view, strides);

    STRUCT(lam_op_call);
    FIELD(lam_op_call, struct_size);
    FIELD(lam_op_call, abi_version);
    FIELD(lam_op_call, op);
    FIELD(lam_op_call, n_inputs);
    FIELD(lam_op_call, inputs);
    FIELD(lam_op_call, output);
    FIELD(lam_op_call, scalars);
    FIELD(lam_op_call, ints);

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
    FIELD(lam_backend_desc, buffer_alloc);
    FIELD(lam_backend_desc, buffer_free);
    FIELD(lam_backend_desc, buffer_write);
    FIELD(lam_backend_desc, buffer_read);
    FIELD(lam_backend_desc, buffer_copy);
    FIELD(lam_backend_desc, supports_op);
    FIELD(lam_backend_desc, execute);
    FIELD(lam_backend_desc, synchronize);
    FIELD(lam_backend_desc, shutdown);

    STRUCT(lam_attr_desc);
    FIELD(lam_attr_desc, name);
    FIELD(lam_attr_desc, type);
    FIELD(lam_attr_desc, default_value);
    FIELD(lam_attr_desc, choices);
    FIELD(lam_attr_desc, doc);

    STRUCT(lam_layer_desc);
    FIELD(lam_layer_desc, struct_size);
    FIELD(lam_layer_desc, abi_version);
    FIELD(lam_layer_desc, abi_fingerprint);
    FIELD(lam_layer_desc, name);
    FIELD(lam_layer_desc, prefix);
    FIELD(lam_layer_desc, version);
    FIELD(lam_layer_desc, doc);
    FIELD(lam_layer_desc, n_attrs);
    FIELD(lam_layer_desc, attrs);
    FIELD(lam_layer_desc, create);
    FIELD(lam_layer_desc, destroy);
    FIELD(lam_layer_desc, infer_shape);
    FIELD(lam_layer_desc, forward);
    FIELD(lam_layer_desc, backward);
    FIELD(lam_layer_desc, describe);

    STRUCT(lam_host_api);
    FIELD(lam_host_api, struct_size);
    FIELD(lam_host_api, abi_version);
    FIELD(lam_host_api, abi_fingerprint);
    FIELD(lam_host_api, set_error);
    FIELD(lam_host_api, log);
    FIELD(lam_host_api, register_backend);
    FIELD(lam_host_api, register_layer);
    FIELD(lam_host_api, tensor_create);
    FIELD(lam_host_api, tensor_retain);
    FIELD(lam_host_api, tensor_release);
    FIELD(lam_host_api, tensor_shape);
    FIELD(lam_host_api, tensor_ctx);
    FIELD(lam_host_api, tensor_read);
    FIELD(lam_host_api, tensor_write);
    FIELD(lam_host_api, tensor_reshape);
    FIELD(lam_host_api, op_matmul);
    FIELD(lam_host_api, op_add);
    FIELD(lam_host_api, op_sub);
    FIELD(lam_host_api, op_mul);
    FIELD(lam_host_api, op_div);
    FIELD(lam_host_api, op_unary);
    FIELD(lam_host_api, op_scalar);
    FIELD(lam_host_api, op_reduce);
    FIELD(lam_host_api, op_softmax);
    FIELD(lam_host_api, attr_int);
    FIELD(lam_host_api, attr_float);
    FIELD(lam_host_api, attr_bool);
    FIELD(lam_host_api, attr_string);
    FIELD(lam_host_api, layer_declare_param);
    FIELD(lam_host_api, layer_param_infer_shape);
    FIELD(lam_host_api, layer_param_shape);
    FIELD(lam_host_api, layer_param_data);
    FIELD(lam_host_api, layer_param_add_grad);
    FIELD(lam_host_api, layer_name);
    FIELD(lam_host_api, op_linear);
    FIELD(lam_host_api, layer_input_needs_grad);
    return s.h;
}

uint64_t lam_abi_fingerprint(void) {
    return lam__abi_fingerprint();
}

/*
 * What this host knows of each minor of its major. When a minor is added, its row is appended
 * with the sizes and fingerprint that minor had, so plugins built for older minors still load.
 */
typedef struct minor_layout {
    uint32_t backend_desc_size;
    uint32_t layer_desc_size;
    uint64_t fingerprint;
} minor_layout;

static const minor_layout layouts[] = {
    /* 1.0 */ {(uint32_t)sizeof(lam_backend_desc), (uint32_t)sizeof(lam_layer_desc),
               LAM_ABI_FINGERPRINT},
};

uint32_t lam__backend_desc_size(uint32_t minor) {
    return minor < sizeof layouts / sizeof layouts[0] ? layouts[minor].backend_desc_size : 0;
}

uint32_t lam__layer_desc_size(uint32_t minor) {
    return minor < sizeof layouts / sizeof layouts[0] ? layouts[minor].layer_desc_size : 0;
}

uint64_t lam__abi_fingerprint_for_minor(uint32_t minor) {
    return minor < sizeof layouts / sizeof layouts[0] ? layouts[minor].fingerprint : 0;
}
