// Rotary embedding (kernels/cpu/rope.cpp): the table against the paper's formula, fast vs
// reference, and properties independent of the code: rotations keep norms, backward (the
// inverse rotation) undoes forward, the half-split layout is the interleaved one after
// permuting HD, and q·k after rotation depends only on the position difference (the reason
// RoPE exists, Su et al. 2021, eq. 16).
#include <numeric>

#include "kernels/kernels.h"
#include "tests/kernels/kernel_test_support.h"

namespace sllm::kernels {
namespace {
using namespace testing;

constexpr float kTheta = 10000.0f;

struct Table {
  int64_t T_max, HD;
  std::vector<float> cos, sin;
  Table(int64_t t_max, int64_t hd) : T_max(t_max), HD(hd), cos(t_max * hd / 2), sin(t_max * hd / 2) {
    rope_table(cos.data(), sin.data(), T_max, HD, kTheta);
  }
};

struct RopeCase {
  int64_t B, T, NH, HD, pos0;
};
const RopeCase kCases[] = {{1, 1, 1, 2, 0}, {2, 7, 3, 8, 0}, {1, 33, 2, 14, 5}, {3, 17, 4, 64, 100}};

TEST(Rope, TableFollowsThePaper) {
  const Table t(64, 16);
  for (int64_t p = 0; p < t.T_max; ++p)
    for (int64_t i = 0; i < t.HD / 2; ++i) {
      const double angle = double(p) * std::pow(double(kTheta), -2.0 * double(i) / double(t.HD));
      // The table's angle is rounded to float (as in HF): up to p * |inv_freq| * 2^-24 off.
      const double tol = 1e-7 + double(p) * 1.2e-7;
      ASSERT_NEAR(t.cos[p * 8 + i], std::cos(angle), tol) << p << "," << i;
      ASSERT_NEAR(t.sin[p * 8 + i], std::sin(angle), tol) << p << "," << i;
    }
}

TEST(Rope, FastMatchesReferenceAndAccumulates) {
  for (auto [B, T, NH, HD, pos0] : kCases)
    for (bool interleaved : {false, true}) {
      const Table tab(pos0 + T, HD);
      const int64_t n = B * T * NH * HD;
      const auto x = uniform(n, 1), dout = uniform(n, 2), dinp0 = uniform(n, 3);
      const std::string at = " HD=" + std::to_string(HD) + " pos0=" + std::to_string(pos0) +
                             (interleaved ? " interleaved" : " half-split");
      std::vector<float> y(n), y_r(n);
      rope_forward(y.data(), x.data(), tab.cos.data(), tab.sin.data(), B, T, NH, HD, pos0, interleaved);
      rope_forward_ref(y_r.data(), x.data(), tab.cos.data(), tab.sin.data(), B, T, NH, HD, pos0, interleaved);
      expect_close(y, y_r, kPointwise, "forward" + at);
      auto d = dinp0, d_r = dinp0;
      rope_backward(d.data(), dout.data(), tab.cos.data(), tab.sin.data(), B, T, NH, HD, pos0, interleaved);
      rope_backward_ref(d_r.data(), dout.data(), tab.cos.data(), tab.sin.data(), B, T, NH, HD, pos0, interleaved);
      expect_close(d, d_r, kPointwise, "backward" + at);
      std::vector<float> dz(n, 0.0f);
      rope_backward(dz.data(), dout.data(), tab.cos.data(), tab.sin.data(), B, T, NH, HD, pos0, interleaved);
      expect_close(d, plus(dinp0, dz), kPointwise, "backward accumulates" + at);
      rope_backward(nullptr, dout.data(), tab.cos.data(), tab.sin.data(), B, T, NH, HD, pos0, interleaved);
      rope_backward_ref(nullptr, dout.data(), tab.cos.data(), tab.sin.data(), B, T, NH, HD, pos0, interleaved);
      // In place (out == inp) gives the same result.
      auto inplace = x;
      rope_forward(inplace.data(), inplace.data(), tab.cos.data(), tab.sin.data(), B, T, NH, HD, pos0, interleaved);
      expect_bitwise(inplace, y, "in place" + at);
    }
}

TEST(Rope, PreservesNormsAndInverseRotationIsIdentity) {
  const int64_t B = 2, T = 9, NH = 3, HD = 16, pos0 = 7, n = B * T * NH * HD;
  const Table tab(pos0 + T, HD);
  const auto x = uniform(n, 4);
  for (bool interleaved : {false, true}) {
    std::vector<float> y(n), back(n, 0.0f);
    rope_forward(y.data(), x.data(), tab.cos.data(), tab.sin.data(), B, T, NH, HD, pos0, interleaved);
    for (int64_t v = 0; v < n / HD; ++v) {
      double nx = 0.0, ny = 0.0;
      for (int64_t i = 0; i < HD; ++i) {
        nx += double(x[v * HD + i]) * x[v * HD + i];
        ny += double(y[v * HD + i]) * y[v * HD + i];
      }
      ASSERT_NEAR(ny, nx, 1e-5 * nx) << "head vector " << v;
    }
    // backward applies R(-angle); R(-angle) R(angle) = I.
    rope_backward(back.data(), y.data(), tab.cos.data(), tab.sin.data(), B, T, NH, HD, pos0, interleaved);
    expect_close(back, x, kPointwise, interleaved ? "inverse (interleaved)" : "inverse (half-split)");
  }
}

TEST(Rope, HalfSplitEqualsInterleavedAfterPermutation) {
  const int64_t B = 1, T = 5, NH = 2, HD = 12, pos0 = 3, n = B * T * NH * HD, half = HD / 2;
  const Table tab(pos0 + T, HD);
  const auto x = uniform(n, 5);
  // perm maps interleaved position -> half-split position: 2i -> i, 2i+1 -> i + HD/2.
  std::vector<int64_t> perm(HD);
  for (int64_t i = 0; i < half; ++i) {
    perm[2 * i] = i;
    perm[2 * i + 1] = i + half;
  }
  std::vector<float> x_inter(n), y_half(n), y_inter(n);
  for (int64_t v = 0; v < n / HD; ++v)
    for (int64_t j = 0; j < HD; ++j) x_inter[v * HD + j] = x[v * HD + perm[j]];
  rope_forward(y_half.data(), x.data(), tab.cos.data(), tab.sin.data(), B, T, NH, HD, pos0, false);
  rope_forward(y_inter.data(), x_inter.data(), tab.cos.data(), tab.sin.data(), B, T, NH, HD, pos0, true);
  std::vector<float> y_half_permuted(n);
  for (int64_t v = 0; v < n / HD; ++v)
    for (int64_t j = 0; j < HD; ++j) y_half_permuted[v * HD + j] = y_half[v * HD + perm[j]];
  // Same math; the two loops may differ in FMA contraction, hence not bitwise.
  expect_close(y_inter, y_half_permuted, kPointwise, "interleaved vs permuted half-split");
}

TEST(Rope, DotProductDependsOnlyOnRelativePosition) {
  const int64_t HD = 32;
  const Table tab(64, HD);
  const auto q = uniform(HD, 6), k = uniform(HD, 7);
  auto rotated_dot = [&](int64_t pq, int64_t pk) {
    std::vector<float> rq(HD), rk(HD);
    rope_forward(rq.data(), q.data(), tab.cos.data(), tab.sin.data(), 1, 1, 1, HD, pq, false);
    rope_forward(rk.data(), k.data(), tab.cos.data(), tab.sin.data(), 1, 1, 1, HD, pk, false);
    return std::inner_product(rq.begin(), rq.end(), rk.begin(), 0.0);
  };
  const double d0 = rotated_dot(5, 2);
  EXPECT_NEAR(rotated_dot(25, 22), d0, 2e-5);
  EXPECT_NEAR(rotated_dot(53, 50), d0, 2e-5);
  EXPECT_GT(std::fabs(rotated_dot(5, 3) - d0), 1e-3) << "a different offset must change the score";
}

TEST(Rope, ReferenceBackwardMatchesFiniteDifferences) {
  const int64_t B = 1, T = 3, NH = 2, HD = 6, pos0 = 2, n = B * T * NH * HD;
  const Table tab(pos0 + T, HD);
  const auto x = uniform(n, 8), w = uniform(n, 9);
  for (bool interleaved : {false, true}) {
    std::vector<float> d(n, 0.0f);
    rope_backward_ref(d.data(), w.data(), tab.cos.data(), tab.sin.data(), B, T, NH, HD, pos0, interleaved);
    expect_fd_gradient(x, d, [&](const std::vector<float>& xp) {
      std::vector<float> y(n);
      rope_forward_ref(y.data(), xp.data(), tab.cos.data(), tab.sin.data(), B, T, NH, HD, pos0, interleaved);
      return weighted_sum(y, w);
    }, interleaved ? "interleaved" : "half-split");
  }
}

}  // namespace
}  // namespace sllm::kernels
