/* A minimal assertion kit for the C++ API tests: each failed check prints where and why; the
 * program exits 1 when any failed (registered with ctest as a plain test program). */
#ifndef LAMINA_TEST_CHECK_HPP
#define LAMINA_TEST_CHECK_HPP

#include <lamina/lamina.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

static int g_failures = 0;

#define EXPECT(cond)                                                                               \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            std::fprintf(stderr, "%s:%d: expected %s\n", __FILE__, __LINE__, #cond);               \
            g_failures++;                                                                          \
        }                                                                                          \
    } while (0)

/* Element-wise comparison within 1e-5 relative (1e-6 absolute). */
#define EXPECT_VALUES(got, ...)                                                                    \
    do {                                                                                           \
        std::vector<float> g_ = (got), w_ = __VA_ARGS__;                                           \
        bool ok_ = g_.size() == w_.size();                                                         \
        for (size_t i_ = 0; ok_ && i_ < g_.size(); i_++) {                                         \
            ok_ = std::fabs(g_[i_] - w_[i_]) <= 1e-6f + 1e-5f * std::fabs(w_[i_]);                 \
        }                                                                                          \
        if (!ok_) {                                                                                \
            std::fprintf(stderr, "%s:%d: %s: got", __FILE__, __LINE__, #got);                      \
            for (float v_ : g_) {                                                                  \
                std::fprintf(stderr, " %g", (double)v_);                                           \
            }                                                                                      \
            std::fprintf(stderr, ", expected %s\n", #__VA_ARGS__);                                 \
            g_failures++;                                                                          \
        }                                                                                          \
    } while (0)

#define EXPECT_STR(got, want)                                                                      \
    do {                                                                                           \
        std::string g_ = (got), w_ = (want);                                                       \
        if (g_ != w_) {                                                                            \
            std::fprintf(stderr, "%s:%d: %s is \"%s\", expected \"%s\"\n", __FILE__, __LINE__,     \
                         #got, g_.c_str(), w_.c_str());                                            \
            g_failures++;                                                                          \
        }                                                                                          \
    } while (0)

/* The loaded layer types as the unknown-type message lists them: in registry order (plugin
 * files by name, then each plugin's registration order), comma-separated (the set grows with
 * every in-tree layer plugin, so tests build it instead of spelling it). */
static inline std::string loaded_layer_types() {
    std::string out;
    for (size_t i = 0; i < lam_layer_type_count(); i++) {
        out += (out.empty() ? "" : ", ") + std::string(lam_layer_type_name(i));
    }
    return out;
}

static inline int finish(const char *name) {
    if (g_failures) {
        std::fprintf(stderr, "%s: %d check(s) failed\n", name, g_failures);
        return 1;
    }
    std::printf("%s: all checks passed\n", name);
    return 0;
}

#endif
