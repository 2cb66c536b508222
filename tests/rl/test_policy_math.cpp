// The arithmetic of PPO and GRPO (src/rl/advantages.h, kl.h, policy_loss.h): GAE against
// values worked out by hand, whitening and group normalization against hand values, the KL
// estimators on a known pair of distributions, the adaptive KL controller's update, and the
// hand-written gradients of the clipped policy and value losses against finite differences.
#include <cmath>
#include <vector>

#include <gtest/gtest.h>

#include "autograd/autograd.h"
#include "core/error.h"
#include "core/rng.h"
#include "rl/advantages.h"
#include "rl/kl.h"
#include "rl/policy_loss.h"

namespace sllm::rl {
namespace {

TEST(Gae, MatchesHandComputedValues) {
  {  // γ = 1, λ = 0.95 (PPO's defaults), reward on the last token only
    const float r[] = {0, 0, 1}, v[] = {0.5f, 0.4f, 0.2f};
    float A[3], R[3];
    gae(r, v, 3, 1.0, 0.95, A, R);
    // t=2: δ = 1 − 0.2 = 0.8 = A;  t=1: δ = 0.2 − 0.4 = −0.2, A = −0.2 + 0.95·0.8 = 0.56;
    // t=0: δ = 0.4 − 0.5 = −0.1, A = −0.1 + 0.95·0.56 = 0.432.  R = A + V.
    const float wantA[] = {0.432f, 0.56f, 0.8f}, wantR[] = {0.932f, 0.96f, 1.0f};
    for (int t = 0; t < 3; ++t) {
      EXPECT_NEAR(A[t], wantA[t], 1e-6f) << t;
      EXPECT_NEAR(R[t], wantR[t], 1e-6f) << t;
    }
  }
  {  // γ = 0.9, λ = 0.5, rewards on every token
    const float r[] = {1, -1}, v[] = {0.3f, 0.6f};
    float A[2], R[2];
    gae(r, v, 2, 0.9, 0.5, A, R);
    // t=1: δ = −1 − 0.6 = −1.6;  t=0: δ = 1 + 0.9·0.6 − 0.3 = 1.24, A = 1.24 + 0.45·(−1.6) = 0.52
    EXPECT_NEAR(A[1], -1.6f, 1e-6f);
    EXPECT_NEAR(R[1], -1.0f, 1e-6f);
    EXPECT_NEAR(A[0], 0.52f, 1e-6f);
    EXPECT_NEAR(R[0], 0.82f, 1e-6f);
  }
}

TEST(Whiten, UsesTheUnbiasedVariance) {
  std::vector<float> x = {1, 2, 3, 4};  // mean 2.5, unbiased var 5/3
  whiten(x);
  const double sd = std::sqrt(5.0 / 3.0 + 1e-8);
  EXPECT_NEAR(x[0], -1.5 / sd, 1e-6);
  EXPECT_NEAR(x[1], -0.5 / sd, 1e-6);
  EXPECT_NEAR(x[3], 1.5 / sd, 1e-6);
}

TEST(GroupAdvantages, NormalizeWithinEachGroup) {
  const std::vector<float> r = {1, 0, 0, 0, 1, 1, 1, 1};
  const std::vector<float> a = group_advantages(r, 4, 1e-4);
  // group 1: mean 0.25, unbiased std sqrt((0.75² + 3·0.25²)/3) = 0.5
  EXPECT_NEAR(a[0], 0.75 / 0.5001, 1e-6);
  EXPECT_NEAR(a[1], -0.25 / 0.5001, 1e-6);
  for (int i = 4; i < 8; ++i) EXPECT_EQ(a[size_t(i)], 0.0f);  // no preference inside the group
  EXPECT_THROW(group_advantages(r, 3), Error);
  EXPECT_THROW(group_advantages(r, 1), Error);
}

TEST(KlEstimators, K1IsUnbiasedAndK3IsNonNegativeAndUnbiased) {
  // π = (0.5, 0.3, 0.2), π_ref = (0.2, 0.3, 0.5): KL(π‖π_ref) = Σ π log(π/π_ref).
  const double p[] = {0.5, 0.3, 0.2}, q[] = {0.2, 0.3, 0.5};
  double kl = 0;
  for (int i = 0; i < 3; ++i) kl += p[i] * std::log(p[i] / q[i]);
  Rng rng(5);
  double k1 = 0, k3 = 0;
  const int n = 200000;
  for (int s = 0; s < n; ++s) {
    const double u = rng.uniform();
    const int x = u < 0.5 ? 0 : u < 0.8 ? 1 : 2;
    const double one = kl_k1(std::log(p[x]), std::log(q[x])), three = kl_k3(std::log(p[x]), std::log(q[x]));
    ASSERT_GE(three, 0.0);
    k1 += one;
    k3 += three;
  }
  EXPECT_NEAR(k1 / n, kl, 0.01);
  EXPECT_NEAR(k3 / n, kl, 0.01);
  EXPECT_LT(kl_k1(std::log(0.2), std::log(0.5)), 0.0);  // a single k1 sample can be negative
  EXPECT_EQ(kl_k3(-1.5, -1.5), 0.0);
}

TEST(KlController, AdaptsTowardTheTargetAndFixedStaysPut) {
  KLController fixed(0.05, 0, 0);
  fixed.update(100.0, 16);
  EXPECT_EQ(fixed.beta(), 0.05);
  KLController c(0.1, 6.0, 10000);
  c.update(12.0, 64);  // error clipped to +0.2: β · (1 + 0.2 · 64 / 10000)
  EXPECT_NEAR(c.beta(), 0.1 * (1 + 0.2 * 64 / 10000.0), 1e-15);
  const double b = c.beta();
  c.update(4.5, 100);  // error 4.5/6 − 1 = −0.25, clipped to −0.2
  EXPECT_NEAR(c.beta(), b * (1 - 0.2 * 100 / 10000.0), 1e-15);
  KLController r(1, 1, 1);
  r.restore(c.state());
  EXPECT_EQ(r.beta(), c.beta());
}

// Finite differences of a scalar loss of x (central, step h) against autograd's gradient.
template <class LossFn>
void expect_gradient_matches(const std::vector<float>& x0, LossFn loss_of, double tol) {
  Tensor x = Tensor::from_floats(x0, {2, static_cast<int64_t>(x0.size()) / 2});
  x.set_requires_grad(true);
  Tensor loss = loss_of(x);
  autograd::backward(loss);
  const float* g = x.grad().f32();
  const double h = 1e-3;
  for (size_t i = 0; i < x0.size(); ++i) {
    std::vector<float> up = x0, down = x0;
    up[i] += float(h);
    down[i] -= float(h);
    const double fu = loss_of(Tensor::from_floats(up, x.shape())).item();
    const double fd = loss_of(Tensor::from_floats(down, x.shape())).item();
    EXPECT_NEAR(g[i], (fu - fd) / (2 * h), tol) << "entry " << i;
  }
}

TEST(PolicyLoss, GradientMatchesFiniteDifferences) {
  // Tokens with ρ inside and outside [0.8, 1.2] for positive and negative advantages, one
  // masked out; the GRPO k3 term on top.
  const std::vector<float> old = {-1.0f, -2.0f, -0.5f, -1.5f, -3.0f, -0.7f};
  const std::vector<float> lp = {-0.9f, -2.5f, -0.1f, -1.45f, -2.0f, -0.6f};  // ρ: 1.105, 0.61, 1.49, 1.05, 2.7, 1.105
  const std::vector<float> A = {1.0f, 1.0f, 1.0f, -2.0f, -1.0f, 0.5f}, mask = {1, 1, 1, 1, 1, 0};
  const std::vector<float> ref = {-1.2f, -2.1f, -0.3f, -1.0f, -2.5f, -0.9f};
  for (bool grpo : {false, true}) {
    expect_gradient_matches(
        lp, [&](const Tensor& x) { return clipped_policy_loss(x, old, A, mask, 0.2, grpo ? &ref : nullptr, 0.1).loss; },
        2e-3);
  }
  const PolicyLoss l = clipped_policy_loss(Tensor::from_floats(lp, {2, 3}), old, A, mask, 0.2);
  EXPECT_NEAR(l.clipfrac, 1.0 / 5, 1e-12);  // only token 2 (A > 0, ρ 1.49 > 1.2) is clipped
}

TEST(PolicyLoss, RatioIsExactlyOneOnTheRolloutPolicy) {
  const std::vector<float> lp = {-1.0f, -2.0f, -0.5f, -1.5f}, A = {1, -1, 0.5f, 2}, mask = {1, 1, 1, 0};
  const PolicyLoss l = clipped_policy_loss(Tensor::from_floats(lp, {2, 2}), lp, A, mask, 0.2);
  EXPECT_EQ(l.ratio_mean, 1.0);
  EXPECT_EQ(l.clipfrac, 0.0);
  EXPECT_EQ(l.approx_kl, 0.0);
  EXPECT_FLOAT_EQ(l.loss.item(), -(1 - 1 + 0.5f) / 3);  // −mean A over the masked tokens
}

TEST(ValueLoss, GradientMatchesFiniteDifferences) {
  const std::vector<float> old = {0.0f, 0.5f, -0.2f, 1.0f}, R = {1.0f, 0.0f, 0.3f, 1.1f}, mask = {1, 1, 1, 1};
  const std::vector<float> v = {0.1f, 0.9f, 0.5f, 1.05f};  // inside, outside, outside, inside the ±0.2 range
  expect_gradient_matches(v, [&](const Tensor& x) { return clipped_value_loss(x, old, R, mask, 0.2).loss; }, 2e-3);
  const ValueLoss l = clipped_value_loss(Tensor::from_floats(v, {2, 2}), old, R, mask, 0.2);
  // Token 1: V 0.9 clipped to 0.7, R 0: clipped error 0.49 < 0.81, not counted. Token 2:
  // V 0.5 clipped to 0.0, R 0.3: clipped error 0.09 > 0.04, counted. Tokens 0 and 3 are inside.
  EXPECT_NEAR(l.clipfrac, 0.25, 1e-12);
}

}  // namespace
}  // namespace sllm::rl
