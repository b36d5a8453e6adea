/*
 * Section 4.2 (parameters), the book's cells in C++: access, built-in and custom
 * initialization, set_data, and parameters shared between layers. Where the book shows
 * random weights this prints their first values (uniform and custom: the seeded stream) or
 * their mean and standard deviation (normal, Xavier). The listing by structural key, the
 * Xavier bound, the summaries and the checks that shared parameters are one storage:
 * parameters_exercises.cpp (the output of examples/parameters.c).
 */
#include "example_util.hpp"

#include <cmath>

using namespace lamina;

/* The book's MyInit: uniform in [-10, 10], then zero every element with |x| < 5. */
static void my_init(const char *name, const Shape &shape, float *data, size_t count, Rng &rng) {
    std::printf("Init %s %s\n", name, format_shape(shape).c_str());
    for (size_t i = 0; i < count; i++) {
        float x = rng.uniform(-10.0f, 10.0f);
        data[i] = std::fabs(x) < 5.0f ? 0.0f : x;
    }
}

static void stats(const char *label, const Tensor &w) {
    float mean = w.mean().item(), std = std::sqrt((w - mean).square().mean().item());
    std::printf("%s: mean %.4f std %.4f\n", label, (double)mean, (double)std);
}

int main() {
    Runtime runtime;
    seed(0);
    Sequential net{Dense(256, "relu"), Dense(10)};
    net.initialize();
    Tensor X = uniform(2, 20, 0.0f, 1.0f, 1);
    Tensor Y = net(X);

    std::printf("%s\n", net[0].params().format(net[0].name() + "_").c_str());
    Param w = net[0].param("weight");
    print("net[0].weight", w.data(), 4);
    print("net[0].weight grad", w.grad(), 4);
    print("net[1].bias", net[1].param("bias").data(), 4);
    std::printf("%s\n", net.collect_params().format(net.name() + "_").c_str());
    std::printf("%s\n", net.collect_params(".*weight").format(net.name() + "_").c_str());

    net.initialize(Initializer::normal(0.01f), {}, true);
    stats("Normal(sigma=0.01) net[0].weight", w.data());
    net.initialize(Initializer::constant(1.0f), {}, true);
    print("Constant(1) net[0].weight", w.data(), 4);
    w.initialize(Initializer::xavier(), {}, true);
    stats("Xavier net[0].weight", w.data());

    net.initialize(Initializer::custom<my_init>("MyInit"), {}, true);
    print("net[0].weight", w.data(), 6);
    w.set_data(w.data() + 1);
    print("after set_data(w + 1)", w.data(), 6);

    Block shared = Dense(8, "relu");
    Sequential net2{Dense(8, "relu"), shared, Dense(8, "relu", 0, shared), Dense(10)};
    net2.initialize();
    net2(X);
    bool same =
        net2[1].param("weight").data().to_vector() == net2[2].param("weight").data().to_vector();
    std::printf("net[1].weight == net[2].weight: %s\n", same ? "yes" : "no");
}
