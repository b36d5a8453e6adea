/*
 * Section 4.4 (custom layers), the book's cells in C++: the layers Centered (no parameters) and
 * MyDense (with parameters) are plugins (plugins/layers; MyDense is the template for plugin
 * authors), used alone and inside models. The summaries and the error for a wrong input size:
 * custom_layers_exercises.cpp (the output of examples/custom_layers.c).
 */
#include "example_util.hpp"

#include <cmath>

using namespace lamina;

int main() {
    Runtime runtime;
    seed(0);
    Block layer = Layer("Centered");
    print("layer([1, 2, 3, 4, 5])", layer(Tensor::from({5}, {1, 2, 3, 4, 5})), 5);
    Sequential net{Dense(128), Layer("Centered")};
    net.initialize();
    Tensor y = net(uniform(4, 8, 0.0f, 1.0f, 4));
    std::printf("mean of Sequential(Dense(128), Centered())(X) is 0 within 1e-6: %s\n",
                std::fabs(y.mean().item()) < 1e-6f ? "yes" : "no");

    Block dense = Layer("MyDense", "units=3, in_units=5");
    std::printf("%s\n", dense.params().format(dense.name() + "_").c_str());
    dense.initialize();
    print("dense(X)", dense(uniform(2, 5, 0.0f, 1.0f, 5)), 6);
    Sequential net2{Layer("MyDense", "units=8, in_units=64"),
                    Layer("MyDense", "units=1, in_units=8")};
    net2.initialize();
    print("net(X)", net2(uniform(2, 64, 0.0f, 1.0f, 6)), 2);
}
