/*
 * test_vulkan_abi2.c - the Vulkan backend's ABI 2.0 descriptor on the plugin alone (no core):
 * device_caps, native_handle, byte offsets and strides (with broadcasting through a zero
 * stride), typed parameters, `supports` refusing what execute would refuse (misaligned views,
 * spans past maxStorageBufferRange, ops it does not implement), and the messages of errors.
 * Expected values are worked by hand in the comments.
 */
#include "vk2_fixture.h"

TestSuite(vk2, .init = vk2_open, .fini = vk2_close);

Test(vk2, device_caps_reports_async_dtypes_and_memory) {
    lam_backend_caps caps;
    memset(&caps, 0, sizeof caps);
    caps.struct_size = (uint32_t)sizeof caps;
    cr_assert_eq(vk2_desc->device_caps(vk2_dev, &caps), LAM_OK, "%s", vk2_msg);
    cr_assert_eq(caps.flags & LAM_BACKEND_ASYNC, LAM_BACKEND_ASYNC);
    cr_assert_eq(caps.flags & LAM_BACKEND_HOST_VISIBLE, 0u);
    cr_assert(caps.dtypes & (1u << LAM_DTYPE_F32));
    cr_assert(caps.dtypes & (1u << LAM_DTYPE_I32));
    cr_assert_gt(caps.max_buffer_bytes, (uint64_t)1 << 20);
    cr_assert_gt(caps.memory_budget, (uint64_t)1 << 20);
    /* a caller with a shorter struct gets only the fields inside it */
    lam_backend_caps small;
    memset(&small, 0xAB, sizeof small);
    small.struct_size = (uint32_t)offsetof(lam_backend_caps, max_buffer_bytes);
    cr_assert_eq(vk2_desc->device_caps(vk2_dev, &small), LAM_OK);
    cr_assert_eq(small.max_buffer_bytes, 0xABABABABABABABABull);
}

Test(vk2, native_handles_by_name) {
    const char *names[] = {"VkInstance", "VkPhysicalDevice", "VkDevice", "VkQueue"};
    for (size_t i = 0; i < 4; i++) {
        void *h = NULL;
        cr_assert_eq(vk2_desc->native_handle(vk2_dev, NULL, names[i], &h), LAM_OK, "%s: %s",
                     names[i], vk2_msg);
        cr_assert_not_null(h, "%s", names[i]);
    }
    void *buf = vk2_buffer(NULL, 64);
    void *h = NULL;
    cr_assert_eq(vk2_desc->native_handle(vk2_dev, buf, "VkBuffer", &h), LAM_OK, "%s", vk2_msg);
    cr_assert_not_null(h);
    cr_assert_eq(vk2_desc->native_handle(vk2_dev, buf, "VkDeviceMemory", &h), LAM_OK);
    cr_assert_not_null(h);
    /* a second buffer of the same block: same VkBuffer, another offset */
    void *buf2 = vk2_buffer(NULL, 64);
    void *h2 = NULL, *off1 = NULL, *off2 = NULL;
    cr_assert_eq(vk2_desc->native_handle(vk2_dev, buf, "VkBuffer", &h), LAM_OK);
    cr_assert_eq(vk2_desc->native_handle(vk2_dev, buf2, "VkBuffer", &h2), LAM_OK);
    cr_assert_eq(vk2_desc->native_handle(vk2_dev, buf, "VkBufferOffset", &off1), LAM_OK);
    cr_assert_eq(vk2_desc->native_handle(vk2_dev, buf2, "VkBufferOffset", &off2), LAM_OK);
    if (h == h2) {
        cr_assert_neq((uintptr_t)off1, (uintptr_t)off2);
    }
    cr_assert_eq(vk2_desc->native_handle(vk2_dev, NULL, "CUstream", &h), LAM_ERR_NOT_FOUND);
    cr_assert_not_null(strstr(vk2_msg, "vulkan: Not found, no native handle named 'CUstream'"),
                       "%s", vk2_msg);
    vk2_release(buf);
}

/* out[i][j] = x[i][j] + y[j]: y broadcast over rows through a zero byte stride; x starts at
 * byte offset 8 of its buffer. */
Test(vk2, add_with_byte_offset_and_zero_stride) {
    const float xs[8] = {99, 99, 1, 2, 3, 4, 5, 6};
    const float ys[3] = {10, 20, 30};
    void *bx = vk2_buffer(xs, sizeof xs);
    void *by = vk2_buffer(ys, sizeof ys);
    void *bo = vk2_buffer(NULL, 6 * sizeof(float));
    lam_tensor_view x = vk2_view(bx, LAM_DTYPE_F32, 8, VK2_DIMS(2, 3));
    lam_tensor_view y = vk2_view(by, LAM_DTYPE_F32, 0, VK2_DIMS(2, 3));
    y.strides[0] = 0;
    lam_tensor_view o = vk2_view(bo, LAM_DTYPE_F32, 0, VK2_DIMS(2, 3));
    const lam_tensor_view *in[2] = {&x, &y};
    const lam_tensor_view *out[1] = {&o};
    lam_op_call c = vk2_call(LAM_OP_ADD, 2, in, 1, out, NULL);
    vk2_run(&c);
    float got[6];
    vk2_read(bo, 0, got, sizeof got);
    const float want[6] = {11, 22, 33, 14, 25, 36};
    vk2_expect_floats(got, want, 6, 0.0f);
}

/* AXPBY with lam_scalar_params: out = 2 x - 0.5 y, in place on x. */
Test(vk2, axpby_in_place_takes_scalar_params) {
    const float xs[4] = {1, 2, 3, 4};
    const float ys[4] = {2, 4, 6, 8};
    void *bx = vk2_buffer(xs, sizeof xs);
    void *by = vk2_buffer(ys, sizeof ys);
    lam_tensor_view x = vk2_view(bx, LAM_DTYPE_F32, 0, VK2_DIMS(4));
    lam_tensor_view y = vk2_view(by, LAM_DTYPE_F32, 0, VK2_DIMS(4));
    const lam_tensor_view *in[2] = {&x, &y};
    const lam_tensor_view *out[1] = {&x};
    lam_scalar_params p = LAM_SCALAR_PARAMS_INIT;
    p.a = 2.0;
    p.b = -0.5;
    lam_op_call c = vk2_call(LAM_OP_AXPBY, 2, in, 1, out, &p);
    c.flags = LAM_CALL_IN_PLACE;
    vk2_run(&c);
    float got[4];
    vk2_read(bx, 0, got, sizeof got);
    const float want[4] = {1, 2, 3, 4}; /* 2x - 0.5 * 2x */
    vk2_expect_floats(got, want, 4, 0.0f);
    /* without its parameters the call is refused */
    c.params = NULL;
    cr_assert_eq(vk2_desc->supports(vk2_dev, &c), 0);
    cr_assert_eq(vk2_desc->execute(vk2_dev, &c), LAM_ERR_INVALID_ARGUMENT);
    cr_assert_not_null(strstr(vk2_msg, "axpby needs its parameters (lam_scalar_params)"), "%s",
                       vk2_msg);
}

/* C = 2 * A B^T: A (2,3) = [[1,2,3],[4,5,6]], B (2,3) = [[1,0,1],[0,1,0]];
 * A B^T = [[4, 2], [10, 5]]. */
Test(vk2, gemm_takes_gemm_params) {
    const float as[6] = {1, 2, 3, 4, 5, 6};
    const float bs[6] = {1, 0, 1, 0, 1, 0};
    const float cs[4] = {NAN, NAN, NAN, NAN}; /* beta 0: never read */
    void *ba = vk2_buffer(as, sizeof as);
    void *bb = vk2_buffer(bs, sizeof bs);
    void *bc = vk2_buffer(cs, sizeof cs);
    lam_tensor_view a = vk2_view(ba, LAM_DTYPE_F32, 0, VK2_DIMS(2, 3));
    lam_tensor_view b = vk2_view(bb, LAM_DTYPE_F32, 0, VK2_DIMS(2, 3));
    lam_tensor_view o = vk2_view(bc, LAM_DTYPE_F32, 0, VK2_DIMS(2, 2));
    const lam_tensor_view *in[2] = {&a, &b};
    const lam_tensor_view *out[1] = {&o};
    lam_gemm_params p = LAM_GEMM_PARAMS_INIT;
    p.flags = LAM_GEMM_TRANS_B;
    p.alpha = 2.0;
    lam_op_call c = vk2_call(LAM_OP_GEMM, 2, in, 1, out, &p);
    vk2_run(&c);
    float got[4];
    vk2_read(bc, 0, got, sizeof got);
    const float want[4] = {8, 4, 20, 10};
    vk2_expect_floats(got, want, 4, 0.0f);
}

/* LINEAR: relu(A B + bias), A (2,2) = [[1,-1],[2,3]], B = I, bias [-2, 1]. */
Test(vk2, linear_with_bias_and_relu) {
    const float as[4] = {1, -1, 2, 3};
    const float bs[4] = {1, 0, 0, 1};
    const float bias[2] = {-2, 1};
    void *ba = vk2_buffer(as, sizeof as);
    void *bb = vk2_buffer(bs, sizeof bs);
    void *bz = vk2_buffer(bias, sizeof bias);
    void *bo = vk2_buffer(NULL, 4 * sizeof(float));
    lam_tensor_view a = vk2_view(ba, LAM_DTYPE_F32, 0, VK2_DIMS(2, 2));
    lam_tensor_view b = vk2_view(bb, LAM_DTYPE_F32, 0, VK2_DIMS(2, 2));
    lam_tensor_view z = vk2_view(bz, LAM_DTYPE_F32, 0, VK2_DIMS(2));
    lam_tensor_view o = vk2_view(bo, LAM_DTYPE_F32, 0, VK2_DIMS(2, 2));
    const lam_tensor_view *in[3] = {&a, &b, &z};
    const lam_tensor_view *out[1] = {&o};
    lam_gemm_params p = LAM_GEMM_PARAMS_INIT;
    p.act = LAM_OP_RELU;
    lam_op_call c = vk2_call(LAM_OP_LINEAR, 3, in, 1, out, &p);
    vk2_run(&c);
    float got[4];
    vk2_read(bo, 0, got, sizeof got);
    const float want[4] = {0, 0, 0, 4}; /* [-1, 0], [0, 4] after relu */
    vk2_expect_floats(got, want, 4, 0.0f);
}

Test(vk2, misaligned_byte_offset_is_refused) {
    void *bx = vk2_buffer(NULL, 64);
    void *bo = vk2_buffer(NULL, 64);
    lam_tensor_view x = vk2_view(bx, LAM_DTYPE_F32, 6, VK2_DIMS(4));
    lam_tensor_view o = vk2_view(bo, LAM_DTYPE_F32, 0, VK2_DIMS(4));
    const lam_tensor_view *in[1] = {&x};
    const lam_tensor_view *out[1] = {&o};
    lam_op_call c = vk2_call(LAM_OP_NEG, 1, in, 1, out, NULL);
    vk2_msg[0] = '\0';
    cr_assert_eq(vk2_desc->supports(vk2_dev, &c), 0);
    cr_assert_str_empty(vk2_msg, "supports set a message: %s", vk2_msg);
    cr_assert_eq(vk2_desc->execute(vk2_dev, &c), LAM_ERR_INVALID_ARGUMENT);
    cr_assert_not_null(strstr(vk2_msg, "vulkan: Invalid argument, neg input 0 has byte offset 6, "
                                       "not a multiple of its element size 4"),
                       "%s", vk2_msg);
    x.offset = 4;
    x.strides[0] = 6;
    cr_assert_eq(vk2_desc->supports(vk2_dev, &c), 0);
    cr_assert_eq(vk2_desc->execute(vk2_dev, &c), LAM_ERR_INVALID_ARGUMENT);
    cr_assert_not_null(strstr(vk2_msg, "byte stride 6 on axis 0"), "%s", vk2_msg);
}

Test(vk2, view_past_its_buffer_is_refused) {
    void *bx = vk2_buffer(NULL, 16);
    void *bo = vk2_buffer(NULL, 64);
    lam_tensor_view x = vk2_view(bx, LAM_DTYPE_F32, 4, VK2_DIMS(4));
    lam_tensor_view o = vk2_view(bo, LAM_DTYPE_F32, 0, VK2_DIMS(4));
    const lam_tensor_view *in[1] = {&x};
    const lam_tensor_view *out[1] = {&o};
    lam_op_call c = vk2_call(LAM_OP_EXP, 1, in, 1, out, NULL);
    cr_assert_eq(vk2_desc->supports(vk2_dev, &c), 0);
    cr_assert_eq(vk2_desc->execute(vk2_dev, &c), LAM_ERR_INVALID_ARGUMENT);
    cr_assert_not_null(strstr(vk2_msg, "vulkan: Out of bounds, exp input 0 (byte offset 4) "
                                       "reaches outside its 16-byte buffer"),
                       "%s", vk2_msg);
}

/* The device's maxStorageBufferRange, from device_info's details. */
static uint64_t max_range(void) {
    lam_device_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = (uint32_t)sizeof info;
    cr_assert_eq(vk2_desc->device_info(vk2_desc->user, 0, &info), LAM_OK);
    const char *at = strstr(info.details, "maxStorageBufferRange ");
    cr_assert_not_null(at, "%s", info.details);
    return strtoull(at + strlen("maxStorageBufferRange "), NULL, 10);
}

/* A reduction binds its input whole: a view of two elements whose span passes the device's
 * maxStorageBufferRange is refused by supports (the host falls back), while an elementwise op
 * over the same view is cut into windows and runs. */
Test(vk2, span_past_max_storage_buffer_range_is_refused_by_supports) {
    const uint64_t range = max_range();
    if (range > ((uint64_t)1 << 30)) {
        cr_skip_test("maxStorageBufferRange is %llu bytes: too large a buffer to test here",
                     (unsigned long long)range);
    }
    void *big = NULL;
    cr_assert_eq(vk2_desc->buffer_alloc(vk2_dev, (size_t)range + 64, &big), LAM_OK, "%s", vk2_msg);
    vk2_track(big);
    const float two[1] = {2.0f};
    cr_assert_eq(vk2_desc->buffer_write(vk2_dev, big, 0, two, 4), LAM_OK);
    cr_assert_eq(vk2_desc->buffer_write(vk2_dev, big, (size_t)range + 32, two, 4), LAM_OK);
    void *bo = vk2_buffer(NULL, 16);
    lam_tensor_view x = vk2_view(big, LAM_DTYPE_F32, 0, VK2_DIMS(1, 2, 1));
    x.strides[1] = (int64_t)range + 32;
    lam_tensor_view o = vk2_view(bo, LAM_DTYPE_F32, 0, VK2_DIMS(1, 1, 1));
    const lam_tensor_view *in[1] = {&x};
    const lam_tensor_view *out[1] = {&o};
    lam_op_call c = vk2_call(LAM_OP_REDUCE_SUM, 1, in, 1, out, NULL);
    cr_assert_eq(vk2_desc->supports(vk2_dev, &c), 0);
    cr_assert_eq(vk2_desc->execute(vk2_dev, &c), LAM_ERR_UNSUPPORTED);
    cr_assert_not_null(strstr(vk2_msg, "more than the device's maxStorageBufferRange"), "%s",
                       vk2_msg);
    /* elementwise: out (2) = -x, each element in a window of its own */
    lam_tensor_view x2 = vk2_view(big, LAM_DTYPE_F32, 0, VK2_DIMS(2));
    x2.strides[0] = (int64_t)range + 32;
    lam_tensor_view o2 = vk2_view(bo, LAM_DTYPE_F32, 0, VK2_DIMS(2));
    const lam_tensor_view *in2[1] = {&x2};
    const lam_tensor_view *out2[1] = {&o2};
    lam_op_call neg = vk2_call(LAM_OP_NEG, 1, in2, 1, out2, NULL);
    vk2_run(&neg);
    float got[2];
    vk2_read(bo, 0, got, sizeof got);
    const float want[2] = {-2, -2};
    vk2_expect_floats(got, want, 2, 0.0f);
    vk2_release(big);
}

Test(vk2, op_past_the_header_is_unsupported) {
    void *bo = vk2_buffer(NULL, 16);
    lam_tensor_view o = vk2_view(bo, LAM_DTYPE_F32, 0, VK2_DIMS(4));
    const lam_tensor_view *out[1] = {&o};
    lam_op_call c = vk2_call((lam_op)(LAM_OP_COUNT + 3), 0, NULL, 1, out, NULL);
    cr_assert_eq(vk2_desc->supports(vk2_dev, &c), 0);
    cr_assert_eq(vk2_desc->execute(vk2_dev, &c), LAM_ERR_UNSUPPORTED);
    char want[96];
    snprintf(want, sizeof want, "vulkan: Unsupported op, op %d is newer than this plugin",
             LAM_OP_COUNT + 3);
    cr_assert_not_null(strstr(vk2_msg, want), "%s", vk2_msg);
}

Test(vk2, wrong_dtype_is_refused) {
    void *bx = vk2_buffer(NULL, 16);
    void *bo = vk2_buffer(NULL, 16);
    lam_tensor_view x = vk2_view(bx, LAM_DTYPE_I32, 0, VK2_DIMS(4));
    lam_tensor_view o = vk2_view(bo, LAM_DTYPE_F32, 0, VK2_DIMS(4));
    const lam_tensor_view *in[1] = {&x};
    const lam_tensor_view *out[1] = {&o};
    lam_op_call c = vk2_call(LAM_OP_EXP, 1, in, 1, out, NULL);
    cr_assert_eq(vk2_desc->supports(vk2_dev, &c), 0);
    cr_assert_eq(vk2_desc->execute(vk2_dev, &c), LAM_ERR_UNSUPPORTED);
    cr_assert_not_null(strstr(vk2_msg, "vulkan: Unsupported dtype, exp input 0 has dtype int32"),
                       "%s", vk2_msg);
}
