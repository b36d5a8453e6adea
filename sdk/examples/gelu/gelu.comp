// gelu.comp - the Vulkan implementation of the gelu.tanh kernel (gelu.c). The host binds the
// input at binding 0 and the output at binding 1, pushes the element count first, and spreads
// the invocation groups over x and y (at most 65535 each).
#version 450
layout(local_size_x = 64) in;
layout(std430, set = 0, binding = 0) readonly buffer X { float x[]; };
layout(std430, set = 0, binding = 1) writeonly buffer Y { float y[]; };
layout(push_constant) uniform P { uint n; } pc;

void main() {
    uint group = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    uint i = group * 64u + gl_LocalInvocationID.x;
    if (i >= pc.n) {
        return;
    }
    float v = x[i];
    float u = 0.7978845608028654 * (v + 0.044715 * v * v * v);
    // tanh through exp, clamped so exp cannot overflow (tanh is +-1 in float beyond 10)
    float e = exp(2.0 * clamp(u, -10.0, 10.0));
    float t = 1.0 - 2.0 / (e + 1.0);
    y[i] = isnan(v) ? v : 0.5 * v * (1.0 + t);
}
