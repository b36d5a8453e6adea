/*
 * Section 4.4's checks in C++ beside the replay of its cells (custom_layers.cpp), with the
 * output of the C version (examples/custom_layers.c, checked against the same file): the
 * plugin layers Centered and MyDense alone and in models, with the summaries, and the error for
 * a wrong input size.
 */
#include "example_util.hpp"

#include <cmath>

using namespace lamina;

int main() {
    Runtime runtime;
    seed(0);

    std::printf("== Centered: x - mean(x)\n");
    Block centered = Layer("Centered");
    print("layer([1, 2, 3, 4, 5])", centered(Tensor::from({5}, {1, 2, 3, 4, 5})), 5);
    Sequential net{Dense(128), centered};
    net.initialize();
    float mean = net(uniform(4, 8, 0.0f, 1.0f, 4)).mean().item();
    std::printf("mean of Sequential(Dense(128), Centered())(X) is 0 within 1e-6: %s\n",
                std::fabs(mean) < 1e-6f ? "yes" : "no");
    std::printf("%s\n", net.summary().c_str());

    std::printf("== MyDense(units=3, in_units=5)\n");
    Block dense = Layer("MyDense", "units=3, in_units=5");
    std::printf("%s\n", dense.params().format(dense.name() + "_").c_str());
    dense.initialize();
    print("dense(X)", dense(uniform(2, 5, 0.0f, 1.0f, 5)), 6);

    std::printf("== Sequential(MyDense(8, in_units=64), MyDense(1, in_units=8))\n");
    Sequential net2{Layer("MyDense", "units=8, in_units=64"),
                    Layer("MyDense", "units=1, in_units=8")};
    net2.initialize();
    std::printf("%s\n", net2.summary().c_str());
    print("net(X)", net2(uniform(2, 64, 0.0f, 1.0f, 6)), 2);

    std::printf("== A wrong input size for MyDense\n");
    Block bad = Layer("MyDense", "units=3, in_units=5");
    bad.initialize();
    try {
        bad(uniform(2, 4, 0.0f, 1.0f, 7));
    } catch (const Error &e) {
        std::printf("error: %s\n", e.what());
    }
    return 0;
}
