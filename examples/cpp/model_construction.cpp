/*
 * Section 4.1 (model construction), the book's cells in C++: a custom block (MLP), a hand-made
 * Sequential, FancyMLP with a constant weight, a shared layer and control flow on a scalar, and
 * NestMLP mixing them. The summaries and the error for a child that was never registered:
 * model_construction_exercises.cpp (the output of examples/model_construction.c).
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
    Tensor X = uniform(2, 20, 0.0f, 1.0f, 1);
    Custom<MLP> net = make<MLP>();
    net.initialize();
    print("net(X)", net(X), 4);

    Custom<MySequential> myseq = make<MySequential>();
    myseq->add(Dense(256, "relu"));
    myseq->add(Dense(10));
    myseq.initialize();
    print("net(X)", myseq(X), 4);

    Custom<FancyMLP> fancy = make<FancyMLP>();
    fancy.initialize();
    print("net(X)", fancy(X), 4);

    Sequential chimera{make<NestMLP>(), Dense(20), make<FancyMLP>()};
    chimera.initialize();
    print("chimera(X)", chimera(X), 4);
}
