// Inverted dropout (kernels/cpu/dropout.cpp): statistics of the keep mask, preserved
// expectation, the mask as a pure function of (seed, offset + i) (thread count and call
// splitting do not matter), and backward routing gradients through the same mask.
#include <cmath>

#include "kernels/kernels.h"
#include "tests/kernels/kernel_test_support.h"

namespace sllm::kernels {
namespace {
using namespace testing;

TEST(Dropout, KeepsAboutOneMinusPAndPreservesTheMean) {
  const int64_t n = 200000;
  const std::vector<float> ones(n, 1.0f);
  for (float p : {0.1f, 0.5f, 0.9f}) {
    std::vector<float> out(n);
    std::vector<uint8_t> mask(n);
    dropout_forward(out.data(), mask.data(), ones.data(), n, p, 1234, 0);
    int64_t kept = 0;
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i) {
      kept += mask[i];
      sum += out[i];
      // Survivors are scaled by exactly 1/(1-p), the others are exactly 0.
      ASSERT_EQ(out[i], mask[i] ? 1.0f / (1.0f - p) : 0.0f) << i;
    }
    // Binomial(n, 1-p): 6 standard deviations cannot flake in practice.
    const double sd = std::sqrt(n * p * (1.0 - p));
    EXPECT_NEAR(double(kept), n * (1.0 - p), 6.0 * sd) << "p=" << p;
    // E[out] = E[in] = 1; the sample mean's sd is sd / (n (1-p)).
    EXPECT_NEAR(sum / n, 1.0, 6.0 * sd / (n * (1.0 - p))) << "p=" << p;
  }
}

TEST(Dropout, EdgeProbabilities) {
  const int64_t n = 1000;
  const auto x = uniform(n, 1);
  std::vector<float> out(n);
  std::vector<uint8_t> mask(n);
  dropout_forward(out.data(), mask.data(), x.data(), n, 0.0f, 7, 0);
  expect_bitwise(out, x, "p = 0 is the identity");
  dropout_forward(out.data(), mask.data(), x.data(), n, 1.0f, 7, 0);
  for (int64_t i = 0; i < n; ++i) ASSERT_TRUE(out[i] == 0.0f && mask[i] == 0) << i;
}

TEST(Dropout, MaskIsAFunctionOfSeedAndPosition) {
  const int64_t n = 50000;
  const auto x = uniform(n, 2);
  auto run = [&](int threads, uint64_t seed) {
    ThreadCount tc(threads);
    std::vector<float> out(n);
    std::vector<uint8_t> mask(n);
    dropout_forward(out.data(), mask.data(), x.data(), n, 0.3f, seed, 0);
    return mask;
  };
  const auto m = run(2, 42);
  expect_bitwise(run(1, 42), m, "1 thread vs 2");
  expect_bitwise(run(3, 42), m, "3 threads vs 2");
  const auto other = run(2, 43);
  int64_t same = 0;
  for (int64_t i = 0; i < n; ++i) same += other[i] == m[i];
  // Independent masks agree on 0.7^2 + 0.3^2 = 58% of positions; a seed that is ignored gives 100%.
  EXPECT_LT(same, int64_t(0.62 * n)) << "a different seed must give a different mask";

  // Splitting the call at k with offset k reproduces the one-call mask.
  const int64_t k = 12345;
  std::vector<float> out(n);
  std::vector<uint8_t> mask(n);
  dropout_forward(out.data(), mask.data(), x.data(), k, 0.3f, 42, 0);
  dropout_forward(out.data() + k, mask.data() + k, x.data() + k, n - k, 0.3f, 42, k);
  expect_bitwise(mask, m, "split call");
}

TEST(Dropout, BackwardUsesTheMaskAndAccumulates) {
  const int64_t n = 30000;
  const float p = 0.25f;
  const auto x = uniform(n, 3), dout = uniform(n, 4), dinp0 = uniform(n, 5);
  std::vector<float> out(n), dout_dropped(n);
  std::vector<uint8_t> mask(n), mask2(n);
  dropout_forward(out.data(), mask.data(), x.data(), n, p, 99, 0);
  // Dropout is linear with a fixed mask, so its backward is the forward applied to dout.
  dropout_forward(dout_dropped.data(), mask2.data(), dout.data(), n, p, 99, 0);
  auto dinp = dinp0;
  dropout_backward(dinp.data(), dout.data(), mask.data(), n, p);
  expect_close(dinp, plus(dinp0, dout_dropped), kPointwise, "dinp += dropped dout");  // FMA may fuse the +=
  dropout_backward(nullptr, dout.data(), mask.data(), n, p);
}

}  // namespace
}  // namespace sllm::kernels
