// common.glsl - helpers shared by the compute shaders. IEEE special cases are decided with
// integer tests on the bits, which no floating-point optimization of the driver can fold away.

bool is_nan(float v) {
    return (floatBitsToUint(v) & 0x7fffffffu) > 0x7f800000u;
}

bool is_inf(float v) {
    return (floatBitsToUint(v) & 0x7fffffffu) == 0x7f800000u;
}

bool sign_bit(float v) {
    return (floatBitsToUint(v) & 0x80000000u) != 0u;
}

float f_nan() {
    return uintBitsToFloat(0x7fc00000u);
}

float f_inf() {
    return uintBitsToFloat(0x7f800000u);
}

// NaN-sticky max/min steps, as the CPU backend's max_step/min_step.
float max_step(float acc, float v) {
    return (v > acc || is_nan(v)) ? v : acc;
}

float min_step(float acc, float v) {
    return (v < acc || is_nan(v)) ? v : acc;
}

float exp_f(float a) {
    if (is_nan(a)) {
        return a;
    }
    if (a > 88.72283935546875) {
        return f_inf();
    }
    if (a < -103.97208) {
        return 0.0;
    }
    return exp(a);
}
