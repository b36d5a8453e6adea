/*
 * test_cpu_ops2.c - the CPU backend's ABI 2.0 descriptor and its ops 37..54, driven directly.
 *
 * The plugin is dlopen()ed and its entry called with a minimal host table made here
 * (register_backend, set_error, set_error_fmt, log, alloc, free), so these tests need nothing
 * of liblamina: they check the backend alone, through the descriptor, as a host would call it.
 * Expected values come from tests/cpu/ref/gen_ops2_refs.py (NumPy, and Philox-4x32-10 in
 * Python checked against Random123's known answers), committed as ref/ops2_refs.h, or are
 * worked by hand in the test.
 */
#define _GNU_SOURCE

#include <criterion/criterion.h>

#include <dlfcn.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lamina/plugin.h"
#include "ref/ops2_refs.h"

/* ---- a minimal host ---- */

#include "cpu_test_host.h"

static void setup(void) {
    cpu_test_open_backend();
}

static void teardown(void) {
    cpu_test_close_backend();
}

TestSuite(cpu_ops2, .init = setup, .fini = teardown);

/* ---- tensors: a buffer and a contiguous (or given-stride) view of it ---- */

typedef struct tens {
    void *buf;
    lam_tensor_view v;
} tens;

static void view_init(lam_tensor_view *v, void *buf, lam_dtype dt, uint32_t nd,
                      const int64_t *dims) {
    memset(v, 0, sizeof *v);
    v->struct_size = (uint32_t)sizeof *v;
    v->dtype = dt;
    v->buffer = buf;
    v->ndim = nd;
    int64_t st = (int64_t)lam_dtype_size(dt);
    for (int d = (int)nd - 1; d >= 0; d--) {
        v->dims[d] = dims[d];
        v->strides[d] = st;
        st *= dims[d];
    }
}

static size_t count_of(uint32_t nd, const int64_t *dims) {
    size_t n = 1;
    for (uint32_t d = 0; d < nd; d++) {
        n *= (size_t)dims[d];
    }
    return n;
}

/* A contiguous tensor of dtype dt holding `data` (NULL: zeros). */
static tens mk(lam_dtype dt, uint32_t nd, const int64_t *dims, const void *data) {
    tens t;
    const size_t bytes = count_of(nd, dims) * lam_dtype_size(dt);
    cr_assert_eq(g_desc.buffer_alloc(g_dev, bytes, &t.buf), LAM_OK, "%s", g_msg);
    view_init(&t.v, t.buf, dt, nd, dims);
    if (data != NULL) {
        cr_assert_eq(g_desc.buffer_write(g_dev, t.buf, 0, data, bytes), LAM_OK, "%s", g_msg);
    } else {
        void *z = calloc(1, bytes + 1);
        cr_assert_eq(g_desc.buffer_write(g_dev, t.buf, 0, z, bytes), LAM_OK, "%s", g_msg);
        free(z);
    }
    return t;
}

static tens mkf(uint32_t nd, const int64_t *dims, const float *data) {
    return mk(LAM_DTYPE_F32, nd, dims, data);
}

static void rd(const tens *t, void *dst) {
    const size_t bytes = count_of(t->v.ndim, t->v.dims) * lam_dtype_size(t->v.dtype);
    cr_assert_eq(g_desc.buffer_read(g_dev, t->buf, 0, dst, bytes), LAM_OK, "%s", g_msg);
}

static void rm(tens *t) {
    g_desc.buffer_free(g_dev, t->buf);
}

/* Runs op on the views; returns the status (g_msg has the message). */
static lam_status run(lam_op op, const void *params, uint32_t flags, uint32_t n_in,
                      const lam_tensor_view *const *in, uint32_t n_out,
                      const lam_tensor_view *const *out) {
    lam_op_call c;
    memset(&c, 0, sizeof c);
    c.struct_size = (uint32_t)sizeof c;
    c.abi_version = LAM_ABI_VERSION;
    c.op = op;
    c.flags = flags;
    c.n_inputs = n_in;
    c.n_outputs = n_out;
    c.inputs = in;
    c.outputs = out;
    c.params = params;
    g_msg[0] = '\0';
    const int32_t sup = g_desc.supports(g_dev, &c);
    const lam_status st = g_desc.execute(g_dev, &c);
    /* supports answers exactly what execute can do, barring data-dependent errors */
    if (st == LAM_OK) {
        cr_assert(sup, "supports said no to a call execute ran");
    }
    return st;
}

static lam_status run1(lam_op op, const void *params, const tens *x, const tens *out) {
    const lam_tensor_view *in[1] = {x != NULL ? &x->v : NULL};
    const lam_tensor_view *o[1] = {&out->v};
    return run(op, params, 0, x != NULL ? 1 : 0, x != NULL ? in : NULL, 1, o);
}

static lam_status run2(lam_op op, const void *params, const tens *x, const tens *y,
                       const tens *out) {
    const lam_tensor_view *in[2] = {&x->v, &y->v};
    const lam_tensor_view *o[1] = {&out->v};
    return run(op, params, 0, 2, in, 1, o);
}

static void expect_f(const float *got, const float *want, size_t n, float tol) {
    for (size_t i = 0; i < n; i++) {
        if (isnan(want[i])) {
            cr_assert(isnan(got[i]), "element %zu: got %.9g, want NaN", i, got[i]);
        } else {
            cr_assert(fabsf(got[i] - want[i]) <= tol * (1.0f + fabsf(want[i])),
                      "element %zu: got %.9g, want %.9g", i, got[i], want[i]);
        }
    }
}

static void expect_msg(const char *part) {
    cr_assert_not_null(strstr(g_msg, part), "message '%s' lacks '%s'", g_msg, part);
}

static lam_window_params window(int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t ph,
                                int64_t pw, int64_t dh, int64_t dw, uint32_t flags) {
    lam_window_params p;
    memset(&p, 0, sizeof p);
    p.struct_size = (uint32_t)sizeof p;
    p.n_spatial = 2;
    p.kernel[0] = kh;
    p.kernel[1] = kw;
    p.stride[0] = sh;
    p.stride[1] = sw;
    p.pad_before[0] = p.pad_after[0] = ph;
    p.pad_before[1] = p.pad_after[1] = pw;
    p.dilation[0] = dh;
    p.dilation[1] = dw;
    p.flags = flags;
    return p;
}

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* ---- the descriptor ---- */

Test(cpu_ops2, descriptor_has_every_2_0_callback) {
    cr_assert_not_null(g_desc.device_caps);
    cr_assert_not_null(g_desc.supports);
    cr_assert_not_null(g_desc.buffer_host_ptr);
    cr_assert_not_null(g_desc.buffer_from_host_ptr);
    cr_assert_not_null(g_desc.native_handle);
    cr_assert_not_null(g_desc.run_kernel);
    lam_backend_caps caps;
    memset(&caps, 0, sizeof caps);
    caps.struct_size = (uint32_t)sizeof caps;
    cr_assert_eq(g_desc.device_caps(g_dev, &caps), LAM_OK, "%s", g_msg);
    cr_assert_eq(caps.flags, LAM_BACKEND_HOST_VISIBLE | LAM_BACKEND_HOST_PTR);
    cr_assert_eq(caps.dtypes, (1u << LAM_DTYPE_F32) | (1u << LAM_DTYPE_I32) |
                                  (1u << LAM_DTYPE_I64) | (1u << LAM_DTYPE_U8));
    cr_assert_eq(caps.buffer_alignment, 8u);
    /* a caps struct of an older, shorter layout gets only its fields */
    lam_backend_caps small_caps;
    memset(&small_caps, 0xAB, sizeof small_caps);
    small_caps.struct_size = (uint32_t)offsetof(lam_backend_caps, max_buffer_bytes);
    cr_assert_eq(g_desc.device_caps(g_dev, &small_caps), LAM_OK);
    cr_assert_eq(small_caps.flags, LAM_BACKEND_HOST_VISIBLE | LAM_BACKEND_HOST_PTR);
    cr_assert_eq(small_caps.dtypes, 0xABABABABu);
}

Test(cpu_ops2, native_handle_is_not_found_for_every_name) {
    void *h = (void *)1;
    cr_assert_eq(g_desc.native_handle(g_dev, NULL, "VkDevice", &h), LAM_ERR_NOT_FOUND);
    cr_assert_null(h);
    expect_msg("cpu: Handle not found, 'VkDevice'");
}

Test(cpu_ops2, host_ptr_buffers_share_memory) {
    _Alignas(8) float mem[4] = {1, 2, 3, 4};
    void *buf = NULL;
    cr_assert_eq(g_desc.buffer_from_host_ptr(g_dev, mem, sizeof mem, 0, &buf), LAM_OK, "%s", g_msg);
    cr_assert_eq(g_desc.buffer_host_ptr(g_dev, buf), (void *)mem);
    lam_tensor_view v;
    const int64_t d[1] = {4};
    view_init(&v, buf, LAM_DTYPE_F32, 1, d);
    lam_scalar_params p = LAM_SCALAR_PARAMS_INIT;
    p.a = 2.0;
    const lam_tensor_view *in[1] = {&v};
    const lam_tensor_view *out[1] = {&v};
    cr_assert_eq(run(LAM_OP_MUL_SCALAR, &p, LAM_CALL_IN_PLACE, 1, in, 1, out), LAM_OK, "%s", g_msg);
    const float want[4] = {2, 4, 6, 8};
    expect_f(mem, want, 4, 0); /* written in place, no copy */
    g_desc.buffer_free(g_dev, buf);
    cr_assert_float_eq(mem[3], 8.0f, 0); /* the memory stays the caller's */
    /* allocated buffers are host-visible too */
    tens t = mkf(1, d, want);
    cr_assert_eq(((float *)g_desc.buffer_host_ptr(g_dev, t.buf))[2], 6.0f);
    rm(&t);
}

Test(cpu_ops2, read_only_host_memory_is_never_written) {
    _Alignas(8) float mem[4] = {1, 2, 3, 4};
    void *buf = NULL;
    cr_assert_eq(g_desc.buffer_from_host_ptr(g_dev, mem, sizeof mem, 1, &buf), LAM_OK);
    const float src[4] = {9, 9, 9, 9};
    cr_assert_eq(g_desc.buffer_write(g_dev, buf, 0, src, sizeof src), LAM_ERR_INVALID_ARGUMENT);
    expect_msg("cpu: Read-only buffer, writing 16 bytes at offset 0");
    lam_tensor_view v;
    const int64_t d[1] = {4};
    view_init(&v, buf, LAM_DTYPE_F32, 1, d);
    lam_scalar_params p = LAM_SCALAR_PARAMS_INIT;
    p.a = 5.0;
    const lam_tensor_view *out[1] = {&v};
    cr_assert_eq(run(LAM_OP_FILL, &p, 0, 0, NULL, 1, out), LAM_ERR_INVALID_ARGUMENT);
    expect_msg("cpu: Read-only buffer, fill output 0");
    tens t = mkf(1, d, src);
    cr_assert_eq(g_desc.buffer_copy(g_dev, buf, 0, t.buf, 0, 16), LAM_ERR_INVALID_ARGUMENT);
    /* but it can be read, as a buffer and as an op input */
    float back[4];
    cr_assert_eq(g_desc.buffer_read(g_dev, buf, 0, back, sizeof back), LAM_OK);
    const lam_tensor_view *in[1] = {&v};
    const lam_tensor_view *o2[1] = {&t.v};
    cr_assert_eq(run(LAM_OP_COPY, NULL, 0, 1, in, 1, o2), LAM_OK, "%s", g_msg);
    rd(&t, back);
    const float want[4] = {1, 2, 3, 4};
    expect_f(mem, want, 4, 0);
    expect_f(back, want, 4, 0);
    rm(&t);
    g_desc.buffer_free(g_dev, buf);
    /* misaligned host memory is not wrapped: the host copies instead */
    cr_assert_eq(g_desc.buffer_from_host_ptr(g_dev, (char *)mem + 4, 8, 0, &buf),
                 LAM_ERR_UNSUPPORTED);
}

Test(cpu_ops2, byte_strides_must_be_element_multiples) {
    const int64_t d[2] = {2, 3};
    const float x[6] = {1, 2, 3, 4, 5, 6};
    tens a = mkf(2, d, x);
    tens o = mkf(2, d, NULL);
    a.v.strides[0] = 12;
    a.v.strides[1] = 4;
    cr_assert_eq(run1(LAM_OP_NEG, NULL, &a, &o), LAM_OK, "%s", g_msg);
    a.v.strides[1] = 6;
    cr_assert_eq(run1(LAM_OP_NEG, NULL, &a, &o), LAM_ERR_INVALID_ARGUMENT);
    expect_msg("cpu: Invalid stride, neg input 0 has byte stride 6 on axis 1");
    a.v.strides[1] = 4;
    a.v.offset = 2;
    cr_assert_eq(run1(LAM_OP_NEG, NULL, &a, &o), LAM_ERR_INVALID_ARGUMENT);
    expect_msg("cpu: Invalid offset, neg input 0 has byte offset 2");
    /* a byte stride of a row, transposed view: element (i, j) at byte 4*i + 12*j */
    a.v.offset = 0;
    a.v.dims[0] = 3;
    a.v.dims[1] = 2;
    a.v.strides[0] = 4;
    a.v.strides[1] = 12;
    o.v.dims[0] = 3;
    o.v.dims[1] = 2;
    o.v.strides[0] = 8;
    o.v.strides[1] = 4;
    cr_assert_eq(run1(LAM_OP_NEG, NULL, &a, &o), LAM_OK, "%s", g_msg);
    float got[6];
    rd(&o, got);
    const float want[6] = {-1, -4, -2, -5, -3, -6};
    expect_f(got, want, 6, 0);
    rm(&a);
    rm(&o);
}

/* Runs NEG x -> out on dev; returns the status (g_msg has the message). */
static lam_status neg_on(void *dev, const lam_tensor_view *x, const lam_tensor_view *out,
                         int32_t *supported) {
    lam_op_call c;
    memset(&c, 0, sizeof c);
    c.struct_size = (uint32_t)sizeof c;
    c.abi_version = LAM_ABI_VERSION;
    c.op = LAM_OP_NEG;
    c.n_inputs = 1;
    c.n_outputs = 1;
    const lam_tensor_view *in[1] = {x}, *o[1] = {out};
    c.inputs = in;
    c.outputs = o;
    g_msg[0] = '\0';
    *supported = g_desc.supports(dev, &c);
    g_msg[0] = '\0';
    return g_desc.execute(dev, &c);
}

/*
 * LAMINA_VALIDATION at device_open picks the validation layer: the validating device checks
 * every axis of every view (here a byte stride that is no multiple of the element size); the
 * default one leaves the per-axis checks to validation but keeps the cheap ones (a live cpu
 * buffer, a writable output, rank, dtype, the op's shapes), and supports() checks in full on
 * both.
 */
Test(cpu_ops2, lamina_validation_switches_the_per_axis_checks) {
    void *fast = NULL, *off = NULL, *checked = NULL;
    cpu_test_open_device(NULL, &fast);
    cpu_test_open_device("0", &off);
    cpu_test_open_device("1", &checked);
    const int64_t d[2] = {2, 3};
    const float x[6] = {1, 2, 3, 4, 5, 6};
    tens a = mkf(2, d, x);
    tens o = mkf(2, d, NULL);
    a.v.strides[1] = 6; /* 6 bytes: element stride 6 >> 2 = 1 where it is not checked */
    int32_t sup = 1;
    cr_assert_eq(neg_on(checked, &a.v, &o.v, &sup), LAM_ERR_INVALID_ARGUMENT);
    expect_msg("cpu: Invalid stride, neg input 0 has byte stride 6 on axis 1");
    cr_assert_eq(sup, 0);
    void *defaults[2] = {fast, off};
    for (int k = 0; k < 2; k++) {
        cr_assert_eq(neg_on(defaults[k], &a.v, &o.v, &sup), LAM_OK, "%s", g_msg);
        cr_assert_eq(sup, 0, "supports() validates in full on every device");
        float got[6];
        rd(&o, got);
        const float want[6] = {-1, -2, -3, -4, -5, -6};
        expect_f(got, want, 6, 0);
    }
    a.v.strides[1] = 4;
    /* the cheap checks stay on: a foreign buffer handle, a read-only output, rank, dtype,
     * the op's own shape check */
    uint64_t foreign[8] = {0};
    lam_tensor_view bad = a.v;
    bad.buffer = foreign;
    cr_assert_eq(neg_on(fast, &bad, &o.v, &sup), LAM_ERR_INVALID_ARGUMENT);
    expect_msg("cpu: Invalid argument, neg input 0 does not point to a live cpu buffer");
    _Alignas(8) float mem[6] = {0};
    void *ro = NULL;
    cr_assert_eq(g_desc.buffer_from_host_ptr(fast, mem, sizeof mem, 1, &ro), LAM_OK);
    lam_tensor_view rov = o.v;
    rov.buffer = ro;
    cr_assert_eq(neg_on(fast, &a.v, &rov, &sup), LAM_ERR_INVALID_ARGUMENT);
    expect_msg("cpu: Read-only buffer, neg output 0");
    bad = a.v;
    bad.ndim = LAM_MAX_DIMS + 1;
    cr_assert_eq(neg_on(fast, &bad, &o.v, &sup), LAM_ERR_INVALID_ARGUMENT);
    expect_msg("cpu: Invalid argument, neg input 0 has ndim 9 > 8");
    bad = a.v;
    bad.dtype = (lam_dtype)99;
    cr_assert_eq(neg_on(fast, &bad, &o.v, &sup), LAM_ERR_DTYPE);
    expect_msg("cpu: Unsupported dtype, neg input 0 has dtype 99");
    bad = a.v;
    bad.dims[1] = 2;
    cr_assert_eq(neg_on(fast, &bad, &o.v, &sup), LAM_ERR_SHAPE);
    expect_msg("cpu: Shape mismatch, neg input 0 has dims (2, 2), output has (2, 3)");
    g_desc.buffer_free(fast, ro);
    rm(&a);
    rm(&o);
    g_desc.device_close(fast);
    g_desc.device_close(off);
    g_desc.device_close(checked);
}

Test(cpu_ops2, supports_answers_per_call) {
    const int64_t d[1] = {3};
    lam_tensor_view f, i32;
    view_init(&f, NULL, LAM_DTYPE_F32, 1, d);
    view_init(&i32, NULL, LAM_DTYPE_I32, 1, d);
    lam_op_call c;
    memset(&c, 0, sizeof c);
    c.struct_size = (uint32_t)sizeof c;
    const lam_tensor_view *in[2] = {&f, &f};
    const lam_tensor_view *out[1] = {&f};
    c.op = LAM_OP_ADD;
    c.n_inputs = 2;
    c.n_outputs = 1;
    c.inputs = in;
    c.outputs = out;
    cr_assert_eq(g_desc.supports(g_dev, &c), 1); /* no buffers needed to ask */
    in[1] = &i32;
    cr_assert_eq(g_desc.supports(g_dev, &c), 0); /* dtype */
    in[1] = &f;
    lam_tensor_view longer = f;
    longer.dims[0] = 4;
    in[1] = &longer;
    cr_assert_eq(g_desc.supports(g_dev, &c), 0); /* shape */
    in[1] = &f;
    c.op = (lam_op)99;
    cr_assert_eq(g_desc.supports(g_dev, &c), 0); /* an op newer than the plugin */
    cr_assert_eq(g_desc.execute(g_dev, &c), LAM_ERR_UNSUPPORTED);
    expect_msg("cpu: Unsupported op, op 99 is newer than this plugin");
    c.op = LAM_OP_CLAMP;
    c.n_inputs = 1;
    cr_assert_eq(g_desc.supports(g_dev, &c), 0); /* no parameters */
    lam_scalar_params p = LAM_SCALAR_PARAMS_INIT;
    c.params = &p;
    cr_assert_eq(g_desc.supports(g_dev, &c), 1);
    strcpy(g_msg, "untouched");
    c.op = LAM_OP_ARGMAX;
    cr_assert_eq(g_desc.supports(g_dev, &c), 0); /* ARGMAX needs 3-D views */
    cr_assert_str_eq(g_msg, "untouched");        /* supports sets no message */
}

static lam_status kernel_run(void *user, const void *params, const lam_kernel_args *args) {
    cr_assert_eq(user, (void *)&g_host);
    const float k = *(const float *)params;
    const float *x = args->inputs[0]->data;
    float *y = args->outputs[0]->data;
    const int64_t n = args->inputs[0]->view->dims[0];
    for (int64_t i = 0; i < n; i++) {
        y[i] = k * x[i] + 1.0f;
    }
    return LAM_OK;
}

Test(cpu_ops2, run_kernel_hands_host_pointers) {
    const int64_t d[1] = {3};
    const float x[3] = {1, 2, 3};
    tens a = mkf(1, d, x);
    tens o = mkf(1, d, NULL);
    a.v.offset = 4; /* from element 1: the kernel sees the view's first element */
    a.v.dims[0] = 2;
    o.v.dims[0] = 2;
    lam_kernel_operand oi = {(uint32_t)sizeof oi, 0, &a.v, NULL};
    lam_kernel_operand oo = {(uint32_t)sizeof oo, 0, &o.v, NULL};
    const lam_kernel_operand *ins[1] = {&oi};
    const lam_kernel_operand *outs[1] = {&oo};
    lam_kernel_args args = {(uint32_t)sizeof args, 1, 1, 0, ins, outs};
    lam_kernel_impl impl;
    memset(&impl, 0, sizeof impl);
    impl.struct_size = (uint32_t)sizeof impl;
    impl.backend = "cpu";
    impl.run = kernel_run;
    const float k = 10.0f;
    cr_assert_eq(g_desc.run_kernel(g_dev, &impl, &g_host, &k, &args), LAM_OK, "%s", g_msg);
    float got[3];
    rd(&o, got);
    const float want[2] = {21, 31};
    expect_f(got, want, 2, 0);
    a.v.dims[0] = 3; /* one element past the buffer */
    cr_assert_eq(g_desc.run_kernel(g_dev, &impl, &g_host, &k, &args), LAM_ERR_INVALID_ARGUMENT);
    expect_msg("cpu: Out of bounds, kernel input 0");
    rm(&a);
    rm(&o);
}

/* ---- 1.0 ops through the 2.0 parameter structs ---- */

Test(cpu_ops2, gemm_and_linear_take_gemm_params) {
    const int64_t da[2] = {2, 3}, db[2] = {2, 3}, dc[2] = {2, 2};
    const float a[6] = {1, 2, 3, 4, 5, 6};
    const float b[6] = {1, 0, -1, 2, 1, 0};
    tens ta = mkf(2, da, a), tb = mkf(2, db, b), tc = mkf(2, dc, NULL);
    lam_gemm_params p = LAM_GEMM_PARAMS_INIT;
    p.flags = LAM_GEMM_TRANS_B;
    p.alpha = 2.0;
    cr_assert_eq(run2(LAM_OP_GEMM, &p, &ta, &tb, &tc), LAM_OK, "%s", g_msg);
    float got[4];
    rd(&tc, got);
    /* A B^T = [[1-3, 2+2], [4-6, 8+5]] = [[-2, 4], [-2, 13]], times 2 */
    const float want[4] = {-4, 8, -4, 26};
    expect_f(got, want, 4, 0);
    const int64_t dbias[1] = {2};
    const float bias[2] = {1, -30};
    tens tbias = mkf(1, dbias, bias);
    p.act = LAM_OP_RELU;
    const lam_tensor_view *in[3] = {&ta.v, &tb.v, &tbias.v};
    const lam_tensor_view *out[1] = {&tc.v};
    cr_assert_eq(run(LAM_OP_LINEAR, &p, 0, 3, in, 1, out), LAM_OK, "%s", g_msg);
    rd(&tc, got);
    const float want_lin[4] = {0, 0, 0, 0}; /* relu([[-1, -26], [-1, -17]]) */
    expect_f(got, want_lin, 4, 0);
    cr_assert_eq(run2(LAM_OP_GEMM, NULL, &ta, &tb, &tc), LAM_ERR_INVALID_ARGUMENT);
    expect_msg("cpu: Invalid argument, gemm needs its parameters (lam_gemm_params");
    rm(&ta);
    rm(&tb);
    rm(&tc);
    rm(&tbias);
}

/* LINEAR with a bias and each activation gives the bits of GEMM, ADD of the bias (broadcast
 * along rows) and the activation run one after the other (its epilogue is one fused pass);
 * a NaN in A stays NaN through every activation. */
Test(cpu_ops2, linear_bias_and_activation_match_the_ops_one_after_another) {
    const int64_t da[2] = {3, 4}, db[2] = {5, 4}, dc[2] = {3, 5}, dbias[1] = {5};
    const float a[12] = {0.5f,  -1.25f, 2.0f, 0.75f, -3.0f, 1.5f,
                         0.25f, -0.5f,  1.0f, NAN,   -2.0f, 4.0f};
    const float b[20] = {0.1f, -0.2f, 0.3f,  0.4f,  -1.0f, 0.5f, 2.0f, -0.3f, 0.7f, 0.7f,
                         0.7f, 0.7f,  -0.9f, 0.05f, 1.1f,  0.0f, 3.0f, -2.0f, 1.0f, -1.0f};
    const float bias[5] = {0.3f, -25.0f, 1.0f, -0.125f, 40.0f};
    tens ta = mkf(2, da, a), tb = mkf(2, db, b), tbias = mkf(1, dbias, bias);
    tens ty = mkf(2, dc, NULL), tg = mkf(2, dc, NULL), ts = mkf(2, dc, NULL), tr = mkf(2, dc, NULL);
    lam_tensor_view brow = tbias.v; /* the bias as a (3, 5) view with row stride 0 */
    brow.ndim = 2;
    brow.dims[0] = 3;
    brow.dims[1] = 5;
    brow.strides[0] = 0;
    brow.strides[1] = 4;
    const lam_op acts[5] = {LAM_OP_INVALID, LAM_OP_RELU, LAM_OP_SIGMOID, LAM_OP_TANH,
                            LAM_OP_SOFTRELU};
    for (int k = 0; k < 5; k++) {
        lam_gemm_params p = LAM_GEMM_PARAMS_INIT;
        p.flags = LAM_GEMM_TRANS_B;
        p.act = acts[k];
        const lam_tensor_view *in[3] = {&ta.v, &tb.v, &tbias.v};
        const lam_tensor_view *out[1] = {&ty.v};
        cr_assert_eq(run(LAM_OP_LINEAR, &p, 0, 3, in, 1, out), LAM_OK, "%s", g_msg);
        p.act = LAM_OP_INVALID;
        cr_assert_eq(run2(LAM_OP_GEMM, &p, &ta, &tb, &tg), LAM_OK, "%s", g_msg);
        const lam_tensor_view *add_in[2] = {&tg.v, &brow}, *add_out[1] = {&ts.v};
        cr_assert_eq(run(LAM_OP_ADD, NULL, 0, 2, add_in, 1, add_out), LAM_OK, "%s", g_msg);
        const tens *want_t = &ts;
        if (acts[k] != LAM_OP_INVALID) {
            cr_assert_eq(run1(acts[k], NULL, &ts, &tr), LAM_OK, "%s", g_msg);
            want_t = &tr;
        }
        float got[15], want[15];
        rd(&ty, got);
        rd(want_t, want);
        for (int i = 0; i < 15; i++) {
            cr_assert(memcmp(&got[i], &want[i], sizeof got[i]) == 0,
                      "act %d element %d: linear %.9g, the ops one after another %.9g",
                      (int)acts[k], i, got[i], want[i]);
        }
        /* row 2 reads the NaN of A: NaN through every activation */
        for (int j = 0; j < 5; j++) {
            cr_assert(isnan(got[10 + j]), "act %d: element (2, %d) is %.9g, not NaN", (int)acts[k],
                      j, got[10 + j]);
        }
    }
    /* by hand, no activation: (0.5, -1.25, 2, 0.75) . (0.1, -0.2, 0.3, 0.4) + 0.3 = 0.05 + 0.25 +
     * 0.6 + 0.3 + 0.3 = 1.5 */
    lam_gemm_params p = LAM_GEMM_PARAMS_INIT;
    p.flags = LAM_GEMM_TRANS_B;
    const lam_tensor_view *in[3] = {&ta.v, &tb.v, &tbias.v};
    const lam_tensor_view *out[1] = {&ty.v};
    cr_assert_eq(run(LAM_OP_LINEAR, &p, 0, 3, in, 1, out), LAM_OK, "%s", g_msg);
    float got[15];
    rd(&ty, got);
    cr_assert(fabsf(got[0] - 1.5f) <= 1e-6f, "y(0, 0) = %.9g, expected 1.5", got[0]);
    tens *all[] = {&ta, &tb, &tbias, &ty, &tg, &ts, &tr};
    for (int i = 0; i < 7; i++) {
        rm(all[i]);
    }
}

Test(cpu_ops2, axpby_in_place) {
    const int64_t d[1] = {4};
    const float x[4] = {1, 2, 3, NAN};
    const float y[4] = {10, 20, 30, 40};
    tens tx = mkf(1, d, x), ty = mkf(1, d, y);
    lam_scalar_params p = LAM_SCALAR_PARAMS_INIT;
    p.a = 0.5;
    p.b = -1.0;
    const lam_tensor_view *in[2] = {&tx.v, &ty.v};
    const lam_tensor_view *out[1] = {&tx.v}; /* x = 0.5 x - y, the very same view */
    cr_assert_eq(run(LAM_OP_AXPBY, &p, LAM_CALL_IN_PLACE, 2, in, 1, out), LAM_OK, "%s", g_msg);
    float got[4];
    rd(&tx, got);
    const float want[4] = {-9.5f, -19, -28.5f, NAN};
    expect_f(got, want, 4, 0);
    rm(&tx);
    rm(&ty);
}

/* ---- 37..54 ---- */

Test(cpu_ops2, gemm_batched_shares_a_zero_stride_operand_and_isolates_nan) {
    const int64_t da[3] = {3, 2, 3}, db[3] = {3, 4, 3}, dc[3] = {3, 2, 4};
    tens a = mkf(3, da, bgemm_a);
    const int64_t db2[2] = {4, 3};
    tens b2 = mkf(2, db2, bgemm_b);
    tens c = mkf(3, dc, bgemm_c0);
    lam_tensor_view bv;
    view_init(&bv, b2.buf, LAM_DTYPE_F32, 3, db);
    bv.strides[0] = 0; /* one B for every batch */
    lam_gemm_params p = LAM_GEMM_PARAMS_INIT;
    p.flags = LAM_GEMM_TRANS_B;
    p.alpha = 1.5;
    p.beta = 0.5;
    const lam_tensor_view *in[2] = {&a.v, &bv};
    const lam_tensor_view *out[1] = {&c.v};
    cr_assert_eq(run(LAM_OP_GEMM_BATCHED, &p, 0, 2, in, 1, out), LAM_OK, "%s", g_msg);
    float got[24];
    rd(&c, got);
    expect_f(got, bgemm_out, 24, 1e-6f);
    for (int i = 8; i < 24; i++) {
        cr_assert(!isnan(got[i]), "batch %d got the NaN of batch 0", i / 8);
    }
    /* a batch of 1 is shared too */
    bv.dims[0] = 1;
    bv.strides[0] = 48;
    cr_assert_eq(g_desc.buffer_write(g_dev, c.buf, 0, bgemm_c0, sizeof bgemm_c0), LAM_OK);
    cr_assert_eq(run(LAM_OP_GEMM_BATCHED, &p, 0, 2, in, 1, out), LAM_OK, "%s", g_msg);
    rd(&c, got);
    expect_f(got, bgemm_out, 24, 1e-6f);
    bv.dims[0] = 2;
    bv.strides[0] = 0;
    cr_assert_eq(run(LAM_OP_GEMM_BATCHED, &p, 0, 2, in, 1, out), LAM_ERR_SHAPE);
    expect_msg("cpu: Shape mismatch, gemm_batched batch sizes differ: A 3, B 2, output 3");
    rm(&a);
    rm(&b2);
    rm(&c);
}

Test(cpu_ops2, im2col_stride_2_padding_odd_size_and_dilation_2) {
    const int64_t dx[4] = {2, 2, 5, 5}, dout[3] = {2, 18, IM2COL1_OH * IM2COL1_OW};
    tens x = mkf(4, dx, im2col1_x), o = mkf(3, dout, NULL);
    lam_window_params w = window(3, 3, 2, 2, 1, 1, 1, 1, 0);
    cr_assert_eq(run1(LAM_OP_IM2COL, &w, &x, &o), LAM_OK, "%s", g_msg);
    float got[N_OF(im2col1_out)];
    rd(&o, got);
    expect_f(got, im2col1_out, N_OF(im2col1_out), 0);
    for (size_t i = N_OF(got) / 2; i < N_OF(got); i++) {
        cr_assert(!isnan(got[i]), "sample 1 got sample 0's NaN at %zu", i);
    }
    rm(&x);
    rm(&o);
    /* 5x4, kernel 2x2, dilation 2, padding only after (0 before, 1 after) */
    const int64_t dx2[4] = {1, 2, 5, 4}, do2[3] = {1, 8, IM2COL2_OH * IM2COL2_OW};
    x = mkf(4, dx2, im2col2_x);
    o = mkf(3, do2, NULL);
    w = window(2, 2, 1, 1, 0, 0, 2, 2, 0);
    w.pad_after[0] = w.pad_after[1] = 1;
    cr_assert_eq(run1(LAM_OP_IM2COL, &w, &x, &o), LAM_OK, "%s", g_msg);
    float got2[N_OF(im2col2_out)];
    rd(&o, got2);
    expect_f(got2, im2col2_out, N_OF(im2col2_out), 0);
    /* a wrong output size names both */
    o.v.dims[2] = 11;
    cr_assert_eq(run1(LAM_OP_IM2COL, &w, &x, &o), LAM_ERR_SHAPE);
    expect_msg("cpu: Shape mismatch, im2col output has dims (1, 8, 11), expected (1, 8, 12)");
    rm(&x);
    rm(&o);
}

Test(cpu_ops2, col2im_is_im2cols_adjoint) {
    const int64_t dx[3] = {2, 18, 9}, dout[4] = {2, 2, 5, 5};
    tens x = mkf(3, dx, col2im_x), o = mkf(4, dout, NULL);
    lam_window_params w = window(3, 3, 2, 2, 1, 1, 1, 1, 0);
    cr_assert_eq(run1(LAM_OP_COL2IM, &w, &x, &o), LAM_OK, "%s", g_msg);
    float got[N_OF(col2im_out)];
    rd(&o, got);
    expect_f(got, col2im_out, N_OF(col2im_out), 0);
    rm(&x);
    rm(&o);
}

static void max_pool_case(lam_window_params w, int64_t oh, const float *vals, const int32_t *idx) {
    const int64_t dx[4] = {2, 1, 5, 5}, dout[4] = {2, 1, oh, oh};
    tens x = mkf(4, dx, mp_x);
    tens v = mkf(4, dout, NULL);
    tens i = mk(LAM_DTYPE_I32, 4, dout, NULL);
    const lam_tensor_view *in[1] = {&x.v};
    const lam_tensor_view *out[2] = {&v.v, &i.v};
    cr_assert_eq(run(LAM_OP_MAX_POOL, &w, 0, 1, in, 2, out), LAM_OK, "%s", g_msg);
    const size_t n = (size_t)(2 * oh * oh);
    float gv[64];
    int32_t gi[64];
    rd(&v, gv);
    rd(&i, gi);
    expect_f(gv, vals, n, 0);
    for (size_t k = 0; k < n; k++) {
        cr_assert_eq(gi[k], idx[k], "index %zu: got %d, want %d", k, gi[k], idx[k]);
    }
    for (size_t k = n / 2; k < n; k++) {
        cr_assert(!isnan(gv[k]), "sample 1 got sample 0's NaN");
    }
    rm(&x);
    rm(&v);
    rm(&i);
}

Test(cpu_ops2, max_pool_first_index_ties_nan_wins_padding_never) {
    max_pool_case(window(3, 3, 2, 2, 1, 1, 1, 1, 0), 3, mp_vals, mp_idx);
}

Test(cpu_ops2, max_pool_ceil_mode_and_dilation) {
    max_pool_case(window(2, 2, 2, 2, 0, 0, 1, 1, LAM_WINDOW_CEIL_MODE), MP_CEIL_OH, mp_ceil_vals,
                  mp_ceil_idx);
    max_pool_case(window(2, 2, 1, 1, 0, 0, 2, 2, 0), 3, mp_dil_vals, mp_dil_idx);
}

/* Runs MAX_POOL on x (2, 1, 2, 20) with and without the indices output; vals/idx: 2 * ow. */
static void wide_pool_run(lam_window_params w, int64_t ow, const float *x, const float *vals,
                          const int32_t *idx) {
    const int64_t dx[4] = {2, 1, 2, 20}, dout[4] = {2, 1, 1, ow};
    const size_t n = (size_t)(2 * ow);
    tens t = mkf(4, dx, x);
    for (uint32_t n_out = 1; n_out <= 2; n_out++) {
        tens v = mkf(4, dout, NULL);
        tens i = mk(LAM_DTYPE_I32, 4, dout, NULL);
        const lam_tensor_view *in[1] = {&t.v};
        const lam_tensor_view *out[2] = {&v.v, &i.v};
        cr_assert_eq(run(LAM_OP_MAX_POOL, &w, 0, 1, in, n_out, out), LAM_OK, "%s", g_msg);
        float gv[32];
        int32_t gi[32];
        rd(&v, gv);
        for (size_t k = 0; k < n; k++) { /* bit-exact: the maxima are elements of x */
            cr_assert(isnan(vals[k]) ? isnan(gv[k]) : gv[k] == vals[k],
                      "%u output(s), element %zu: got %.9g, want %.9g", n_out, k, (double)gv[k],
                      (double)vals[k]);
        }
        if (n_out == 2) {
            rd(&i, gi);
            for (size_t k = 0; k < n; k++) {
                cr_assert_eq(gi[k], idx[k], "index %zu: got %d, want %d", k, gi[k], idx[k]);
            }
        }
        rm(&v);
        rm(&i);
    }
    rm(&t);
}

/*
 * Rows of 20 pooled 2 x 2 by 2: the backend takes rows whose windows all lie inside the input
 * tap by tap over the whole row (vectorized), and must keep the per-window rules there. Worked
 * by hand: x[h][w] = 20 h + w, so each window's maximum is its bottom-right tap (index 21 + 2 ow),
 * except in sample 0 where window 1 holds a NaN (index 3), window 2 two NaNs (the first in
 * row-major window order: (0, 5), before (1, 4)), window 5 a NaN at its last tap (index 31),
 * window 6 four equal 7s (the first: 12), window 8 a maximum at its first tap (100 at 16) and
 * window 9 two equal maxima (50 at 18 and 39: the first, 18). Sample 1 (x + 100) must get no NaN.
 * Then padding 1 along the rows: 11 windows over columns 2 ow - 1 and 2 ow, the two end ones
 * half in the padding (which never wins), the nine between inside: maximum at (1, 2 ow)
 * (index 20 + 2 ow), (1, 19) for the last.
 */
Test(cpu_ops2, max_pool_wide_rows_nan_ties_first_and_padding) {
    float x[80];
    for (int k = 0; k < 80; k++) {
        x[k] = (float)(k % 40) + (k >= 40 ? 100.0f : 0.0f);
    }
    x[3] = x[5] = x[24] = x[31] = NAN;
    x[12] = x[13] = x[32] = x[33] = 7.0f;
    x[16] = 100.0f;
    x[18] = x[39] = 50.0f;
    float vals[22];
    int32_t idx[22];
    for (int k = 0; k < 10; k++) {
        vals[k] = (float)(21 + 2 * k);
        vals[10 + k] = (float)(121 + 2 * k);
        idx[k] = idx[10 + k] = 21 + 2 * k;
    }
    vals[1] = vals[2] = vals[5] = NAN;
    idx[1] = 3;
    idx[2] = 5;
    idx[5] = 31;
    vals[6] = 7.0f;
    idx[6] = 12;
    vals[8] = 100.0f;
    idx[8] = 16;
    vals[9] = 50.0f;
    idx[9] = 18;
    wide_pool_run(window(2, 2, 2, 2, 0, 0, 1, 1, 0), 10, x, vals, idx);

    for (int k = 0; k < 80; k++) {
        x[k] = (float)(k % 40) + (k >= 40 ? 100.0f : 0.0f);
    }
    for (int k = 0; k < 11; k++) {
        const int col = 2 * k < 19 ? 2 * k : 19;
        vals[k] = (float)(20 + col);
        vals[11 + k] = (float)(120 + col);
        idx[k] = idx[11 + k] = 20 + col;
    }
    wide_pool_run(window(2, 2, 2, 2, 0, 1, 1, 1, 0), 11, x, vals, idx);
}

Test(cpu_ops2, max_pool_rejects_a_window_wholly_in_padding) {
    const int64_t dx[4] = {1, 1, 2, 2}, dout[4] = {1, 1, 2, 2};
    const float x[4] = {1, 2, 3, 4};
    tens t = mkf(4, dx, x), o = mkf(4, dout, NULL);
    /* kernel 1, padding 1, stride 2: window 0 lies at -1, in the padding */
    lam_window_params w = window(1, 1, 2, 2, 1, 1, 1, 1, 0);
    cr_assert_eq(run1(LAM_OP_MAX_POOL, &w, &t, &o), LAM_ERR_INVALID_ARGUMENT);
    expect_msg("max_pool window 0 of axis 0 lies wholly in the padding");
    rm(&t);
    rm(&o);
}

Test(cpu_ops2, max_pool_backward_adds_at_indices) {
    const int64_t dg[4] = {1, 1, 4, 4};
    tens g = mkf(4, dg, mpb_g);
    tens i = mk(LAM_DTYPE_I32, 4, dg, mpb_idx);
    tens o = mkf(4, dg, NULL);
    cr_assert_eq(run2(LAM_OP_MAX_POOL_BACKWARD, NULL, &g, &i, &o), LAM_OK, "%s", g_msg);
    float got[16];
    rd(&o, got);
    expect_f(got, mpb_out, 16, 0);
    int32_t bad[16];
    memcpy(bad, mpb_idx, sizeof bad);
    bad[5] = 16;
    rm(&i);
    i = mk(LAM_DTYPE_I32, 4, dg, bad);
    cr_assert_eq(run2(LAM_OP_MAX_POOL_BACKWARD, NULL, &g, &i, &o), LAM_ERR_INVALID_ARGUMENT);
    expect_msg("cpu: Index out of range, max_pool_backward index at (0, 0, 1, 1) is 16, outside "
               "[0, 16)");
    rm(&g);
    rm(&i);
    rm(&o);
}

/*
 * The gradient overwrites its output: every plane of a dirty buffer (99 everywhere) comes back
 * zero except at the indices. Worked by hand: 2 samples x 2 channels, 2 x 2 gradients into 4 x 4
 * planes; plane p's gradient is 10 (p + 1) + k for k = 0..3 at indices 0, 5, 5, 15, so its
 * output holds g0 at 0, g1 + g2 at 5, g3 at 15.
 */
Test(cpu_ops2, max_pool_backward_overwrites_every_plane) {
    const int64_t dg[4] = {2, 2, 2, 2}, dout[4] = {2, 2, 4, 4};
    float gv[16], dirty[64], want[64], got[64];
    int32_t iv[16];
    for (int p = 0; p < 4; p++) {
        const int32_t at[4] = {0, 5, 5, 15};
        for (int k = 0; k < 4; k++) {
            gv[4 * p + k] = (float)(10 * (p + 1) + k);
            iv[4 * p + k] = at[k];
        }
        for (int e = 0; e < 16; e++) {
            want[16 * p + e] = 0.0f;
        }
        want[16 * p] = gv[4 * p];
        want[16 * p + 5] = gv[4 * p + 1] + gv[4 * p + 2];
        want[16 * p + 15] = gv[4 * p + 3];
    }
    for (int e = 0; e < 64; e++) {
        dirty[e] = 99.0f;
    }
    tens g = mkf(4, dg, gv);
    tens i = mk(LAM_DTYPE_I32, 4, dg, iv);
    tens o = mkf(4, dout, dirty);
    cr_assert_eq(run2(LAM_OP_MAX_POOL_BACKWARD, NULL, &g, &i, &o), LAM_OK, "%s", g_msg);
    rd(&o, got);
    for (int e = 0; e < 64; e++) {
        cr_assert(got[e] == want[e], "element %d: got %g, want %g", e, (double)got[e],
                  (double)want[e]);
    }
    rm(&g);
    rm(&i);
    rm(&o);
}

static void avg_case(uint32_t flags, int64_t oh, const float *fwd, const float *g,
                     const float *gin) {
    const int64_t dx[4] = {2, 1, 6, 6}, dout[4] = {2, 1, oh, oh};
    tens x = mkf(4, dx, ap_x), o = mkf(4, dout, NULL);
    lam_window_params w = window(3, 3, 2, 2, 1, 1, 1, 1, flags);
    cr_assert_eq(run1(LAM_OP_AVG_POOL, &w, &x, &o), LAM_OK, "%s", g_msg);
    float got[72];
    const size_t n = (size_t)(2 * oh * oh);
    rd(&o, got);
    expect_f(got, fwd, n, 1e-6f);
    for (size_t k = 0; k < n / 2; k++) {
        cr_assert(!isnan(got[k]), "sample 0 got sample 1's NaN");
    }
    tens tg = mkf(4, dout, g), tgin = mkf(4, dx, NULL);
    cr_assert_eq(run1(LAM_OP_AVG_POOL_BACKWARD, &w, &tg, &tgin), LAM_OK, "%s", g_msg);
    rd(&tgin, got);
    expect_f(got, gin, 72, 1e-6f);
    rm(&x);
    rm(&o);
    rm(&tg);
    rm(&tgin);
}

Test(cpu_ops2, avg_pool_divisors_with_and_without_padding_floor_and_ceil) {
    avg_case(0, AP_FLOOR_O, ap_floor, ap_floor_g, ap_floor_gin);
    avg_case(LAM_WINDOW_COUNT_INCLUDE_PAD, AP_FLOOR_INC_O, ap_floor_inc, ap_floor_inc_g,
             ap_floor_inc_gin);
    avg_case(LAM_WINDOW_CEIL_MODE, AP_CEIL_O, ap_ceil, ap_ceil_g, ap_ceil_gin);
    avg_case(LAM_WINDOW_CEIL_MODE | LAM_WINDOW_COUNT_INCLUDE_PAD, AP_CEIL_INC_O, ap_ceil_inc,
             ap_ceil_inc_g, ap_ceil_inc_gin);
}

static void gather_case(lam_dtype it) {
    const int64_t dt[2] = {4, 3}, di[1] = {5}, dout[2] = {5, 3};
    int64_t idx64[5];
    int32_t idx32[5];
    for (int k = 0; k < 5; k++) {
        idx64[k] = gather_idx[k];
        idx32[k] = gather_idx[k];
    }
    tens t = mkf(2, dt, gather_table);
    tens i = mk(it, 1, di, it == LAM_DTYPE_I32 ? (const void *)idx32 : (const void *)idx64);
    tens o = mkf(2, dout, NULL);
    cr_assert_eq(run2(LAM_OP_GATHER_ROWS, NULL, &t, &i, &o), LAM_OK, "%s", g_msg);
    float got[15];
    rd(&o, got);
    expect_f(got, gather_out, 15, 0);
    /* scatter-add back with repeated indices, into a table that already has values */
    tens x = mkf(2, dout, scatter_x), s = mkf(2, dt, scatter_out0);
    cr_assert_eq(run2(LAM_OP_SCATTER_ADD_ROWS, NULL, &x, &i, &s), LAM_OK, "%s", g_msg);
    float sg[12];
    rd(&s, sg);
    expect_f(sg, scatter_out, 12, 1e-6f);
    /* out of range, and negative: position and value named, nothing written */
    idx64[2] = 7;
    idx32[2] = 7;
    rm(&i);
    i = mk(it, 1, di, it == LAM_DTYPE_I32 ? (const void *)idx32 : (const void *)idx64);
    cr_assert_eq(run2(LAM_OP_GATHER_ROWS, NULL, &t, &i, &o), LAM_ERR_INVALID_ARGUMENT);
    expect_msg("cpu: Index out of range, gather_rows index at position 2 is 7, outside [0, 4)");
    cr_assert_eq(run2(LAM_OP_SCATTER_ADD_ROWS, NULL, &x, &i, &s), LAM_ERR_INVALID_ARGUMENT);
    expect_msg("scatter_add_rows index at position 2 is 7");
    rd(&s, got);
    expect_f(got, scatter_out, 12, 1e-6f);
    idx64[2] = -1;
    idx32[2] = -1;
    rm(&i);
    i = mk(it, 1, di, it == LAM_DTYPE_I32 ? (const void *)idx32 : (const void *)idx64);
    cr_assert_eq(run2(LAM_OP_GATHER_ROWS, NULL, &t, &i, &o), LAM_ERR_INVALID_ARGUMENT);
    expect_msg("index at position 2 is -1");
    rm(&t);
    rm(&i);
    rm(&o);
    rm(&x);
    rm(&s);
}

Test(cpu_ops2, gather_and_scatter_add_rows_int32_indices) {
    gather_case(LAM_DTYPE_I32);
}

Test(cpu_ops2, gather_and_scatter_add_rows_int64_indices) {
    gather_case(LAM_DTYPE_I64);
}

static lam_random_params rparams(lam_random_kind kind, double a, double b) {
    lam_random_params p;
    memset(&p, 0, sizeof p);
    p.struct_size = (uint32_t)sizeof p;
    p.kind = kind;
    p.seed = RAND_SEED;
    p.key = RAND_KEY;
    p.offset = RAND_OFFSET;
    p.a = a;
    p.b = b;
    return p;
}

Test(cpu_ops2, random_matches_the_reference_philox) {
    const int64_t d[1] = {11};
    tens o = mkf(1, d, NULL);
    float got[11];
    lam_random_params p = rparams(LAM_RANDOM_UNIFORM, 0.0, 1.0);
    cr_assert_eq(run1(LAM_OP_RANDOM, &p, NULL, &o), LAM_OK, "%s", g_msg);
    rd(&o, got);
    for (int i = 0; i < 11; i++) { /* (u >> 8) * 2^-24 exactly: the word's top 24 bits */
        cr_assert_eq((uint32_t)(got[i] * 16777216.0f), rand_words[i] >> 8, "element %d", i);
    }
    p = rparams(LAM_RANDOM_UNIFORM, -2.0, 3.0);
    cr_assert_eq(run1(LAM_OP_RANDOM, &p, NULL, &o), LAM_OK, "%s", g_msg);
    rd(&o, got);
    expect_f(got, rand_uniform, 11, 0);
    p = rparams(LAM_RANDOM_BERNOULLI, 0.3, 0.0);
    cr_assert_eq(run1(LAM_OP_RANDOM, &p, NULL, &o), LAM_OK, "%s", g_msg);
    rd(&o, got);
    expect_f(got, rand_bernoulli, 11, 0);
    tens u8 = mk(LAM_DTYPE_U8, 1, d, NULL);
    cr_assert_eq(run1(LAM_OP_RANDOM, &p, NULL, &u8), LAM_OK, "%s", g_msg);
    uint8_t gb[11];
    rd(&u8, gb);
    for (int i = 0; i < 11; i++) {
        cr_assert_eq(gb[i], (uint8_t)rand_bernoulli[i]);
    }
    p = rparams(LAM_RANDOM_NORMAL, 0.5, 2.0);
    cr_assert_eq(run1(LAM_OP_RANDOM, &p, NULL, &o), LAM_OK, "%s", g_msg);
    rd(&o, got);
    expect_f(got, rand_normal, 11, 2e-6f);
    /* seed 0, key 0, offset 0: Random123's first known answer, word by word */
    const int64_t d4[1] = {4};
    tens k = mkf(1, d4, NULL);
    p = rparams(LAM_RANDOM_UNIFORM, 0.0, 1.0);
    p.seed = p.key = p.offset = 0;
    cr_assert_eq(run1(LAM_OP_RANDOM, &p, NULL, &k), LAM_OK, "%s", g_msg);
    rd(&k, got);
    for (int i = 0; i < 4; i++) {
        cr_assert_eq((uint32_t)(got[i] * 16777216.0f), rand_kat0[i] >> 8);
    }
    rm(&o);
    rm(&u8);
    rm(&k);
}

Test(cpu_ops2, random_of_a_strided_view_follows_row_major_order) {
    /* a 2x3 view with row stride 4 elements: element i of the view is word offset + i */
    const int64_t d[1] = {8};
    tens o = mkf(1, d, NULL);
    lam_tensor_view v = o.v;
    v.ndim = 2;
    v.dims[0] = 2;
    v.dims[1] = 3;
    v.strides[0] = 16;
    v.strides[1] = 4;
    lam_random_params p = rparams(LAM_RANDOM_UNIFORM, 0.0, 1.0);
    const lam_tensor_view *out[1] = {&v};
    cr_assert_eq(run(LAM_OP_RANDOM, &p, 0, 0, NULL, 1, out), LAM_OK, "%s", g_msg);
    float got[8];
    rd(&o, got);
    const int at[6] = {0, 1, 2, 4, 5, 6};
    for (int i = 0; i < 6; i++) {
        cr_assert_eq((uint32_t)(got[at[i]] * 16777216.0f), rand_words[i] >> 8);
    }
    cr_assert_eq(got[3], 0.0f);
    rm(&o);
}

Test(cpu_ops2, where_takes_no_nan_from_the_other_branch) {
    const int64_t d[1] = {4};
    const float cf[4] = {1, 0, NAN, -2};
    const uint8_t cu[4] = {1, 0, 0, 7};
    const float x[4] = {1, NAN, 3, 4};
    const float y[4] = {NAN, 20, 30, 40};
    tens c = mkf(1, d, cf), c8 = mk(LAM_DTYPE_U8, 1, d, cu), tx = mkf(1, d, x), ty = mkf(1, d, y);
    tens o = mkf(1, d, NULL);
    const lam_tensor_view *in[3] = {&c.v, &tx.v, &ty.v};
    const lam_tensor_view *out[1] = {&o.v};
    cr_assert_eq(run(LAM_OP_WHERE, NULL, 0, 3, in, 1, out), LAM_OK, "%s", g_msg);
    float got[4];
    rd(&o, got);
    const float want[4] = {1, 20, 3, 4}; /* NaN != 0 picks x */
    expect_f(got, want, 4, 0);
    in[0] = &c8.v;
    cr_assert_eq(run(LAM_OP_WHERE, NULL, 0, 3, in, 1, out), LAM_OK, "%s", g_msg);
    rd(&o, got);
    const float want8[4] = {1, 20, 30, 4};
    expect_f(got, want8, 4, 0);
    rm(&c);
    rm(&c8);
    rm(&tx);
    rm(&ty);
    rm(&o);
}

Test(cpu_ops2, comparisons_give_zero_for_nan) {
    const int64_t d[1] = {4};
    const float x[4] = {1, 2, NAN, 3};
    const float y[4] = {2, 2, 1, NAN};
    tens tx = mkf(1, d, x), ty = mkf(1, d, y), o = mkf(1, d, NULL);
    const lam_op ops[3] = {LAM_OP_GREATER, LAM_OP_LESS, LAM_OP_EQUAL};
    const float want[3][4] = {{0, 0, 0, 0}, {1, 0, 0, 0}, {0, 1, 0, 0}};
    float got[4];
    for (int k = 0; k < 3; k++) {
        cr_assert_eq(run2(ops[k], NULL, &tx, &ty, &o), LAM_OK, "%s", g_msg);
        rd(&o, got);
        expect_f(got, want[k], 4, 0);
    }
    rm(&tx);
    rm(&ty);
    rm(&o);
}

Test(cpu_ops2, clamp_keeps_nan) {
    const int64_t d[1] = {5};
    const float x[5] = {-5, 0.5f, 7, NAN, -INFINITY};
    tens tx = mkf(1, d, x), o = mkf(1, d, NULL);
    lam_scalar_params p = LAM_SCALAR_PARAMS_INIT;
    p.a = -1.0;
    p.b = 2.0;
    cr_assert_eq(run1(LAM_OP_CLAMP, &p, &tx, &o), LAM_OK, "%s", g_msg);
    float got[5];
    rd(&o, got);
    const float want[5] = {-1, 0.5f, 2, NAN, -1};
    expect_f(got, want, 5, 0);
    rm(&tx);
    rm(&o);
}

Test(cpu_ops2, pad_places_x_inside_the_value) {
    const int64_t dx[2] = {2, 3}, dout[2] = {3, 6};
    const float x[6] = {1, 2, 3, 4, 5, 6};
    tens tx = mkf(2, dx, x), o = mkf(2, dout, NULL);
    lam_pad_params p;
    memset(&p, 0, sizeof p);
    p.struct_size = (uint32_t)sizeof p;
    p.value = 7.5;
    p.before[0] = 1; /* one row above */
    p.before[1] = 2; /* two columns left, one right */
    p.after[1] = 1;
    cr_assert_eq(run1(LAM_OP_PAD, &p, &tx, &o), LAM_OK, "%s", g_msg);
    float got[18];
    rd(&o, got);
    const float V = 7.5f;
    const float want[18] = {V, V, V, V, V, V, V, V, 1, 2, 3, V, V, V, 4, 5, 6, V};
    expect_f(got, want, 18, 0);
    rm(&tx);
    rm(&o);
}

Test(cpu_ops2, cast_truncates_rounds_and_refuses_what_does_not_fit) {
    const int64_t d[1] = {4};
    const float x[4] = {2.7f, -2.7f, 0.0f, 300.0f};
    tens tx = mkf(1, d, x), i32 = mk(LAM_DTYPE_I32, 1, d, NULL), u8 = mk(LAM_DTYPE_U8, 1, d, NULL);
    cr_assert_eq(run1(LAM_OP_CAST, NULL, &tx, &i32), LAM_OK, "%s", g_msg);
    int32_t gi[4];
    rd(&i32, gi);
    cr_assert(gi[0] == 2 && gi[1] == -2 && gi[2] == 0 && gi[3] == 300);
    cr_assert_eq(run1(LAM_OP_CAST, NULL, &tx, &u8), LAM_ERR_INVALID_ARGUMENT);
    expect_msg("cpu: Invalid value, cast element 1 is -2.7");
    cr_assert_eq(run1(LAM_OP_CAST, NULL, &i32, &u8), LAM_ERR_INVALID_ARGUMENT);
    expect_msg("cast element 1 is -2, not representable in uint8");
    const float nan4[4] = {1, NAN, 0, 0};
    tens tn = mkf(1, d, nan4);
    cr_assert_eq(run1(LAM_OP_CAST, NULL, &tn, &i32), LAM_ERR_INVALID_ARGUMENT);
    expect_msg("cast element 1 is nan, not representable in int32");
    const int64_t big[4] = {16777217, -3, INT64_MAX, 255};
    tens t64 = mk(LAM_DTYPE_I64, 1, d, big), f = mkf(1, d, NULL);
    cr_assert_eq(run1(LAM_OP_CAST, NULL, &t64, &f), LAM_OK, "%s", g_msg);
    float gf[4];
    rd(&f, gf);
    const float want[4] = {16777216.0f, -3.0f, 9223372036854775808.0f, 255.0f};
    expect_f(gf, want, 4, 0);
    const uint8_t bytes[4] = {0, 1, 200, 255};
    tens tb = mk(LAM_DTYPE_U8, 1, d, bytes);
    cr_assert_eq(run1(LAM_OP_CAST, NULL, &tb, &f), LAM_OK, "%s", g_msg);
    rd(&f, gf);
    const float wantb[4] = {0, 1, 200, 255};
    expect_f(gf, wantb, 4, 0);
    cr_assert_eq(run1(LAM_OP_CAST, NULL, &tb, &t64), LAM_OK, "%s", g_msg);
    int64_t g64[4];
    rd(&t64, g64);
    cr_assert(g64[0] == 0 && g64[1] == 1 && g64[2] == 200 && g64[3] == 255);
    rm(&tx);
    rm(&i32);
    rm(&u8);
    rm(&tn);
    rm(&t64);
    rm(&f);
    rm(&tb);
}

Test(cpu_ops2, moments_mean_and_biased_variance) {
    const int64_t dx[3] = {2, 5, 3}, dout[3] = {2, 1, 3};
    tens x = mkf(3, dx, mom_x), m = mkf(3, dout, NULL), v = mkf(3, dout, NULL);
    const lam_tensor_view *in[1] = {&x.v};
    const lam_tensor_view *out[2] = {&m.v, &v.v};
    cr_assert_eq(run(LAM_OP_MOMENTS, NULL, 0, 1, in, 2, out), LAM_OK, "%s", g_msg);
    float gm[6], gv[6];
    rd(&m, gm);
    rd(&v, gv);
    expect_f(gm, mom_mean, 6, 1e-6f);
    expect_f(gv, mom_var, 6, 1e-6f);
    rm(&x);
    rm(&m);
    rm(&v);
}

Test(cpu_ops2, argmax_into_int32_and_int64) {
    const int64_t dx[3] = {3, 4, 1}, dout[3] = {3, 1, 1};
    tens x = mkf(3, dx, argmax_x);
    tens o32 = mk(LAM_DTYPE_I32, 3, dout, NULL), o64 = mk(LAM_DTYPE_I64, 3, dout, NULL);
    cr_assert_eq(run1(LAM_OP_ARGMAX, NULL, &x, &o32), LAM_OK, "%s", g_msg);
    cr_assert_eq(run1(LAM_OP_ARGMAX, NULL, &x, &o64), LAM_OK, "%s", g_msg);
    int32_t g32[3];
    int64_t g64[3];
    rd(&o32, g32);
    rd(&o64, g64);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(g32[i], argmax_out[i]);
        cr_assert_eq(g64[i], argmax_out[i]);
    }
    rm(&x);
    rm(&o32);
    rm(&o64);
}

Test(cpu_ops2, supports_refuses_absurd_windows_without_overflow) {
    const int64_t dx[4] = {1, 1, INT64_C(1) << 30, INT64_C(1) << 30};
    const int64_t dout[3] = {1, 4, 4};
    lam_tensor_view x, o;
    view_init(&x, NULL, LAM_DTYPE_F32, 4, dx);
    view_init(&o, NULL, LAM_DTYPE_F32, 3, dout);
    const lam_tensor_view *in[1] = {&x};
    const lam_tensor_view *out[1] = {&o};
    lam_op_call c;
    memset(&c, 0, sizeof c);
    c.struct_size = (uint32_t)sizeof c;
    c.op = LAM_OP_IM2COL;
    c.n_inputs = 1;
    c.n_outputs = 1;
    c.inputs = in;
    c.outputs = out;
    lam_window_params w = window(INT64_C(1) << 31, 2, 1, 1, INT64_C(1) << 31, 0, INT64_C(1) << 31,
                                 1, LAM_WINDOW_CEIL_MODE);
    c.params = &w;
    cr_assert_eq(g_desc.supports(g_dev, &c), 0);
    w = window(2, 2, 1, 1, 0, 0, 1, 1, 0); /* fine parameters, but 2^60 columns */
    cr_assert_eq(g_desc.supports(g_dev, &c), 0);
    w.kernel[0] = 0;
    cr_assert_eq(g_desc.supports(g_dev, &c), 0);
    c.op = LAM_OP_PAD;
    lam_pad_params p;
    memset(&p, 0, sizeof p);
    p.struct_size = (uint32_t)sizeof p;
    p.after[2] = INT64_MAX / 4;
    p.after[3] = INT64_MAX / 4;
    c.params = &p;
    cr_assert_eq(g_desc.supports(g_dev, &c), 0);
}

/* <op(x), g> == <x, adjoint(g)> in double, for one window op and its adjoint. */
static void check_adjoint(lam_op fwd, lam_op adj, const lam_window_params *w, const int64_t *dx,
                          uint32_t nd_y, const int64_t *dy) {
    const size_t nx = count_of(4, dx), ny = count_of(nd_y, dy);
    float *x = malloc(nx * sizeof *x), *g = malloc(ny * sizeof *g);
    float *y = malloc(ny * sizeof *y), *gx = malloc(nx * sizeof *gx);
    uint32_t state = 12345;
    for (size_t i = 0; i < nx; i++) {
        state = state * 1664525u + 1013904223u;
        x[i] = (float)(state >> 20) / 4096.0f - 0.5f;
    }
    for (size_t i = 0; i < ny; i++) {
        state = state * 1664525u + 1013904223u;
        g[i] = (float)(state >> 20) / 4096.0f - 0.5f;
    }
    tens tx = mkf(4, dx, x), ty = mkf(nd_y, dy, NULL), tg = mkf(nd_y, dy, g),
         tgx = mkf(4, dx, NULL);
    cr_assert_eq(run1(fwd, w, &tx, &ty), LAM_OK, "%s", g_msg);
    cr_assert_eq(run1(adj, w, &tg, &tgx), LAM_OK, "%s", g_msg);
    rd(&ty, y);
    rd(&tgx, gx);
    double lhs = 0.0, rhs = 0.0;
    for (size_t i = 0; i < ny; i++) {
        lhs += (double)y[i] * g[i];
    }
    for (size_t i = 0; i < nx; i++) {
        rhs += (double)x[i] * gx[i];
    }
    cr_assert(fabs(lhs - rhs) <= 1e-4 * (1.0 + fabs(lhs)), "%s: <y, g> = %.9g, <x, adj g> = %.9g",
              lam_op_name(fwd), lhs, rhs);
    free(x);
    free(g);
    free(y);
    free(gx);
    rm(&tx);
    rm(&ty);
    rm(&tg);
    rm(&tgx);
}

static int64_t out_len(int64_t in, int64_t k, int64_t s, int64_t pb, int64_t pa, int64_t d,
                       int ceil_mode) {
    const int64_t span = in + pb + pa - d * (k - 1) - 1;
    if (!ceil_mode) {
        return span / s + 1;
    }
    int64_t n = (span + s - 1) / s + 1;
    return (n - 1) * s >= in + pb ? n - 1 : n;
}

Test(cpu_ops2, col2im_and_avg_pool_backward_are_adjoints) {
    /* kernel, stride, padding before/after, dilation, ceil: odd sizes and every option */
    const int64_t cases[][6] = {
        {3, 2, 1, 1, 1, 0}, {2, 1, 0, 1, 2, 0}, {3, 3, 2, 0, 1, 1},
        {2, 2, 1, 1, 1, 1}, {1, 2, 0, 0, 1, 0},
    };
    for (size_t k = 0; k < N_OF(cases); k++) {
        const int64_t *cs = cases[k];
        lam_window_params w = window(cs[0], cs[0], cs[1], cs[1], cs[2], cs[2], cs[4], cs[4],
                                     cs[5] ? LAM_WINDOW_CEIL_MODE : 0);
        w.pad_after[0] = w.pad_after[1] = cs[3];
        const int64_t dx[4] = {2, 3, 7, 6};
        const int64_t oh = out_len(7, cs[0], cs[1], cs[2], cs[3], cs[4], (int)cs[5]);
        const int64_t ow = out_len(6, cs[0], cs[1], cs[2], cs[3], cs[4], (int)cs[5]);
        const int64_t dcol[3] = {2, 3 * cs[0] * cs[0], oh * ow};
        check_adjoint(LAM_OP_IM2COL, LAM_OP_COL2IM, &w, dx, 3, dcol);
        const int64_t dpool[4] = {2, 3, oh, ow};
        check_adjoint(LAM_OP_AVG_POOL, LAM_OP_AVG_POOL_BACKWARD, &w, dx, 4, dpool);
        w.flags |= LAM_WINDOW_COUNT_INCLUDE_PAD;
        check_adjoint(LAM_OP_AVG_POOL, LAM_OP_AVG_POOL_BACKWARD, &w, dx, 4, dpool);
    }
}
