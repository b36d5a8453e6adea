/*
 * C++ layer plugins (lamina/plugin.hpp): a layer written as a class runs, and whatever its
 * callbacks throw stops at the C boundary as a status and message (throwing_layer.cpp, loaded
 * through LAMINA_PLUGIN_PATH).
 */
#include "check.hpp"

#include <lamina/lamina.hpp>

using namespace lamina;

static void expect_failure(const char *attrs, lam_status status, const char *message) {
    lam_block *b = nullptr;
    lam_status st = lam_layer_create("Thrower", attrs, &b);
    if (st == LAM_OK) {
        Tensor x = Tensor::from({2, 3}, {1, 2, 3, 4, 5, 6});
        lam_tensor *y = nullptr;
        st = lam_block_call(b, x.get(), &y);
        EXPECT(y == nullptr);
        lam_block_release(b);
    }
    if (st != status || std::string(lam_last_error()).find(message) == std::string::npos) {
        std::fprintf(stderr, "%s: got %d \"%s\", expected %d \"%s\"\n", attrs, (int)st,
                     lam_last_error(), (int)status, message);
        g_failures++;
    }
}

int main() {
    Runtime runtime;
    Block ok = Layer("Thrower");
    EXPECT_VALUES(ok(Tensor::from({2, 3}, {1, 2, 3, 4, 5, 6})).to_vector(),
                  {3, 5, 7, 9, 11, 13});
    expect_failure("throw=error", LAM_ERR_SHAPE, "Shape refused, on purpose");
    expect_failure("throw=runtime", LAM_ERR_INTERNAL, "Exception, a runtime_error from C++");
    expect_failure("throw=bad_alloc", LAM_ERR_OUT_OF_MEMORY, "Out of memory");
    expect_failure("throw=int", LAM_ERR_INTERNAL, "Exception, unknown");
    expect_failure("throw=runtime, where=create", LAM_ERR_INTERNAL,
                   "Exception, a runtime_error from C++");
    expect_failure("throw=error, where=create", LAM_ERR_SHAPE, "thrower");
    EXPECT(lam_tensor_live_count() == 0);
    return finish("test_cpp_plugin");
}
