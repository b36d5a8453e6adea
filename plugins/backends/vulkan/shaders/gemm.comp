#version 450
// Tiled GEMM: C[M,N] = alpha * op(A) op(B) + beta * C over a K range, per batch (workgroup z;
// GEMM_BATCHED) with batch strides of A, B and C (0: shared). A 64x64 tile of C per
// workgroup of 8x8 invocations, each computing 8x8 outputs (rows ty*8 .. ty*8+7, columns
// tx, tx+8, ..., tx+56); 16-deep slices of op(A) and op(B) are staged in shared memory.
// op(A)(i, k) is a[aoff + i * a_rs + k * a_cs] and op(B)(k, j) is b[boff + k * b_rs + j * b_cs],
// so the four transpose combinations (Y = X W^T, dX = dY W, dW = dY^T X, ...) are this one
// shader with the strides swapped on the host. Edge tiles load zeros and store only inside C.
// With beta == 0, C is never read. LINEAR's bias arrives as C (copied in first, beta = 1) and
// its activation is applied as each value is stored. Loops per invocation: one per slice, nothing else; the host
// bounds K per dispatch to stay far from lavapipe's limit of 65,535 loop iterations and
// accumulates further K ranges with beta = 1.
//
// On lavapipe a subgroup is one row of 8 invocations (same ty), so the A reads from shared
// memory are uniform within a subgroup.

#extension GL_GOOGLE_include_directive : require

layout(local_size_x = 8, local_size_y = 8) in;

layout(std430, binding = 0) buffer C { float c[]; };
layout(std430, binding = 1) readonly buffer A { float a[]; };
layout(std430, binding = 2) readonly buffer B { float b[]; };

layout(push_constant) uniform P {
    int M;
    int N;
    int K;
    int aoff;
    int a_rs;
    int a_cs;
    int boff;
    int b_rs;
    int b_cs;
    int coff;
    int c_rs;
    int c_cs;
    float alpha;
    float beta;
    int tile_m0;
    int tile_n0;
    int act; // fused activation (a lam_op number, 0 none), applied on the last K range only
    int a_bs; // batch strides (GEMM_BATCHED; 0 for a shared operand or a plain GEMM)
    int b_bs;
    int c_bs;
    int batch0; // batch of workgroup z = 0 (gl_WorkGroupID.z is the batch index after it)
} p;

#include "common.glsl"
#include "act.glsl"

shared float As[16][64];
shared float Bs[16][64];

// Invocation tid loads row i0 + tid of op(A) and column j0 + tid of op(B) at depth k0 + d.
#define LOAD(d)                                                                                    \
    As[d][tid] = (a_in && k0 + d < p.K) ? a[a_row + (k0 + d) * p.a_cs] : 0.0;                      \
    Bs[d][tid] = (b_in && k0 + d < p.K) ? b[b_col + (k0 + d) * p.b_rs] : 0.0;

#define ROW(kk, r)                                                                                 \
    {                                                                                              \
        float av = As[kk][ty * 8 + r];                                                             \
        acc0[r] += av * b0;                                                                        \
        acc1[r] += av * b1;                                                                        \
    }

// One depth kk of the slice: 64 multiply-adds per invocation.
#define STEP(kk)                                                                                   \
    {                                                                                              \
        vec4 b0 = vec4(Bs[kk][tx], Bs[kk][tx + 8], Bs[kk][tx + 16], Bs[kk][tx + 24]);              \
        vec4 b1 = vec4(Bs[kk][tx + 32], Bs[kk][tx + 40], Bs[kk][tx + 48], Bs[kk][tx + 56]);        \
        ROW(kk, 0) ROW(kk, 1) ROW(kk, 2) ROW(kk, 3) ROW(kk, 4) ROW(kk, 5) ROW(kk, 6) ROW(kk, 7)    \
    }

// C[i, j0 + tx + 8 q] = alpha * v (+ beta * C when beta != 0), inside C only.
#define STORE(q, v)                                                                                \
    {                                                                                              \
        int j = j0 + tx + 8 * q;                                                                   \
        if (i < p.M && j < p.N) {                                                                  \
            int at = coff + i * p.c_rs + j * p.c_cs;                                             \
            float o = p.alpha * (v);                                                               \
            if (p.beta != 0.0) {                                                                   \
                o += p.beta * c[at];                                                               \
            }                                                                                      \
            c[at] = activate(p.act, o);                                                            \
        }                                                                                          \
    }

#define STORE_ROW(r)                                                                               \
    {                                                                                              \
        int i = i0 + ty * 8 + r;                                                                   \
        STORE(0, acc0[r].x) STORE(1, acc0[r].y) STORE(2, acc0[r].z) STORE(3, acc0[r].w)            \
        STORE(4, acc1[r].x) STORE(5, acc1[r].y) STORE(6, acc1[r].z) STORE(7, acc1[r].w)            \
    }

void main() {
    int tx = int(gl_LocalInvocationID.x);
    int ty = int(gl_LocalInvocationID.y);
    int tid = ty * 8 + tx;
    int i0 = (p.tile_m0 + int(gl_WorkGroupID.y)) * 64;
    int j0 = (p.tile_n0 + int(gl_WorkGroupID.x)) * 64;
    // Accumulators are only ever indexed by constants, so they can live in registers.
    vec4 acc0[8] = vec4[8](vec4(0.0), vec4(0.0), vec4(0.0), vec4(0.0), vec4(0.0), vec4(0.0),
                           vec4(0.0), vec4(0.0));
    vec4 acc1[8] = acc0;
    bool a_in = i0 + tid < p.M;
    bool b_in = j0 + tid < p.N;
    int batch = p.batch0 + int(gl_WorkGroupID.z);
    int coff = p.coff + batch * p.c_bs;
    int a_row = p.aoff + batch * p.a_bs + (a_in ? (i0 + tid) * p.a_rs : 0);
    int b_col = p.boff + batch * p.b_bs + (b_in ? (j0 + tid) * p.b_cs : 0);
    for (int k0 = 0; k0 < p.K; k0 += 16) {
        LOAD(0) LOAD(1) LOAD(2) LOAD(3) LOAD(4) LOAD(5) LOAD(6) LOAD(7)
        LOAD(8) LOAD(9) LOAD(10) LOAD(11) LOAD(12) LOAD(13) LOAD(14) LOAD(15)
        barrier();
        STEP(0) STEP(1) STEP(2) STEP(3) STEP(4) STEP(5) STEP(6) STEP(7)
        STEP(8) STEP(9) STEP(10) STEP(11) STEP(12) STEP(13) STEP(14) STEP(15)
        barrier();
    }
    STORE_ROW(0) STORE_ROW(1) STORE_ROW(2) STORE_ROW(3)
    STORE_ROW(4) STORE_ROW(5) STORE_ROW(6) STORE_ROW(7)
}
