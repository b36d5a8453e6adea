/*
 * Section 4.1's checks in C++ beside the replay of its cells (model_construction.cpp), with the
 * output of the C version (examples/model_construction.c, checked against the same file): the
 * same blocks, each model's summary, and the error for a child that was never registered.
 */
#include "example_util.hpp"

using namespace lamina;

struct MLP : CustomBlock {
    Block hidden = register_child("hidden", Dense(256, "relu"));
    Block output = register_child("output", Dense(10));
    MLP() : CustomBlock("MLP") {}
    Tensor forward(const Tensor &x) override { return output(hidden(x)); }
};

struct MySequential : CustomBlock {
    MySequential() : CustomBlock("MySequential") {}
    void add(const Block &b) { register_child(std::to_string(child_count()).c_str(), b); }
    Tensor forward(const Tensor &x) override {
        Tensor y = x;
        for (size_t i = 0; i < child_count(); i++) {
            y = child_at(i)(y);
        }
        return y;
    }
};

struct FancyMLP : CustomBlock {
    Param rand_weight = new_constant("rand_weight", uniform(20, 20, 0.0f, 1.0f, 7));
    Block dense = register_child("dense", Dense(20, "relu"));
    FancyMLP() : CustomBlock("FancyMLP") {}
    Tensor forward(const Tensor &in) override {
        Tensor x = dense(in);
        x = (x.dot(rand_weight.data()) + 1).relu();
        x = dense(x); /* the same layer again: shared parameters */
        while (x.norm().item() > 1) {
            x /= 2;
        }
        if (x.norm().item() < 0.8f) {
            x *= 10;
        }
        return x.sum();
    }
};

struct NestMLP : CustomBlock {
    Block net = register_child("net", Sequential{Dense(64, "relu"), Dense(32, "relu")});
    Block dense = register_child("dense", Dense(16, "relu"));
    NestMLP() : CustomBlock("NestMLP") {}
    Tensor forward(const Tensor &x) override { return dense(net(x)); }
};

int main() {
    Runtime runtime;
    seed(0);
    Tensor x = uniform(2, 20, 0.0f, 1.0f, 1);

    std::printf("== MLP\n");
    Custom<MLP> mlp = make<MLP>();
    mlp.initialize();
    Tensor y = mlp(x);
    std::printf("%s\n", mlp.summary().c_str());
    print("net(X)", y, 4);

    std::printf("== MySequential\n");
    Custom<MySequential> myseq = make<MySequential>();
    myseq->add(Dense(256, "relu"));
    myseq->add(Dense(10));
    myseq.initialize();
    print("net(X)", myseq(x), 4);

    std::printf("== FancyMLP\n");
    Custom<FancyMLP> fancy = make<FancyMLP>();
    fancy.initialize();
    print("net(X)", fancy(x), 4);

    std::printf("== NestMLP + Dense + FancyMLP in a Sequential\n");
    Sequential chimera{make<NestMLP>(), Dense(20), make<FancyMLP>()};
    chimera.initialize();
    y = chimera(x);
    std::printf("%s\n", chimera.summary().c_str());
    print("chimera(X)", y, 4);

    std::printf("== A child that was never registered\n");
    try {
        Dense(4)(x);
    } catch (const Error &e) {
        std::printf("error: %s\n", e.what());
    }
    return 0;
}
