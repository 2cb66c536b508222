// Fused softmax + cross-entropy (kernels/cpu/cross_entropy.cpp) against the double
// references, plus independent checks: the loss equals -log_softmax at the target (through
// the softmax reference, not the cross-entropy code), uniform logits give log V, ignored
// rows give 0 loss and no gradient, and the reference backward matches central differences.
#include <cmath>

#include "kernels/kernels.h"
#include "tests/kernels/kernel_test_support.h"

namespace sllm::kernels {
namespace {
using namespace testing;

constexpr int32_t kIgnore = -100;  // PyTorch's default ignore_index

struct CeCase {
  int64_t N, V;
};
// 513 and 8192 cross the kernel's 512-logit chunks; 8192 is the training vocab.
// {32, 64}: a power-of-two vocab once exposed a miscompiled one-hot compare inside the vectorized loop.
const CeCase kCases[] = {{1, 1}, {3, 7}, {5, 33}, {32, 64}, {9, 257}, {4, 513}, {6, 8192}};

struct CeData {
  std::vector<float> logits, dlosses;
  std::vector<int32_t> targets;
  CeData(int64_t N, int64_t V, uint32_t seed)
      : logits(uniform(N * V, seed, -8.0f, 8.0f)), dlosses(uniform(N, seed + 1, 0.1f, 1.0f)),
        targets(random_ids(N, int32_t(V), seed + 2)) {
    for (int64_t n = 1; n < N; n += 3) targets[n] = kIgnore;  // every third row after the first
  }
};

TEST(CrossEntropy, ForwardMatchesReferenceAndLogSoftmax) {
  for (auto [N, V] : kCases) {
    CeData d(N, V, 1);
    const std::string at = " N=" + std::to_string(N) + " V=" + std::to_string(V);
    std::vector<float> loss(N), lse(N), loss_r(N), lse_r(N), logp(N * V);
    cross_entropy_forward(loss.data(), lse.data(), d.logits.data(), d.targets.data(), N, V, kIgnore);
    cross_entropy_forward_ref(loss_r.data(), lse_r.data(), d.logits.data(), d.targets.data(), N, V, kIgnore);
    expect_close(loss, loss_r, kRowReduction, "loss" + at);
    expect_close(lse, lse_r, kRowReduction, "lse" + at);
    log_softmax_forward_ref(logp.data(), d.logits.data(), N, V);
    for (int64_t n = 0; n < N; ++n) {
      if (d.targets[n] == kIgnore) {
        EXPECT_EQ(loss[n], 0.0f) << "ignored row " << n;
        continue;
      }
      EXPECT_NEAR(loss[n], -logp[n * V + d.targets[n]], 1e-5 * std::max(1.0f, loss[n])) << "row " << n << at;
    }
  }
}

TEST(CrossEntropy, UniformLogitsGiveLogV) {
  const int64_t N = 2, V = 8192;
  std::vector<float> logits(N * V, 3.25f), loss(N), lse(N);
  const std::vector<int32_t> targets = {0, int32_t(V - 1)};
  cross_entropy_forward(loss.data(), lse.data(), logits.data(), targets.data(), N, V, kIgnore);
  for (int64_t n = 0; n < N; ++n) {
    EXPECT_NEAR(loss[n], std::log(double(V)), 2e-6 * std::log(double(V)));
    EXPECT_NEAR(lse[n], 3.25 + std::log(double(V)), 2e-6 * 12.0);
  }
  // Huge logits: lse must not overflow.
  std::vector<float> big(V, 0.0f);
  big[7] = 1e4f;
  float l = 0.0f, s = 0.0f;
  const int32_t t = 7;
  cross_entropy_forward(&l, &s, big.data(), &t, 1, V, kIgnore);
  EXPECT_FLOAT_EQ(s, 1e4f);
  EXPECT_EQ(l, 0.0f);
}

TEST(CrossEntropy, BackwardMatchesReferenceAccumulatesAndSkipsIgnored) {
  for (auto [N, V] : kCases) {
    CeData d(N, V, 11);
    const std::string at = " N=" + std::to_string(N) + " V=" + std::to_string(V);
    std::vector<float> loss(N), lse(N);
    cross_entropy_forward_ref(loss.data(), lse.data(), d.logits.data(), d.targets.data(), N, V, kIgnore);
    const auto d0 = uniform(N * V, 12);
    auto dl = d0, dl_r = d0;
    cross_entropy_backward(dl.data(), d.dlosses.data(), d.logits.data(), lse.data(), d.targets.data(), N, V, kIgnore);
    cross_entropy_backward_ref(dl_r.data(), d.dlosses.data(), d.logits.data(), lse.data(), d.targets.data(), N, V,
                               kIgnore);
    expect_close(dl, dl_r, kPointwise, "dlogits" + at);
    std::vector<float> dz(N * V, 0.0f);
    cross_entropy_backward(dz.data(), d.dlosses.data(), d.logits.data(), lse.data(), d.targets.data(), N, V, kIgnore);
    expect_close(dl, plus(d0, dz), kPointwise, "dlogits accumulates" + at);
    for (int64_t n = 0; n < N; ++n) {
      double row_sum = 0.0;
      for (int64_t v = 0; v < V; ++v) {
        row_sum += dz[n * V + v];
        if (d.targets[n] == kIgnore) {
          ASSERT_EQ(dz[n * V + v], 0.0f) << "ignored row " << n;
        }
      }
      // sum_v (softmax - onehot) = 0: the gradient of a shift-invariant loss sums to zero.
      EXPECT_NEAR(row_sum, 0.0, 1e-5) << "row " << n << at;
    }
    cross_entropy_backward(nullptr, d.dlosses.data(), d.logits.data(), lse.data(), d.targets.data(), N, V, kIgnore);
    cross_entropy_backward_ref(nullptr, d.dlosses.data(), d.logits.data(), lse.data(), d.targets.data(), N, V,
                               kIgnore);
  }
}

TEST(CrossEntropy, InPlaceBackwardEqualsBackwardIntoZerosBitForBit) {
  for (auto [N, V] : kCases) {
    CeData d(N, V, 21);
    const std::string at = " N=" + std::to_string(N) + " V=" + std::to_string(V);
    std::vector<float> loss(N), lse(N);
    cross_entropy_forward(loss.data(), lse.data(), d.logits.data(), d.targets.data(), N, V, kIgnore);
    std::vector<float> dz(N * V, 0.0f), dz_r(N * V, 0.0f);
    cross_entropy_backward(dz.data(), d.dlosses.data(), d.logits.data(), lse.data(), d.targets.data(), N, V, kIgnore);
    cross_entropy_backward_ref(dz_r.data(), d.dlosses.data(), d.logits.data(), lse.data(), d.targets.data(), N, V,
                               kIgnore);
    std::vector<float> x = d.logits;
    cross_entropy_backward_inplace(x.data(), d.dlosses.data(), lse.data(), d.targets.data(), N, V, kIgnore);
    for (int64_t i = 0; i < N * V; ++i) ASSERT_EQ(x[i], dz[i]) << "element " << i << at;
    expect_close(x, dz_r, kPointwise, "in-place dlogits vs reference" + at);
  }
}

TEST(CrossEntropy, DeterministicAcrossRuns) {
  const int64_t N = 16, V = 8192;
  CeData d(N, V, 21);
  auto run = [&] {
    std::vector<float> loss(N), lse(N), dl(N * V, 0.0f);
    cross_entropy_forward(loss.data(), lse.data(), d.logits.data(), d.targets.data(), N, V, kIgnore);
    cross_entropy_backward(dl.data(), d.dlosses.data(), d.logits.data(), lse.data(), d.targets.data(), N, V, kIgnore);
    dl.insert(dl.end(), loss.begin(), loss.end());
    return dl;
  };
  expect_bitwise(run(), run(), "rerun");
}

TEST(CrossEntropy, ReferenceBackwardMatchesFiniteDifferences) {
  const int64_t N = 4, V = 9;
  CeData d(N, V, 31);  // row 1 is ignored
  std::vector<float> loss(N), lse(N), dl(N * V, 0.0f);
  cross_entropy_forward_ref(loss.data(), lse.data(), d.logits.data(), d.targets.data(), N, V, kIgnore);
  cross_entropy_backward_ref(dl.data(), d.dlosses.data(), d.logits.data(), lse.data(), d.targets.data(), N, V,
                             kIgnore);
  expect_fd_gradient(d.logits, dl, [&](const std::vector<float>& x) {
    std::vector<float> l(N), s(N);
    cross_entropy_forward_ref(l.data(), s.data(), x.data(), d.targets.data(), N, V, kIgnore);
    return weighted_sum(l, d.dlosses);
  }, "dlogits");
}

}  // namespace
}  // namespace sllm::kernels
