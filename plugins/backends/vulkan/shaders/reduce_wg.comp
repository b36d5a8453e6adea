#version 450
// Reduction with one workgroup per (output, segment of the axis): each invocation reduces a
// strided part of the segment, then a tree in shared memory. Segments longer than one pass
// allows go to partial results that a further pass reduces.
#extension GL_GOOGLE_include_directive : require

layout(local_size_x = 256) in;

#include "reduce_common.glsl"

shared float s_val[256];
shared int s_idx[256];

void main() {
    uint out_id = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    if (out_id >= p.count) {
        return; // the whole workgroup leaves together
    }
    int t = int(gl_LocalInvocationID.x);
    int seg = int(gl_WorkGroupID.z);
    int a = int(out_id) / p.inner;
    int c = int(out_id) % p.inner;
    int base = p.xoff + a * p.xs0 + c * p.xs2;
    uint op = p.op;
    float m = (op == 4u || op == 6u) ? y[p.moff + a * p.inner + c] : 0.0;
    int k0 = seg * p.seglen;
    int k1 = min(p.n, k0 + p.seglen);
    precise float acc = init_value(op);
    precise float comp = 0.0;
    int best = 0x7fffffff;
    for (int k = k0 + t; k < k1; k += 256) {
        int at = base + k * p.xs1;
        float v = x[at];
        if (op == 0u || op == 4u || op == 6u) {
            if (op == 4u) {
                v = exp_f(v - m);
            } else if (op == 6u) {
                precise float dv = v - m;
                v = dv * dv;
            }
            precise float yk = v - comp;
            precise float tt = acc + yk;
            comp = is_inf(tt) ? 0.0 : (tt - acc) - yk;
            acc = tt;
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
    s_val[t] = acc;
    s_idx[t] = best;
    for (int s = 128; s > 0; s >>= 1) {
        barrier();
        if (t < s) {
            float v1 = s_val[t];
            float v2 = s_val[t + s];
            if (op == 0u || op == 4u || op == 6u) {
                precise float sum = v1 + v2;
                s_val[t] = sum;
            } else if (op == 1u) {
                s_val[t] = is_nan(v1) ? v1 : max_step(v1, v2);
            } else if (op == 2u) {
                s_val[t] = is_nan(v1) ? v1 : min_step(v1, v2);
            } else if (arg_better(v1, s_idx[t], v2, s_idx[t + s])) {
                s_val[t] = v2;
                s_idx[t] = s_idx[t + s];
            }
        }
    }
    if (t == 0) {
        write_result(a, seg, c, s_val[0], s_idx[0]);
    }
}
