/*
 * lamina.hpp - the Lamina C++17 API, header-only, over the public C API (lamina.h) only.
 *
 * It adds no behaviour of its own: every call forwards to one or a few lam_* calls, so the C
 * reference in lamina.h (what each call does, which errors it reports) applies here too. What
 * it adds is C++ ownership and error handling:
 *
 *  - Handles. Tensor, Block (and Sequential, Custom<T>) and Initializer hold one reference to
 *    their C object, taken with lam_*_retain and dropped with lam_*_release: copying a handle
 *    shares the object (like std::shared_ptr), destroying the last handle frees it. Trainer,
 *    ParamList and TensorDict wrap C objects that have no retain; they are move-only. Context
 *    and Param are borrowed views (a context lives until lam_shutdown, a parameter as long as
 *    the block owning it). A default-constructed handle is empty (operator bool is false).
 *  - Errors. A failing C call throws lamina::Error, which carries the lam_status (status())
 *    and the library's message (what(): "<subject>: <Problem>, <details>").
 *    No-exception mode: define LAMINA_NO_EXCEPTIONS before including this header (it is
 *    defined for you when the compiler has exceptions off, e.g. -fno-exceptions). Then nothing
 *    throws: a failing call records its status and message and returns an empty handle (or
 *    NaN / false / 0 for values). The first failure is kept ("sticky") until
 *    lamina::clear_error(): lamina::status() and lamina::error_message() read it, so a program
 *    may run a whole sequence of calls and check once at the end. Operations on an empty
 *    handle fail in turn (the C API refuses NULL), without replacing the first failure.
 *  - Lifetime. Every handle must be gone before lam_shutdown() (lamina::shutdown()), which
 *    releases everything still alive; declaring a lamina::Runtime first in main() does that
 *    in the right order (its destructor runs last).
 *
 * Thread safety: as the C API (one thread at a time); the sticky error of no-exception mode is
 * per thread, like lam_last_error().
 *
 * Example:
 *   lamina::Runtime runtime;
 *   lamina::Sequential net{lamina::Dense(256, "relu"), lamina::Dense(10)};
 *   net.initialize();
 *   lamina::Trainer trainer(net.collect_params(), lamina::SGD().learning_rate(0.1));
 *   {
 *       lamina::autograd::Record record;
 *       lamina::Tensor loss = lamina::loss::softmax_cross_entropy(net(x), y);
 *       loss.backward();
 *   }
 *   trainer.step(batch_size);
 *   net.save_parameters("mlp.safetensors");
 */
#ifndef LAMINA_HPP
#define LAMINA_HPP

#include "lamina/lamina.h"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#if !defined(LAMINA_NO_EXCEPTIONS) && !defined(__cpp_exceptions) && !defined(__EXCEPTIONS)
#define LAMINA_NO_EXCEPTIONS
#endif
#ifndef LAMINA_NO_EXCEPTIONS
#include <exception>
#include <stdexcept>
#endif

namespace lamina {

/* A shape: one int64_t per dimension, e.g. {2, 20}; {} is a scalar. */
using Shape = std::vector<int64_t>;

/* ------------------------------------------------------------------------------------------ */
/* Errors                                                                                     */
/* ------------------------------------------------------------------------------------------ */

#ifndef LAMINA_NO_EXCEPTIONS
/*
 * What every failing call throws: status() is the C call's lam_status, what() its message
 * (lam_last_error() at the time of the failure).
 */
class Error : public std::runtime_error {
  public:
    Error(lam_status status, const std::string &message)
        : std::runtime_error(message), status_(status) {}
    /* The lam_status of the failure (never LAM_OK). */
    lam_status status() const noexcept { return status_; }

  private:
    lam_status status_;
};
#endif

namespace detail {
struct Sticky {
    lam_status status = LAM_OK;
    std::string message;
};
inline Sticky &sticky() {
    thread_local Sticky s;
    return s;
}
/* Turns a C status into the C++ error behaviour; returns true on LAM_OK. */
inline bool check(lam_status st) {
    if (st == LAM_OK) {
        return true;
    }
#ifdef LAMINA_NO_EXCEPTIONS
    Sticky &s = sticky();
    if (s.status == LAM_OK) {
        s.status = st;
        s.message = lam_last_error();
    }
    return false;
#else
    throw Error(st, lam_last_error());
#endif
}
} // namespace detail

/*
 * No-exception mode: the first failure on this thread since the last clear_error() (LAM_OK when
 * none) and its message. With exceptions they stay LAM_OK and "" (the error is thrown instead).
 */
inline lam_status status() {
    return detail::sticky().status;
}
inline const std::string &error_message() {
    return detail::sticky().message;
}
/* Forgets the recorded failure (and lam_last_error's message). */
inline void clear_error() {
    detail::sticky() = detail::Sticky{};
    lam_clear_error();
}

/* ------------------------------------------------------------------------------------------ */
/* Runtime and contexts                                                                       */
/* ------------------------------------------------------------------------------------------ */

/* Sets the global seed (lam_seed): initial parameter values depend only on it and their key. */
inline void seed(uint64_t value) {
    lam_seed(value);
}

/* lam_shutdown(): every handle must be destroyed before (see Runtime). */
inline void shutdown() {
    lam_shutdown();
}

/*
 * Scope guard for the runtime: declare it first in main(); its destructor calls lam_shutdown()
 * after every handle declared later is gone. The runtime itself starts on first use.
 */
class Runtime {
  public:
    Runtime() = default;
    Runtime(const Runtime &) = delete;
    Runtime &operator=(const Runtime &) = delete;
    ~Runtime() { lam_shutdown(); }
};

/*
 * A context (backend + device), borrowed: valid until lam_shutdown(). The empty Context means
 * "the default context" ($LAMINA_BACKEND, default cpu) wherever a call takes one.
 */
class Context {
  public:
    Context() = default;
    explicit Context(lam_ctx *ctx) : ctx_(ctx) {}
    /* lam_ctx_get: "cpu", "vulkan:1", "auto"; nullptr for $LAMINA_BACKEND.
     * Throws (or records) LAM_ERR_NOT_FOUND / LAM_ERR_DEVICE_UNAVAILABLE / ..._INVALID_ARGUMENT. */
    static Context get(const char *spec) {
        lam_ctx *c = nullptr;
        detail::check(lam_ctx_get(spec, &c));
        return Context(c);
    }
    static Context cpu(uint32_t device = 0) {
        std::string spec = "cpu:" + std::to_string(device);
        return get(spec.c_str());
    }
    /* Display name such as "cpu(0)"; "" for the empty Context. */
    std::string name() const { return ctx_ ? lam_ctx_name(ctx_) : ""; }
    std::string backend() const { return ctx_ ? lam_ctx_backend(ctx_) : ""; }
    uint32_t device() const { return ctx_ ? lam_ctx_device(ctx_) : 0; }
    /* Waits for the work queued on this context (lam_ctx_synchronize). */
    void synchronize() const { detail::check(lam_ctx_synchronize(ctx_)); }
    lam_ctx *get() const { return ctx_; }
    explicit operator bool() const { return ctx_ != nullptr; }
    bool operator==(const Context &o) const { return ctx_ == o.ctx_; }
    bool operator!=(const Context &o) const { return ctx_ != o.ctx_; }

  private:
    lam_ctx *ctx_ = nullptr;
};

/*
 * Every context that has a device, backend by backend in load order, devices in order (e.g.
 * cpu(0), vulkan(0)). A device that fails to open is left out; its reason is in
 * lam_backend_get's `why` or lam_last_error(). Starts the runtime if needed.
 */
inline std::vector<Context> contexts() {
    std::vector<Context> r;
    for (size_t i = 0; i < lam_backend_count(); i++) {
        const char *name = nullptr, *why = nullptr;
        uint32_t devices = 0;
        if (lam_backend_get(i, &name, &devices, &why) != LAM_OK) {
            continue;
        }
        for (uint32_t d = 0; d < devices; d++) {
            std::string spec = std::string(name) + ":" + std::to_string(d);
            lam_ctx *c = nullptr;
            if (lam_ctx_get(spec.c_str(), &c) == LAM_OK) {
                r.push_back(Context(c));
            }
        }
    }
    return r;
}

/* Waits for all work on every context (Gluon's nd.waitall). */
inline void waitall() {
    detail::check(lam_waitall());
}

namespace detail {
inline bool to_shape(const Shape &dims, lam_shape *s) {
    return check(lam_shape_init(s, (uint32_t)dims.size(), dims.data()));
}
inline Shape from_shape(const lam_shape *s) {
    return s ? Shape(s->dims, s->dims + s->ndim) : Shape{};
}
} // namespace detail

/* "(2, 20)", "(256,)", "()", "(None, 20)" as the library prints shapes. */
inline std::string format_shape(const Shape &dims) {
    lam_shape s;
    if (!detail::to_shape(dims, &s)) {
        return "";
    }
    char buf[256];
    return lam_shape_format(&s, buf, sizeof buf);
}

/* ------------------------------------------------------------------------------------------ */
/* Tensors                                                                                    */
/* ------------------------------------------------------------------------------------------ */

/*
 * A reference to a lam_tensor. Copies share the tensor (lam_tensor_retain); the last one to go
 * releases it. Every op returns a new tensor on its operands' context and never changes its
 * operands (so `x /= 2` rebinds x to a new tensor). Ops are recorded for autograd inside an
 * autograd::Record scope.
 */
class Tensor {
  public:
    Tensor() = default;
    Tensor(const Tensor &o) : t_(lam_tensor_retain(o.t_)) {}
    Tensor(Tensor &&o) noexcept : t_(o.t_) { o.t_ = nullptr; }
    Tensor &operator=(Tensor o) noexcept {
        std::swap(t_, o.t_);
        return *this;
    }
    ~Tensor() { lam_tensor_release(t_); }

    /* Takes over a reference the caller owns (e.g. one a lam_* call returned). */
    static Tensor adopt(lam_tensor *t) {
        Tensor r;
        r.t_ = t;
        return r;
    }
    /* Takes a new reference to a borrowed tensor. */
    static Tensor borrow(lam_tensor *t) { return adopt(lam_tensor_retain(t)); }

    /* A tensor of zeros / of `value` / of a copy of `data` (data.size() must equal the numel),
     * on ctx (empty: default context). Throws LAM_ERR_SHAPE, LAM_ERR_INVALID_ARGUMENT, ... */
    static Tensor zeros(const Shape &shape, Context ctx = {}) {
        lam_shape s;
        lam_tensor *t = nullptr;
        if (detail::to_shape(shape, &s)) {
            detail::check(lam_tensor_create(ctx.get(), &s, &t));
        }
        return adopt(t);
    }
    static Tensor full(const Shape &shape, float value, Context ctx = {}) {
        lam_shape s;
        lam_tensor *t = nullptr;
        if (detail::to_shape(shape, &s)) {
            detail::check(lam_tensor_full(ctx.get(), &s, value, &t));
        }
        return adopt(t);
    }
    static Tensor from(const Shape &shape, const std::vector<float> &data, Context ctx = {}) {
        lam_shape s;
        lam_tensor *t = nullptr;
        if (detail::to_shape(shape, &s)) {
            detail::check(lam_tensor_from_data(ctx.get(), &s, data.data(), data.size(), &t));
        }
        return adopt(t);
    }

    /* The C tensor, borrowed (nullptr when empty). */
    lam_tensor *get() const { return t_; }
    /* Gives up this handle's reference and returns it (the caller releases it). */
    lam_tensor *release() {
        lam_tensor *t = t_;
        t_ = nullptr;
        return t;
    }
    explicit operator bool() const { return t_ != nullptr; }

    Shape shape() const { return t_ ? detail::from_shape(lam_tensor_shape(t_)) : Shape{}; }
    /* "(2, 10)" */
    std::string shape_string() const { return format_shape(shape()); }
    size_t ndim() const { return t_ ? lam_tensor_shape(t_)->ndim : 0; }
    int64_t numel() const { return t_ ? lam_tensor_numel(t_) : 0; }
    Context context() const { return Context(t_ ? lam_tensor_ctx(t_) : nullptr); }

    /* A copy of the elements, row-major (synchronizes). Empty vector on failure. */
    std::vector<float> to_vector() const {
        std::vector<float> v((size_t)(numel() > 0 ? numel() : 0));
        if (!detail::check(lam_tensor_read(t_, v.data(), v.size()))) {
            return {};
        }
        return v;
    }
    /* Overwrites the elements (data.size() must equal the numel). */
    void write(const std::vector<float> &data) {
        detail::check(lam_tensor_write(t_, data.data(), data.size()));
    }
    /* The value of a one-element tensor (Gluon's asscalar); NaN on failure without exceptions.
     * Throws LAM_ERR_SHAPE for more or fewer than one element. */
    float item() const {
        float v = std::numeric_limits<float>::quiet_NaN();
        detail::check(lam_tensor_scalar(t_, &v));
        return v;
    }
    float asscalar() const { return item(); }

    /* Always a copy on ctx (lam_tensor_copyto). */
    Tensor copyto(Context ctx) const { return op1(lam_tensor_copyto, t_, ctx.get()); }
    /* This tensor itself when already on ctx, else a copy there (lam_tensor_as_in_context). */
    Tensor as_in_context(Context ctx) const {
        lam_tensor *o = nullptr;
        detail::check(lam_tensor_as_in_context(t_, ctx.get(), &o));
        return adopt(o);
    }
    /* Another shape over the same data; one dim may be -1. Throws LAM_ERR_SHAPE. */
    Tensor reshape(const Shape &shape) const {
        lam_shape s;
        lam_tensor *o = nullptr;
        if (detail::to_shape(shape, &s)) {
            detail::check(lam_tensor_reshape(t_, &s, &o));
        }
        return adopt(o);
    }

    /* Element-wise functions. */
    Tensor operator-() const { return op1(lam_op_neg, t_); }
    Tensor abs() const { return op1(lam_op_abs, t_); }
    Tensor square() const { return op1(lam_op_square, t_); }
    Tensor sqrt() const { return op1(lam_op_sqrt, t_); }
    Tensor exp() const { return op1(lam_op_exp, t_); }
    Tensor log() const { return op1(lam_op_log, t_); }
    Tensor relu() const { return op1(lam_op_relu, t_); }
    Tensor sigmoid() const { return op1(lam_op_sigmoid, t_); }
    Tensor tanh() const { return op1(lam_op_tanh, t_); }
    Tensor softrelu() const { return op1(lam_op_softrelu, t_); }
    /* x ** s */
    Tensor pow(float s) const { return op1(lam_op_pow_scalar, t_, s); }

    /* Matrix product of 2-D tensors, op(this) x op(b) with op transposing when asked.
     * Throws LAM_ERR_SHAPE naming the shapes. */
    Tensor matmul(const Tensor &b, bool trans_a = false, bool trans_b = false) const {
        lam_tensor *o = nullptr;
        detail::check(lam_op_matmul(t_, b.t_, trans_a, trans_b, &o));
        return adopt(o);
    }
    /* Gluon's dot (1-D/2-D combinations, see lam_op_dot). */
    Tensor dot(const Tensor &b) const { return op1(lam_op_dot, t_, b.t_); }
    Tensor maximum(const Tensor &b) const { return op1(lam_op_maximum, t_, b.t_); }
    Tensor minimum(const Tensor &b) const { return op1(lam_op_minimum, t_, b.t_); }
    Tensor transpose() const { return op1(lam_op_transpose, t_); }
    /* A new contiguous copy on the same context. */
    Tensor copy() const { return op1(lam_op_copy, t_); }

    /* Reductions over `axes` (empty: all; negative counts from the end). */
    Tensor sum(const std::vector<int32_t> &axes = {}, bool keepdims = false) const {
        return reduce(lam_op_sum, axes, keepdims);
    }
    Tensor mean(const std::vector<int32_t> &axes = {}, bool keepdims = false) const {
        return reduce(lam_op_mean, axes, keepdims);
    }
    Tensor max(const std::vector<int32_t> &axes = {}, bool keepdims = false) const {
        return reduce(lam_op_max, axes, keepdims);
    }
    Tensor min(const std::vector<int32_t> &axes = {}, bool keepdims = false) const {
        return reduce(lam_op_min, axes, keepdims);
    }
    /* The L2 norm over `axes` (empty: all elements, shape (); Gluon's norm()), lam_op_norm:
     * differentiable (its gradient is 0 where the norm is 0, as PyTorch's). */
    Tensor norm(const std::vector<int32_t> &axes = {}, bool keepdims = false) const {
        return reduce(lam_op_norm, axes, keepdims);
    }
    /* min(max(x, low), high) (Gluon's clip; lam_op_clamp), differentiable. */
    Tensor clip(float low, float high) const { return op1(lam_op_clamp, t_, low, high); }
    /* Elements begin, begin + step, ... below stop along `axis` (lam_tensor_slice). */
    Tensor slice(uint32_t axis, int64_t begin, int64_t stop, int64_t step = 1) const {
        return op1(lam_tensor_slice, t_, axis, begin, stop, step);
    }
    /* x[indices] along the first axis (int32/int64 indices; lam_op_take), differentiable. */
    Tensor take(const Tensor &indices) const { return op1(lam_op_take, t_, indices.t_); }
    /* One-hot rows of this tensor's indices (lam_op_one_hot: on the tensor's device, float
     * indices truncated as Gluon's, an index outside [0, depth) an error): shape + (depth,). */
    Tensor one_hot(int64_t depth) const { return op1(lam_op_one_hot, t_, depth); }
    Tensor argmax(int32_t axis) const { return op1(lam_op_argmax, t_, axis); }
    Tensor softmax(int32_t axis = -1) const { return op1(lam_op_softmax, t_, axis); }
    Tensor log_softmax(int32_t axis = -1) const { return op1(lam_op_log_softmax, t_, axis); }

    /* In place: every element to value / src's elements broadcast into this tensor. */
    void fill(float value) { detail::check(lam_op_fill(t_, value)); }
    void assign(const Tensor &src) { detail::check(lam_op_assign(t_, src.t_)); }

    /* Autograd: make this a leaf that gets a gradient; its gradient; a copy cut from the graph;
     * backpropagate from this tensor (head_grad empty: ones). Errors as in lamina.h. */
    void attach_grad() { detail::check(lam_tensor_attach_grad(t_)); }
    Tensor grad() const { return op1(lam_tensor_grad, t_); }
    Tensor detach() const { return op1(lam_tensor_detach, t_); }
    void backward() const { detail::check(lam_autograd_backward(t_, nullptr)); }
    void backward(const Tensor &head_grad) const {
        detail::check(lam_autograd_backward(t_, head_grad.t_));
    }

    /* Runs a lam_op_* style call `f(args..., &out)` and adopts its output. */
    template <class F, class... A> static Tensor op1(F f, A... args) {
        lam_tensor *o = nullptr;
        detail::check(f(args..., &o));
        return adopt(o);
    }

  private:
    template <class F> Tensor reduce(F f, const std::vector<int32_t> &axes, bool keepdims) const {
        lam_tensor *o = nullptr;
        detail::check(f(t_, axes.empty() ? nullptr : axes.data(), (uint32_t)axes.size(),
                        keepdims ? 1 : 0, &o));
        return adopt(o);
    }
    lam_tensor *t_ = nullptr;
};

/* Element-wise arithmetic with NumPy broadcasting; throws LAM_ERR_SHAPE naming both shapes,
 * LAM_ERR_INVALID_ARGUMENT for operands on different contexts. */
inline Tensor operator+(const Tensor &a, const Tensor &b) {
    return Tensor::op1(lam_op_add, a.get(), b.get());
}
inline Tensor operator-(const Tensor &a, const Tensor &b) {
    return Tensor::op1(lam_op_sub, a.get(), b.get());
}
inline Tensor operator*(const Tensor &a, const Tensor &b) {
    return Tensor::op1(lam_op_mul, a.get(), b.get());
}
inline Tensor operator/(const Tensor &a, const Tensor &b) {
    return Tensor::op1(lam_op_div, a.get(), b.get());
}
/* With a scalar on either side. */
inline Tensor operator+(const Tensor &a, float s) {
    return Tensor::op1(lam_op_add_scalar, a.get(), s);
}
inline Tensor operator+(float s, const Tensor &a) {
    return a + s;
}
inline Tensor operator-(const Tensor &a, float s) {
    return Tensor::op1(lam_op_sub_scalar, a.get(), s);
}
inline Tensor operator-(float s, const Tensor &a) {
    return Tensor::op1(lam_op_rsub_scalar, a.get(), s);
}
inline Tensor operator*(const Tensor &a, float s) {
    return Tensor::op1(lam_op_mul_scalar, a.get(), s);
}
inline Tensor operator*(float s, const Tensor &a) {
    return a * s;
}
inline Tensor operator/(const Tensor &a, float s) {
    return Tensor::op1(lam_op_div_scalar, a.get(), s);
}
inline Tensor operator/(float s, const Tensor &a) {
    return Tensor::op1(lam_op_rdiv_scalar, a.get(), s);
}
/* Compound forms rebind the left side to the new result (the old tensor is not changed). */
inline Tensor &operator+=(Tensor &a, const Tensor &b) {
    return a = a + b;
}
inline Tensor &operator-=(Tensor &a, const Tensor &b) {
    return a = a - b;
}
inline Tensor &operator*=(Tensor &a, const Tensor &b) {
    return a = a * b;
}
inline Tensor &operator/=(Tensor &a, const Tensor &b) {
    return a = a / b;
}
inline Tensor &operator+=(Tensor &a, float s) {
    return a = a + s;
}
inline Tensor &operator-=(Tensor &a, float s) {
    return a = a - s;
}
inline Tensor &operator*=(Tensor &a, float s) {
    return a = a * s;
}
inline Tensor &operator/=(Tensor &a, float s) {
    return a = a / s;
}

/* cond != 0 ? x : y elementwise (lam_op_where), differentiable in x and y. */
inline Tensor where(const Tensor &cond, const Tensor &x, const Tensor &y) {
    return Tensor::op1(lam_op_where, cond.get(), x.get(), y.get());
}
/* start, start + step, ... below stop, 1-D (NumPy's arange; lam_op_arange). */
inline Tensor arange(double start, double stop, double step = 1.0, Context ctx = {}) {
    return Tensor::op1(lam_op_arange, ctx.get(), start, stop, step);
}
/* Random tensors from the seeded stream (Gluon's nd.random.uniform / normal). */
namespace random {
inline Tensor uniform(const Shape &shape, float low = 0.0f, float high = 1.0f, Context ctx = {}) {
    lam_shape s;
    return detail::to_shape(shape, &s) ? Tensor::op1(lam_op_random_uniform, ctx.get(), &s, low, high)
                                       : Tensor();
}
inline Tensor normal(const Shape &shape, float mean = 0.0f, float std = 1.0f, Context ctx = {}) {
    lam_shape s;
    return detail::to_shape(shape, &s) ? Tensor::op1(lam_op_random_normal, ctx.get(), &s, mean, std)
                                       : Tensor();
}
} // namespace random

/* Free-function forms, as NumPy spells them. */
inline Tensor relu(const Tensor &x) {
    return x.relu();
}
inline Tensor dot(const Tensor &a, const Tensor &b) {
    return a.dot(b);
}
inline Tensor matmul(const Tensor &a, const Tensor &b) {
    return a.matmul(b);
}

/* ------------------------------------------------------------------------------------------ */
/* Autograd                                                                                   */
/* ------------------------------------------------------------------------------------------ */

namespace autograd {
/*
 * Scope guard (Gluon's `with autograd.record():`): recording is on from construction to
 * destruction, then back to what it was (so guards nest). Not copyable.
 */
class Record {
  public:
    Record() : previous_(lam_autograd_set_recording(1)) {}
    Record(const Record &) = delete;
    Record &operator=(const Record &) = delete;
    ~Record() { lam_autograd_set_recording(previous_); }

  private:
    int previous_;
};
/* The opposite guard (Gluon's autograd.pause()): recording off within its scope. */
class Pause {
  public:
    Pause() : previous_(lam_autograd_set_recording(0)) {}
    Pause(const Pause &) = delete;
    Pause &operator=(const Pause &) = delete;
    ~Pause() { lam_autograd_set_recording(previous_); }

  private:
    int previous_;
};
inline bool is_recording() {
    return lam_autograd_is_recording() != 0;
}
/* head.backward(head_grad). */
inline void backward(const Tensor &head, const Tensor &head_grad = Tensor()) {
    head.backward(head_grad);
}
} // namespace autograd

/* Losses, per sample (shape (batch,)); see lamina.h. */
namespace loss {
inline Tensor softmax_cross_entropy(const Tensor &logits, const Tensor &labels) {
    return Tensor::op1(lam_loss_softmax_cross_entropy, logits.get(), labels.get());
}
inline Tensor l2(const Tensor &pred, const Tensor &label) {
    return Tensor::op1(lam_loss_l2, pred.get(), label.get());
}
} // namespace loss

/* ------------------------------------------------------------------------------------------ */
/* Initializers                                                                               */
/* ------------------------------------------------------------------------------------------ */

/* The random stream handed to a custom initializer; valid only during the call. */
class Rng {
  public:
    explicit Rng(lam_rng *rng) : rng_(rng) {}
    /* Next number uniform in [lo, hi) / from N(mean, std^2). */
    float uniform(float lo, float hi) { return lam_rng_uniform(rng_, lo, hi); }
    float normal(float mean, float std) { return lam_rng_normal(rng_, mean, std); }

  private:
    lam_rng *rng_;
};

/*
 * A reference to a lam_initializer (retain/release). Blocks and parameters keep their own
 * reference, so an Initializer may go right after initialize(). The empty Initializer means
 * "the default" (Uniform(0.07), or the parameter's own) wherever a call takes one.
 */
class Initializer {
  public:
    Initializer() = default;
    Initializer(const Initializer &o) : i_(lam_initializer_retain(o.i_)) {}
    Initializer(Initializer &&o) noexcept : i_(o.i_) { o.i_ = nullptr; }
    Initializer &operator=(Initializer o) noexcept {
        std::swap(i_, o.i_);
        return *this;
    }
    ~Initializer() { lam_initializer_release(i_); }
    /* Takes over a reference the caller owns. */
    static Initializer adopt(lam_initializer *i) {
        Initializer r;
        r.i_ = i;
        return r;
    }

    static Initializer zero() { return make(lam_init_zero); }
    static Initializer one() { return make(lam_init_one); }
    static Initializer constant(float value) { return make(lam_init_constant, value); }
    /* Uniform in [-scale, scale). */
    static Initializer uniform(float scale = 0.07f) { return make(lam_init_uniform, scale); }
    static Initializer normal(float sigma = 0.01f) { return make(lam_init_normal, sigma); }
    static Initializer xavier(lam_xavier_rnd rnd = LAM_XAVIER_UNIFORM,
                              lam_xavier_factor factor = LAM_XAVIER_AVG, float magnitude = 3.0f) {
        return make(lam_init_xavier, rnd, factor, magnitude);
    }
    /* "zeros", "constant(0.5)", "xavier(gaussian, in, 2)", ... (lam_init_parse). */
    static Initializer parse(const char *text) { return make(lam_init_parse, text); }
    /*
     * A user-defined initializer calling `Fn(name, shape, data, count, rng)` for each parameter:
     *   void my_init(const char *name, const lamina::Shape &shape, float *data, size_t count,
     *                lamina::Rng &rng);
     *   auto init = lamina::Initializer::custom<my_init>("MyInit");
     * Fn is a template argument (a function, not a capturing lambda) because lam_init_custom
     * has no callback to free per-initializer user data. An exception thrown by Fn (a
     * lamina::Error keeps its status; others become LAM_ERR_INTERNAL) fails the initialization
     * with its message; it never crosses the C library.
     */
    template <auto Fn> static Initializer custom(const char *label) {
        return make(lam_init_custom, label, &custom_trampoline<Fn>, nullptr);
    }

    /* "Normal(sigma=0.01)"; "" when empty. */
    std::string describe() const { return i_ ? lam_initializer_describe(i_) : ""; }
    lam_initializer *get() const { return i_; }
    explicit operator bool() const { return i_ != nullptr; }

  private:
    template <class F, class... A> static Initializer make(F f, A... args) {
        lam_initializer *i = nullptr;
        detail::check(f(args..., &i));
        return adopt(i);
    }
    template <auto Fn>
    static lam_status custom_trampoline(const char *name, const lam_shape *shape, float *data,
                                        size_t count, lam_rng *rng, void *) {
        Rng r(rng);
        Shape dims = detail::from_shape(shape);
#ifdef LAMINA_NO_EXCEPTIONS
        detail::Sticky saved = detail::sticky();
        detail::sticky() = detail::Sticky{};
        Fn(name, dims, data, count, r);
        detail::Sticky got = detail::sticky();
        detail::sticky() = saved;
        return got.status == LAM_OK ? LAM_OK : lam_set_error(got.status, "%s", got.message.c_str());
#else
        try {
            Fn(name, dims, data, count, r);
            return LAM_OK;
        } catch (const Error &e) {
            return lam_set_error(e.status(), "%s", e.what());
        } catch (const std::exception &e) {
            return lam_set_error(LAM_ERR_INTERNAL, "%s: Exception in initializer, %s", name,
                                 e.what());
        } catch (...) {
            return lam_set_error(LAM_ERR_INTERNAL, "%s: Exception in initializer, unknown", name);
        }
#endif
    }
    lam_initializer *i_ = nullptr;
};

/* ------------------------------------------------------------------------------------------ */
/* Parameters                                                                                 */
/* ------------------------------------------------------------------------------------------ */

/* A parameter, borrowed: valid as long as the block that owns it. Cheap to copy. */
class Param {
  public:
    Param() = default;
    explicit Param(lam_param *p) : p_(p) {}
    lam_param *get() const { return p_; }
    explicit operator bool() const { return p_ != nullptr; }

    /* Display name, e.g. "dense0_weight". */
    std::string name() const { return p_ ? lam_param_name(p_) : ""; }
    /* Shape; unknown dims are -1 (LAM_DIM_UNKNOWN) until inferred. */
    Shape shape() const { return p_ ? detail::from_shape(lam_param_shape(p_)) : Shape{}; }
    bool is_initialized() const { return p_ && lam_param_is_initialized(p_); }
    bool is_constant() const { return p_ && lam_param_is_constant(p_); }
    /* The storage tensor (writes are seen by every block sharing it).
     * Throws LAM_ERR_DEFERRED_INIT while its shape is unknown, LAM_ERR_STATE before init. */
    Tensor data() const { return Tensor::op1(lam_param_data, p_); }
    /* The gradient buffer. Throws as data(); LAM_ERR_STATE for constants / grad_req null. */
    Tensor grad() const { return Tensor::op1(lam_param_grad, p_); }
    /* Copies `value` into the parameter. Throws LAM_ERR_SHAPE naming both shapes. */
    void set_data(const Tensor &value) { detail::check(lam_param_set_data(p_, value.get())); }
    /* Fills the unknown dims from `shape` (in CustomBlock::infer_shape; lam_param_infer_shape).
     * Throws LAM_ERR_SHAPE when a known dim disagrees, naming both shapes. */
    void infer_shape(const Shape &shape) {
        lam_shape s;
        if (detail::to_shape(shape, &s)) {
            detail::check(lam_param_infer_shape(p_, &s));
        }
    }
    void initialize(const Initializer &init = {}, Context ctx = {}, bool force_reinit = false) {
        detail::check(lam_param_initialize(p_, init.get(), ctx.get(), force_reinit));
    }
    lam_grad_req grad_req() const { return lam_param_grad_req(p_); }
    void set_grad_req(lam_grad_req req) { detail::check(lam_param_set_grad_req(p_, req)); }
    float lr_mult() const { return lam_param_lr_mult(p_); }
    float wd_mult() const { return lam_param_wd_mult(p_); }
    void set_lr_mult(float m) { lam_param_set_lr_mult(p_, m); }
    void set_wd_mult(float m) { lam_param_set_wd_mult(p_, m); }
    /* "Parameter dense0_weight (shape=(256, 20), dtype=float32)" */
    std::string format() const {
        char buf[512];
        return p_ ? lam_param_format(p_, buf, sizeof buf) : "";
    }

  private:
    lam_param *p_ = nullptr;
};

/*
 * A list of parameters with structural keys (lam_param_list). Move-only: the C list has no
 * retain. Its Params are borrowed from the blocks, not from the list, so they stay valid after
 * the list is gone.
 */
class ParamList {
  public:
    ParamList() = default;
    explicit ParamList(lam_param_list *l) : l_(l) {}
    ParamList(ParamList &&o) noexcept : l_(o.l_) { o.l_ = nullptr; }
    ParamList &operator=(ParamList &&o) noexcept {
        std::swap(l_, o.l_);
        return *this;
    }
    ParamList(const ParamList &) = delete;
    ParamList &operator=(const ParamList &) = delete;
    ~ParamList() { lam_param_list_destroy(l_); }

    size_t size() const { return l_ ? lam_param_list_count(l_) : 0; }
    /* Parameter i (empty Param when out of range). */
    Param operator[](size_t i) const { return Param(l_ ? lam_param_list_get(l_, i) : nullptr); }
    /* Structural key of parameter i, e.g. "0.weight". */
    std::string key(size_t i) const {
        const char *k = l_ ? lam_param_list_key(l_, i) : nullptr;
        return k ? k : "";
    }
    /* By structural key or display name; empty Param when absent. */
    Param find(const char *name) const {
        return Param(l_ ? lam_param_list_find(l_, name) : nullptr);
    }
    /* Gluon's listing "<title> (\n  Parameter ...\n)". */
    std::string format(const std::string &title) const {
        if (!l_) {
            return "";
        }
        for (size_t cap = 4096;; cap *= 4) {
            std::string buf(cap, '\0');
            lam_param_list_format(l_, title.c_str(), &buf[0], cap);
            size_t n = std::strlen(buf.c_str());
            if (n + 1 < cap) {
                buf.resize(n);
                return buf;
            }
        }
    }
    /* Sets every gradient to zero. */
    void zero_grad() const { detail::check(lam_param_list_zero_grad(l_)); }
    lam_param_list *get() const { return l_; }
    explicit operator bool() const { return l_ != nullptr; }

  private:
    lam_param_list *l_ = nullptr;
};

/* ------------------------------------------------------------------------------------------ */
/* Blocks                                                                                     */
/* ------------------------------------------------------------------------------------------ */

/*
 * A reference to a lam_block (retain/release): a layer, a Sequential or a custom block. Copies
 * share the block, so `Sequential{a, a}` would hold one block twice (and be refused by the
 * library as a duplicate only if registered under the same name).
 */
class Block {
  public:
    Block() = default;
    Block(const Block &o) : b_(lam_block_retain(o.b_)) {}
    Block(Block &&o) noexcept : b_(o.b_) { o.b_ = nullptr; }
    Block &operator=(Block o) noexcept {
        std::swap(b_, o.b_);
        return *this;
    }
    ~Block() { lam_block_release(b_); }
    /* Takes over a reference the caller owns / takes a new reference to a borrowed block. */
    static Block adopt(lam_block *b) {
        Block r;
        r.b_ = b;
        return r;
    }
    static Block borrow(lam_block *b) { return adopt(lam_block_retain(b)); }

    lam_block *get() const { return b_; }
    explicit operator bool() const { return b_ != nullptr; }

    /* Display name ("dense0", "mlp1") and type name ("Dense", "MLP"); "" when empty. */
    std::string name() const { return b_ ? lam_block_name(b_) : ""; }
    std::string type() const { return b_ ? lam_block_type(b_) : ""; }
    /* The Gluon-style model summary (lam_block_summary). */
    std::string summary() const {
        char *s = b_ ? lam_block_summary(b_) : nullptr;
        std::string r = s ? s : "";
        std::free(s);
        return r;
    }

    /*
     * Initializes every parameter of this block and its registered descendants (empty init:
     * Uniform(0.07); empty ctx: the default context); deferred ones at the first forward.
     */
    void initialize(const Initializer &init = {}, Context ctx = {}, bool force_reinit = false) {
        detail::check(lam_block_initialize(b_, init.get(), ctx.get(), force_reinit));
    }
    /* Runs the block (lam_block_call / lam_block_forward). Throws LAM_ERR_STATE when not
     * initialized, LAM_ERR_SHAPE for inputs that disagree with the parameters. */
    Tensor operator()(const Tensor &x) const { return Tensor::op1(lam_block_call, b_, x.get()); }
    Tensor operator()(const std::vector<Tensor> &xs) const {
        std::vector<lam_tensor *> in;
        for (const Tensor &x : xs) {
            in.push_back(x.get());
        }
        return Tensor::op1(lam_block_forward, b_, (uint32_t)in.size(), in.data());
    }

    /* Registers `child` under `name` (the parent takes its own reference) and returns it.
     * Throws LAM_ERR_INVALID_ARGUMENT for a duplicate name or a cycle. */
    template <class B> B register_child(const char *name, B child) {
        detail::check(lam_block_register_child(b_, name, child.get()));
        return child;
    }
    /* Appends a child under the next index ("0", "1", ...). */
    void add(const Block &child) { detail::check(lam_sequential_add(b_, child.get())); }
    size_t child_count() const { return b_ ? lam_block_child_count(b_) : 0; }
    /* Child by position / by registered name (empty Block when absent). */
    Block operator[](size_t i) const { return borrow(b_ ? lam_block_child_at(b_, i) : nullptr); }
    Block child(const char *name) const { return borrow(b_ ? lam_block_child(b_, name) : nullptr); }

    /* The block's own parameter by local name ("weight"); empty Param when absent. */
    Param param(const char *name) const { return Param(b_ ? lam_block_param(b_, name) : nullptr); }
    /* The block's own parameters (Gluon's block.params). */
    ParamList params() const {
        lam_param_list *l = nullptr;
        detail::check(lam_block_params(b_, &l));
        return ParamList(l);
    }
    /* Every parameter of the block and its descendants; `regex` (POSIX ERE matched at the
     * start of display names, see lamina.h) filters; nullptr keeps all. */
    ParamList collect_params(const char *regex = nullptr) const {
        lam_param_list *l = nullptr;
        detail::check(lam_block_collect_params(b_, regex, &l));
        return ParamList(l);
    }
    /* A new parameter / constant owned by this block (borrowed result, see lamina.h). */
    Param new_param(const char *name, const Shape &shape, const Initializer &init = {}) {
        lam_shape s;
        lam_param *p = nullptr;
        if (detail::to_shape(shape, &s)) {
            detail::check(lam_block_param_new(b_, name, &s, init.get(), &p));
        }
        return Param(p);
    }
    Param new_constant(const char *name, const Tensor &value) {
        lam_param *p = nullptr;
        detail::check(lam_block_constant_new(b_, name, value.get(), &p));
        return Param(p);
    }

    /* Saves every parameter under its structural key (safetensors, atomic). Throws
     * LAM_ERR_STATE for an uninitialized parameter, LAM_ERR_IO. */
    void save_parameters(const std::string &path) const {
        detail::check(lam_block_save_parameters(b_, path.c_str()));
    }
    /* Loads parameters saved by save_parameters; strict unless allowed (see lamina.h).
     * Nothing changes unless the whole load succeeds. mapped: parameters become copy-on-write
     * views of the file's mapping, verified against its checksum first (lam_load_options.mapped
     * in lamina.h: no copy, and the caveats of a mapped file). */
    void load_parameters(const std::string &path, bool allow_missing = false,
                         bool ignore_extra = false, Context ctx = {}, bool mapped = false) {
        lam_load_options o = LAM_LOAD_OPTIONS_INIT;
        o.allow_missing = allow_missing;
        o.ignore_extra = ignore_extra;
        o.ctx = ctx.get();
        o.mapped = mapped ? 1 : 0;
        detail::check(lam_block_load_parameters(b_, path.c_str(), &o));
    }

  protected:
    lam_block *b_ = nullptr;
};

namespace detail {
/* "k=v, k=v" from the pairs; pairs with an empty value are left out. */
inline std::string attrs(std::initializer_list<std::pair<const char *, std::string>> kv) {
    std::string s;
    for (const auto &p : kv) {
        if (!p.second.empty()) {
            s += (s.empty() ? "" : ", ") + std::string(p.first) + "=" + p.second;
        }
    }
    return s;
}
} // namespace detail

/*
 * A layer of plugin type `type` with attributes "name=value, ..." (lam_layer_create); with
 * `share`, one that uses share's parameters (lam_layer_create_shared).
 * Throws LAM_ERR_NOT_FOUND for an unknown type, LAM_ERR_INVALID_ARGUMENT for bad attributes.
 */
inline Block Layer(const char *type, const std::string &attrs = "", const Block &share = {}) {
    lam_block *b = nullptr;
    if (share) {
        detail::check(lam_layer_create_shared(type, attrs.c_str(), share.get(), &b));
    } else {
        detail::check(lam_layer_create(type, attrs.c_str(), &b));
    }
    return Block::adopt(b);
}
/* Dense(units, activation ("relu", "sigmoid", "tanh", "softrelu"; "" or nullptr: none),
 * in_units (0: inferred at the first forward)); `share`: use that Dense's parameters. */
inline Block Dense(int64_t units, const char *activation = nullptr, int64_t in_units = 0,
                   const Block &share = {}) {
    return Layer("Dense",
                 detail::attrs({{"units", std::to_string(units)},
                                {"activation", activation ? activation : ""},
                                {"in_units", in_units > 0 ? std::to_string(in_units) : ""}}),
                 share);
}
/* Activation("relu") and friends. */
inline Block Activation(const char *activation) {
    return Layer("Activation", std::string("act_type=") + activation);
}

/* A Sequential container: children run one after another, named "0", "1", ... */
class Sequential : public Block {
  public:
    /* An empty Sequential (add children with add()). */
    Sequential() { detail::check(lam_sequential_create(&b_)); }
    /* Sequential{Dense(256, "relu"), Dense(10)}: the children in order. */
    Sequential(std::initializer_list<Block> children) : Sequential() {
        for (const Block &c : children) {
            add(c);
        }
    }
};

/* Declared below: a handle to a custom block, and the one way to make one. */
template <class T> class Custom;
template <class T, class... A> Custom<T> make(A &&...args);

/*
 * Base class of custom blocks (Gluon's nn.Block subclasses):
 *
 *   struct MLP : lamina::CustomBlock {
 *       lamina::Block hidden, output;
 *       MLP() : CustomBlock("MLP"),
 *               hidden(register_child("hidden", lamina::Dense(256, "relu"))),
 *               output(register_child("output", lamina::Dense(10))) {}
 *       lamina::Tensor forward(const lamina::Tensor &x) override { return output(hidden(x)); }
 *   };
 *   lamina::Custom<MLP> net = lamina::make<MLP>();
 *
 * The constructor creates the C block (lam_block_create, display names mlp0, mlp1, ... from
 * the type). Ownership: the C block owns the C++ object once lamina::make<T>() returns; the
 * object is deleted when the last reference to the block goes (its handles, parents holding
 * it). Members may hold handles to children (no cycle: children never refer to parents), but
 * not to the block itself or an ancestor (that cycle would never be freed). Objects of a
 * custom block made any other way (on the stack, with new) own their C block, can configure it,
 * but fail to run (LAM_ERR_STATE: only lamina::make connects the forward).
 *
 * forward() runs inside the C library's lam_block_forward: exceptions it throws never cross
 * the C library; they become the call's error (a lamina::Error keeps its status and message,
 * another exception is LAM_ERR_INTERNAL with its what()) and the caller of net(x) gets them
 * back as a lamina::Error. In no-exception mode a forward fails when it records a failure.
 */
class CustomBlock {
  public:
    CustomBlock(const CustomBlock &) = delete;
    CustomBlock &operator=(const CustomBlock &) = delete;
    virtual ~CustomBlock() {
        if (!owned_) {
            lam_block_release(self_); /* the C block frees state_ (its object is not set) */
        }
    }
    /* The forward of one input. */
    virtual Tensor forward(const Tensor &x) = 0;
    /* The forward of several inputs; by default the one-input forward of inputs.at(0). */
    virtual Tensor forward_all(const std::vector<Tensor> &inputs) {
        return inputs.empty() ? Tensor() : forward(inputs[0]);
    }
    /*
     * Deferred initialization (Gluon's infer_shape): override it to fill the unknown dims of
     * the block's own parameters (declared with -1 dims by new_param) from the input shapes,
     * with Param::infer_shape. lamina::make<T>() installs it (lam_block_set_infer_shape) only
     * when T overrides it; the library calls it before forward while a dim is unknown.
     * Exceptions become the forward's error as in forward().
     */
    virtual void infer_shape(const std::vector<Shape> &input_shapes) { (void)input_shapes; }

    /* This object's C block, borrowed (do not store a Block of it in a member: see above). */
    lam_block *get() const { return self_; }
    std::string name() const { return self_ ? lam_block_name(self_) : ""; }

  protected:
    /* Creates the C block of type `type` ("MLP"). */
    explicit CustomBlock(const char *type) : state_(new State) {
        lam_status st = lam_block_create(type, &trampoline, state_, &State::destroy, &self_);
        if (st != LAM_OK) {
            delete state_; /* lam_block_create frees nothing when it fails */
            state_ = nullptr;
            detail::check(st);
        }
    }
    /* Registers a child under `name` (see Block::register_child) and returns it. */
    template <class B> B register_child(const char *name, B child) {
        detail::check(lam_block_register_child(self_, name, child.get()));
        return child;
    }
    /* Children and parameters of this block (see Block). */
    Block child(const char *name) const { return Block::borrow(lam_block_child(self_, name)); }
    Block child_at(size_t i) const { return Block::borrow(lam_block_child_at(self_, i)); }
    size_t child_count() const { return lam_block_child_count(self_); }
    Param param(const char *name) const { return Param(lam_block_param(self_, name)); }
    /* A new parameter (unknown dims -1 are inferred by set_data / deferred init) or constant. */
    Param new_param(const char *name, const Shape &shape, const Initializer &init = {}) {
        lam_shape s;
        lam_param *p = nullptr;
        if (detail::to_shape(shape, &s)) {
            detail::check(lam_block_param_new(self_, name, &s, init.get(), &p));
        }
        return Param(p);
    }
    Param new_constant(const char *name, const Tensor &value) {
        lam_param *p = nullptr;
        detail::check(lam_block_constant_new(self_, name, value.get(), &p));
        return Param(p);
    }

  private:
    template <class T, class... A> friend Custom<T> make(A &&...args);
    struct State {
        CustomBlock *object = nullptr;
        static void destroy(void *s) {
            State *st = static_cast<State *>(s);
            delete st->object;
            delete st;
        }
    };
    /* Runs body() for the C library: its failure (an exception, or in no-exception mode a
     * recorded status) becomes a status and message; `what` names the callback. */
    template <class F> static lam_status guarded(lam_block *self, const char *what, F body) {
#ifdef LAMINA_NO_EXCEPTIONS
        (void)self, (void)what;
        detail::Sticky saved = detail::sticky();
        detail::sticky() = detail::Sticky{};
        lam_status st = body();
        detail::Sticky got = detail::sticky();
        detail::sticky() = saved;
        if (got.status != LAM_OK) {
            return lam_set_error(got.status, "%s", got.message.c_str());
        }
        return st;
#else
        try {
            return body();
        } catch (const Error &e) {
            return lam_set_error(e.status(), "%s", e.what());
        } catch (const std::exception &e) {
            return lam_set_error(LAM_ERR_INTERNAL, "%s: Exception in %s, %s", lam_block_name(self),
                                 what, e.what());
        } catch (...) {
            return lam_set_error(LAM_ERR_INTERNAL, "%s: Exception in %s, unknown",
                                 lam_block_name(self), what);
        }
#endif
    }
    static lam_status not_made(lam_block *self) {
        return lam_set_error(LAM_ERR_STATE,
                             "%s: Not runnable, a C++ custom block runs only when made with "
                             "lamina::make<T>()",
                             lam_block_name(self));
    }
    static lam_status trampoline(lam_block *self, void *state, uint32_t n,
                                 lam_tensor *const *inputs, lam_tensor **output) {
        CustomBlock *obj = static_cast<State *>(state)->object;
        if (!obj) {
            return not_made(self);
        }
        return guarded(self, "forward", [&]() -> lam_status {
            std::vector<Tensor> xs;
            for (uint32_t i = 0; i < n; i++) {
                xs.push_back(Tensor::borrow(inputs[i]));
            }
            Tensor y = n == 1 ? obj->forward(xs[0]) : obj->forward_all(xs);
            if (!y) {
                return detail::sticky().status != LAM_OK
                           ? LAM_ERR_INTERNAL /* replaced by the recorded status */
                           : lam_set_error(LAM_ERR_INTERNAL,
                                           "%s: Bad forward, it returned no tensor",
                                           lam_block_name(self));
            }
            *output = y.release();
            return LAM_OK;
        });
    }
    static lam_status infer_trampoline(lam_block *self, void *state, uint32_t n,
                                       const lam_shape *shapes) {
        CustomBlock *obj = static_cast<State *>(state)->object;
        if (!obj) {
            return not_made(self);
        }
        return guarded(self, "infer_shape", [&]() -> lam_status {
            std::vector<Shape> v;
            for (uint32_t i = 0; i < n; i++) {
                v.push_back(detail::from_shape(&shapes[i]));
            }
            obj->infer_shape(v);
            return LAM_OK;
        });
    }
    lam_block *self_ = nullptr;
    State *state_ = nullptr;
    bool owned_ = false;
};

/*
 * A reference to a custom block made by lamina::make<T>(): a Block (usable wherever one is,
 * e.g. in a Sequential) that also reaches the C++ object with -> and *. The object lives as
 * long as the C block (any Block referring to it keeps it alive).
 */
template <class T> class Custom : public Block {
  public:
    Custom() = default;
    T *operator->() const { return object_; }
    T &operator*() const { return *object_; }

  private:
    template <class U, class... B> friend Custom<U> make(B &&...args);
    T *object_ = nullptr;
};

/*
 * Makes a custom block: constructs T(args...) on the heap and hands it to its C block, which
 * owns it from then on. Throws what T's constructor throws (nothing leaks: the C block and the
 * object are freed). Without exceptions, a failure leaves an empty Custom<T> (and the status).
 */
template <class T, class... A> Custom<T> make(A &&...args) {
    static_assert(std::is_base_of<CustomBlock, T>::value, "T must derive from CustomBlock");
    T *object = new T(std::forward<A>(args)...);
    Custom<T> r;
    CustomBlock *base = object;
    if (!base->self_) {
        delete object;
        return r;
    }
    base->state_->object = object;
    base->owned_ = true;
    r.b_ = base->self_; /* the reference lam_block_create returned */
    r.object_ = object;
    /* T overrides infer_shape when &T::infer_shape is not CustomBlock's own member. */
    if (!std::is_same<decltype(&T::infer_shape),
                      void (CustomBlock::*)(const std::vector<Shape> &)>::value) {
        detail::check(lam_block_set_infer_shape(base->self_, &CustomBlock::infer_trampoline));
    }
    return r;
}

/* ------------------------------------------------------------------------------------------ */
/* Trainer                                                                                    */
/* ------------------------------------------------------------------------------------------ */

/*
 * Typed optimizer options over lamina.h's structs (lam_sgd_options, ...): they start from the
 * _INIT defaults (PyTorch's) and each setter names a field, so a misspelt option is a compile
 * error and every value reaches the optimizer as the double given:
 *   Trainer trainer(net.collect_params(), SGD().learning_rate(0.1).momentum(0.9));
 * get() is the C struct.
 */
class SGD {
  public:
    SGD &learning_rate(double v) { return o_.learning_rate = v, *this; }
    SGD &momentum(double v) { return o_.momentum = v, *this; }
    SGD &weight_decay(double v) { return o_.weight_decay = v, *this; }
    SGD &clip_global_norm(double v) { return o_.clip_global_norm = v, *this; }
    const lam_sgd_options *get() const { return &o_; }

  private:
    lam_sgd_options o_ = LAM_SGD_OPTIONS_INIT;
};
/* Adam (weight decay as L2) and AdamW (decoupled; its default weight_decay is 0.01). */
class Adam {
  public:
    Adam &learning_rate(double v) { return o_.learning_rate = v, *this; }
    Adam &betas(double beta1, double beta2) { return o_.beta1 = beta1, o_.beta2 = beta2, *this; }
    Adam &epsilon(double v) { return o_.epsilon = v, *this; }
    Adam &weight_decay(double v) { return o_.weight_decay = v, *this; }
    Adam &clip_global_norm(double v) { return o_.clip_global_norm = v, *this; }
    const lam_adam_options *get() const { return &o_; }

  protected:
    lam_adam_options o_ = LAM_ADAM_OPTIONS_INIT;
};
class AdamW : public Adam {
  public:
    AdamW() { o_ = LAM_ADAMW_OPTIONS_INIT; }
};
class RMSProp {
  public:
    RMSProp &learning_rate(double v) { return o_.learning_rate = v, *this; }
    RMSProp &alpha(double v) { return o_.alpha = v, *this; }
    RMSProp &epsilon(double v) { return o_.epsilon = v, *this; }
    RMSProp &weight_decay(double v) { return o_.weight_decay = v, *this; }
    RMSProp &momentum(double v) { return o_.momentum = v, *this; }
    RMSProp &centered(bool v) { return o_.centered = v ? 1 : 0, *this; }
    RMSProp &clip_global_norm(double v) { return o_.clip_global_norm = v, *this; }
    const lam_rmsprop_options *get() const { return &o_; }

  private:
    lam_rmsprop_options o_ = LAM_RMSPROP_OPTIONS_INIT;
};

/*
 * An optimizer over a parameter list (Gluon's Trainer; lam_trainer). Move-only. It keeps its
 * own references to the parameters, so the ParamList may go.
 */
class Trainer {
  public:
    /* optimizer "sgd" or "adam"; options as "learning_rate=0.1, momentum=0.9".
     * Throws LAM_ERR_INVALID_ARGUMENT for an unknown optimizer or option, or a bad value. */
    Trainer(const ParamList &params, const char *optimizer, const std::string &options = "") {
        detail::check(lam_trainer_create(params.get(), optimizer, options.c_str(), &t_));
    }
    /* Options as pairs, {{"learning_rate", 0.1}, {"momentum", 0.9}}: each value is written
     * with 17 significant digits, so it reaches the optimizer as given (no %g rounding). */
    Trainer(const ParamList &params, const char *optimizer,
            std::initializer_list<std::pair<const char *, double>> options)
        : Trainer(params, optimizer, format(options)) {}
    /* From typed options (lam_trainer_create_sgd / _adam / _adamw / _rmsprop).
     * Throws LAM_ERR_INVALID_ARGUMENT naming a field whose value is out of range. */
    Trainer(const ParamList &params, const SGD &o) {
        detail::check(lam_trainer_create_sgd(params.get(), o.get(), &t_));
    }
    Trainer(const ParamList &params, const AdamW &o) {
        detail::check(lam_trainer_create_adamw(params.get(), o.get(), &t_));
    }
    Trainer(const ParamList &params, const Adam &o) {
        detail::check(lam_trainer_create_adam(params.get(), o.get(), &t_));
    }
    Trainer(const ParamList &params, const RMSProp &o) {
        detail::check(lam_trainer_create_rmsprop(params.get(), o.get(), &t_));
    }
    Trainer(Trainer &&o) noexcept : t_(o.t_) { o.t_ = nullptr; }
    Trainer &operator=(Trainer &&o) noexcept {
        std::swap(t_, o.t_);
        return *this;
    }
    Trainer(const Trainer &) = delete;
    Trainer &operator=(const Trainer &) = delete;
    ~Trainer() { lam_trainer_destroy(t_); }

    /* One update with the current gradients scaled by 1/batch_size.
     * Throws LAM_ERR_INVALID_ARGUMENT for batch_size <= 0, LAM_ERR_STATE. */
    void step(int64_t batch_size) { detail::check(lam_trainer_step(t_, batch_size)); }
    /* The learning rate of the next step (with a schedule: the scheduled one). */
    double learning_rate() const { return t_ ? lam_trainer_learning_rate(t_) : 0.0; }
    int64_t step_count() const { return t_ ? lam_trainer_step_count(t_) : 0; }
    /* Attaches a schedule (lam_lr_schedule, from LAM_LR_SCHEDULE_INIT). */
    void set_schedule(const lam_lr_schedule &s) { detail::check(lam_trainer_set_schedule(t_, &s)); }
    /* The optimizer state (steps, moments), for a bit-identical resume. */
    void save(const std::string &path) const { detail::check(lam_trainer_save(t_, path.c_str())); }
    void load(const std::string &path) { detail::check(lam_trainer_load(t_, path.c_str())); }
    void set_learning_rate(double lr) {
        if (t_) {
            lam_trainer_set_learning_rate(t_, lr);
        }
    }
    lam_trainer *get() const { return t_; }
    explicit operator bool() const { return t_ != nullptr; }

  private:
    static std::string format(std::initializer_list<std::pair<const char *, double>> options) {
        std::string s;
        for (const auto &o : options) {
            char v[40];
            std::snprintf(v, sizeof v, "%.17g", o.second);
            s += (s.empty() ? "" : ", ") + std::string(o.first) + "=" + v;
        }
        return s;
    }
    lam_trainer *t_ = nullptr;
};

/* ------------------------------------------------------------------------------------------ */
/* Saving and loading tensors                                                                 */
/* ------------------------------------------------------------------------------------------ */

/* The tensors of a file read by lamina::load (lam_tensor_dict). Move-only. */
class TensorDict {
  public:
    TensorDict() = default;
    explicit TensorDict(lam_tensor_dict *d) : d_(d) {}
    TensorDict(TensorDict &&o) noexcept : d_(o.d_) { o.d_ = nullptr; }
    TensorDict &operator=(TensorDict &&o) noexcept {
        std::swap(d_, o.d_);
        return *this;
    }
    TensorDict(const TensorDict &) = delete;
    TensorDict &operator=(const TensorDict &) = delete;
    ~TensorDict() { lam_tensor_dict_destroy(d_); }

    size_t size() const { return d_ ? lam_tensor_dict_count(d_) : 0; }
    bool is_list() const { return d_ && lam_tensor_dict_is_list(d_); }
    /* Entry i's name and tensor (a new reference: it outlives the dict); empty when absent. */
    std::string name(size_t i) const {
        const char *n = d_ ? lam_tensor_dict_name(d_, i) : nullptr;
        return n ? n : "";
    }
    Tensor operator[](size_t i) const {
        return Tensor::borrow(d_ ? lam_tensor_dict_get(d_, i) : nullptr);
    }
    Tensor operator[](const std::string &name) const {
        return Tensor::borrow(d_ ? lam_tensor_dict_find(d_, name.c_str()) : nullptr);
    }
    /* A metadata value ("" when absent). */
    std::string metadata(const char *key) const {
        const char *v = d_ ? lam_tensor_dict_metadata(d_, key) : nullptr;
        return v ? v : "";
    }

  private:
    lam_tensor_dict *d_ = nullptr;
};

/* Saves tensors as a list (Gluon's nd.save(path, [a, b])). Throws LAM_ERR_IO, ... */
inline void save(const std::string &path, const std::vector<Tensor> &tensors) {
    std::vector<lam_tensor *> t;
    for (const Tensor &x : tensors) {
        t.push_back(x.get());
    }
    detail::check(lam_save_list(path.c_str(), t.data(), t.size()));
}
/* Saves named tensors (Gluon's nd.save(path, {"x": x})), in the given order. */
inline void save(const std::string &path,
                 const std::vector<std::pair<std::string, Tensor>> &named) {
    std::vector<const char *> n;
    std::vector<lam_tensor *> t;
    for (const auto &p : named) {
        n.push_back(p.first.c_str());
        t.push_back(p.second.get());
    }
    detail::check(lam_save_dict(path.c_str(), n.data(), t.data(), t.size()));
}
/* Loads every tensor of a file onto ctx (empty: default context). */
inline TensorDict load(const std::string &path, Context ctx = {}) {
    lam_tensor_dict *d = nullptr;
    detail::check(lam_load(path.c_str(), ctx.get(), &d));
    return TensorDict(d);
}
/* Zero-copy load: float32 tensors are copy-on-write views of the file's mapping, read on first
 * use and not verified (lam_load_mapped in lamina.h says when to prefer load). */
inline TensorDict load_mapped(const std::string &path, Context ctx = {}) {
    lam_tensor_dict *d = nullptr;
    detail::check(lam_load_mapped(path.c_str(), ctx.get(), &d));
    return TensorDict(d);
}
/* The same, with every byte checked against the file's checksum before anything is returned
 * (lam_load_mapped_verified). */
inline TensorDict load_mapped_verified(const std::string &path, Context ctx = {}) {
    lam_tensor_dict *d = nullptr;
    detail::check(lam_load_mapped_verified(path.c_str(), ctx.get(), &d));
    return TensorDict(d);
}

} // namespace lamina

#endif /* LAMINA_HPP */
