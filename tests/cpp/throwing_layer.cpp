/*
 * A layer plugin in C++ (lamina/plugin.hpp) whose callbacks throw, for test_cpp_plugin: what
 * it throws is chosen by its "throw" attribute (none, error, runtime, bad_alloc, int) and
 * thrown from `where` (create or forward). Forward is y = 2x + 1 when it does not throw.
 */
#include "lamina/plugin.hpp"

#include <stdexcept>

namespace lp = lamina::plugin;

static void maybe_throw(const std::string &what, const char *name) {
    if (what == "error") {
        lp::fail(LAM_ERR_SHAPE, "%s: Shape refused, on purpose", name);
    } else if (what == "runtime") {
        throw std::runtime_error("a runtime_error from C++");
    } else if (what == "bad_alloc") {
        throw std::bad_alloc();
    } else if (what == "int") {
        throw 42;
    }
}

class Thrower {
  public:
    Thrower(lp::Layer layer, const lp::Attrs &attrs)
        : what_(attrs.string("throw")), where_(attrs.string("where")) {
        if (where_ == "create") {
            maybe_throw(what_, layer.name());
        }
    }
    void infer_shape(lp::Layer, const std::vector<lp::Info> &in, std::vector<lp::Info> &out) {
        out[0] = in[0];
    }
    lp::Tensor forward(lp::Layer layer, const std::vector<lp::Tensor> &x) {
        if (where_ == "forward") {
            maybe_throw(what_, layer.name());
        }
        return x[0] * 2.0 + 1.0;
    }

  private:
    std::string what_, where_;
};

LAMINA_CXX_PLUGIN_ENTRY(host, plugin) {
    static lp::LayerType<Thrower> type(
        "Thrower", "thrower", "throws from its callbacks on request",
        {{"throw", LAM_ATTR_ENUM, "none", "what to throw", "none|error|runtime|bad_alloc|int"},
         {"where", LAM_ATTR_ENUM, "forward", "where to throw", "create|forward"}},
        {{{2, 3}, -1.0, 1.0}}, "throw=none");
    return type.register_with(host, plugin);
}
