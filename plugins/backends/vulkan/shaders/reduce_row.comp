#version 450
// Reduction with one invocation per output: for short axes (the host keeps n small enough that
// no invocation loops near lavapipe's iteration limit).
#extension GL_GOOGLE_include_directive : require

layout(local_size_x = 64) in;

#include "reduce_common.glsl"

void main() {
    uint gid = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * 64u +
               gl_LocalInvocationID.x;
    if (gid >= p.count) {
        return;
    }
    int a = int(gid) / p.inner;
    int c = int(gid) % p.inner;
    int base = p.xoff + a * p.xs0 + c * p.xs2;
    uint op = p.op;
    float m = (op == 4u || op == 6u) ? y[p.moff + a * p.inner + c] : 0.0;
    precise float acc = init_value(op);
    precise float comp = 0.0;
    int best = 0x7fffffff;
    for (int k = 0; k < p.n; k++) {
        int at = base + k * p.xs1;
        float v = x[at];
        if (op == 0u || op == 4u || op == 6u) {
            if (op == 4u) {
                v = exp_f(v - m);
            } else if (op == 6u) {
                precise float dv = v - m;
                v = dv * dv;
            }
            // Kahan summation; an infinite sum keeps no compensation
            precise float yk = v - comp;
            precise float t = acc + yk;
            comp = is_inf(t) ? 0.0 : (t - acc) - yk;
            acc = t;
        } else if (op == 1u) {
            acc = max_step(acc, v);
        } else if (op == 2u) {
            acc = min_step(acc, v);
        } else {
            int idx = op == 5u ? int(x[p.xidx + (at - p.xoff)]) : k;
            if (arg_better(acc, best, v, idx)) {
                acc = v;
                best = idx;
            }
        }
    }
    write_result(a, 0, c, acc, best);
}
