// Autograd behaviour seen through real ops (src/ops): frozen parameters get no gradient,
// graphs built from ops sum gradients over shared inputs. Expected values are derived by
// hand from the op's definition, not taken from the code under test.
#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <memory>

#include "autograd/autograd.h"
#include "core/error.h"
#include "ops/ops.h"

namespace sllm {
namespace {

// x (2, 3), weight (out=2, in=3), bias (2): the gradients of L = Σ linear(x, W, b) are
// dx[n][i] = Σ_o W[o][i], dW[o][i] = Σ_n x[n][i], db[o] = N = 2.
Tensor x_value() { return Tensor::from_floats({1, 2, 3, -1, 0, 4}, {2, 3}); }
Tensor w_value() { return Tensor::from_floats({0.5f, -1, 2, 1, 3, -2}, {2, 3}); }

TEST(FrozenWeight, LinearGivesNoWeightGradient) {
  Tensor x = x_value(), w = w_value(), b = Tensor::from_floats({0.1f, -0.2f}, {2});
  x.set_requires_grad(true);
  b.set_requires_grad(true);
  ASSERT_FALSE(w.requires_grad());
  Tensor y = ops::linear(x, w, b);
  ASSERT_TRUE(y.requires_grad());
  autograd::backward(ops::sum(y));
  EXPECT_FALSE(w.grad().defined()) << "a frozen weight must get no gradient";
  EXPECT_EQ(x.grad().to_floats(), (std::vector<float>{1.5f, 2, 0, 1.5f, 2, 0}));
  EXPECT_EQ(b.grad().to_floats(), (std::vector<float>{2, 2}));
}

TEST(FrozenWeight, TrainableWeightStillGetsItsGradient) {
  // The same graph with the weight trainable: guards against the frozen test passing
  // because linear never produces weight gradients at all.
  Tensor x = x_value(), w = w_value();
  x.set_requires_grad(true);
  w.set_requires_grad(true);
  autograd::backward(ops::sum(ops::linear(x, w)));
  EXPECT_EQ(w.grad().to_floats(), (std::vector<float>{0, 2, 7, 0, 2, 7}));
  EXPECT_EQ(x.grad().to_floats(), (std::vector<float>{1.5f, 2, 0, 1.5f, 2, 0}));
}

TEST(FrozenWeight, OnlyTheWeightTrains) {
  // LoRA-style inverse: input and bias constant, weight trainable.
  Tensor x = x_value(), w = w_value();
  w.set_requires_grad(true);
  autograd::backward(ops::sum(ops::linear(x, w, Tensor::from_floats({0, 0}, {2}))));
  EXPECT_EQ(w.grad().to_floats(), (std::vector<float>{0, 2, 7, 0, 2, 7}));
  EXPECT_FALSE(x.grad().defined());
}

TEST(FrozenWeight, AllFrozenRecordsNoGraph) {
  Tensor y = ops::linear(x_value(), w_value());
  EXPECT_FALSE(y.requires_grad());
  EXPECT_EQ(y.grad_fn(), nullptr);
}

TEST(OpsGraph, DiamondThroughMulOfTheSameTensor) {
  // h = x + x; L = Σ h ⊙ h = Σ 4x² → dL/dx = 8x.
  Tensor x = Tensor::from_floats({1, -0.5f, 2}, {3});
  x.set_requires_grad(true);
  Tensor h = ops::add(x, x);
  autograd::backward(ops::sum(ops::mul(h, h)));
  EXPECT_EQ(x.grad().to_floats(), (std::vector<float>{8, -4, 16}));
}

TEST(OpsGraph, SavedInputOfARealOpModifiedInPlace) {
  Tensor x = x_value(), w = w_value();
  w.set_requires_grad(true);
  Tensor loss = ops::sum(ops::linear(x, w));
  x.mutable_f32()[0] = 100.0f;  // linear saved x for dW
  try {
    autograd::backward(loss);
    FAIL() << "expected sllm::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("linear"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("HINT"), std::string::npos) << e.what();
  }
}

TEST(OpsGraph, GraphIsFreedWhenDroppedWithoutBackward) {
  // A graph that is built but never walked (evaluation without NoGradGuard, an exception
  // before backward, retain_graph) must be freed with its last handle. An op that saves its
  // own output for backward must not keep it alive through output → node → closure → output.
  Tensor x = Tensor::from_floats({0.5f, -1, 2, 0.25f, 1, -0.5f, 3, 0}, {1, 2, 4});
  x.set_requires_grad(true);
  const std::map<std::string, std::function<Tensor()>> ops_under_test = {
      {"softmax", [&] { return ops::softmax(x); }},
      {"log_softmax", [&] { return ops::log_softmax(x); }},
      {"attention", [&] { return ops::attention(x, x, x, 2, 2); }},
      {"gelu", [&] { return ops::gelu(x); }},
      {"layernorm", [&] { return ops::layernorm(x, Tensor::full({4}, 1.0f), Tensor::zeros({4})); }},
      {"matmul", [&] { return ops::matmul(x, x, false, true); }},
  };
  for (const auto& [name, make] : ops_under_test) {
    std::weak_ptr<TensorImpl> out_impl;
    {
      Tensor y = make();
      ASSERT_TRUE(y.requires_grad()) << name;
      out_impl = y.impl_ptr();
    }
    EXPECT_TRUE(out_impl.expired()) << name << ": output (and its graph) leaked by a reference cycle";
    {
      Tensor y = make();
      out_impl = y.impl_ptr();
      autograd::backward(ops::sum(y), /*retain_graph=*/true);
    }
    EXPECT_TRUE(out_impl.expired()) << name << ": retained graph leaked";
  }
}

}  // namespace
}  // namespace sllm
