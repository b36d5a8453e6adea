/*
 * Tests of lamina.hpp's no-exception mode (built with -fno-exceptions and LAMINA_NO_EXCEPTIONS):
 * a failing call records its status and message and returns an empty handle, NaN or nothing;
 * the first failure sticks until clear_error(); a custom block's failing forward fails the
 * call that ran it; nothing leaks on these paths.
 */
#ifndef LAMINA_NO_EXCEPTIONS
#error "this test is built with LAMINA_NO_EXCEPTIONS"
#endif
#include "check.hpp"

#include <lamina/lamina.hpp>

using namespace lamina;

/* Adds a (3,) tensor to its input: a shape error for any other input size. */
struct AddThree : CustomBlock {
    AddThree() : CustomBlock("AddThree") {}
    Tensor forward(const Tensor &x) override { return x + Tensor::from({3}, {1, 2, 3}); }
};

int main() {
    Runtime runtime;
    size_t base = lam_tensor_live_count();
    {
        EXPECT(status() == LAM_OK);
        EXPECT_STR(error_message(), "");
        Tensor a = Tensor::from({2}, {1, 2});
        Tensor ok = a * 2.0f + 1.0f;
        EXPECT_VALUES(ok.to_vector(), {3, 5});
        EXPECT(status() == LAM_OK);

        Tensor bad = a + Tensor::from({3}, {1, 2, 3});
        EXPECT(!bad);
        EXPECT(status() == LAM_ERR_SHAPE);
        EXPECT_STR(error_message(),
                   "add: Shape mismatch, cannot broadcast (2,) with (3,) (dim 0: 2 vs 3)");
        /* Using the empty result fails too, but the first failure stays recorded. */
        Tensor worse = bad.relu();
        EXPECT(!worse);
        EXPECT(std::isnan(bad.item()));
        EXPECT(bad.to_vector().empty());
        EXPECT(status() == LAM_ERR_SHAPE);
        Block unknown = Layer("Dnse");
        EXPECT(!unknown);
        EXPECT(status() == LAM_ERR_SHAPE);

        clear_error();
        EXPECT(status() == LAM_OK);
        EXPECT(std::isnan(a.item()));
        EXPECT(status() == LAM_ERR_SHAPE);
        EXPECT_STR(error_message(),
                   "lam_tensor_scalar: Not a scalar, shape (2,) has 2 elements, expected 1");

        clear_error();
        Block layer = Layer("Dnse");
        EXPECT(!layer && status() == LAM_ERR_NOT_FOUND);
        EXPECT_STR(error_message(),
                   "Dnse: Unknown layer type, loaded types: " + loaded_layer_types());

        /* A custom block whose forward fails: the call that ran it fails with its status. */
        clear_error();
        Custom<AddThree> net = make<AddThree>();
        EXPECT(net && status() == LAM_OK);
        EXPECT_VALUES(net(Tensor::from({3}, {1, 1, 1})).to_vector(), {2, 3, 4});
        EXPECT(status() == LAM_OK);
        Tensor y = net(a);
        EXPECT(!y);
        EXPECT(status() == LAM_ERR_SHAPE);
        EXPECT_STR(error_message(),
                   "add: Shape mismatch, cannot broadcast (2,) with (3,) (dim 0: 2 vs 3)");

        clear_error();
        Sequential seq{Dense(2), Dense(1)};
        seq.initialize();
        EXPECT(seq(Tensor::from({1, 4}, {1, 2, 3, 4})).shape() == (Shape{1, 1}));
        EXPECT(status() == LAM_OK);
    }
    EXPECT(lam_tensor_live_count() == base);
    clear_error();
    return finish("test_cpp_noexcept");
}
