#version 450
// A plugin kernel for test_vulkan_kernel.c: out0 = a * x + y, out1 = x * y, with the push
// constants of lam_kernel_impl (n, pad[3], then the parameters: float a).
layout(local_size_x = 4) in;
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer Y { float y[]; };
layout(std430, binding = 2) writeonly buffer O0 { float o0[]; };
layout(std430, binding = 3) writeonly buffer O1 { float o1[]; };
layout(push_constant) uniform P {
    uint n;
    uint pad0;
    uint pad1;
    uint pad2;
    float a;
} p;

void main() {
    uint i = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * 4u +
             gl_LocalInvocationID.x;
    if (i >= p.n) {
        return;
    }
    o0[i] = p.a * x[i] + y[i];
    o1[i] = x[i] * y[i];
}
