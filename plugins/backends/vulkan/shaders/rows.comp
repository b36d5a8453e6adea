#version 450
// Row ops with bounds-checked I32 indices (idx, contiguous):
//   0 GATHER_ROWS       per out element (m, d): out[m, d] = x[idx[m], d]
//   1 SCATTER_ADD_ROWS  per (row v of out, tile of 16 columns): out[v, d] += x[m, d] for every m
//                       of this dispatch's range [m0, m1) with idx[m] == v, in increasing m
//   2 CHECK             per m: a bad index lowers err[4] to its position (atomicMin)
//   4 CAST CHECK        per element g of a contiguous float32 x: NaN, or out of int32's range
//                       after truncation, lowers err[4] to g (CAST float32 -> int32)
//   3 RECORD            one invocation: the first bad position of the op just run (err[4])
//                       becomes the device's error (err[0] position, err[1] value, err[2] op,
//                       err[3] bound) unless one is already there; err[4] is reset
// A bad index gathers 0 (the output is unspecified then; the error is reported at the next
// synchronizing call). The host bounds m1 - m0 so no invocation loops near lavapipe's limit.
#extension GL_GOOGLE_include_directive : require

layout(local_size_x = 256) in;

layout(std430, binding = 0) buffer O { float o[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) readonly buffer I { int idx[]; };
layout(std430, binding = 3) buffer E { uint err[]; };

layout(push_constant) uniform P {
    uint mode;
    uint count; // invocations
    int V;      // rows of the table
    int D;      // columns
    int M;      // indices
    int m0;     // SCATTER: the range of m of this dispatch
    int m1;
    int os0;    // strides (elements) of out and x, offsets of out, x and idx
    int os1;
    int xs0;
    int xs1;
    int oo;
    int ox;
    int oi;
    int op;     // RECORD: the lam_op reported
} p;

void main() {
    uint gid = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * 256u +
               gl_LocalInvocationID.x;
    if (gid >= p.count) {
        return;
    }
    int g = int(gid);
    if (p.mode == 0u) {
        int m = g / p.D;
        int d = g % p.D;
        int v = idx[p.oi + m];
        float r = 0.0;
        if (v >= 0 && v < p.V) {
            r = x[p.ox + v * p.xs0 + d * p.xs1];
        } else {
            atomicMin(err[4], uint(m));
        }
        o[p.oo + m * p.os0 + d * p.os1] = r;
    } else if (p.mode == 1u) {
        int tiles = (p.D + 15) / 16;
        int v = g / tiles;
        int d0 = (g % tiles) * 16;
        int d1 = min(p.D, d0 + 16);
        for (int m = p.m0; m < p.m1; m++) {
            if (idx[p.oi + m] != v) {
                continue;
            }
            for (int d = d0; d < d1; d++) {
                int at = p.oo + v * p.os0 + d * p.os1;
                o[at] = o[at] + x[p.ox + m * p.xs0 + d * p.xs1];
            }
        }
    } else if (p.mode == 4u) {
        float v = x[p.ox + g];
        // NaN fails both comparisons; trunc(v) fits int32 exactly when -2^31 <= v < 2^31
        if (!(v >= -2147483648.0 && v < 2147483648.0)) {
            atomicMin(err[4], uint(g));
        }
    } else if (p.mode == 2u) {
        int v = idx[p.oi + g];
        if (v < 0 || v >= p.V) {
            atomicMin(err[4], uint(g));
        }
    } else {
        uint at = err[4];
        if (at != 0xFFFFFFFFu) {
            if (err[2] == 0u) {
                err[0] = at;
                err[1] = uint(idx[p.oi + int(at)]);
                err[2] = uint(p.op);
                err[3] = uint(p.V);
            }
            err[4] = 0xFFFFFFFFu;
        }
    }
}
