#version 450
// RANDOM: element i of a contiguous output takes word (offset + i) % 4 of the Philox-4x32-10
// block (Random123's constants, as core/rng.c) at counter {lo(n), hi(n), lo(key), hi(key)},
// n = (offset + i) / 4, key {lo(seed), hi(seed)}; integer arithmetic only up to the one float
// product, so UNIFORM and BERNOULLI are bit-identical with every backend (plugin.h).
// kind: 1 UNIFORM a + (b - a) * f, 3 BERNOULLI f < a, 2 NORMAL (Box-Muller over the pair of
// elements 2k, 2k+1).
#extension GL_GOOGLE_include_directive : require

layout(local_size_x = 256) in;

layout(std430, binding = 0) writeonly buffer O { float o[]; };

layout(push_constant) uniform P {
    uint count;
    uint kind;
    uint off_lo; // offset of element 0 (64 bits)
    uint off_hi;
    uint seed_lo;
    uint seed_hi;
    uint key_lo;
    uint key_hi;
    float a;
    float b;
    int oo;
    uint first; // index of element 0 of this dispatch within the output
} p;

uvec4 philox(uvec4 c, uvec2 k) {
    for (int r = 0; r < 10; r++) {
        if (r > 0) {
            k += uvec2(0x9E3779B9u, 0xBB67AE85u);
        }
        uint hi0, lo0, hi1, lo1;
        umulExtended(0xD2511F53u, c.x, hi0, lo0);
        umulExtended(0xCD9E8D57u, c.z, hi1, lo1);
        c = uvec4(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
    }
    return c;
}

// u of element i (a 32-bit index; the offset is 64 bits).
uint word_of(uint i) {
    uint carry;
    uint lo = uaddCarry(p.off_lo, i, carry);
    uint hi = p.off_hi + carry;
    uvec4 blk = philox(uvec4((lo >> 2) | (hi << 30), hi >> 2, p.key_lo, p.key_hi),
                       uvec2(p.seed_lo, p.seed_hi));
    uint w = lo & 3u;
    return w == 0u ? blk.x : w == 1u ? blk.y : w == 2u ? blk.z : blk.w;
}

void main() {
    uint gid = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * 256u +
               gl_LocalInvocationID.x;
    if (gid >= p.count) {
        return;
    }
    uint i = p.first + gid;
    float v;
    if (p.kind == 2u) {
        uint k2 = i & ~1u;
        uint u1 = word_of(k2);
        uint u2 = word_of(k2 + 1u);
        float f1 = float((u1 >> 8) + 1u) * (1.0 / 16777216.0);
        float f2 = float(u2 >> 8) * (1.0 / 16777216.0);
        float r = sqrt(-2.0 * log(f1));
        float t = 6.2831853071795864769 * f2;
        float z = (i & 1u) == 0u ? r * cos(t) : r * sin(t);
        v = p.a + p.b * z;
    } else {
        float f = float(word_of(i) >> 8) * (1.0 / 16777216.0);
        if (p.kind == 3u) {
            v = f < p.a ? 1.0 : 0.0;
        } else {
            v = p.a + (p.b - p.a) * f;
        }
    }
    o[p.oo + int(gid)] = v;
}
