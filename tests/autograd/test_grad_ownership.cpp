// Who owns a gradient buffer (src/autograd/autograd.cpp): backward adopts a fresh gradient
// as a leaf's .grad() and adds into a pending gradient in place, but only when nothing
// else holds that buffer. These tests build the cases where something else does (a
// gradient passed through to two inputs by add, a view of the caller's own gradient) and
// check that no two holders end up sharing or corrupting one buffer. Expected values are
// worked out by hand from the ops' definitions.
#include <gtest/gtest.h>

#include "autograd/autograd.h"
#include "ops/ops.h"

namespace sllm {
namespace {

Tensor leaf(std::vector<float> values, Shape shape) {
  Tensor t = Tensor::from_floats(values, shape);
  t.set_requires_grad(true);
  return t;
}

void expect_all(const Tensor& t, float value) {
  ASSERT_TRUE(t.defined());
  for (float v : t.to_floats()) EXPECT_EQ(v, value);
}

// add passes its output gradient through to both inputs: one tensor for two leaves.
TEST(GradOwnership, PassThroughGradientIsCopiedForEachLeaf) {
  Tensor a = leaf({1, 2, 3, 4, 5, 6}, {2, 3}), b = leaf({6, 5, 4, 3, 2, 1}, {2, 3});
  autograd::backward(ops::sum(ops::add(a, b)));
  expect_all(a.grad(), 1.0f);
  expect_all(b.grad(), 1.0f);
  EXPECT_NE(a.grad().raw(), b.grad().raw()) << "two leaves must not share one gradient buffer";
  a.grad().fill_(7.0f);
  expect_all(b.grad(), 1.0f);
}

// h feeds both add inputs, one of them through scale: h's pending gradient is the add's
// output gradient (shared with the scale branch until that branch ran), plus 2x it.
// L = Σ (h + 2h), h = 3x  =>  dL/dx = 3 * (1 + 2) = 9.
TEST(GradOwnership, SharedPendingGradientAccumulatesCorrectly) {
  Tensor x = leaf({1, -2, 0.5f, 4}, {4});
  Tensor h = ops::scale(x, 3.0f);
  autograd::backward(ops::sum(ops::add(h, ops::scale(h, 2.0f))));
  expect_all(x.grad(), 9.0f);
}

// The same residual pattern twice in a row, as in a transformer's blocks:
// y1 = x + 2x = 3x, y2 = y1 + 2 y1 = 9x, L = Σ y2  =>  dL/dx = 9.
TEST(GradOwnership, ChainedResidualAdds) {
  Tensor x = leaf({1, 2, 3}, {3});
  Tensor y1 = ops::add(x, ops::scale(x, 2.0f));
  Tensor y2 = ops::add(y1, ops::scale(y1, 2.0f));
  autograd::backward(ops::sum(y2));
  expect_all(x.grad(), 9.0f);
}

// reshape's backward returns a view of the gradient it was given, here the caller's own
// tensor: the leaf must get a copy, so changing the caller's tensor later changes nothing.
TEST(GradOwnership, CallersGradientIsNotAdopted) {
  Tensor x = leaf({1, 2, 3, 4}, {4});
  Tensor y = ops::reshape(x, {2, 2});
  Tensor g = Tensor::full({2, 2}, 5.0f);
  autograd::backward(y, g);
  g.fill_(-1.0f);
  expect_all(x.grad(), 5.0f);
}

// A gradient adopted on the first backward keeps accumulating on the second.
TEST(GradOwnership, AdoptedGradientAccumulatesAcrossBackwards) {
  Tensor x = leaf({1, 2}, {2});
  autograd::backward(ops::sum(ops::scale(x, 2.0f)));
  autograd::backward(ops::sum(ops::scale(x, 3.0f)));
  expect_all(x.grad(), 5.0f);
}

}  // namespace
}  // namespace sllm
