/*
 * Section 4.6's exercise and checks in C++ beside the replay of its cells (gpu_computing.cpp),
 * with the output of the C version (examples/gpu_computing.c, checked against the same file):
 * ops refusing to mix contexts, one model initialized on every context giving the same output,
 * and the exercise, a 512 x 512 matrix product timed per context after lamina::waitall().
 * Facts that hold on every machine go to stdout (checked); devices and timings to stderr.
 */
#include "example_util.hpp"

#include <chrono>
#include <cmath>

using namespace lamina;

static double now() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

int main() {
    Runtime runtime;
    seed(0);
    std::vector<Context> ctx = contexts();
    Context cpu = Context::get("cpu");
    for (const Context &c : ctx) {
        std::fprintf(stderr, "context %s\n", c.name().c_str());
    }
    Context other = ctx.size() > 1 ? (ctx[0] == cpu ? ctx[1] : ctx[0]) : cpu;

    std::printf("== copyto and as_in_context\n");
    Tensor x = uniform(2, 3, 0.0f, 1.0f, 1), y = x.copyto(other), z = y.as_in_context(other);
    std::printf("copyto makes a new tensor with the same values: %s\n",
                y.get() != x.get() && x.to_vector() == y.to_vector() ? "yes" : "no");
    std::printf("as_in_context on its own context returns the tensor itself: %s\n",
                z.get() == y.get() ? "yes" : "no");
    if (other != cpu) {
        try {
            x + y;
        } catch (const Error &e) {
            std::fprintf(stderr, "x + y across contexts: %s\n", e.what());
        }
    }

    std::printf("== a model initialized on each context\n");
    x = uniform(2, 20, 0.0f, 1.0f, 2);
    std::vector<float> ref;
    bool agree = true;
    for (const Context &c : ctx) {
        Sequential net{Dense(256, "relu"), Dense(10)};
        net.initialize({}, c); /* same seed: same weights */
        std::vector<float> v = net(x.as_in_context(c)).to_vector();
        for (size_t k = 0; k < v.size() && !ref.empty(); k++) {
            agree = agree && std::fabs(v[k] - ref[k]) <= 1e-4f + 1e-3f * std::fabs(ref[k]);
        }
        ref = ref.empty() ? v : ref;
    }
    std::printf("the same model gives the same output on every context: %s\n",
                agree ? "yes" : "no");

    std::printf("== a 512 x 512 matrix product, timed after synchronizing\n");
    Tensor m = uniform(512, 512, -1.0f, 1.0f, 3);
    float first = 0;
    agree = true;
    for (size_t i = 0; i < ctx.size(); i++) {
        Tensor mi = m.as_in_context(ctx[i]);
        waitall();
        double t0 = now();
        Tensor p = mi.matmul(mi);
        double queued = now() - t0;
        waitall(); /* without this the clock would stop before the work is done */
        double done = now() - t0;
        float v = p.sum().item();
        first = i == 0 ? v : first;
        agree = agree && std::fabs(v - first) <= 1e-2f * std::fabs(first) + 1.0f;
        std::fprintf(stderr, "%s: matmul returned after %.2f ms, finished after %.2f ms\n",
                     ctx[i].name().c_str(), queued * 1e3, done * 1e3);
    }
    std::printf("sum of the product agrees on every context: %s\n", agree ? "yes" : "no");
    return 0;
}
