/* Small helpers shared by the chapter's C++ examples (the C++ twins of example_util.h). */
#ifndef LAMINA_EXAMPLE_UTIL_HPP
#define LAMINA_EXAMPLE_UTIL_HPP

#include <lamina/lamina.hpp>

#include <cstdio>

/* A (rows, cols) tensor uniform in [lo, hi) from the same LCG as example_uniform (there is no
 * random tensor op in the C API yet), so the C and C++ examples print the same numbers. */
inline lamina::Tensor uniform(int64_t rows, int64_t cols, float lo, float hi, unsigned seed) {
    std::vector<float> v((size_t)(rows * cols));
    for (float &x : v) {
        seed = seed * 1664525u + 1013904223u;
        x = lo + (hi - lo) * (float)(seed >> 8) / 16777216.0f;
    }
    return lamina::Tensor::from({rows, cols}, v);
}

/* Prints "<label> shape (2, 10): v0 v1 v2 v3 ..." (at most `max` values). */
inline void print(const char *label, const lamina::Tensor &t, size_t max) {
    std::vector<float> v = t.to_vector();
    std::printf("%s shape %s:", label, t.shape_string().c_str());
    for (size_t i = 0; i < v.size() && i < max; i++) {
        std::printf(" %.4f", (double)v[i]);
    }
    std::printf("%s\n", v.size() > max ? " ..." : "");
}

#endif
