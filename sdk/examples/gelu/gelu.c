/*
 * gelu.c - a layer with its own kernel, written only against the Lamina SDK (plugin.h and
 * plugin_ops.h): GELU with the tanh approximation,
 *
 *     gelu(x) = 0.5 x (1 + tanh(c (x + 0.044715 x^3))),  c = sqrt(2 / pi).
 *
 * The plugin registers
 *  - the kernel "gelu.tanh" with a reference on host memory (the truth every implementation is
 *    checked against), a CPU implementation (AVX2 + FMA when the CPU has them, checked at run
 *    time, else the reference loop), a Vulkan implementation (gelu.comp compiled to SPIR-V at
 *    build time, embedded below) and a backward written with host ops, and
 *  - the layer "GELU", whose forward is one host->kernel_call.
 * The host runs the implementation of the tensor's backend or, for any other backend, the
 * reference with staging, and records one autograd node either way. `lamina conform` checks
 * each implementation against the reference and the backward against finite differences.
 */
#include "lamina/plugin.h"
#include "lamina/plugin_ops.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define GELU_X86 1
#endif

#ifdef GELU_HAVE_SPIRV
#include "gelu_spirv.h" /* gelu_spirv[], gelu_spirv_size: generated from gelu.comp */
#endif

static const lam_host_api *g_host;

#define GELU_C 0.7978845608028654f /* sqrt(2 / pi) */
#define GELU_K 0.044715f

static float gelu1(float x) {
    return 0.5f * x * (1.0f + tanhf(GELU_C * (x + GELU_K * x * x * x)));
}

/* Every operand is F32 and contiguous; the output has the input's element count. */
static int64_t count_of(const lam_tensor_view *v) {
    int64_t n = 1;
    for (uint32_t i = 0; i < v->ndim; i++) {
        n *= v->dims[i];
    }
    return n;
}

static lam_status reference(void *user, const void *params, const lam_kernel_args *args) {
    (void)user;
    (void)params;
    const float *x = args->inputs[0]->data;
    float *y = args->outputs[0]->data;
    int64_t n = count_of(args->outputs[0]->view);
    for (int64_t i = 0; i < n; i++) {
        y[i] = gelu1(x[i]);
    }
    return LAM_OK;
}

#ifdef GELU_X86
/* tanh(u) = 1 - 2 / (exp(2u) + 1), with exp by range reduction and a degree-6 polynomial
 * (relative error below 2e-7 on the clamped range, which covers every float where tanh is not
 * already +-1). */
__attribute__((target("avx2,fma"))) static __m256 exp8(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.0f)), _mm256_set1_ps(87.0f));
    __m256 k = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(k, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(k, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.3981999507e-3f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e =
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

__attribute__((target("avx2,fma"))) static void gelu_avx2(const float *x, float *y, int64_t n) {
    int64_t i = 0;
    const __m256 half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f),
                 two = _mm256_set1_ps(2.0f);
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256 v3 = _mm256_mul_ps(_mm256_mul_ps(v, v), v);
        __m256 u =
            _mm256_mul_ps(_mm256_set1_ps(GELU_C), _mm256_fmadd_ps(_mm256_set1_ps(GELU_K), v3, v));
        u = _mm256_min_ps(_mm256_max_ps(u, _mm256_set1_ps(-20.0f)), _mm256_set1_ps(20.0f));
        __m256 t =
            _mm256_sub_ps(one, _mm256_div_ps(two, _mm256_add_ps(exp8(_mm256_mul_ps(two, u)), one)));
        /* NaN in x: the clamps above dropped it; put it back. */
        __m256 nan = _mm256_cmp_ps(v, v, _CMP_UNORD_Q);
        __m256 r = _mm256_mul_ps(_mm256_mul_ps(half, v), _mm256_add_ps(one, t));
        _mm256_storeu_ps(y + i, _mm256_blendv_ps(r, v, nan));
    }
    for (; i < n; i++) {
        y[i] = gelu1(x[i]);
    }
}
#endif

/* The CPU implementation: AVX2 + FMA when this CPU has them (checked each call; cheap). */
static lam_status run_cpu(void *user, const void *params, const lam_kernel_args *args) {
#ifdef GELU_X86
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        gelu_avx2(args->inputs[0]->data, args->outputs[0]->data, count_of(args->outputs[0]->view));
        return LAM_OK;
    }
#endif
    return reference(user, params, args);
}

/* Both implementations take contiguous F32 operands only; anything else runs the reference. */
static int32_t f32_only(void *user, const void *params, const lam_kernel_args *args) {
    (void)user;
    (void)params;
    return args->inputs[0]->view->dtype == LAM_DTYPE_F32;
}

static const lam_kernel_impl impl_cpu = {LAM_KERNEL_IMPL_HEADER, .backend = "cpu", .run = run_cpu,
                                         .supports = f32_only};
#ifdef GELU_HAVE_SPIRV
static const lam_kernel_impl impl_vulkan = {LAM_KERNEL_IMPL_HEADER, .backend = "vulkan",
                                            .spirv = gelu_spirv,    .spirv_size = sizeof gelu_spirv,
                                            .spirv_entry = "main",  .local_size_x = 64,
                                            .supports = f32_only};
static const lam_kernel_impl *const impls[] = {&impl_cpu, &impl_vulkan};
#else
static const lam_kernel_impl *const impls[] = {&impl_cpu};
#endif

static lam_status shape(void *user, const void *params, uint32_t n_inputs,
                        const lam_tensor_info *const *inputs, uint32_t n_outputs,
                        lam_tensor_info *const *outputs) {
    (void)user;
    (void)params;
    (void)n_inputs;
    (void)n_outputs;
    if (inputs[0]->dtype != LAM_DTYPE_F32) {
        return g_host->set_error(LAM_ERR_DTYPE, "gelu.tanh: Unsupported dtype, it takes float32");
    }
    outputs[0]->dtype = LAM_DTYPE_F32;
    outputs[0]->ndim = inputs[0]->ndim;
    memcpy(outputs[0]->dims, inputs[0]->dims, sizeof outputs[0]->dims);
    return LAM_OK;
}

/*
 * dgelu/dx = 0.5 (1 + t) + 0.5 x (1 - t^2) c (1 + 3k x^2), t = tanh(c (x + k x^3)), written
 * with host ops (so it runs on every backend and is itself differentiable).
 */
static lam_status backward(void *user, const void *params, uint32_t n_inputs,
                           lam_tensor *const *inputs, uint32_t n_outputs,
                           lam_tensor *const *outputs, const lam_tensor *const *grad_outputs,
                           lam_tensor **grad_inputs) {
    (void)user;
    (void)params;
    (void)n_inputs;
    (void)n_outputs;
    (void)outputs;
    const lam_host_api *h = g_host;
    lam_tensor *x = inputs[0], *x2 = NULL, *u = NULL, *t = NULL, *t2 = NULL, *a = NULL, *b = NULL,
               *c = NULL, *d = NULL, *e = NULL;
    lam_status st = lam_p_unary(h, LAM_OP_SQUARE, x, &x2);
    if (st == LAM_OK) { /* u = c x (1 + k x^2) */
        st = lam_p_scalar(h, LAM_OP_MUL_SCALAR, x2, GELU_K, &a);
    }
    if (st == LAM_OK) {
        st = lam_p_scalar(h, LAM_OP_ADD_SCALAR, a, 1.0, &b);
    }
    if (st == LAM_OK) {
        st = lam_p_mul(h, x, b, &c);
    }
    if (st == LAM_OK) {
        st = lam_p_scalar(h, LAM_OP_MUL_SCALAR, c, GELU_C, &u);
    }
    if (st == LAM_OK) {
        st = lam_p_unary(h, LAM_OP_TANH, u, &t);
    }
    h->tensor_release(a), h->tensor_release(b), h->tensor_release(c);
    a = b = c = NULL;
    if (st == LAM_OK) { /* a = 0.5 (1 + t) */
        st = lam_p_axpby(h, 0.5, t, 0.0, t, &a);
    }
    if (st == LAM_OK) {
        st = lam_p_scalar(h, LAM_OP_ADD_SCALAR, a, 0.5, &b);
    }
    if (st == LAM_OK) { /* c = 1 - t^2 */
        st = lam_p_unary(h, LAM_OP_SQUARE, t, &t2);
    }
    if (st == LAM_OK) {
        st = lam_p_scalar(h, LAM_OP_RSUB_SCALAR, t2, 1.0, &c);
    }
    if (st == LAM_OK) { /* d = 0.5 c x (1 + 3k x^2) c(1-t^2) */
        h->tensor_release(a);
        a = NULL;
        st = lam_p_scalar(h, LAM_OP_MUL_SCALAR, x2, 3.0 * GELU_K, &a);
    }
    if (st == LAM_OK) {
        h->tensor_release(t2);
        t2 = NULL;
        st = lam_p_scalar(h, LAM_OP_ADD_SCALAR, a, 1.0, &t2);
    }
    if (st == LAM_OK) {
        st = lam_p_mul(h, t2, c, &d);
    }
    if (st == LAM_OK) {
        st = lam_p_mul(h, d, x, &e);
    }
    if (st == LAM_OK) {
        h->tensor_release(d);
        d = NULL;
        st = lam_p_axpby(h, 1.0, b, 0.5 * GELU_C, e, &d);
    }
    if (st == LAM_OK) {
        st = lam_p_mul(h, d, grad_outputs[0], &grad_inputs[0]);
    }
    lam_tensor *all[] = {x2, u, t, t2, a, b, c, d, e};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        h->tensor_release(all[i]);
    }
    return st;
}

static const lam_kernel_desc kernel = {
    LAM_KERNEL_DESC_HEADER,
    .name = "gelu.tanh",
    .doc = "GELU, tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))",
    .n_inputs = 1,
    .n_outputs = 1,
    .n_impls = sizeof impls / sizeof impls[0],
    .impls = impls,
    .shape = shape,
    .reference = reference,
    .backward = backward,
};

/* ---- the layer: one kernel call ---- */

static lam_status create(void *user, lam_layer *layer, const lam_attrs *attrs, void **state) {
    (void)user;
    (void)layer;
    (void)attrs;
    *state = NULL;
    return LAM_OK;
}

static void destroy(void *state) {
    (void)state;
}

static lam_status infer_shape(void *state, lam_layer *layer, uint32_t n_inputs,
                              const lam_tensor_info *const *inputs, uint32_t n_outputs,
                              lam_tensor_info *const *outputs) {
    (void)state;
    (void)layer;
    return shape(NULL, NULL, n_inputs, inputs, n_outputs, outputs);
}

static lam_status forward(void *state, lam_layer *layer, uint32_t n_inputs,
                          lam_tensor *const *inputs, uint32_t n_outputs, lam_tensor **outputs) {
    (void)state;
    (void)layer;
    return g_host->kernel_call("gelu.tanh", NULL, n_inputs, inputs, n_outputs, outputs);
}

static const lam_layer_desc layer = {
    LAM_LAYER_DESC_HEADER,
    .name = "GELU",
    .prefix = "gelu",
    .version = "1.0.0",
    .doc = "GELU activation (tanh approximation) through the gelu.tanh kernel",
    .create = create,
    .destroy = destroy,
    .infer_shape = infer_shape,
    .forward = forward,
};

LAM_PLUGIN_ENTRY {
    lam_status st = lam_plugin_check_host(host);
    if (st != LAM_OK) {
        return st;
    }
    g_host = host;
    st = host->register_kernel(plugin, &kernel);
    return st != LAM_OK ? st : host->register_layer(plugin, &layer);
}
