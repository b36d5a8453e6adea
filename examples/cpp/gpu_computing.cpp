/*
 * Section 4.6 (GPU computing), the book's cells in C++. The book's mx.gpu() is `gpu` here: the
 * last context with a device (a Vulkan device when there is one, else the CPU, so the program
 * runs on every machine). What depends on the machine (the contexts) goes to stderr, the rest
 * to stdout (checked). The section's exercise (timing a matrix product per context) and the
 * other checks of examples/gpu_computing.c: gpu_computing_exercises.cpp.
 */
#include "example_util.hpp"

using namespace lamina;

int main() {
    Runtime runtime;
    Context cpu = Context::get("cpu"), gpu = contexts().back();
    std::fprintf(stderr, "%s, %s\n", cpu.name().c_str(), gpu.name().c_str());
    Tensor x = Tensor::from({3}, {1, 2, 3});
    print("x", x, 3);
    std::fprintf(stderr, "x.context: %s\n", x.context().name().c_str());
    Tensor a = Tensor::from({3}, {1, 2, 3}, gpu);
    print("a", a, 3);
    Tensor B = random::uniform({2, 3}, 0.0f, 1.0f, gpu);
    std::printf("B shape %s\n", B.shape_string().c_str());
    Tensor y = x.copyto(gpu);
    print("y", y, 3);
    Tensor z = x.as_in_context(gpu);
    print("z", z, 3);
    std::printf("y.as_in_context(gpu) is y: %s\n",
                y.as_in_context(gpu).get() == y.get() ? "yes" : "no");
    std::printf("y.copyto(gpu) is y: %s\n", y.copyto(gpu).get() == y.get() ? "yes" : "no");
    print("(z + 2).exp() * y", (z + 2).exp() * y, 3);

    Sequential net{Dense(1)};
    net.initialize({}, gpu);
    /* Gluon reads the 1-D y as a batch of 3 one-feature rows; Dense wants them said. */
    std::printf("net(y) shape %s\n", net(y.reshape({3, 1})).shape_string().c_str());
    std::printf("net[0].weight shape %s\n", net[0].param("weight").data().shape_string().c_str());
}
