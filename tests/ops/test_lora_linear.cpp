// ops::lora_linear, the fused LoRA node, against the same function composed from plain ops
// (linear, dropout, linear, scale, add: each checked against its own reference elsewhere),
// and the frozen-base contract: no gradient buffer for a W or b that does not require grad.
#include <gtest/gtest.h>

#include <cmath>

#include "autograd/autograd.h"
#include "core/error.h"
#include "core/rng.h"
#include "ops/ops.h"

namespace sllm {
namespace {

Tensor random_tensor(const Shape& shape, Rng& rng, float sd = 0.5f) {
  Tensor t = Tensor::empty(shape);
  float* p = t.mutable_f32();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<float>(rng.normal()) * sd;
  return t;
}

void expect_close(const Tensor& a, const Tensor& b, float tol, const std::string& what) {
  ASSERT_TRUE(a.defined() && b.defined()) << what;
  ASSERT_EQ(a.shape(), b.shape()) << what;
  const std::vector<float> x = a.to_floats(), y = b.to_floats();
  for (size_t i = 0; i < x.size(); ++i)
    ASSERT_NEAR(x[i], y[i], tol * (1.0f + std::fabs(y[i]))) << what << " element " << i;
}

struct Case {
  bool bias, frozen_base, dropout, x_grad;
};

class LoraLinearVsComposed : public ::testing::TestWithParam<Case> {};

TEST_P(LoraLinearVsComposed, OutputAndGradientsMatch) {
  const Case c = GetParam();
  const int64_t B = 3, T = 17, in = 40, out = 24, r = 4;
  const float s = 2.0f, p = c.dropout ? 0.25f : 0.0f;
  const uint64_t seed = 99;
  Rng rng(5);
  const Tensor x0 = random_tensor({B, T, in}, rng), W0 = random_tensor({out, in}, rng),
               b0 = random_tensor({out}, rng), A0 = random_tensor({r, in}, rng), B0 = random_tensor({out, r}, rng);
  const Tensor g = random_tensor({B, T, out}, rng);

  auto leaves = [&] {
    std::vector<Tensor> t = {x0.clone(), W0.clone(), c.bias ? b0.clone() : Tensor(), A0.clone(), B0.clone()};
    t[0].set_requires_grad(c.x_grad);
    t[1].set_requires_grad(!c.frozen_base);
    if (c.bias) t[2].set_requires_grad(!c.frozen_base);
    t[3].set_requires_grad(true);
    t[4].set_requires_grad(true);
    return t;
  };
  std::vector<Tensor> f = leaves(), m = leaves();
  const Tensor fused = ops::lora_linear(f[0], f[1], f[2], f[3], f[4], s, p, seed);
  const Tensor h = ops::dropout(m[0], p, true, seed, 0);  // the same mask: (seed, offset 0)
  const Tensor composed = ops::add(ops::linear(m[0], m[1], m[2]), ops::linear(ops::linear(h, m[3]), ops::scale(m[4], s)));
  expect_close(fused, composed, 1e-5f, "y");
  autograd::backward(fused, g);
  autograd::backward(composed, g);
  const char* names[] = {"dx", "dW", "db", "dA", "dB"};
  for (int k = 0; k < 5; ++k) {
    if (!m[k].defined() || !m[k].requires_grad()) {
      if (f[k].defined()) {
        EXPECT_FALSE(f[k].grad().defined()) << names[k] << " of a frozen input was allocated";
      }
      continue;
    }
    expect_close(f[k].grad(), m[k].grad(), 1e-4f, names[k]);
  }
}

INSTANTIATE_TEST_SUITE_P(Variants, LoraLinearVsComposed,
                         ::testing::Values(Case{true, true, false, true}, Case{true, true, true, true},
                                           Case{false, true, true, true}, Case{true, false, true, true},
                                           Case{false, false, false, true}, Case{true, true, true, false}));

TEST(LoraLinear, RejectsMismatchedAdapterShapes) {
  Rng rng(1);
  const Tensor x = random_tensor({2, 8}, rng), W = random_tensor({6, 8}, rng);
  EXPECT_THROW(ops::lora_linear(x, W, Tensor(), random_tensor({2, 7}, rng), random_tensor({6, 2}, rng), 1, 0, 0), Error);
  EXPECT_THROW(ops::lora_linear(x, W, Tensor(), random_tensor({2, 8}, rng), random_tensor({6, 3}, rng), 1, 0, 0), Error);
  EXPECT_THROW(ops::lora_linear(x, W, Tensor(), random_tensor({2, 8}, rng), random_tensor({6, 2}, rng), 1, 1.0f, 0), Error);
}

}  // namespace
}  // namespace sllm
