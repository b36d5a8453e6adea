/*
 * cppdense.cpp - CppDense, MyDense (section 4.4) written in C++ over lamina/plugin.hpp:
 *
 *     y = relu(dot(x, weight) + bias),  weight: (in_units, units),  bias: (units,)
 *
 * The same layer as plugins/layers/mydense/mydense.c: the class is the
 * instance's state, its constructor reads the attributes and declares the parameters, forward
 * is written with operators over host ops (so the host differentiates it), and every failure is
 * an exception that plugin.hpp turns into a status and message at the C boundary. It passes
 * `lamina conform` (ctest conform_layer_cppdense).
 */
#include "lamina/plugin.hpp"

namespace lp = lamina::plugin;

class CppDense {
  public:
    CppDense(lp::Layer layer, const lp::Attrs &attrs)
        : units_(attrs.integer("units")), in_units_(attrs.integer("in_units")) {
        if (units_ <= 0 || in_units_ <= 0) {
            lp::fail(LAM_ERR_INVALID_ARGUMENT,
                     "%s: Invalid argument, units and in_units must be positive, got units=%lld, "
                     "in_units=%lld",
                     layer.name(), (long long)units_, (long long)in_units_);
        }
        layer.declare_param("weight", {in_units_, units_});
        layer.declare_param("bias", {units_});
    }

    void infer_shape(lp::Layer layer, const std::vector<lp::Info> &in,
                     std::vector<lp::Info> &out) const {
        if (in.size() != 1) {
            lp::fail(LAM_ERR_SHAPE, "%s: Wrong number of inputs, expected 1, got %zu",
                     layer.name(), in.size());
        }
        if (in[0].dims.size() != 2) {
            lp::fail(LAM_ERR_SHAPE, "%s: Shape mismatch, input has rank %zu, expected (batch, %lld)",
                     layer.name(), in[0].dims.size(), (long long)in_units_);
        }
        if (in[0].dims[1] != in_units_) {
            lp::fail(LAM_ERR_SHAPE, "%s: Shape inconsistent, input has %lld features, in_units is %lld",
                     layer.name(), (long long)in[0].dims[1], (long long)in_units_);
        }
        out[0].dtype = in[0].dtype;
        out[0].dims = {in[0].dims[0], units_};
    }

    lp::Tensor forward(lp::Layer layer, const std::vector<lp::Tensor> &x) const {
        return (x[0].matmul(layer.param("weight", x[0])) + layer.param("bias", x[0])).relu();
    }

    std::string describe() const {
        return "CppDense(" + std::to_string(in_units_) + " -> " + std::to_string(units_) + ")";
    }

  private:
    int64_t units_, in_units_;
};

LAMINA_CXX_PLUGIN_ENTRY(host, plugin) {
    static lp::LayerType<CppDense> type(
        "CppDense", "cppdense", "relu(dot(x, weight) + bias), MyDense in C++",
        {{"units", LAM_ATTR_INT, nullptr, "output features"},
         {"in_units", LAM_ATTR_INT, nullptr, "input features"}},
        {{{4, 5}, -1.0, 1.0}}, "units=3, in_units=5");
    return type.register_with(host, plugin);
}
