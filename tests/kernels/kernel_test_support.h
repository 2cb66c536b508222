// Shared helpers for the non-GEMM kernel tests (test_elementwise.cpp ... test_adamw.cpp):
// seeded random inputs, element-wise comparison with a written-down tolerance, bitwise
// comparison, a thread-count guard and a central-difference gradient check.
#pragma once
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

namespace sllm::kernels::testing {

// ---- tolerances (written once, each with its reason) -----------------------------------
// A check passes when |got - want| <= abs * scale + rel * |want|, where scale is the largest
// |want| in the array (at least 1): errors of reductions are relative to the row's size, not
// to a single element that happens to cancel to ~0.
struct Tolerance {
  double abs, rel;
};
// Same float operations in the same order: identical bits.
inline constexpr Tolerance kBitwise{0.0, 0.0};
// Pointwise float chains of a few correctly rounded operations (and exp_approx, ~1 ulp)
// against a double reference rounded once: a handful of ulps (u = 6e-8).
inline constexpr Tolerance kPointwise{1e-6, 2e-6};
// Rows reduced in float with 16 lane accumulators (row length <= 8192) against double
// sums: the error grows like sqrt(len) * u * scale; 1e-5 leaves a wide margin and is still
// far below what a dropped or doubled term would cause (~1/len).
inline constexpr Tolerance kRowReduction{1e-5, 1e-5};
// Central differences of a float forward with step kFdStep: O(h^2) truncation (~1e-5 for
// O(1) derivatives) plus float rounding of the outputs amplified by 1/(2h).
inline constexpr float kFdStep = 1e-2f;
inline constexpr Tolerance kFiniteDiff{2e-3, 1e-2};

// ---- inputs -----------------------------------------------------------------------------
inline std::vector<float> uniform(int64_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(size_t(std::max<int64_t>(n, 0)));
  for (auto& x : v) x = dist(rng);
  return v;
}

inline std::vector<int32_t> random_ids(int64_t n, int32_t vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> dist(0, vocab - 1);
  std::vector<int32_t> v(size_t(std::max<int64_t>(n, 0)));
  for (auto& x : v) x = dist(rng);
  return v;
}

// ---- comparisons ------------------------------------------------------------------------
inline void expect_close(const std::vector<float>& got, const std::vector<float>& want, Tolerance tol,
                         const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double scale = 1.0;
  for (float w : want) scale = std::max(scale, double(std::fabs(w)));
  int64_t bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double g = got[i], w = want[i];
    const bool ok = (std::isnan(g) && std::isnan(w)) || std::fabs(g - w) <= tol.abs * scale + tol.rel * std::fabs(w);
    if (!ok && ++bad <= 5) ADD_FAILURE() << what << ": element " << i << " got " << g << " want " << w;
  }
  EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << got.size() << " elements out of tolerance";
}

template <class T>
void expect_bitwise(const std::vector<T>& got, const std::vector<T>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  EXPECT_EQ(std::memcmp(got.data(), want.data(), got.size() * sizeof(T)), 0) << what << ": bits differ";
}

// a + b element-wise (the expected content of a pre-filled gradient buffer after +=).
inline std::vector<float> plus(const std::vector<float>& a, const std::vector<float>& b) {
  std::vector<float> c(a.size());
  for (size_t i = 0; i < a.size(); ++i) c[i] = a[i] + b[i];
  return c;
}

// Sets the OpenMP thread count for one scope and restores it.
class ThreadCount {
 public:
  explicit ThreadCount(int n) : saved_(omp_get_max_threads()) { omp_set_num_threads(n); }
  ~ThreadCount() { omp_set_num_threads(saved_); }

 private:
  int saved_;
};

// ---- finite differences -----------------------------------------------------------------
// Checks grad (the analytic d loss / d x) against central differences of loss(x), a scalar
// the test builds from the forward's outputs (typically sum of outputs * fixed weights, in
// double). Only `max_checks` evenly spaced coordinates are probed to keep tests fast.
inline void expect_fd_gradient(std::vector<float> x, const std::vector<float>& grad,
                               const std::function<double(const std::vector<float>&)>& loss,
                               const std::string& what, int64_t max_checks = 64) {
  ASSERT_EQ(x.size(), grad.size()) << what;
  const int64_t n = int64_t(x.size());
  const int64_t stride = std::max<int64_t>(1, n / max_checks);
  double scale = 1.0;
  for (float g : grad) scale = std::max(scale, double(std::fabs(g)));
  int64_t bad = 0;
  for (int64_t i = 0; i < n; i += stride) {
    const float x0 = x[i];
    x[i] = x0 + kFdStep;
    const float hi = x[i];
    const double l_hi = loss(x);
    x[i] = x0 - kFdStep;
    const float lo = x[i];
    const double l_lo = loss(x);
    x[i] = x0;
    const double numeric = (l_hi - l_lo) / (double(hi) - double(lo));
    const double err = std::fabs(numeric - grad[i]);
    if (err > kFiniteDiff.abs * scale + kFiniteDiff.rel * std::fabs(numeric) && ++bad <= 5)
      ADD_FAILURE() << what << ": d/dx[" << i << "] analytic " << grad[i] << " numeric " << numeric;
  }
  EXPECT_EQ(bad, 0) << what;
}

// sum_i out[i] * w[i] in double: the scalar loss whose gradient wrt out is w.
inline double weighted_sum(const std::vector<float>& out, const std::vector<float>& w) {
  double s = 0.0;
  for (size_t i = 0; i < out.size(); ++i) s += double(out[i]) * w[i];
  return s;
}

}  // namespace sllm::kernels::testing
