// The autograd tape (src/autograd/autograd.h) on tiny ops defined here, so these tests
// depend on the tape alone: accumulation into leaves, explicit gradients, freeing the graph,
// NoGradGuard, in-place modification of saved tensors, diamonds and very deep chains.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "autograd/autograd.h"
#include "core/error.h"

namespace sllm {
namespace {

using autograd::SavedTensor;

// y = x², saving x for backward (dy/dx = 2x).
Tensor square(const Tensor& x) {
  Tensor y = Tensor::empty(x.shape());
  for (int64_t i = 0; i < x.numel(); ++i) y.mutable_f32()[i] = x.f32()[i] * x.f32()[i];
  if (autograd::needs_grad({x})) {
    SavedTensor sx(x, "square");
    autograd::record(y, "square", {x}, [sx](const Tensor& g) {
      const Tensor& X = sx.get();
      Tensor dx = Tensor::empty(X.shape());
      for (int64_t i = 0; i < X.numel(); ++i) dx.mutable_f32()[i] = 2.0f * X.f32()[i] * g.f32()[i];
      return std::vector<Tensor>{dx};
    });
  }
  return y;
}

// y = c·x (saves nothing).
Tensor times(const Tensor& x, float c) {
  Tensor y = Tensor::empty(x.shape());
  for (int64_t i = 0; i < x.numel(); ++i) y.mutable_f32()[i] = c * x.f32()[i];
  if (autograd::needs_grad({x})) {
    autograd::record(y, "times", {x}, [c](const Tensor& g) {
      Tensor dx = Tensor::empty(g.shape());
      for (int64_t i = 0; i < g.numel(); ++i) dx.mutable_f32()[i] = c * g.f32()[i];
      return std::vector<Tensor>{dx};
    });
  }
  return y;
}

// y = a + b; backward hands the SAME gradient tensor to both inputs (like a real add may).
Tensor plus(const Tensor& a, const Tensor& b) {
  Tensor y = Tensor::empty(a.shape());
  for (int64_t i = 0; i < a.numel(); ++i) y.mutable_f32()[i] = a.f32()[i] + b.f32()[i];
  if (autograd::needs_grad({a, b})) {
    autograd::record(y, "plus", {a, b}, [](const Tensor& g) { return std::vector<Tensor>{g, g}; });
  }
  return y;
}

// s = Σ x, shape (1).
Tensor total(const Tensor& x) {
  float s = 0;
  for (int64_t i = 0; i < x.numel(); ++i) s += x.f32()[i];
  Tensor y = Tensor::full({1}, s);
  if (autograd::needs_grad({x})) {
    Shape shape = x.shape();
    autograd::record(y, "total", {x}, [shape](const Tensor& g) {
      return std::vector<Tensor>{Tensor::full(shape, g.item())};
    });
  }
  return y;
}

Tensor leaf(const std::vector<float>& v) {
  Tensor t = Tensor::from_floats(v, {static_cast<int64_t>(v.size())});
  t.set_requires_grad(true);
  return t;
}

template <typename Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected sllm::Error";
  return "";
}

// The leaf-ready hook (data-parallel overlap): each leaf is reported once, only after its
// last gradient has been added (a leaf used twice is not final after its first use), and a
// leaf that only feeds a branch no gradient reaches is never reported.
TEST(Autograd, LeafReadyHookReportsEachLeafOnceWithItsFinalGradient) {
  Tensor a = leaf({1, 2}), b = leaf({3, 4}), c = leaf({5, 6});
  std::vector<std::pair<char, float>> reports;  // (leaf, its gradient's first element when reported)
  auto previous = autograd::set_leaf_ready_hook([&](const Tensor& t) {
    const char name = t.same_as(a) ? 'a' : t.same_as(b) ? 'b' : t.same_as(c) ? 'c' : '?';
    reports.emplace_back(name, t.grad().f32()[0]);
  });
  // L = Σ(a² + 3a) + Σ(b²): a is used twice (d/da = 2a + 3), b once; c only feeds an unused
  // branch, so no gradient reaches it.
  const Tensor unused = times(c, 2.0f);
  const Tensor loss = plus(total(plus(square(a), times(a, 3.0f))), total(square(b)));
  autograd::backward(loss);
  autograd::set_leaf_ready_hook(std::move(previous));
  ASSERT_EQ(reports.size(), 2u);
  std::sort(reports.begin(), reports.end());
  EXPECT_EQ(reports[0], std::make_pair('a', 2.0f * 1 + 3.0f));  // both uses added before the report
  EXPECT_EQ(reports[1], std::make_pair('b', 2.0f * 3));
  EXPECT_FALSE(c.grad().defined());
  // Without a hook, backward reports nothing (and still computes the same gradients).
  Tensor d = leaf({1, 2});
  autograd::backward(total(plus(square(d), times(d, 3.0f))));
  EXPECT_EQ(d.grad().f32()[0], 5.0f);
}

TEST(Autograd, ScalarBackwardUsesGradientOne) {
  Tensor x = leaf({1, -2, 3});
  EXPECT_FALSE(x.grad().defined()) << "no gradient before backward";
  Tensor loss = total(square(x));
  EXPECT_TRUE(loss.requires_grad());
  EXPECT_NE(loss.grad_fn(), nullptr);
  autograd::backward(loss);
  EXPECT_EQ(x.grad().to_floats(), (std::vector<float>{2, -4, 6}));
}

TEST(Autograd, GradientsAccumulateAcrossBackwardPasses) {
  Tensor x = leaf({1, -2, 3});
  autograd::backward(total(square(x)));
  autograd::backward(total(times(x, 5.0f)));  // a second, different graph into the same leaf
  EXPECT_EQ(x.grad().to_floats(), (std::vector<float>{2 + 5, -4 + 5, 6 + 5}));
  x.zero_grad();
  EXPECT_FALSE(x.grad().defined());
  autograd::backward(total(times(x, 5.0f)));
  EXPECT_EQ(x.grad().to_floats(), (std::vector<float>{5, 5, 5}));
}

TEST(Autograd, ExplicitGradientForNonScalarRoot) {
  Tensor x = leaf({1, 2, 3});
  Tensor y = square(x);
  autograd::backward(y, Tensor::from_floats({1, 10, 100}, {3}));
  EXPECT_EQ(x.grad().to_floats(), (std::vector<float>{2, 40, 600}));

  Tensor z = square(x);
  std::string msg = error_of([&] { autograd::backward(z); });
  EXPECT_NE(msg.find("HINT"), std::string::npos) << "a non-scalar root needs a gradient: " << msg;
  msg = error_of([&] { autograd::backward(z, Tensor::zeros({2})); });
  EXPECT_NE(msg.find("expected (3,)"), std::string::npos) << msg;
}

TEST(Autograd, BackwardOfALeafRoot) {
  Tensor x = leaf({4});
  autograd::backward(x);
  EXPECT_EQ(x.grad().to_floats(), (std::vector<float>{1}));
}

TEST(Autograd, BackwardWithoutGraphIsAnError) {
  Tensor x = Tensor::from_floats({1, 2}, {2});  // does not require grad
  Tensor loss = total(square(x));
  EXPECT_FALSE(loss.requires_grad());
  const std::string msg = error_of([&] { autograd::backward(loss); });
  EXPECT_NE(msg.find("HINT"), std::string::npos) << msg;
}

TEST(Autograd, SecondBackwardThroughFreedGraphThrowsWithHint) {
  Tensor x = leaf({1, 2});
  Tensor loss = total(square(x));
  autograd::backward(loss);
  const std::string msg = error_of([&] { autograd::backward(loss); });
  EXPECT_NE(msg.find("second time"), std::string::npos) << msg;
  EXPECT_NE(msg.find("HINT"), std::string::npos) << msg;
  EXPECT_NE(msg.find("retain_graph"), std::string::npos) << msg;
  EXPECT_EQ(x.grad().to_floats(), (std::vector<float>{2, 4})) << "the failed call adds nothing";
}

TEST(Autograd, RetainGraphAllowsASecondBackward) {
  Tensor x = leaf({1, 2});
  Tensor loss = total(square(x));
  autograd::backward(loss, /*retain_graph=*/true);
  autograd::backward(loss);
  EXPECT_EQ(x.grad().to_floats(), (std::vector<float>{4, 8}));
  EXPECT_THROW(autograd::backward(loss), Error) << "the second call did not retain it";
}

TEST(Autograd, NoGradGuardRecordsNothingAndNests) {
  Tensor x = leaf({1, 2});
  EXPECT_TRUE(autograd::grad_enabled());
  {
    autograd::NoGradGuard outer;
    EXPECT_FALSE(autograd::grad_enabled());
    {
      autograd::NoGradGuard inner;
      EXPECT_FALSE(autograd::grad_enabled());
    }
    EXPECT_FALSE(autograd::grad_enabled()) << "leaving the inner guard must not re-enable grad";
    Tensor y = square(x);
    EXPECT_FALSE(y.requires_grad());
    EXPECT_EQ(y.grad_fn(), nullptr);
    EXPECT_EQ(y.to_floats(), (std::vector<float>{1, 4})) << "the forward still runs";
    EXPECT_FALSE(autograd::needs_grad({x}));
  }
  EXPECT_TRUE(autograd::grad_enabled());
  EXPECT_TRUE(square(x).requires_grad());
}

TEST(Autograd, SavedTensorModifiedInPlaceThrowsAtBackward) {
  Tensor x = leaf({1, 2, 3});
  Tensor loss = total(square(x));
  x.mutable_f32()[1] = 7.0f;  // the value square() saved is gone
  const std::string msg = error_of([&] { autograd::backward(loss); });
  EXPECT_NE(msg.find("square"), std::string::npos) << "names the op: " << msg;
  EXPECT_NE(msg.find("modified in place"), std::string::npos) << msg;
  EXPECT_NE(msg.find("HINT"), std::string::npos) << msg;
  EXPECT_FALSE(x.grad().defined());
}

TEST(Autograd, ReadingASavedTensorIsNotAModification) {
  Tensor x = leaf({1, 2, 3});
  Tensor loss = total(square(x));
  EXPECT_EQ(x.f32()[1], 2.0f);
  EXPECT_EQ(x.clone().to_floats()[2], 3.0f);
  EXPECT_NO_THROW(autograd::backward(loss));
}

TEST(Autograd, DiamondSumsBothBranches) {
  // x feeds two branches that join: L = Σ (x² + 3x), dL/dx = 2x + 3.
  Tensor x = leaf({1, -2, 0.5f});
  Tensor loss = total(plus(square(x), times(x, 3.0f)));
  autograd::backward(loss);
  EXPECT_EQ(x.grad().to_floats(), (std::vector<float>{5, -1, 4}));
}

TEST(Autograd, DiamondThroughAnIntermediateNode) {
  // h = 2x is a non-leaf used by two branches: L = Σ (h² + h) → dL/dx = 2·(2h + 1) = 8x + 2.
  // The two gradients for h must be summed before h's node runs, and the same gradient
  // tensor handed to both inputs of `plus` must not be corrupted by the sum.
  Tensor x = leaf({1, -2});
  Tensor h = times(x, 2.0f);
  Tensor loss = total(plus(square(h), h));
  autograd::backward(loss);
  EXPECT_EQ(x.grad().to_floats(), (std::vector<float>{10, -14}));
}

TEST(Autograd, SameTensorTwiceIntoOneOp) {
  Tensor x = leaf({3, -1});
  autograd::backward(total(plus(x, x)));  // d(2x)/dx = 2
  EXPECT_EQ(x.grad().to_floats(), (std::vector<float>{2, 2}));
}

TEST(Autograd, OnlyInputsThatRequireGradGetOne) {
  Tensor x = leaf({1, 2});
  Tensor c = Tensor::from_floats({10, 20}, {2});
  autograd::backward(total(plus(square(x), c)));
  EXPECT_EQ(x.grad().to_floats(), (std::vector<float>{2, 4}));
  EXPECT_FALSE(c.grad().defined());
}

TEST(Autograd, DeepChainDoesNotOverflowTheStack) {
  // 10000 ops: a recursive topological sort or a recursive node destructor would need
  // thousands of frames; the tape must be walked iteratively. d/dx (1.0001^n x) = 1.0001^n.
  constexpr int kDepth = 10000;
  Tensor x = leaf({1.0f});
  Tensor y = x;
  for (int i = 0; i < kDepth; ++i) y = times(y, 1.0001f);
  autograd::backward(total(y));
  const double expected = std::pow(1.0001, kDepth);  // ≈ e
  EXPECT_NEAR(x.grad().item(), expected, expected * 1e-3);  // f32 products: ~1e4 roundings of 6e-8
}

TEST(Autograd, DeepGraphCanBeDroppedWithoutBackward) {
  // A graph that is never walked (or was retained) is torn down by destructors alone.
  constexpr int kDepth = 10000;
  Tensor x = leaf({1.0f});
  {
    Tensor y = x;
    for (int i = 0; i < kDepth; ++i) y = times(y, 1.0f);
  }
  {
    Tensor y = x;
    for (int i = 0; i < kDepth; ++i) y = square(y);
    autograd::backward(total(y), /*retain_graph=*/true);
  }
  SUCCEED();
}

TEST(Autograd, VeryDeepUnwalkedGraphIsFreedWithoutRecursion) {
  // Dropping a never-walked chain used to recurse once per node through the destructors and
  // overflowed the 8 MB stack somewhere past 150,000 nodes.
  constexpr int kDepth = 400000;
  Tensor x = leaf({1.0f});
  {
    Tensor y = x;
    for (int i = 0; i < kDepth; ++i) y = times(y, 1.0f);
  }
  SUCCEED();
}

TEST(Autograd, AccumulateChecksShapes) {
  Tensor a = Tensor::zeros({3});
  autograd::accumulate(a, Tensor::full({3}, 2.0f));
  autograd::accumulate(a, Tensor::full({3}, 0.5f));
  EXPECT_EQ(a.to_floats(), (std::vector<float>{2.5f, 2.5f, 2.5f}));
  EXPECT_THROW(autograd::accumulate(a, Tensor::zeros({4})), Error);
}

}  // namespace
}  // namespace sllm
