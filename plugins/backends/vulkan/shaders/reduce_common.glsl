// reduce_common.glsl - push constants and accumulation steps of the two reduction shaders.
// op: 0 sum, 1 max, 2 min, 3 argmax, 4 sum of exp(x - m), 5 argmax over partial results
// (values in x, their indices at x[xidx + same offset]), 6 sum of (x - m)^2 (MOMENTS' variance).

layout(std430, binding = 0) buffer O { float o[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) readonly buffer Y { float y[]; };

layout(push_constant) uniform P {
    uint op;
    int n;
    int inner;
    uint count; // outputs: outer * inner
    int xs0;
    int xs1;
    int xs2;
    int xoff;
    int os0;
    int os1; // stride of the segment index in a partial output
    int os2;
    int ooff;
    int moff;  // ops 4, 6: m of output (a, c) at y[moff + a * inner + c]
    float scale; // sums are multiplied by it (1/n for a mean)
    int xidx;  // op 5: offset of the partial indices in x
    int oidx;  // >= 0: write partial results, indices at o[oidx + offset]; < 0: final
    int seglen; // elements of the axis per workgroup segment (wg shader)
} p;

#include "common.glsl"

// Whether (v2, i2) replaces (v1, i1) as the argmax: NaN wins, then the larger value, then the
// lower index.
bool arg_better(float v1, int i1, float v2, int i2) {
    bool n1 = is_nan(v1);
    bool n2 = is_nan(v2);
    if (n1 && n2) {
        return i2 < i1;
    }
    if (n1) {
        return false;
    }
    if (n2) {
        return true;
    }
    return v2 > v1 || (v2 == v1 && i2 < i1);
}

float init_value(uint op) {
    if (op == 1u || op == 3u || op == 5u) {
        return -f_inf();
    }
    if (op == 2u) {
        return f_inf();
    }
    return 0.0;
}

void write_result(int a, int seg, int c, float v, int idx) {
    int at = p.ooff + a * p.os0 + seg * p.os1 + c * p.os2;
    if (p.op == 3u || p.op == 5u) {
        if (p.oidx >= 0) {
            o[at] = v;
            o[p.oidx + (at - p.ooff)] = float(idx);
        } else {
            o[at] = float(idx);
        }
    } else if (p.op == 0u || p.op == 4u || p.op == 6u) {
        o[at] = v * p.scale;
    } else {
        o[at] = v;
    }
}
