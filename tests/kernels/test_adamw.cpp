// AdamW (kernels/cpu/adamw.cpp) against the double reference over several steps, the first
// step in closed form (|mhat / sqrt(vhat)| = 1, so the update is lr * sign(grad) after the
// decoupled decay, the order torch.optim.AdamW uses), and determinism.
#include <cmath>

#include "kernels/kernels.h"
#include "tests/kernels/kernel_test_support.h"

namespace sllm::kernels {
namespace {
using namespace testing;

struct Hyper {
  float lr = 1e-3f, beta1 = 0.9f, beta2 = 0.95f, eps = 1e-8f, wd = 0.1f;
};

// n crosses the kernel's 8192-element blocks and leaves a tail that is not a multiple of 16.
const int64_t kSizes[] = {1, 7, 33, 257, 2 * 8192 + 37};

TEST(AdamW, MatchesReferenceOverSteps) {
  const Hyper h;
  for (int64_t n : kSizes) {
    auto p = uniform(n, 1), p_r = p;
    std::vector<float> m(n, 0.0f), v(n, 0.0f), m_r(n, 0.0f), v_r(n, 0.0f);
    for (int64_t step = 1; step <= 5; ++step) {
      const auto g = uniform(n, uint32_t(10 + step), -0.1f, 0.1f);
      adamw_update(p.data(), g.data(), m.data(), v.data(), n, h.lr, h.beta1, h.beta2, h.eps, h.wd, step);
      adamw_update_ref(p_r.data(), g.data(), m_r.data(), v_r.data(), n, h.lr, h.beta1, h.beta2, h.eps, h.wd, step);
    }
    const std::string at = " n=" + std::to_string(n);
    // The param moves by ~lr per step; its rounding is relative to |param| ~ 1.
    expect_close(p, p_r, kPointwise, "param" + at);
    expect_close(m, m_r, kPointwise, "m" + at);
    expect_close(v, v_r, kPointwise, "v" + at);
  }
}

TEST(AdamW, FirstStepIsDecayThenSignOfGradient) {
  const Hyper h;
  const int64_t n = 1000;
  const auto p0 = uniform(n, 2);
  auto g = uniform(n, 3, -1.0f, 1.0f);
  for (auto& x : g)
    if (std::fabs(x) < 1e-3f) x = 1e-3f;  // keep eps negligible next to |grad|
  auto p = p0;
  std::vector<float> m(n, 0.0f), v(n, 0.0f);
  adamw_update(p.data(), g.data(), m.data(), v.data(), n, h.lr, h.beta1, h.beta2, h.eps, h.wd, 1);
  for (int64_t i = 0; i < n; ++i) {
    // Step 1: mhat = g, vhat = g^2, so mhat / (sqrt(vhat) + eps) = sign(g) up to eps/|g| <= 1e-5.
    const double want = double(p0[i]) * (1.0 - double(h.lr) * h.wd) - h.lr * (g[i] > 0 ? 1.0 : -1.0);
    ASSERT_NEAR(p[i], want, 1e-7 + 1e-5 * h.lr) << i;
    ASSERT_NEAR(m[i], (1.0 - h.beta1) * g[i], 1e-7);
    ASSERT_NEAR(v[i], (1.0 - h.beta2) * g[i] * g[i], 1e-8);
  }
}

TEST(AdamW, ZeroGradientOnlyDecays) {
  const Hyper h;
  const int64_t n = 100;
  const auto p0 = uniform(n, 4);
  auto p = p0;
  std::vector<float> g(n, 0.0f), m(n, 0.0f), v(n, 0.0f);
  adamw_update(p.data(), g.data(), m.data(), v.data(), n, h.lr, h.beta1, h.beta2, h.eps, h.wd, 1);
  for (int64_t i = 0; i < n; ++i) ASSERT_FLOAT_EQ(p[i], p0[i] * (1.0f - h.lr * h.wd));
}

TEST(AdamW, DeterministicAcrossRunsAndThreadCounts) {
  const Hyper h;
  const int64_t n = 3 * 8192 + 5;
  const auto p0 = uniform(n, 5), g = uniform(n, 6);
  auto run = [&](int threads) {
    ThreadCount tc(threads);
    auto p = p0;
    std::vector<float> m(n, 0.01f), v(n, 0.02f);
    adamw_update(p.data(), g.data(), m.data(), v.data(), n, h.lr, h.beta1, h.beta2, h.eps, h.wd, 3);
    p.insert(p.end(), m.begin(), m.end());
    p.insert(p.end(), v.begin(), v.end());
    return p;
  };
  const auto first = run(2);
  expect_bitwise(run(2), first, "rerun");
  expect_bitwise(run(1), first, "1 thread vs 2");
}

}  // namespace
}  // namespace sllm::kernels
