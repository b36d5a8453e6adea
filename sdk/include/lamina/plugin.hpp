/*
 * plugin.hpp - C++17 layer plugins over the plugin ABI (lamina/plugin.h), header-only.
 *
 * A thin layer over plugin.h and plugin_ops.h: the plugin is still a C ABI plugin (one
 * exported entry, a lam_layer_desc, the host table as its only way to the runtime); this header
 * lets its code be a C++ class. It adds:
 *
 *  - Tensor: a reference to a host tensor (host->tensor_retain / tensor_release), copies share
 *    it; ops as operators and members (x.matmul(w) + b, y.relu()) through host->op, so the host
 *    records them and differentiates the forward (no backward to write).
 *  - Errors: a failing host call throws lamina::plugin::Error (status + the host's message is
 *    already set). Nothing ever crosses the C boundary: the callbacks this header installs
 *    catch every exception and return its status, with a message set (std::bad_alloc becomes
 *    LAM_ERR_OUT_OF_MEMORY, another exception LAM_ERR_INTERNAL naming the instance).
 *  - Layer<T>: the descriptor's callbacks as members of T:
 *        T(Layer ctx, const Attrs &attrs)            create: read attributes, declare params
 *        void infer_shape(Layer ctx, const std::vector<Info> &in, std::vector<Info> &out)
 *        Tensor forward(Layer ctx, const std::vector<Tensor> &inputs)
 *        std::string describe() const                (optional)
 *    The object is the instance's state; destroy deletes it.
 *
 * Example (plugins/layers/cppdense/cppdense.cpp is a complete one that passes `lamina conform`):
 *
 *   struct Scale {
 *       double by;
 *       Scale(lamina::plugin::Layer, const lamina::plugin::Attrs &a) : by(a.real("by")) {}
 *       void infer_shape(lamina::plugin::Layer, const std::vector<lamina::plugin::Info> &in,
 *                        std::vector<lamina::plugin::Info> &out) { out[0] = in[0]; }
 *       lamina::plugin::Tensor forward(lamina::plugin::Layer,
 *                                      const std::vector<lamina::plugin::Tensor> &x) {
 *           return x[0] * by;
 *       }
 *   };
 *   LAMINA_CXX_PLUGIN_ENTRY(host, plugin) {
 *       static lamina::plugin::LayerType<Scale> type("Scale", {{"by", LAM_ATTR_FLOAT, "2"}});
 *       return type.register_with(host, plugin);
 *   }
 *
 * Threads: as plugin.h (the host table is global to the plugin, kept by LayerType).
 */
#ifndef LAMINA_PLUGIN_HPP
#define LAMINA_PLUGIN_HPP

#include "lamina/plugin_ops.h"

/* The C++ callbacks report failures as exceptions (caught at the C boundary, never crossing
 * it): a plugin built without exceptions uses plugin.h directly. */
#if !defined(__cpp_exceptions) && !defined(__EXCEPTIONS)
#error "lamina/plugin.hpp needs C++ exceptions (they never leave the plugin)"
#endif

#include <cstring>
#include <exception>
#include <initializer_list>
#include <new>
#include <string>
#include <utility>
#include <vector>

/* The entry of a C++ plugin (plugin.h's LAM_PLUGIN_ENTRY with C linkage). */
#define LAMINA_CXX_PLUGIN_ENTRY(host, plugin)                                                      \
    extern "C" LAM_EXPORT lam_status lamina_plugin_entry(const lam_host_api *host,                 \
                                                         lam_plugin *plugin)

namespace lamina {
namespace plugin {

/* The host table, set by LayerType::register_with before any callback runs. */
inline const lam_host_api *&host() {
    static const lam_host_api *h = nullptr;
    return h;
}

/* A failure whose message the host already holds (host->set_error was called). */
class Error : public std::exception {
  public:
    explicit Error(lam_status status) : status_(status) {}
    lam_status status() const noexcept { return status_; }
    const char *what() const noexcept override { return "lamina plugin error (see lam_last_error)"; }

  private:
    lam_status status_;
};

/* Throws Error for a failed host call (its message is set). */
inline void check(lam_status st) {
    if (st != LAM_OK) {
        throw Error(st);
    }
}
/* Sets the message "<fmt...>" and throws its status. */
template <class... A> [[noreturn]] void fail(lam_status status, const char *fmt, A... args) {
    lam_plugin_error(host(), status, fmt, args...);
    throw Error(status);
}
inline void fail(lam_status status, const std::string &message) {
    host()->set_error(status, message.c_str());
    throw Error(status);
}

/* A reference to a host tensor; copies share it (value semantics through retain/release). */
class Tensor {
  public:
    Tensor() = default;
    Tensor(const Tensor &o) : t_(o.t_ ? host()->tensor_retain(o.t_) : nullptr) {}
    Tensor(Tensor &&o) noexcept : t_(o.t_) { o.t_ = nullptr; }
    Tensor &operator=(Tensor o) noexcept {
        std::swap(t_, o.t_);
        return *this;
    }
    ~Tensor() {
        if (t_) {
            host()->tensor_release(t_);
        }
    }
    /* Takes over a reference the caller owns / takes a new one to a borrowed tensor. */
    static Tensor adopt(lam_tensor *t) {
        Tensor r;
        r.t_ = t;
        return r;
    }
    static Tensor borrow(lam_tensor *t) { return adopt(t ? host()->tensor_retain(t) : nullptr); }
    lam_tensor *get() const { return t_; }
    /* Gives the reference to the caller (a forward's output). */
    lam_tensor *release() {
        lam_tensor *t = t_;
        t_ = nullptr;
        return t;
    }
    explicit operator bool() const { return t_ != nullptr; }

    const lam_shape &shape() const { return *host()->tensor_shape(t_); }
    int64_t dim(uint32_t i) const { return shape().dims[i]; }

    Tensor relu() const { return unary(LAM_OP_RELU); }
    Tensor sigmoid() const { return unary(LAM_OP_SIGMOID); }
    Tensor tanh() const { return unary(LAM_OP_TANH); }
    Tensor exp() const { return unary(LAM_OP_EXP); }
    Tensor square() const { return unary(LAM_OP_SQUARE); }
    Tensor unary(lam_op op) const { return run([&](lam_tensor **o) {
        return lam_p_unary(host(), op, t_, o);
    }); }
    Tensor scalar(lam_op op, double a) const { return run([&](lam_tensor **o) {
        return lam_p_scalar(host(), op, t_, a, o);
    }); }
    Tensor binary(lam_op op, const Tensor &b) const { return run([&](lam_tensor **o) {
        return lam_p_binary(host(), op, t_, b.t_, o);
    }); }
    /* this (m, k) x b (k, n); trans_b: b is (n, k). */
    Tensor matmul(const Tensor &b, bool trans_b = false) const {
        return run([&](lam_tensor **o) { return lam_p_matmul(host(), t_, b.t_, trans_b, o); });
    }
    Tensor sum() const {
        return run([&](lam_tensor **o) { return lam_p_reduce_all(host(), LAM_OP_REDUCE_SUM, t_, 0, o); });
    }

  private:
    template <class F> static Tensor run(F f) {
        lam_tensor *o = nullptr;
        check(f(&o));
        return adopt(o);
    }
    lam_tensor *t_ = nullptr;
};

inline Tensor operator+(const Tensor &a, const Tensor &b) {
    return a.binary(LAM_OP_ADD, b);
}
inline Tensor operator-(const Tensor &a, const Tensor &b) {
    return a.binary(LAM_OP_SUB, b);
}
inline Tensor operator*(const Tensor &a, const Tensor &b) {
    return a.binary(LAM_OP_MUL, b);
}
inline Tensor operator/(const Tensor &a, const Tensor &b) {
    return a.binary(LAM_OP_DIV, b);
}
inline Tensor operator+(const Tensor &a, double s) {
    return a.scalar(LAM_OP_ADD_SCALAR, s);
}
inline Tensor operator*(const Tensor &a, double s) {
    return a.scalar(LAM_OP_MUL_SCALAR, s);
}
inline Tensor operator-(double s, const Tensor &a) {
    return a.scalar(LAM_OP_RSUB_SCALAR, s);
}

/* A tensor's dtype and shape as infer_shape sees them. */
struct Info {
    lam_dtype dtype = LAM_DTYPE_F32;
    std::vector<int64_t> dims;
};

/* The validated attributes of create (the host parsed them against the schema). */
class Attrs {
  public:
    explicit Attrs(const lam_attrs *a) : a_(a) {}
    int64_t integer(const char *name) const {
        int64_t v = 0;
        check(host()->attr_int(a_, name, &v));
        return v;
    }
    double real(const char *name) const {
        double v = 0;
        check(host()->attr_float(a_, name, &v));
        return v;
    }
    bool boolean(const char *name) const {
        int32_t v = 0;
        check(host()->attr_bool(a_, name, &v));
        return v != 0;
    }
    std::string string(const char *name) const {
        const char *v = nullptr;
        check(host()->attr_string(a_, name, &v));
        return v ? v : "";
    }

  private:
    const lam_attrs *a_;
};

/* The instance a callback runs for: its name, its parameters. Borrowed for the call. */
class Layer {
  public:
    explicit Layer(lam_layer *l) : l_(l) {}
    const char *name() const { return host()->layer_name(l_); }
    /* Declares a parameter (shape dims may be LAM_DIM_UNKNOWN until infer_shape). */
    void declare_param(const char *name, std::initializer_list<int64_t> dims,
                       const char *init = nullptr, uint32_t flags = 0) {
        lam_shape s{};
        s.ndim = (uint32_t)dims.size();
        uint32_t i = 0;
        for (int64_t d : dims) {
            s.dims[i++] = d;
        }
        check(host()->layer_declare_param(l_, name, &s, init, flags));
    }
    /* The parameter's data on `like`'s context (a new reference held by the Tensor). */
    Tensor param(const char *name, const Tensor &like) const {
        lam_tensor *d = nullptr;
        check(host()->layer_param_data(l_, name, like.get(), &d));
        return Tensor::borrow(d); /* the host's reference is borrowed */
    }
    lam_layer *get() const { return l_; }

  private:
    lam_layer *l_;
};

/* One attribute of the schema: name, type, default (nullptr: required), doc. */
struct Attr {
    const char *name;
    lam_attr_type type;
    const char *default_value;
    const char *doc = "";
    const char *choices = nullptr;
};

/* An example input for `lamina conform` (real values in [low, high]). */
struct Example {
    std::vector<int64_t> dims;
    double low = -1.0, high = 1.0;
};

/*
 * The layer type of a C++ class T: the lam_layer_desc and its callbacks. Keep it static (the
 * host reads the descriptor and its strings until the plugin is unloaded).
 */
template <class T> class LayerType {
  public:
    LayerType(const char *name, const char *prefix, const char *doc, std::vector<Attr> attrs,
              std::vector<Example> examples, const char *example_attrs)
        : attrs_(std::move(attrs)), examples_(std::move(examples)) {
        for (const Attr &a : attrs_) {
            lam_attr_desc d{};
            d.struct_size = (uint32_t)sizeof(lam_attr_desc);
            d.type = a.type;
            d.name = a.name;
            d.default_value = a.default_value;
            d.choices = a.choices;
            d.doc = a.doc;
            attr_descs_.push_back(d);
        }
        for (const lam_attr_desc &d : attr_descs_) {
            attr_ptrs_.push_back(&d);
        }
        for (const Example &e : examples_) {
            lam_tensor_info info{};
            info.struct_size = (uint32_t)sizeof(lam_tensor_info);
            info.dtype = LAM_DTYPE_F32;
            info.ndim = (uint32_t)e.dims.size();
            for (size_t i = 0; i < e.dims.size(); i++) {
                info.dims[i] = e.dims[i];
            }
            infos_.push_back(info);
        }
        for (size_t i = 0; i < examples_.size(); i++) {
            lam_example_input in{};
            in.struct_size = (uint32_t)sizeof(lam_example_input);
            in.domain = LAM_DOMAIN_REAL;
            in.info = &infos_[i];
            in.low = examples_[i].low;
            in.high = examples_[i].high;
            example_descs_.push_back(in);
        }
        for (const lam_example_input &in : example_descs_) {
            example_ptrs_.push_back(&in);
        }
        desc_.struct_size = (uint32_t)sizeof(lam_layer_desc);
        desc_.abi_version = LAM_ABI_VERSION;
        desc_.abi_fingerprint = LAM_ABI_FINGERPRINT;
        desc_.name = name;
        desc_.prefix = prefix;
        desc_.version = "1.0.0";
        desc_.doc = doc;
        desc_.n_attrs = (uint32_t)attr_ptrs_.size();
        desc_.attrs = attr_ptrs_.empty() ? nullptr : attr_ptrs_.data();
        desc_.n_examples = (uint32_t)example_ptrs_.size();
        desc_.examples = example_ptrs_.empty() ? nullptr : example_ptrs_.data();
        desc_.example_attrs = example_attrs;
        desc_.create = &create;
        desc_.destroy = &destroy;
        desc_.infer_shape = &infer_shape;
        desc_.forward = &forward;
        desc_.describe = &describe;
    }
    LayerType(const LayerType &) = delete;
    LayerType &operator=(const LayerType &) = delete;

    /* Checks the host (lam_plugin_check_host), keeps its table, registers the type. */
    lam_status register_with(const lam_host_api *h, lam_plugin *plugin) {
        lam_status st = lam_plugin_check_host(h);
        if (st != LAM_OK) {
            return st;
        }
        host() = h;
        return h->register_layer(plugin, &desc_);
    }
    const lam_layer_desc &desc() const { return desc_; }

  private:
    /* Runs body; any exception becomes the callback's status (its message set). */
    template <class F> static lam_status guarded(const lam_layer *layer, F body) noexcept {
        try {
            body();
            return LAM_OK;
        } catch (const Error &e) {
            return e.status();
        } catch (const std::bad_alloc &) {
            return lam_plugin_error(host(), LAM_ERR_OUT_OF_MEMORY, "%s: Out of memory",
                                    layer ? host()->layer_name(layer) : "plugin");
        } catch (const std::exception &e) {
            return lam_plugin_error(host(), LAM_ERR_INTERNAL, "%s: Exception, %s",
                                    layer ? host()->layer_name(layer) : "plugin", e.what());
        } catch (...) {
            return lam_plugin_error(host(), LAM_ERR_INTERNAL, "%s: Exception, unknown",
                                    layer ? host()->layer_name(layer) : "plugin");
        }
    }
    static lam_status create(void *, lam_layer *layer, const lam_attrs *attrs,
                             void **state) noexcept {
        *state = nullptr;
        return guarded(layer, [&] { *state = new T(Layer(layer), Attrs(attrs)); });
    }
    static void destroy(void *state) noexcept { delete static_cast<T *>(state); }
    static lam_status infer_shape(void *state, lam_layer *layer, uint32_t n_inputs,
                                  const lam_tensor_info *const *inputs, uint32_t n_outputs,
                                  lam_tensor_info *const *outputs) noexcept {
        return guarded(layer, [&] {
            std::vector<Info> in(n_inputs), out(n_outputs);
            for (uint32_t i = 0; i < n_inputs; i++) {
                in[i].dtype = inputs[i]->dtype;
                in[i].dims.assign(inputs[i]->dims, inputs[i]->dims + inputs[i]->ndim);
            }
            static_cast<T *>(state)->infer_shape(Layer(layer), in, out);
            for (uint32_t i = 0; i < n_outputs; i++) {
                if (out[i].dims.size() > LAM_MAX_DIMS) {
                    fail(LAM_ERR_SHAPE, "%s: Shape has %zu dims, at most %d", host()->layer_name(layer),
                         out[i].dims.size(), LAM_MAX_DIMS);
                }
                outputs[i]->dtype = out[i].dtype;
                outputs[i]->ndim = (uint32_t)out[i].dims.size();
                for (size_t d = 0; d < out[i].dims.size(); d++) {
                    outputs[i]->dims[d] = out[i].dims[d];
                }
            }
        });
    }
    static lam_status forward(void *state, lam_layer *layer, uint32_t n_inputs,
                              lam_tensor *const *inputs, uint32_t n_outputs,
                              lam_tensor **outputs) noexcept {
        for (uint32_t i = 0; i < n_outputs; i++) {
            outputs[i] = nullptr;
        }
        return guarded(layer, [&] {
            std::vector<Tensor> in;
            for (uint32_t i = 0; i < n_inputs; i++) {
                in.push_back(Tensor::borrow(inputs[i]));
            }
            Tensor y = static_cast<T *>(state)->forward(Layer(layer), in);
            if (!y) {
                fail(LAM_ERR_INTERNAL, "%s: Bad forward, it returned no tensor",
                     host()->layer_name(layer));
            }
            outputs[0] = y.release();
        });
    }
    template <class U> static auto describe_of(const U *u, int) -> decltype(u->describe()) {
        return u->describe();
    }
    template <class U> static std::string describe_of(const U *, long) { return ""; }
    static lam_status describe(void *state, lam_layer *layer, char *buf, size_t cap) noexcept {
        return guarded(layer, [&] {
            std::string s = describe_of(static_cast<const T *>(state), 0);
            if (!s.empty() && cap > 0) {
                std::strncpy(buf, s.c_str(), cap - 1);
                buf[cap - 1] = '\0';
            }
        });
    }

    std::vector<Attr> attrs_;
    std::vector<lam_attr_desc> attr_descs_;
    std::vector<const lam_attr_desc *> attr_ptrs_;
    std::vector<Example> examples_;
    std::vector<lam_tensor_info> infos_;
    std::vector<lam_example_input> example_descs_;
    std::vector<const lam_example_input *> example_ptrs_;
    lam_layer_desc desc_{};
};

} // namespace plugin
} // namespace lamina

#endif /* LAMINA_PLUGIN_HPP */
