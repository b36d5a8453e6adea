#version 450
// Sliding-window ops over (N, C, H, W) images, one invocation per element of the side that is
// written (so no two invocations write one element and every sum has a fixed order):
//   0 IM2COL             per out (n, (c*KH + i)*KW + j, oh*OW + ow): x at the tap, or 0
//   1 COL2IM             per out pixel (n, c, h, w): the x elements of the windows that read
//                        it, in increasing column order (i, then j, descending)
//   2 MAX_POOL           per output (n, c, oh, ow): value and I32 index h*W + w (idx binding)
//   3 MAX_POOL_BACKWARD  per out pixel: the x (gradient) elements whose index names it, in
//                        increasing output order
//   4 AVG_POOL           per output: the sum of the taps inside the input over the divisor
//   5 AVG_POOL_BACKWARD  per out pixel: x / divisor of every window with it as a tap
// Bit 8 of mode is LAM_WINDOW_COUNT_INCLUDE_PAD. Loops: KH * KW per invocation (the host keeps
// that far below lavapipe's 65,535 iterations).
#extension GL_GOOGLE_include_directive : require

layout(local_size_x = 256) in;

layout(std430, binding = 0) buffer O { float o[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) buffer I { int idx[]; };

layout(push_constant) uniform P {
    ivec4 so; // strides (elements) of out, x and idx; 3-D operands use the first three
    ivec4 sx;
    ivec4 si;
    uint mode;
    uint count;
    int C;
    int H;
    int W;
    int OH;
    int OW;
    int KH;
    int KW;
    int SH;
    int SW;
    int PH;
    int PW;
    int DH;
    int DW;
    int HE; // H + padding after: the padded extent (COUNT_INCLUDE_PAD divisors)
    int WE;
    int oo;
    int ox;
    int oi;
} p;

#include "common.glsl"

// The divisor of average window (oh, ow): its taps inside the input, or inside the padded
// input with COUNT_INCLUDE_PAD.
int divisor(int oh, int ow) {
    bool incl = (p.mode & 256u) != 0u;
    int lo_h = incl ? -p.PH : 0;
    int hi_h = incl ? p.HE : p.H;
    int lo_w = incl ? -p.PW : 0;
    int hi_w = incl ? p.WE : p.W;
    int nh = 0;
    for (int i = 0; i < p.KH; i++) {
        int h = oh * p.SH - p.PH + i * p.DH;
        nh += (h >= lo_h && h < hi_h) ? 1 : 0;
    }
    int nw = 0;
    for (int j = 0; j < p.KW; j++) {
        int w = ow * p.SW - p.PW + j * p.DW;
        nw += (w >= lo_w && w < hi_w) ? 1 : 0;
    }
    return nh * nw;
}

float x4(int n, int c, int h, int w) {
    return x[p.ox + n * p.sx.x + c * p.sx.y + h * p.sx.z + w * p.sx.w];
}

// Output position of tap t (row i or column j) over image coordinate v: -1 when none.
int window_of(int v, int t, int pad, int stride, int dil, int nout) {
    int s = v + pad - t * dil;
    if (s < 0 || s % stride != 0) {
        return -1;
    }
    int q = s / stride;
    return q < nout ? q : -1;
}

void main() {
    uint gid = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * 256u +
               gl_LocalInvocationID.x;
    if (gid >= p.count) {
        return;
    }
    uint mode = p.mode & 255u;
    int g = int(gid);
    if (mode == 0u) {
        int ncol = p.OH * p.OW;
        int nrow = p.C * p.KH * p.KW;
        int col = g % ncol;
        int row = (g / ncol) % nrow;
        int n = g / (ncol * nrow);
        int j = row % p.KW;
        int i = (row / p.KW) % p.KH;
        int c = row / (p.KW * p.KH);
        int h = (col / p.OW) * p.SH - p.PH + i * p.DH;
        int w = (col % p.OW) * p.SW - p.PW + j * p.DW;
        float v = 0.0;
        if (h >= 0 && h < p.H && w >= 0 && w < p.W) {
            v = x4(n, c, h, w);
        }
        o[p.oo + n * p.so.x + row * p.so.y + col * p.so.z] = v;
        return;
    }
    if (mode == 2u || mode == 4u) {
        int ow = g % p.OW;
        int oh = (g / p.OW) % p.OH;
        int c = (g / (p.OW * p.OH)) % p.C;
        int n = g / (p.OW * p.OH * p.C);
        float best = 0.0;
        int at = -1;
        precise float acc = 0.0;
        for (int i = 0; i < p.KH; i++) {
            int h = oh * p.SH - p.PH + i * p.DH;
            if (h < 0 || h >= p.H) {
                continue;
            }
            for (int j = 0; j < p.KW; j++) {
                int w = ow * p.SW - p.PW + j * p.DW;
                if (w < 0 || w >= p.W) {
                    continue;
                }
                float v = x4(n, c, h, w);
                if (mode == 4u) {
                    acc += v;
                } else if (at < 0 || (!is_nan(best) && (is_nan(v) || v > best))) {
                    best = v;
                    at = h * p.W + w;
                }
            }
        }
        int oat = p.oo + n * p.so.x + c * p.so.y + oh * p.so.z + ow * p.so.w;
        if (mode == 2u) {
            o[oat] = best;
            idx[p.oi + n * p.si.x + c * p.si.y + oh * p.si.z + ow * p.si.w] = at;
        } else {
            int cnt = divisor(oh, ow);
            o[oat] = cnt > 0 ? acc / float(cnt) : 0.0;
        }
        return;
    }
    // modes 1, 3, 5: per image pixel; windows in increasing output order
    int w = g % p.W;
    int h = (g / p.W) % p.H;
    int c = (g / (p.W * p.H)) % p.C;
    int n = g / (p.W * p.H * p.C);
    precise float acc = 0.0;
    for (int i = p.KH - 1; i >= 0; i--) {
        int oh = window_of(h, i, p.PH, p.SH, p.DH, p.OH);
        if (oh < 0) {
            continue;
        }
        for (int j = p.KW - 1; j >= 0; j--) {
            int ow = window_of(w, j, p.PW, p.SW, p.DW, p.OW);
            if (ow < 0) {
                continue;
            }
            if (mode == 1u) {
                int row = (c * p.KH + i) * p.KW + j;
                acc += x[p.ox + n * p.sx.x + row * p.sx.y + (oh * p.OW + ow) * p.sx.z];
            } else if (mode == 3u) {
                int at = idx[p.oi + n * p.si.x + c * p.si.y + oh * p.si.z + ow * p.si.w];
                if (at == h * p.W + w) {
                    acc += x4(n, c, oh, ow);
                }
            } else {
                acc += x4(n, c, oh, ow) / float(divisor(oh, ow));
            }
        }
    }
    o[p.oo + n * p.so.x + c * p.so.y + h * p.so.z + w * p.so.w] = acc;
}
