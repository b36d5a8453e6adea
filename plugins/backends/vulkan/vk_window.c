/*
 * vk_window.c - the sliding-window ops: one dispatch of window.comp, one invocation per element
 * of the written side (see the shader for the modes). Level 6: above vk_pipeline.
 */
#include "vk_window.h"

#include <string.h>

typedef struct win_push {
    int32_t so[4], sx[4], si[4];
    uint32_t mode;
    uint32_t count;
    int32_t c, h, w, oh, ow, kh, kw, sh, sw, ph, pw, dh, dw, he, we;
    int32_t oo, ox, oi;
} win_push;

int64_t vk_window_out(int64_t in, int64_t k, int64_t s, int64_t pb, int64_t pa, int64_t dil,
                      int ceil_mode) {
    int64_t span = in + pb + pa - (dil * (k - 1) + 1);
    if (span < 0) {
        return 0;
    }
    int64_t o = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
    /* ceil mode as PyTorch: the last window starts inside the input or its leading padding */
    if (ceil_mode && o > 1 && (o - 1) * s >= in + pb) {
        o--;
    }
    return o;
}

enum { WIN_IM2COL, WIN_COL2IM, WIN_MAX, WIN_MAX_BACK, WIN_AVG, WIN_AVG_BACK };

/* Loop iterations of one invocation: KH * KW taps, times the divisor's KH + KW for the average
 * gradient; kept far below lavapipe's 65,535. Coordinates stay far inside 32 bits. */
lam_status vk_window_limits(const vk_call *call, const char *opname) {
    const lam_window_params *w = &call->win;
    int64_t taps = w->kernel[0] * w->kernel[1];
    int64_t iters =
        taps * (call->op == LAM_OP_AVG_POOL_BACKWARD ? w->kernel[0] + w->kernel[1] + 1 : 1) +
        w->kernel[0];
    int64_t reach = 0;
    for (int i = 0; i < 2; i++) {
        int64_t r =
            (w->kernel[i] - 1) * w->dilation[i] + w->pad_before[i] + w->pad_after[i] + w->stride[i];
        reach = r > reach ? r : reach;
    }
    if (iters > 30000 || reach > ((int64_t)1 << 24)) {
        return vk_error(LAM_ERR_UNSUPPORTED,
                        "vulkan: Unsupported size, %s window of %lld x %lld taps (stride, "
                        "dilation, padding up to %lld) is beyond the vulkan backend's window "
                        "shader",
                        opname, (long long)w->kernel[0], (long long)w->kernel[1], (long long)reach);
    }
    return LAM_OK;
}

static void strides4(int32_t dst[4], const lam_tensor_view *v) {
    for (uint32_t i = 0; i < 4; i++) {
        dst[i] = i < v->ndim ? (int32_t)v->strides[i] : 0;
    }
}

lam_status vk_run_window(vk_device *d, const vk_call *call, const char *opname, const vk_view *vo,
                         const vk_view *vin) {
    const lam_window_params *w = &call->win;
    win_push p;
    memset(&p, 0, sizeof p);
    int mode = WIN_IM2COL;
    switch (call->op) {
    case LAM_OP_COL2IM:
        mode = WIN_COL2IM;
        break;
    case LAM_OP_MAX_POOL:
        mode = WIN_MAX;
        break;
    case LAM_OP_MAX_POOL_BACKWARD:
        mode = WIN_MAX_BACK;
        break;
    case LAM_OP_AVG_POOL:
        mode = WIN_AVG;
        break;
    case LAM_OP_AVG_POOL_BACKWARD:
        mode = WIN_AVG_BACK;
        break;
    default:
        break;
    }
    int backward = mode == WIN_COL2IM || mode == WIN_MAX_BACK || mode == WIN_AVG_BACK;
    const lam_tensor_view *img = backward ? &call->out[0] : &call->in[0];
    const int64_t h = img->dims[2], wd = img->dims[3];
    int64_t oh, ow;
    if (mode == WIN_IM2COL || mode == WIN_COL2IM) {
        int ceil_mode = (w->flags & LAM_WINDOW_CEIL_MODE) != 0;
        oh = vk_window_out(h, w->kernel[0], w->stride[0], w->pad_before[0], w->pad_after[0],
                           w->dilation[0], ceil_mode);
        ow = vk_window_out(wd, w->kernel[1], w->stride[1], w->pad_before[1], w->pad_after[1],
                           w->dilation[1], ceil_mode);
    } else {
        const lam_tensor_view *win = backward ? &call->in[0] : &call->out[0];
        oh = win->dims[2];
        ow = win->dims[3];
    }
    int64_t count = 1;
    for (uint32_t i = 0; i < call->out[0].ndim; i++) {
        count *= call->out[0].dims[i];
    }
    if (count > UINT32_MAX) {
        return vk_error(LAM_ERR_UNSUPPORTED, "vulkan: Unsupported size, %s of %lld elements",
                        opname, (long long)count);
    }
    p.mode = (uint32_t)mode | ((w->flags & LAM_WINDOW_COUNT_INCLUDE_PAD) ? 256u : 0u);
    p.count = (uint32_t)count;
    const int64_t vals[] = {img->dims[1],
                            h,
                            wd,
                            oh,
                            ow,
                            w->kernel[0],
                            w->kernel[1],
                            w->stride[0],
                            w->stride[1],
                            w->pad_before[0],
                            w->pad_before[1],
                            w->dilation[0],
                            w->dilation[1],
                            h + w->pad_after[0],
                            wd + w->pad_after[1]};
    int32_t *dst[] = {&p.c,  &p.h,  &p.w,  &p.oh, &p.ow, &p.kh, &p.kw, &p.sh,
                      &p.sw, &p.ph, &p.pw, &p.dh, &p.dw, &p.he, &p.we};
    lam_status s = LAM_OK;
    for (size_t i = 0; i < sizeof vals / sizeof vals[0] && s == LAM_OK; i++) {
        s = vk_to_i32(vals[i], dst[i], opname);
    }
    /* bindings: out, x, and the indices (MAX_POOL's second output, its gradient's input) */
    const lam_tensor_view *iv = mode == WIN_MAX        ? &call->out[1]
                                : mode == WIN_MAX_BACK ? &call->in[1]
                                                       : NULL;
    const vk_view *ivc = mode == WIN_MAX ? &vo[1] : mode == WIN_MAX_BACK ? &vin[1] : NULL;
    vk_bind binds[3];
    uint32_t n_binds = iv != NULL ? 3 : 2;
    if (s == LAM_OK) {
        s = vk_bind_view(d, &vo[0], opname, "output", &binds[0]);
    }
    if (s == LAM_OK) {
        s = vk_bind_view(d, &vin[0], opname, "input", &binds[1]);
    }
    if (s == LAM_OK && iv != NULL) {
        s = vk_bind_view(d, ivc, opname, "indices", &binds[2]);
    }
    strides4(p.so, &call->out[0]);
    strides4(p.sx, &call->in[0]);
    if (iv != NULL) {
        strides4(p.si, iv);
    }
    if (s == LAM_OK) {
        s = vk_rel(&binds[0], (int64_t)call->out[0].offset, &p.oo);
    }
    if (s == LAM_OK) {
        s = vk_rel(&binds[1], (int64_t)call->in[0].offset, &p.ox);
    }
    if (s == LAM_OK && iv != NULL) {
        s = vk_rel(&binds[2], (int64_t)iv->offset, &p.oi);
    }
    uint32_t gx = 0, gy = 0;
    if (s == LAM_OK) {
        s = vk_grid_2d(d, ((uint64_t)count + 255) / 256, &gx, &gy, opname);
    }
    if (s == LAM_OK) {
        uint32_t writes = mode == WIN_MAX ? 5u : 1u;
        s = vk_dispatch_n(d, VK_SHADER_WINDOW, binds, n_binds, writes, &p, sizeof p, gx, gy, 1);
    }
    return s;
}
