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
 *    build time, embedded below) and a backward that calls the next kernel,
 *  - the kernel "gelu.tanh_grad" (dy * gelu'(x)) the same way, gelu.tanh's backward, and
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
#include "gelu_spirv.h"      /* gelu_spirv[]: generated from gelu.comp */
#include "gelu_grad_spirv.h" /* gelu_grad_spirv[]: from gelu_grad.comp */
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

/* ---- the gradient kernel: dx = dy * gelu'(x) ----
 * gelu'(x) = 0.5 (1 + t) + 0.5 x (1 - t^2) c (1 + 3k x^2), t = tanh(c (x + k x^3)). */

static float dgelu1(float x) {
    float t = tanhf(GELU_C * (x + GELU_K * x * x * x));
    return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * GELU_C * (1.0f + 3.0f * GELU_K * x * x);
}

static lam_status grad_reference(void *user, const void *params, const lam_kernel_args *args) {
    (void)user;
    (void)params;
    const float *x = args->inputs[0]->data, *dy = args->inputs[1]->data;
    float *dx = args->outputs[0]->data;
    int64_t n = count_of(args->outputs[0]->view);
    for (int64_t i = 0; i < n; i++) {
        dx[i] = dy[i] * dgelu1(x[i]);
    }
    return LAM_OK;
}

#ifdef GELU_X86
__attribute__((target("avx2,fma"))) static void dgelu_avx2(const float *x, const float *dy,
                                                           float *dx, int64_t n) {
    int64_t i = 0;
    const __m256 half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f),
                 two = _mm256_set1_ps(2.0f), c = _mm256_set1_ps(GELU_C), k = _mm256_set1_ps(GELU_K),
                 k3 = _mm256_set1_ps(3.0f * GELU_K);
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i), v2 = _mm256_mul_ps(v, v);
        __m256 u = _mm256_mul_ps(c, _mm256_fmadd_ps(_mm256_mul_ps(k, v2), v, v));
        u = _mm256_min_ps(_mm256_max_ps(u, _mm256_set1_ps(-20.0f)), _mm256_set1_ps(20.0f));
        __m256 t =
            _mm256_sub_ps(one, _mm256_div_ps(two, _mm256_add_ps(exp8(_mm256_mul_ps(two, u)), one)));
        __m256 a = _mm256_mul_ps(half, _mm256_add_ps(one, t));
        __m256 b = _mm256_mul_ps(_mm256_mul_ps(half, v), _mm256_fnmadd_ps(t, t, one));
        __m256 d = _mm256_fmadd_ps(_mm256_mul_ps(b, c), _mm256_fmadd_ps(k3, v2, one), a);
        __m256 r = _mm256_mul_ps(_mm256_loadu_ps(dy + i), d);
        __m256 nan = _mm256_cmp_ps(v, v, _CMP_UNORD_Q);
        _mm256_storeu_ps(dx + i, _mm256_blendv_ps(r, v, nan));
    }
    for (; i < n; i++) {
        dx[i] = dy[i] * dgelu1(x[i]);
    }
}
#endif

static lam_status grad_run_cpu(void *user, const void *params, const lam_kernel_args *args) {
#ifdef GELU_X86
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        dgelu_avx2(args->inputs[0]->data, args->inputs[1]->data, args->outputs[0]->data,
                   count_of(args->outputs[0]->view));
        return LAM_OK;
    }
#endif
    return grad_reference(user, params, args);
}

static int32_t grad_f32_only(void *user, const void *params, const lam_kernel_args *args) {
    (void)user;
    (void)params;
    return args->inputs[0]->view->dtype == LAM_DTYPE_F32 &&
           args->inputs[1]->view->dtype == LAM_DTYPE_F32;
}

static const lam_kernel_impl grad_impl_cpu = {LAM_KERNEL_IMPL_HEADER, .backend = "cpu",
                                              .run = grad_run_cpu, .supports = grad_f32_only};
#ifdef GELU_HAVE_SPIRV
static const lam_kernel_impl grad_impl_vulkan = {
    LAM_KERNEL_IMPL_HEADER,   .backend = "vulkan",
    .spirv = gelu_grad_spirv, .spirv_size = sizeof gelu_grad_spirv,
    .spirv_entry = "main",    .local_size_x = 64,
    .supports = grad_f32_only};
static const lam_kernel_impl *const grad_impls[] = {&grad_impl_cpu, &grad_impl_vulkan};
#else
static const lam_kernel_impl *const grad_impls[] = {&grad_impl_cpu};
#endif

static lam_status grad_shape(void *user, const void *params, uint32_t n_inputs,
                             const lam_tensor_info *const *inputs, uint32_t n_outputs,
                             lam_tensor_info *const *outputs) {
    (void)n_inputs;
    if (inputs[0]->ndim != inputs[1]->ndim ||
        memcmp(inputs[0]->dims, inputs[1]->dims, inputs[0]->ndim * sizeof inputs[0]->dims[0])) {
        return g_host->set_error(LAM_ERR_SHAPE, "gelu.tanh_grad: x and dy differ in shape");
    }
    return shape(user, params, 1, inputs, n_outputs, outputs);
}

static const lam_kernel_desc grad_kernel = {
    LAM_KERNEL_DESC_HEADER,
    .name = "gelu.tanh_grad",
    .doc = "dy * d/dx gelu.tanh(x) (the gradient of gelu.tanh; not itself differentiable)",
    .n_inputs = 2,
    .n_outputs = 1,
    .n_impls = sizeof grad_impls / sizeof grad_impls[0],
    .impls = grad_impls,
    .shape = grad_shape,
    .reference = grad_reference,
};

/* gelu.tanh's backward: the gradient kernel above (one pass over x and dy). */
static lam_status backward(void *user, const void *params, uint32_t n_inputs,
                           lam_tensor *const *inputs, uint32_t n_outputs,
                           lam_tensor *const *outputs, const lam_tensor *const *grad_outputs,
                           lam_tensor **grad_inputs) {
    (void)user;
    (void)params;
    (void)n_inputs;
    (void)n_outputs;
    (void)outputs;
    lam_tensor *in[2] = {inputs[0], lam_p__in(grad_outputs[0])};
    return g_host->kernel_call("gelu.tanh_grad", NULL, 2, in, 1, &grad_inputs[0]);
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
    if (st == LAM_OK) {
        st = host->register_kernel(plugin, &grad_kernel);
    }
    return st != LAM_OK ? st : host->register_layer(plugin, &layer);
}
