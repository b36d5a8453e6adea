/*
 * Section 4.5 (reading and writing), the book's cells in C++: a tensor, a list and a dict of
 * tensors saved and loaded, then a model's parameters saved and loaded into a clone. Files go
 * to the working directory. One training step before saving and the other checks of
 * examples/read_write.c: read_write_exercises.cpp.
 */
#include "example_util.hpp"

using namespace lamina;

struct MLP : CustomBlock {
    Block hidden = register_child("hidden", Dense(256, "relu"));
    Block output = register_child("output", Dense(10));
    MLP() : CustomBlock("MLP") {}
    Tensor forward(const Tensor &x) override { return output(hidden(x)); }
};

int main() {
    Runtime runtime;
    Tensor x = arange(0, 4);
    save("x-file.safetensors", {x});
    print("x2", load("x-file.safetensors")[0], 4);
    Tensor y = Tensor::zeros({4});
    save("x-files.safetensors", {x, y});
    TensorDict xy = load("x-files.safetensors");
    print("x2", xy[0], 4);
    print("y2", xy[1], 4);
    save("mydict.safetensors", {{"x", x}, {"y", y}});
    TensorDict mydict2 = load("mydict.safetensors");
    print("mydict2['x']", mydict2["x"], 4);
    print("mydict2['y']", mydict2["y"], 4);

    Custom<MLP> net = make<MLP>();
    net.initialize();
    Tensor X = random::uniform({2, 20});
    Tensor Y = net(X);
    net.save_parameters("mlp.params.safetensors");
    Custom<MLP> clone = make<MLP>();
    clone.load_parameters("mlp.params.safetensors");
    std::printf("clone(X) == net(X): %s\n", clone(X).to_vector() == Y.to_vector() ? "yes" : "no");
}
