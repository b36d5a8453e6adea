// act.glsl - the activations of LAM_OP_RELU/SIGMOID/TANH/SOFTRELU with the CPU backend's
// semantics, shared by the elementwise shader and GEMM's fused epilogue. Needs common.glsl.

float tanh_f(float a) {
    if (is_nan(a)) {
        return a;
    }
    precise float t = abs(a);
    precise float r;
    if (t < 0.125) {
        precise float t2 = t * t;
        r = t * (1.0 + t2 * (-1.0 / 3.0 + t2 * (2.0 / 15.0 + t2 * (-17.0 / 315.0 +
                                                                   t2 * (62.0 / 2835.0)))));
    } else if (t > 9.1) {
        r = 1.0;
    } else {
        precise float e = exp(-2.0 * t);
        r = (1.0 - e) / (1.0 + e);
    }
    return sign_bit(a) ? -r : r;
}

float sigmoid_f(float a) {
    if (a >= 0.0) {
        return 1.0 / (1.0 + exp_f(-a));
    }
    float e = exp_f(a);
    return e / (1.0 + e);
}

// log(1 + y) for y >= 0 without losing small y (the classic log(u) * y / (u - 1) trick).
float log1p_f(float v) {
    precise float u = 1.0 + v;
    if (u == 1.0) {
        return v;
    }
    if (is_inf(u)) {
        return u;
    }
    precise float d = u - 1.0;
    return log(u) * (v / d);
}

float softrelu_f(float a) {
    return a > 20.0 ? a : log1p_f(exp_f(a));
}

// act is a lam_op number: 19 relu, 20 sigmoid, 21 tanh, 22 softrelu; anything else is none.
float activate(int act, float v) {
    switch (act) {
    case 19: return (v > 0.0 || is_nan(v)) ? v : 0.0;
    case 20: return sigmoid_f(v);
    case 21: return tanh_f(v);
    case 22: return softrelu_f(v);
    default: return v;
    }
}
