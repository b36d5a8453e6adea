// gelu_grad.comp - the Vulkan implementation of gelu.tanh_grad (gelu.c): dx = dy * gelu'(x).
// Bindings: x, dy, then dx; the element count is pushed first.
#version 450
layout(local_size_x = 64) in;
layout(std430, set = 0, binding = 0) readonly buffer X { float x[]; };
layout(std430, set = 0, binding = 1) readonly buffer DY { float dy[]; };
layout(std430, set = 0, binding = 2) writeonly buffer DX { float dx[]; };
layout(push_constant) uniform P { uint n; } pc;

void main() {
    uint group = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    uint i = group * 64u + gl_LocalInvocationID.x;
    if (i >= pc.n) {
        return;
    }
    float v = x[i];
    const float c = 0.7978845608028654;
    const float k = 0.044715;
    float u = c * (v + k * v * v * v);
    float e = exp(2.0 * clamp(u, -10.0, 10.0));
    float t = 1.0 - 2.0 / (e + 1.0);
    float d = 0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * c * (1.0 + 3.0 * k * v * v);
    dx[i] = isnan(v) ? v : dy[i] * d;
}
