/*
 * test_vulkan_kernel.c - run_kernel on the Vulkan backend alone (vk2_fixture.h): a kernel's
 * SPIR-V (test_kernel.comp, compiled at build time) dispatched with its operands bound from
 * their first element, operands at offsets that minStorageBufferOffsetAlignment forbids
 * (through temporaries), the parameters in the push constants after n and pad[3].
 */
#include "vk2_fixture.h"

extern const uint32_t vk_spv_test_kernel[];
extern const size_t vk_spv_test_kernel_bytes;

TestSuite(vk2kernel, .init = vk2_open, .fini = vk2_close);

static lam_kernel_impl impl(void) {
    lam_kernel_impl m;
    memset(&m, 0, sizeof m);
    m.struct_size = (uint32_t)sizeof m;
    m.abi_version = LAM_ABI_VERSION;
    m.backend = "vulkan";
    m.spirv = vk_spv_test_kernel;
    m.spirv_size = vk_spv_test_kernel_bytes;
    m.spirv_entry = "main";
    m.local_size_x = 4;
    return m;
}

/* Runs the kernel over 5 elements with every operand at byte offset `off` of its buffer. */
static void run(const lam_kernel_impl *m, uint64_t off, float a, float *o0, float *o1) {
    const float xs[6] = {-1, 1, 2, 3, 4, 5};
    const float ys[6] = {-1, 10, 20, 30, 40, 50};
    const float *xp = off ? xs : xs + 1, *yp = off ? ys : ys + 1;
    size_t bytes = off ? sizeof xs : sizeof xs - 4;
    void *bx = vk2_buffer(xp, bytes);
    void *by = vk2_buffer(yp, bytes);
    void *b0 = vk2_buffer(NULL, sizeof xs);
    void *b1 = vk2_buffer(NULL, sizeof xs);
    lam_tensor_view v[4] = {vk2_view(bx, LAM_DTYPE_F32, off, VK2_DIMS(5)),
                            vk2_view(by, LAM_DTYPE_F32, off, VK2_DIMS(5)),
                            vk2_view(b0, LAM_DTYPE_F32, off, VK2_DIMS(5)),
                            vk2_view(b1, LAM_DTYPE_F32, off, VK2_DIMS(5))};
    lam_kernel_operand ops[4];
    const lam_kernel_operand *ptr[4];
    for (int i = 0; i < 4; i++) {
        memset(&ops[i], 0, sizeof ops[i]);
        ops[i].struct_size = (uint32_t)sizeof ops[i];
        ops[i].view = &v[i];
        ptr[i] = &ops[i];
    }
    lam_kernel_args args;
    memset(&args, 0, sizeof args);
    args.struct_size = (uint32_t)sizeof args;
    args.n_inputs = 2;
    args.n_outputs = 2;
    args.params_size = sizeof a;
    args.inputs = ptr;
    args.outputs = ptr + 2;
    cr_assert_eq(vk2_desc->run_kernel(vk2_dev, m, NULL, &a, &args), LAM_OK, "%s", vk2_msg);
    float r0[6], r1[6];
    vk2_read(b0, 0, r0, sizeof r0);
    vk2_read(b1, 0, r1, sizeof r1);
    if (off) {
        cr_assert_eq(r0[0], 0.0f, "the element before the view was written");
        cr_assert_eq(r1[0], 0.0f, "the element before the view was written");
    }
    memcpy(o0, off ? r0 + 1 : r0, 5 * sizeof(float));
    memcpy(o1, off ? r1 + 1 : r1, 5 * sizeof(float));
    void *bufs[4] = {bx, by, b0, b1};
    for (int i = 0; i < 4; i++) {
        vk2_release(bufs[i]);
    }
}

Test(vk2kernel, spirv_runs_with_params_after_the_header) {
    lam_kernel_impl m = impl();
    float o0[5], o1[5];
    run(&m, 0, 2.0f, o0, o1);
    const float want0[5] = {12, 24, 36, 48, 60}; /* 2x + y */
    const float want1[5] = {10, 40, 90, 160, 250};
    vk2_expect_floats(o0, want0, 5, 0.0f);
    vk2_expect_floats(o1, want1, 5, 0.0f);
    /* the cached pipeline, another parameter */
    run(&m, 0, -1.0f, o0, o1);
    const float want2[5] = {9, 18, 27, 36, 45};
    vk2_expect_floats(o0, want2, 5, 0.0f);
}

/* Byte offset 4: not a multiple of minStorageBufferOffsetAlignment on most devices (16 on
 * lavapipe), so every operand goes through a temporary. */
Test(vk2kernel, misaligned_operands_go_through_temporaries) {
    lam_kernel_impl m = impl();
    float o0[5], o1[5];
    run(&m, 4, 3.0f, o0, o1);
    const float want0[5] = {13, 26, 39, 52, 65};
    const float want1[5] = {10, 40, 90, 160, 250};
    vk2_expect_floats(o0, want0, 5, 0.0f);
    vk2_expect_floats(o1, want1, 5, 0.0f);
}

Test(vk2kernel, bad_spirv_and_too_many_params_are_refused) {
    lam_kernel_impl m = impl();
    m.spirv_size = 6;
    lam_kernel_args args;
    memset(&args, 0, sizeof args);
    args.struct_size = (uint32_t)sizeof args;
    cr_assert_eq(vk2_desc->run_kernel(vk2_dev, &m, NULL, NULL, &args), LAM_ERR_INVALID_ARGUMENT);
    cr_assert_not_null(strstr(vk2_msg, "kernel implementation without SPIR-V"), "%s", vk2_msg);
    m = impl();
    void *b = vk2_buffer(NULL, 16);
    lam_tensor_view v = vk2_view(b, LAM_DTYPE_F32, 0, VK2_DIMS(4));
    lam_kernel_operand op;
    memset(&op, 0, sizeof op);
    op.struct_size = (uint32_t)sizeof op;
    op.view = &v;
    const lam_kernel_operand *ptr[1] = {&op};
    args.n_outputs = 1;
    args.outputs = ptr;
    args.params_size = 200;
    char big[200] = {0};
    cr_assert_eq(vk2_desc->run_kernel(vk2_dev, &m, NULL, big, &args), LAM_ERR_INVALID_ARGUMENT);
    cr_assert_not_null(strstr(vk2_msg, "kernel parameters of 200 bytes (at most 112"), "%s",
                       vk2_msg);
}
