/*
 * Section 4.3 (deferred initialization), the book's cells in C++: initialize() only records the
 * initializer while the input size is unknown, the first forward infers the shapes and runs
 * it, later forwards do not; in_units makes the initialization immediate. The section's
 * exercises and the other checks of examples/deferred_init.c: deferred_init_exercises.cpp.
 */
#include "example_util.hpp"

#include <algorithm>

using namespace lamina;

/* The book's MyInit: says when it runs (the book leaves out what it fills in: zeros here). */
static void my_init(const char *name, const Shape &shape, float *data, size_t count, Rng &) {
    std::printf("Init %s %s\n", name, format_shape(shape).c_str());
    std::fill_n(data, count, 0.0f);
}

int main() {
    Runtime runtime;
    Sequential net{Dense(256, "relu"), Dense(10)};
    net.initialize(Initializer::custom<my_init>("MyInit"));
    Tensor X = random::uniform({2, 20});
    Tensor Y = net(X);
    Y = net(X);
    net.initialize(Initializer::custom<my_init>("MyInit"), {}, true);
    Sequential net2{Dense(256, "relu", 20), Dense(10, nullptr, 256)};
    net2.initialize(Initializer::custom<my_init>("MyInit"));
}
