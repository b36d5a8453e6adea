/*
 * Section 4.2's checks in C++ beside the replay of its cells (parameters.cpp), with the output of
 * the C version (examples/parameters.c, checked against the same file): parameters listed by
 * structural key, distribution statistics of each initializer and the Xavier bound, the
 * summaries before and after the shapes are known, and shared parameters shown to be one
 * storage (a write through one layer seen by the other, listed once).
 */
#include "example_util.hpp"

#include <cmath>

using namespace lamina;

/* The chapter's MyInit: uniform in [-10, 10], then zero every element with |x| < 5. */
static void my_init(const char *name, const Shape &shape, float *data, size_t count, Rng &rng) {
    std::printf("Init %s %s\n", name, format_shape(shape).c_str());
    for (size_t i = 0; i < count; i++) {
        float x = rng.uniform(-10.0f, 10.0f);
        data[i] = std::fabs(x) < 5.0f ? 0.0f : x;
    }
}

static void stats(const char *label, const Param &p) {
    std::vector<float> v = p.data().to_vector();
    double mean = 0, var = 0;
    for (float x : v) {
        mean += x / (double)v.size();
    }
    for (float x : v) {
        var += (x - mean) * (x - mean) / (double)v.size();
    }
    std::printf("%s: mean %.4f std %.4f\n", label, mean, std::sqrt(var));
}

int main() {
    Runtime runtime;
    seed(0);
    Sequential net{Dense(256, "relu"), Dense(10)};
    net.initialize(); /* Uniform(0.07) weights, zero biases */
    Tensor x = uniform(2, 20, 0.0f, 1.0f, 1);
    net(x);

    std::printf("== Access\n");
    Block first = net[0], second = net[1];
    std::printf("%s\n", first.params().format(first.name() + "_").c_str());
    print("net[0].weight", first.param("weight").data(), 4);
    print("net[0].weight grad", first.param("weight").grad(), 4);
    print("net[1].bias", second.param("bias").data(), 4);

    std::printf("== collect_params\n");
    ParamList params = net.collect_params();
    std::printf("%s\n", params.format(net.name() + "_").c_str());
    for (size_t i = 0; i < params.size(); i++) {
        std::printf("key %s -> %s\n", params.key(i).c_str(), params[i].name().c_str());
    }
    std::printf("%s\n", net.collect_params(".*weight").format(net.name() + "_").c_str());

    std::printf("== Built-in initializers\n");
    net.initialize(Initializer::normal(0.01f), {}, true);
    stats("Normal(sigma=0.01) net[0].weight", first.param("weight"));
    print("net[0].bias", first.param("bias").data(), 4);
    net.initialize(Initializer::constant(1.0f), {}, true);
    print("Constant(1) net[0].weight", first.param("weight").data(), 4);
    first.param("weight").initialize(Initializer::xavier(), {}, true);
    stats("Xavier net[0].weight", first.param("weight"));
    std::printf("Xavier bound sqrt(3/((20+256)/2)) = %.4f\n", std::sqrt(3.0 / 138.0));

    std::printf("== Custom initializer\n");
    net.initialize(Initializer::custom<my_init>("MyInit"), {}, true);
    Param w = first.param("weight");
    print("net[0].weight", w.data(), 6);
    w.set_data(w.data() + 1);
    print("after set_data(w + 1)", w.data(), 6);

    std::printf("== Shared parameters\n");
    Block first2 = Dense(8, "relu"), shared = Dense(8, "relu");
    Sequential net2{first2, shared, Dense(8, "relu", 0, shared), Dense(10)};
    std::printf("%s\n", net2.summary().c_str());
    net2.initialize(Initializer::xavier());
    Tensor y = net2(x);
    std::printf("%s\n", net2.summary().c_str());
    print("net(X)", y, 4);
    std::printf("net[1] weight is %s, net[2] weight is %s\n",
                net2[1].param("weight").name().c_str(), net2[2].param("weight").name().c_str());
    /* Change one element through net[1]; net[2] sees it: it is the same storage. */
    Tensor w1 = net2[1].param("weight").data();
    std::vector<float> v = w1.to_vector();
    v[0] = 100.0f;
    w1.write(v);
    std::printf("net[2].weight[0][0] after setting net[1].weight[0][0] = 100: %.1f\n",
                (double)net2[2].param("weight").data().to_vector()[0]);
    std::printf("collect_params lists %zu parameters (the shared pair once)\n",
                net2.collect_params().size());
    return 0;
}
