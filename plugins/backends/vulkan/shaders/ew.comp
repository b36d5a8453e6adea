#version 450
// Generic strided elementwise op: one invocation per output element of an up-to-4-D layout
// (the host merges contiguous dims and splits the rest). Ops are numbered as lam_op. Buffers
// are 32-bit words: int32 operands (CAST) are read and written through their bits.
#extension GL_GOOGLE_include_directive : require

layout(local_size_x = 256) in;

layout(std430, binding = 0) buffer O { float o[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) readonly buffer Y { float y[]; };
layout(std430, binding = 3) readonly buffer Z { float z[]; };

layout(push_constant) uniform P {
    uint op;
    uint count;
    float t; // second scalar (AXPBY)
    float s;
    ivec4 dims;
    ivec4 so;
    ivec4 sx;
    ivec4 sy;
    ivec4 sz;
    int oo;
    int ox;
    int oy;
    int oz;
} p;

#include "common.glsl"
#include "act.glsl"

float log_f(float a) {
    if (is_nan(a)) {
        return a;
    }
    if (a < 0.0) {
        return f_nan();
    }
    if (a == 0.0) {
        return -f_inf();
    }
    if (is_inf(a)) {
        return a;
    }
    return log(a);
}

float sqrt_f(float a) {
    if (is_nan(a) || a == 0.0) {
        return a; // sqrt(-0) is -0
    }
    if (a < 0.0) {
        return f_nan();
    }
    if (is_inf(a)) {
        return a;
    }
    return sqrt(a);
}

// powf(x, s) with C's special cases.
float pow_f(float xv, float s) {
    if (s == 0.0 || xv == 1.0) {
        return 1.0;
    }
    if (is_nan(xv) || is_nan(s)) {
        return f_nan();
    }
    float as = abs(s);
    bool s_int = !is_inf(s) && floor(s) == s;
    bool s_odd = s_int && as < 16777216.0 && (uint(as) & 1u) == 1u;
    if (is_inf(s)) {
        float ax = abs(xv);
        if (ax == 1.0) {
            return 1.0;
        }
        return ((ax > 1.0) == (s > 0.0)) ? f_inf() : 0.0;
    }
    if (xv == 0.0) {
        if (s > 0.0) {
            return s_odd ? xv : 0.0;
        }
        return (s_odd && sign_bit(xv)) ? -f_inf() : f_inf();
    }
    if (is_inf(xv)) {
        // (+-inf)^s: inf or 0, negative only for -inf and an odd integer s
        float r = s > 0.0 ? f_inf() : 0.0;
        return (sign_bit(xv) && s_odd) ? -r : r;
    }
    if (xv < 0.0 && !s_int) {
        return f_nan();
    }
    precise float ax = abs(xv);
    precise float r;
    if (s == 1.0) {
        r = ax;
    } else if (s == 2.0) {
        r = ax * ax;
    } else if (s == 3.0) {
        r = ax * ax * ax;
    } else if (s == -1.0) {
        r = 1.0 / ax;
    } else if (s == -2.0) {
        r = 1.0 / (ax * ax);
    } else if (s == 0.5) {
        r = sqrt_f(ax);
    } else if (is_inf(ax)) {
        r = s > 0.0 ? f_inf() : 0.0;
    } else {
        float e = s * log2(ax);
        if (e > 128.0) {
            r = f_inf();
        } else if (e < -150.0) {
            r = 0.0;
        } else {
            r = exp2(e);
        }
    }
    return (xv < 0.0 && s_odd) ? -r : r;
}

float clamp_f(float a, float lo, float hi) {
    if (is_nan(a)) {
        return a;
    }
    float v = a < lo ? lo : a;
    return v > hi ? hi : v;
}

bool binary_op(uint op) {
    return (op >= 3u && op <= 6u) || op == 31u || op == 32u || op == 34u || op == 35u ||
           (op >= 47u && op <= 50u);
}

float apply(uint op, float a, float b, float c, float s, float t) {
    switch (op) {
    case 1u: return s;
    case 2u: return a;
    case 3u: return a + b;
    case 4u: return a - b;
    case 5u: return a * b;
    case 6u: return a / b;
    case 7u: return a + s;
    case 8u: return a * s;
    case 9u: return s - a;
    case 10u: return a / s;
    case 11u: return s / a;
    case 12u: return pow_f(a, s);
    case 13u: return -a;
    case 14u: return uintBitsToFloat(floatBitsToUint(a) & 0x7fffffffu);
    case 15u: return a * a;
    case 16u: return sqrt_f(a);
    case 17u: return exp_f(a);
    case 18u: return log_f(a);
    case 19u: return (a > 0.0 || is_nan(a)) ? a : 0.0;
    case 20u: return sigmoid_f(a);
    case 21u: return tanh_f(a);
    case 22u: return softrelu_f(a);
    case 31u: return is_nan(a) ? a : is_nan(b) ? b : (a >= b ? a : b);
    case 32u: return is_nan(a) ? a : is_nan(b) ? b : (a <= b ? a : b);
    case 33u: return (!is_nan(a) && a > 0.0) ? 1.0 : 0.0;
    case 34u: return (!is_nan(a) && !is_nan(b) && a >= b) ? 1.0 : 0.0;
    case 35u: return s * a + t * b;
    case 47u: return a != 0.0 ? b : c;
    case 48u: return (!is_nan(a) && !is_nan(b) && a > b) ? 1.0 : 0.0;
    case 49u: return (!is_nan(a) && !is_nan(b) && a < b) ? 1.0 : 0.0;
    case 50u: return (!is_nan(a) && !is_nan(b) && a == b) ? 1.0 : 0.0;
    case 52u: return clamp_f(a, s, t);
    case 100u: return a; // CAST to the same dtype: the bits as they are
    case 101u: return float(floatBitsToInt(a)); // CAST int32 -> float32
    case 102u: return intBitsToFloat(int(a)); // CAST float32 -> int32 (checked finite, in range)
    default: return f_nan();
    }
}

void main() {
    uint gid = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * 256u +
               gl_LocalInvocationID.x;
    if (gid >= p.count) {
        return;
    }
    int i = int(gid);
    int i3 = i % p.dims.w;
    i /= p.dims.w;
    int i2 = i % p.dims.z;
    i /= p.dims.z;
    int i1 = i % p.dims.y;
    int i0 = i / p.dims.y;
    ivec4 idx = ivec4(i0, i1, i2, i3);
    int io = p.oo + idx.x * p.so.x + idx.y * p.so.y + idx.z * p.so.z + idx.w * p.so.w;
    float a = 0.0;
    float b = 0.0;
    if (p.op != 1u) {
        a = x[p.ox + idx.x * p.sx.x + idx.y * p.sx.y + idx.z * p.sx.z + idx.w * p.sx.w];
    }
    if (binary_op(p.op) || p.op == 47u) {
        b = y[p.oy + idx.x * p.sy.x + idx.y * p.sy.y + idx.z * p.sy.z + idx.w * p.sy.w];
    }
    float c = 0.0;
    if (p.op == 47u) {
        c = z[p.oz + idx.x * p.sz.x + idx.y * p.sz.y + idx.z * p.sz.z + idx.w * p.sz.w];
    }
    o[io] = apply(p.op, a, b, c, p.s, p.t);
}
