/*
 * Section 4.3's exercises and checks in C++ beside the replay of its cells (deferred_init.cpp),
 * with the output of the C version (examples/deferred_init.c, checked against the same file):
 * the error when a deferred parameter is read, the summaries before and after the first
 * forward, eager and deferred initialization giving bit-identical weights, and the exercises
 * (another feature size is refused, another batch size is not).
 */
#include "example_util.hpp"

#include <cmath>

using namespace lamina;

static void my_init(const char *name, const Shape &shape, float *data, size_t count, Rng &rng) {
    std::printf("Init %s %s\n", name, format_shape(shape).c_str());
    for (size_t i = 0; i < count; i++) {
        float x = rng.uniform(-10.0f, 10.0f);
        data[i] = std::fabs(x) < 5.0f ? 0.0f : x;
    }
}

int main() {
    Runtime runtime;
    seed(0);
    Initializer init = Initializer::custom<my_init>("MyInit");
    Sequential net{Dense(256, "relu"), Dense(10)};

    std::printf("== initialize() with an unknown input size\n");
    net.initialize(init);
    std::printf("(nothing initialized yet)\n%s\n", net.summary().c_str());
    Tensor x = uniform(2, 20, 0.0f, 1.0f, 1);
    try {
        net[0].param("weight").data();
    } catch (const Error &e) {
        std::printf("error: %s\n", e.what());
    }

    std::printf("== first forward\n");
    net(x);
    std::printf("%s\n", net.summary().c_str());
    std::printf("== second forward (no initialization)\n");
    print("net(X)", net(x), 2);

    std::printf("== re-initialize after shapes are known\n");
    net.initialize(init, {}, true);

    std::printf("== in_units avoids deferral\n");
    Sequential eager{Dense(256, "relu", 20), Dense(10)};
    eager.initialize(init);

    std::printf("== eager and deferred initialization give bit-identical weights\n");
    Sequential deferred{Dense(256, "relu"), Dense(10)};
    deferred.initialize(init);
    deferred(x);
    bool same = eager[0].param("weight").data().to_vector() ==
                deferred[0].param("weight").data().to_vector();
    std::printf("identical: %s\n", same ? "yes" : "no");

    std::printf("== another feature size\n");
    try {
        net(uniform(2, 10, 0.0f, 1.0f, 2));
    } catch (const Error &e) {
        std::printf("error: %s\n", e.what());
    }
    std::printf("== another batch size\n");
    Tensor y = net(uniform(5, 20, 0.0f, 1.0f, 3));
    std::printf("net(X) with batch 5 has shape %s\n", y.shape_string().c_str());
    return 0;
}
