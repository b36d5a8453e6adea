/*
 * Tests of lamina.hpp with exceptions: handle ownership (reference counts, no leaks: also run
 * in the ASan build with detect_leaks=1), errors as lamina::Error with status and message,
 * operators against hand-worked values, autograd::Record, Sequential, a C++ custom block,
 * custom initializers, the trainer and saving/loading parameters.
 */
#include "check.hpp"

#include <lamina/lamina.hpp>

#include <stdexcept>
#include <unistd.h>

using namespace lamina;

/* Runs `body`, expecting a lamina::Error with `status` and exactly `message`. */
template <class F>
static void expect_error(int line, F body, lam_status status, const char *message) {
    try {
        body();
        std::fprintf(stderr, "%s:%d: expected an error, none was thrown\n", __FILE__, line);
        g_failures++;
    } catch (const Error &e) {
        if (e.status() != status || std::string(e.what()) != message) {
            std::fprintf(stderr, "%s:%d: got (%d) \"%s\", expected (%d) \"%s\"\n", __FILE__, line,
                         (int)e.status(), e.what(), (int)status, message);
            g_failures++;
        }
    }
}

static Tensor t22(float a, float b, float c, float d) {
    return Tensor::from({2, 2}, {a, b, c, d});
}

static void test_handles() {
    size_t base = lam_tensor_live_count();
    {
        Tensor a = Tensor::full({3}, 2.0f);
        EXPECT(lam_tensor_live_count() == base + 1);
        Tensor b = a; /* a copy shares the tensor */
        EXPECT(b.get() == a.get());
        EXPECT(lam_tensor_live_count() == base + 1);
        Tensor c = std::move(b);
        EXPECT(!b && c.get() == a.get());
        a = Tensor(); /* c still holds it */
        EXPECT(lam_tensor_live_count() == base + 1);
        EXPECT_VALUES(c.to_vector(), {2, 2, 2});
        lam_tensor *raw = c.release();
        EXPECT(!c);
        Tensor d = Tensor::adopt(raw);
        EXPECT(lam_tensor_live_count() == base + 1);
        Tensor e = d + d; /* a temporary result */
        EXPECT(lam_tensor_live_count() == base + 2);
    }
    EXPECT(lam_tensor_live_count() == base);
    {
        Block a = Dense(4);
        std::string name = a.name();
        Block b = a;
        a = Block();
        EXPECT_STR(b.name(), name); /* still alive through b */
        Sequential s{b};
        b = Block();
        EXPECT_STR(s[0].name(), name); /* and through the Sequential */
        Initializer i = Initializer::constant(0.5f), j = i;
        EXPECT(i.get() == j.get());
        EXPECT_STR(j.describe(), "Constant(value=0.5)");
    }
}

static void test_errors() {
    expect_error(
        __LINE__,
        [] {
            t22(1, 2, 3, 4) + Tensor::from({3}, {1, 2, 3});
        },
        LAM_ERR_SHAPE, "add: Shape mismatch, cannot broadcast (2, 2) with (3,) (dim 1: 2 vs 3)");
    const std::string unknown = "Dnse: Unknown layer type, loaded types: " + loaded_layer_types();
    expect_error(
        __LINE__, [] { Layer("Dnse"); }, LAM_ERR_NOT_FOUND, unknown.c_str());
    expect_error(
        __LINE__,
        [] {
            Tensor::from({3}, {1, 2, 3}).item();
        },
        LAM_ERR_SHAPE, "lam_tensor_scalar: Not a scalar, shape (3,) has 3 elements, expected 1");
    expect_error(
        __LINE__,
        [] {
            Trainer(Sequential{Dense(2)}.collect_params(), "sgd", {{"learning_rat", 0.1}});
        },
        LAM_ERR_INVALID_ARGUMENT,
        "sgd: Unknown option 'learning_rat', valid options: learning_rate, momentum, wd, "
        "clip_global_norm");
    /* An Error is a std::exception too. */
    try {
        Layer("Dnse");
    } catch (const std::exception &e) {
        EXPECT(std::string(e.what()).find("Unknown layer type") != std::string::npos);
    }
}

static void test_operators() {
    Tensor a = t22(1, 2, 3, 4), b = t22(5, 6, 7, 8);
    EXPECT_VALUES((a + b).to_vector(), {6, 8, 10, 12});
    EXPECT_VALUES((a - b).to_vector(), {-4, -4, -4, -4});
    EXPECT_VALUES((a * b).to_vector(), {5, 12, 21, 32});
    EXPECT_VALUES((a / b).to_vector(), {0.2f, 1.0f / 3.0f, 3.0f / 7.0f, 0.5f});
    EXPECT_VALUES((a * 2.0f).to_vector(), {2, 4, 6, 8});
    EXPECT_VALUES((2.0f * a).to_vector(), {2, 4, 6, 8});
    EXPECT_VALUES((a + 1.0f).to_vector(), {2, 3, 4, 5});
    EXPECT_VALUES((a - 1.0f).to_vector(), {0, 1, 2, 3});
    EXPECT_VALUES((1.0f - a).to_vector(), {0, -1, -2, -3});
    EXPECT_VALUES((a / 2.0f).to_vector(), {0.5f, 1, 1.5f, 2});
    EXPECT_VALUES((12.0f / a).to_vector(), {12, 6, 4, 3});
    EXPECT_VALUES((-a).to_vector(), {-1, -2, -3, -4});
    EXPECT_VALUES(t22(-1, 2, -3, 4).relu().to_vector(), {0, 2, 0, 4});
    EXPECT_VALUES(relu(t22(-1, 2, -3, 4)).to_vector(), {0, 2, 0, 4});
    /* [[1,2],[3,4]] x [[5,6],[7,8]] = [[1*5+2*7, 1*6+2*8], [3*5+4*7, 3*6+4*8]] */
    EXPECT_VALUES(a.matmul(b).to_vector(), {19, 22, 43, 50});
    EXPECT_VALUES(a.matmul(b, true, false).to_vector(), {26, 30, 38, 44}); /* a^T b */
    EXPECT_VALUES(a.transpose().to_vector(), {1, 3, 2, 4});
    EXPECT(a.sum().item() == 10.0f);
    EXPECT(a.sum().shape().empty());
    EXPECT_VALUES(a.sum({0}).to_vector(), {4, 6});
    EXPECT_VALUES(a.sum({1}, true).to_vector(), {3, 7});
    EXPECT(a.sum({1}, true).shape() == (Shape{2, 1}));
    EXPECT(a.mean().asscalar() == 2.5f);
    EXPECT(Tensor::from({2}, {3, 4}).norm().item() == 5.0f);
    EXPECT_VALUES(a.square().to_vector(), {1, 4, 9, 16});
    EXPECT_VALUES(a.reshape({4}).to_vector(), {1, 2, 3, 4});
    EXPECT(a.reshape({-1, 1}).shape() == (Shape{4, 1}));
    Tensor c = a;
    c /= 2.0f; /* rebinds c; a is unchanged */
    EXPECT_VALUES(c.to_vector(), {0.5f, 1, 1.5f, 2});
    EXPECT_VALUES(a.to_vector(), {1, 2, 3, 4});
    c *= 10.0f;
    c += a;
    EXPECT_VALUES(c.to_vector(), {6, 12, 18, 24});
    EXPECT_STR(a.shape_string(), "(2, 2)");
    EXPECT(a.numel() == 4 && a.ndim() == 2);
    Tensor z = Tensor::zeros({2, 3});
    z.fill(7.0f);
    EXPECT_VALUES(z.to_vector(), {7, 7, 7, 7, 7, 7});
    z.assign(Tensor::from({3}, {1, 2, 3}));
    EXPECT_VALUES(z.to_vector(), {1, 2, 3, 1, 2, 3});
}

/* The everyday ops (hand-worked values; gradients against PyTorch are in tests/core). */
static void test_everyday_ops() {
    Tensor a = t22(3, -4, 0, 12);
    EXPECT(a.norm().item() == 13.0f);                      /* sqrt(9 + 16 + 144) */
    EXPECT_VALUES(a.norm({1}).to_vector(), {5, 12});       /* per row */
    EXPECT(a.norm({0}, true).shape() == (Shape{1, 2}));
    EXPECT_VALUES(a.clip(-1, 5).to_vector(), {3, -1, 0, 5});
    EXPECT_VALUES(a.slice(1, 1, 2).to_vector(), {-4, 12});
    Tensor idx = Tensor::from({3}, {1, 0, 1}).one_hot(2);  /* float indices */
    EXPECT_VALUES(idx.to_vector(), {0, 1, 1, 0, 0, 1});
    EXPECT_VALUES(arange(0, 2.5, 0.5).to_vector(), {0, 0.5f, 1, 1.5f, 2});
    EXPECT_VALUES(where(t22(1, 0, 0, 1), a, t22(7, 7, 7, 7)).to_vector(), {3, 7, 7, 12});
    seed(3);
    std::vector<float> u = random::uniform({100}, 2.0f, 3.0f).to_vector();
    EXPECT(u.size() == 100 && *std::min_element(u.begin(), u.end()) >= 2.0f &&
           *std::max_element(u.begin(), u.end()) < 3.0f);
    EXPECT(random::normal({3, 4}).shape() == (Shape{3, 4}));
    expect_error(
        __LINE__, [&] { Tensor::from({2}, {0, 2}).one_hot(3).one_hot(0); },
        LAM_ERR_INVALID_ARGUMENT, "one_hot: Invalid depth, depth 0 with 2 index dims");
}

/* Typed optimizer options: exact doubles, PyTorch's SGD with momentum over two steps, and an
 * out-of-range value named. */
static void test_typed_options() {
    Block d = Dense(1, nullptr, 2);
    d.initialize(Initializer::one());
    Trainer trainer(d.collect_params(), SGD().learning_rate(0.1).momentum(0.5));
    EXPECT(trainer.learning_rate() == 0.1); /* the double given, not a float or %g copy */
    Tensor x = Tensor::from({1, 2}, {1, 2});
    for (int i = 0; i < 2; i++) {
        {
            autograd::Record record;
            Tensor y = d(x).sum();
            y.backward();
        }
        trainer.step(1);
    }
    /* g = (1, 2) both steps; v1 = g, w1 = 1 - 0.1 g; v2 = 0.5 v1 + g = 1.5 g, w2 = w1 - 0.15 g */
    EXPECT_VALUES(d.param("weight").data().to_vector(), {1 - 0.25f, 1 - 0.5f});
    EXPECT(trainer.step_count() == 2);
    Trainer adamw(d.collect_params(), AdamW().learning_rate(3e-4));
    EXPECT(adamw.learning_rate() == 3e-4);
    Trainer rms(d.collect_params(), RMSProp().centered(true));
    EXPECT(rms.learning_rate() == 0.01);
    expect_error(
        __LINE__, [&] { Trainer bad(d.collect_params(), Adam().betas(0.9, 1.5)); },
        LAM_ERR_INVALID_ARGUMENT, "lam_trainer_create_adam: adam: Invalid value for 'beta2', got 1.5");
}

static void test_record() {
    EXPECT(!autograd::is_recording());
    Tensor x = Tensor::from({3}, {1, 2, 3});
    x.attach_grad();
    Tensor y;
    {
        autograd::Record record;
        EXPECT(autograd::is_recording());
        {
            autograd::Pause pause;
            EXPECT(!autograd::is_recording());
        }
        EXPECT(autograd::is_recording());
        y = (x * x).sum() + x.norm() * 0.0f; /* d/dx sum(x^2) = 2x */
    }
    EXPECT(!autograd::is_recording());
    y.backward();
    EXPECT_VALUES(x.grad().to_vector(), {2, 4, 6});
    expect_error(
        __LINE__, [] { Tensor::from({1}, {1}).backward(); }, LAM_ERR_STATE,
        "backward: Not recorded, the head was not computed inside "
        "lam_autograd_set_recording(1) from parameters or tensors that need gradients");
}

static void test_sequential() {
    Sequential net{Dense(3, nullptr, 2), Dense(1)};
    EXPECT(net.child_count() == 2);
    EXPECT_STR(net[1].type(), "Dense");
    net.initialize(Initializer::one()); /* weights 1, biases 0 */
    /* [1, 2] -> Dense(3): [3, 3, 3] -> Dense(1): [9] */
    Tensor y = net(Tensor::from({1, 2}, {1, 2}));
    EXPECT_VALUES(y.to_vector(), {9});
    EXPECT_STR(net.summary(),
               "Sequential(\n  (0): Dense(2 -> 3, linear)\n  (1): Dense(3 -> 1, linear)\n)");
    ParamList params = net.collect_params();
    EXPECT(params.size() == 4);
    EXPECT_STR(params.key(2), "1.weight");
    EXPECT(params.find("1.weight").shape() == (Shape{1, 3}));
    EXPECT(!params.find("nothing"));
    Sequential empty;
    empty.add(Activation("relu"));
    EXPECT_VALUES(empty(Tensor::from({2}, {-1, 1})).to_vector(), {0, 1});
}

static int g_destroyed = 0;

/* y = dense(x) * scale + offset, with a constant offset; counts its destructions. */
struct Affine : CustomBlock {
    Block dense = register_child("dense", Dense(2, nullptr, 2));
    Param offset = new_constant("offset", Tensor::from({2}, {10, 20}));
    float scale;
    explicit Affine(float s) : CustomBlock("Affine"), scale(s) {}
    ~Affine() override { g_destroyed++; }
    Tensor forward(const Tensor &x) override { return dense(x) * scale + offset.data(); }
    Tensor forward_all(const std::vector<Tensor> &xs) override { return forward(xs[0] + xs[1]); }
};

struct Throwing : CustomBlock {
    bool std_exception;
    explicit Throwing(bool s) : CustomBlock("Throwing"), std_exception(s) {}
    Tensor forward(const Tensor &x) override {
        if (std_exception) {
            throw std::runtime_error("boom");
        }
        return x + Tensor::from({3}, {1, 2, 3}); /* a shape error inside the forward */
    }
};

static void test_custom_block() {
    g_destroyed = 0;
    size_t base = lam_tensor_live_count();
    {
        Custom<Affine> net = make<Affine>(3.0f);
        EXPECT(net->scale == 3.0f);
        EXPECT_STR(net.type(), "Affine");
        EXPECT_STR(net.name().substr(0, 6), "affine");
        net.initialize(Initializer::one());
        /* dense([1, 2]) = [3, 3]; * 3 = [9, 9]; + [10, 20] = [19, 29] */
        EXPECT_VALUES(net(Tensor::from({1, 2}, {1, 2})).to_vector(), {19, 29});
        /* two inputs: their sum [2, 3] -> [5, 5] * 3 + offset = [25, 35] */
        EXPECT_VALUES(net({Tensor::from({1, 2}, {1, 2}), Tensor::from({1, 2}, {1, 1})}).to_vector(),
                      {25, 35});
        Sequential outer{net, Dense(1, nullptr, 2)};
        Block keep = outer;
        net = Custom<Affine>();
        EXPECT(g_destroyed == 0); /* the Sequential still holds it */
        outer = Sequential();
        EXPECT(g_destroyed == 0);
        keep = Block();
        EXPECT(g_destroyed == 1); /* the last reference went: the C++ object is deleted */
    }
    EXPECT(lam_tensor_live_count() == base);
    {
        Custom<Throwing> bad = make<Throwing>(true);
        std::string name = bad.name();
        expect_error(
            __LINE__,
            [&] {
                bad(Tensor::from({2}, {1, 2}));
            },
            LAM_ERR_INTERNAL, (name + ": Exception in forward, boom").c_str());
        Custom<Throwing> shape = make<Throwing>(false);
        expect_error(
            __LINE__,
            [&] {
                shape(Tensor::from({2}, {1, 2}));
            },
            LAM_ERR_SHAPE, "add: Shape mismatch, cannot broadcast (2,) with (3,) (dim 0: 2 vs 3)");
    }
    {
        /* Made without lamina::make: it owns its block, which refuses to run. */
        Affine local(1.0f);
        Block b = Block::borrow(local.get());
        b.initialize();
        expect_error(
            __LINE__,
            [&] {
                b(Tensor::from({1, 2}, {1, 2}));
            },
            LAM_ERR_STATE,
            (b.name() +
             ": Not runnable, a C++ custom block runs only when made with lamina::make<T>()")
                .c_str());
    }
    EXPECT(lam_tensor_live_count() == base);
}

/* y = x . w^T with w of shape (2, in): `in` is inferred from the input at the first forward. */
struct Deferred : CustomBlock {
    Param weight = new_param("weight", {2, -1});
    Deferred() : CustomBlock("Deferred") {}
    void infer_shape(const std::vector<Shape> &in) override { weight.infer_shape({2, in[0][1]}); }
    Tensor forward(const Tensor &x) override { return x.matmul(weight.data(), false, true); }
};

/* The same without infer_shape: its forward cannot start. */
struct NoInfer : CustomBlock {
    Param weight = new_param("weight", {2, -1});
    NoInfer() : CustomBlock("NoInfer") {}
    Tensor forward(const Tensor &x) override { return x.matmul(weight.data(), false, true); }
};

static void test_deferred_custom_block() {
    Custom<Deferred> net = make<Deferred>();
    net.initialize(Initializer::one());
    EXPECT(net->weight.shape() == (Shape{2, -1}));
    /* [1, 2, 3] . ones(2, 3)^T = [6, 6] */
    EXPECT_VALUES(net(Tensor::from({1, 3}, {1, 2, 3})).to_vector(), {6, 6});
    EXPECT(net->weight.shape() == (Shape{2, 3}));
    expect_error(
        __LINE__,
        [&] {
            net(Tensor::from({1, 2}, {1, 2}));
        },
        LAM_ERR_SHAPE, "matmul: Shape mismatch, (1, 2) x (2, 3)^T: inner dims 2 and 3 differ");
    Custom<NoInfer> plain = make<NoInfer>();
    plain.initialize();
    try {
        plain(Tensor::from({1, 3}, {1, 2, 3}));
        EXPECT(!"a forward with unknown dims and no infer_shape fails");
    } catch (const Error &e) {
        EXPECT(e.status() == LAM_ERR_DEFERRED_INIT);
    }
}

static void iota_init(const char *, const Shape &shape, float *data, size_t count, Rng &) {
    EXPECT(shape.size() == 2);
    for (size_t i = 0; i < count; i++) {
        data[i] = (float)i;
    }
}

static void failing_init(const char *name, const Shape &, float *, size_t, Rng &) {
    throw std::runtime_error(std::string("no data for ") + name);
}

static void test_initializers_trainer_save() {
    Block d = Dense(2, nullptr, 3);
    d.initialize(Initializer::custom<iota_init>("Iota"));
    EXPECT_VALUES(d.param("weight").data().to_vector(), {0, 1, 2, 3, 4, 5});
    std::string wname = d.param("weight").name();
    expect_error(
        __LINE__, [&] { d.initialize(Initializer::custom<failing_init>("Failing"), {}, true); },
        LAM_ERR_INTERNAL,
        (wname + ": Initializer 'Failing' failed, " + wname +
         ": Exception in initializer, no data for " + wname)
            .c_str());

    /* w = [[0, 1, 2], [3, 4, 5]], b = 0, x = [1, 1, 1]: y = [3, 12], loss = sum(y) = 15;
     * dloss/dw = [[1, 1, 1], [1, 1, 1]], so SGD(lr 0.1) gives w - 0.1 = [-0.1, 0.9, ...]. */
    Trainer trainer(d.collect_params(), "sgd", {{"learning_rate", 0.1}});
    EXPECT(trainer.learning_rate() == 0.1); /* 17 digits through the string form */
    Tensor loss;
    {
        autograd::Record record;
        loss = d(Tensor::from({1, 3}, {1, 1, 1})).sum();
    }
    EXPECT(loss.item() == 15.0f);
    loss.backward();
    trainer.step(1);
    EXPECT_VALUES(d.param("weight").data().to_vector(), {-0.1f, 0.9f, 1.9f, 2.9f, 3.9f, 4.9f});
    EXPECT_VALUES(d.param("bias").data().to_vector(), {-0.1f, -0.1f});

    std::string path = "test_cpp_api." + std::to_string((long)getpid()) + ".safetensors";
    d.save_parameters(path);
    d.initialize(Initializer::zero(), {}, true);
    EXPECT_VALUES(d.param("weight").data().to_vector(), {0, 0, 0, 0, 0, 0});
    d.load_parameters(path);
    EXPECT_VALUES(d.param("weight").data().to_vector(), {-0.1f, 0.9f, 1.9f, 2.9f, 3.9f, 4.9f});
    d.initialize(Initializer::zero(), {}, true);
    d.load_parameters(path, false, false, {}, true); /* over the verified mapping */
    EXPECT_VALUES(d.param("weight").data().to_vector(), {-0.1f, 0.9f, 1.9f, 2.9f, 3.9f, 4.9f});
    EXPECT_VALUES(d.param("bias").data().to_vector(), {-0.1f, -0.1f});
    EXPECT_VALUES(load_mapped(path)["weight"].to_vector(), {-0.1f, 0.9f, 1.9f, 2.9f, 3.9f, 4.9f});
    EXPECT_VALUES(load_mapped_verified(path)["bias"].to_vector(), {-0.1f, -0.1f});
    save(path, {{"a", Tensor::from({2}, {1, 2})}, {"b", Tensor::from({1}, {3})}});
    TensorDict dict = load(path);
    EXPECT(dict.size() == 2 && !dict.is_list());
    EXPECT_STR(dict.name(1), "b");
    EXPECT_VALUES(dict["b"].to_vector(), {3});
    EXPECT(!dict["c"]);
    std::remove(path.c_str());
    expect_error(
        __LINE__, [&] { d.load_parameters(path); }, LAM_ERR_NOT_FOUND,
        ("loading '" + path + "': Cannot open the file, No such file or directory").c_str());
}

int main() {
    Runtime runtime;
    test_handles();
    test_errors();
    test_operators();
    test_everyday_ops();
    test_typed_options();
    test_record();
    test_sequential();
    test_custom_block();
    test_deferred_custom_block();
    test_initializers_trainer_save();
    return finish("test_cpp_api");
}
