/*
 * Section 4.5's checks in C++ beside the replay of its cells (read_write.cpp), with the output
 * of the C version (examples/read_write.c, checked against the same file): a list loaded as a
 * list, the order of a dict's names, and the chapter's MLP trained one step before its
 * parameters are saved and loaded into a clone. Files go to the working directory and are
 * removed at the end.
 */
#include "example_util.hpp"

#include <cstdio>

using namespace lamina;

struct MLP : CustomBlock {
    Block hidden = register_child("hidden", Dense(256, "relu"));
    Block output = register_child("output", Dense(10));
    MLP() : CustomBlock("MLP") {}
    Tensor forward(const Tensor &x) override { return output(hidden(x)); }
};

int main() {
    Runtime runtime;
    seed(0);
    std::printf("== a tensor, a list, a dict\n");
    Tensor x = Tensor::from({4}, {0, 1, 2, 3}), y = Tensor::zeros({4});
    save("x-file.safetensors", {x});
    print("x2", load("x-file.safetensors")[0], 4);
    save("x-files.safetensors", {x, y});
    TensorDict xy = load("x-files.safetensors");
    std::printf("list: %s, %zu tensors\n", xy.is_list() ? "yes" : "no", xy.size());
    print("x2", xy[0], 4);
    print("y2", xy[1], 4);
    save("mydict.safetensors", {{"x", x}, {"y", y}});
    TensorDict d = load("mydict.safetensors");
    std::printf("dict: %s then %s\n", d.name(0).c_str(), d.name(1).c_str());
    print("mydict2['x']", d["x"], 4);

    std::printf("== one training step of the MLP, then save and load its parameters\n");
    Tensor X = uniform(2, 20, 0.0f, 1.0f, 1), labels = Tensor::from({2}, {3, 7});
    Custom<MLP> net = make<MLP>();
    net.initialize();
    float before = loss::softmax_cross_entropy(net(X), labels).mean().item();
    Trainer trainer(net.collect_params(), SGD().learning_rate(0.5));
    {
        autograd::Record record;
        loss::softmax_cross_entropy(net(X), labels).backward();
    }
    trainer.step(2);
    net.save_parameters("mlp.params.safetensors");
    float after = loss::softmax_cross_entropy(net(X), labels).mean().item();
    std::printf("the loss went down: %s\n", after < before ? "yes" : "no");
    Custom<MLP> clone = make<MLP>();
    clone.load_parameters("mlp.params.safetensors");
    std::printf("clone(X) == net(X): %s\n",
                clone(X).to_vector() == net(X).to_vector() ? "yes" : "no");
    for (const char *f : {"x-file.safetensors", "x-files.safetensors", "mydict.safetensors",
                          "mlp.params.safetensors"}) {
        std::remove(f);
    }
    return 0;
}
