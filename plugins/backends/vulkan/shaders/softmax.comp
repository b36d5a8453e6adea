#version 450
// Last pass of softmax / log-softmax over the middle axis of (outer, n, inner): with the
// maximum m and the sum s of exp(x - m) of each line already computed (in y), one invocation
// per element. x and out may be the same memory: each invocation reads its element first.
#extension GL_GOOGLE_include_directive : require

layout(local_size_x = 256) in;

layout(std430, binding = 0) buffer O { float o[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) readonly buffer Y { float y[]; };

layout(push_constant) uniform P {
    uint count;
    int n;
    int inner;
    int as_log;
    int xs0;
    int xs1;
    int xs2;
    int xoff;
    int os0;
    int os1;
    int os2;
    int ooff;
    int moff;
    int soff;
} p;

#include "common.glsl"

void main() {
    uint gid = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * 256u +
               gl_LocalInvocationID.x;
    if (gid >= p.count) {
        return;
    }
    int i = int(gid);
    int c = i % p.inner;
    i /= p.inner;
    int k = i % p.n;
    int a = i / p.n;
    int line = a * p.inner + c;
    float m = y[p.moff + line];
    float s = y[p.soff + line];
    float v = x[p.xoff + a * p.xs0 + k * p.xs1 + c * p.xs2];
    float r;
    if (p.as_log != 0) {
        precise float d = v - m;
        r = d - log(s);
    } else {
        precise float e = exp_f(v - m);
        r = e * (1.0 / s);
    }
    o[p.ooff + a * p.os0 + k * p.os1 + c * p.os2] = r;
}
