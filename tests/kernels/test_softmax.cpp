// softmax / log_softmax (kernels/cpu/softmax.cpp) against the double references, plus
// properties that do not reuse the kernels' formulas: rows sum to 1, log_softmax equals the
// log of softmax, huge logits do not overflow, -inf logits get probability 0, and the
// reference backward matches central differences of the reference forward.
#include <limits>

#include "kernels/kernels.h"
#include "tests/kernels/kernel_test_support.h"

namespace sllm::kernels {
namespace {
using namespace testing;

struct SmCase {
  int64_t N, C;
};
const SmCase kCases[] = {{1, 1}, {3, 7}, {5, 33}, {17, 257}, {4, 1031}};

TEST(Softmax, ForwardBackwardMatchReference) {
  for (auto [N, C] : kCases) {
    const auto x = uniform(N * C, 1, -6.0f, 6.0f), dout = uniform(N * C, 2), dinp0 = uniform(N * C, 3);
    const std::string at = " N=" + std::to_string(N) + " C=" + std::to_string(C);
    std::vector<float> y(N * C), y_r(N * C);
    softmax_forward(y.data(), x.data(), N, C);
    softmax_forward_ref(y_r.data(), x.data(), N, C);
    expect_close(y, y_r, kRowReduction, "softmax forward" + at);
    auto dinp = dinp0, dinp_r = dinp0;
    softmax_backward(dinp.data(), dout.data(), y_r.data(), N, C);
    softmax_backward_ref(dinp_r.data(), dout.data(), y_r.data(), N, C);
    expect_close(dinp, dinp_r, kRowReduction, "softmax backward" + at);
    std::vector<float> dz(N * C, 0.0f);
    softmax_backward(dz.data(), dout.data(), y_r.data(), N, C);
    expect_close(dinp, plus(dinp0, dz), kPointwise, "softmax backward accumulates" + at);

    std::vector<float> ly(N * C), ly_r(N * C);
    log_softmax_forward(ly.data(), x.data(), N, C);
    log_softmax_forward_ref(ly_r.data(), x.data(), N, C);
    expect_close(ly, ly_r, kRowReduction, "log_softmax forward" + at);
    auto ldinp = dinp0, ldinp_r = dinp0;
    log_softmax_backward(ldinp.data(), dout.data(), ly_r.data(), N, C);
    log_softmax_backward_ref(ldinp_r.data(), dout.data(), ly_r.data(), N, C);
    expect_close(ldinp, ldinp_r, kRowReduction, "log_softmax backward" + at);
    std::vector<float> ldz(N * C, 0.0f);
    log_softmax_backward(ldz.data(), dout.data(), ly_r.data(), N, C);
    expect_close(ldinp, plus(dinp0, ldz), kPointwise, "log_softmax backward accumulates" + at);

    softmax_backward(nullptr, dout.data(), y.data(), N, C);
    log_softmax_backward(nullptr, dout.data(), ly.data(), N, C);
    softmax_backward_ref(nullptr, dout.data(), y.data(), N, C);
    log_softmax_backward_ref(nullptr, dout.data(), ly.data(), N, C);
  }
}

TEST(Softmax, RowsSumToOneAndLogMatches) {
  const int64_t N = 6, C = 8192;
  auto x = uniform(N * C, 4, -10.0f, 10.0f);
  for (int64_t c = 0; c < C; ++c) x[1 * C + c] += 1000.0f;   // would overflow a naive exp
  for (int64_t c = 0; c < C; ++c) x[2 * C + c] -= 1000.0f;   // would underflow to 0/0
  std::vector<float> y(N * C), ly(N * C);
  softmax_forward(y.data(), x.data(), N, C);
  log_softmax_forward(ly.data(), x.data(), N, C);
  for (int64_t n = 0; n < N; ++n) {
    double sum = 0.0;
    for (int64_t c = 0; c < C; ++c) {
      ASSERT_GE(y[n * C + c], 0.0f);
      sum += y[n * C + c];
      // log_softmax == log(softmax), where softmax is not tiny (the log amplifies its relative error).
      if (y[n * C + c] > 1e-30f) {
        ASSERT_NEAR(ly[n * C + c], std::log(double(y[n * C + c])), 1e-5) << n << "," << c;
      }
    }
    EXPECT_NEAR(sum, 1.0, 1e-5) << "row " << n;
  }
  // Shift invariance: softmax(x + 50) == softmax(x).
  std::vector<float> shifted(C), ys(C);
  for (int64_t c = 0; c < C; ++c) shifted[c] = x[c] + 50.0f;
  softmax_forward(ys.data(), shifted.data(), 1, C);
  expect_close(ys, std::vector<float>(y.begin(), y.begin() + C), kRowReduction, "shift invariance");
}

TEST(Softmax, MaskedLogitsGetZeroProbability) {
  const float ninf = -std::numeric_limits<float>::infinity();
  const std::vector<float> x = {0.5f, ninf, 0.5f, ninf, 0.5f, 0.5f, ninf};
  std::vector<float> y(x.size()), ly(x.size());
  softmax_forward(y.data(), x.data(), 1, int64_t(x.size()));
  log_softmax_forward(ly.data(), x.data(), 1, int64_t(x.size()));
  for (size_t i = 0; i < x.size(); ++i) {
    if (x[i] == ninf) {
      EXPECT_EQ(y[i], 0.0f);
      EXPECT_EQ(ly[i], ninf);
    } else {
      EXPECT_FLOAT_EQ(y[i], 0.25f);
      EXPECT_FLOAT_EQ(ly[i], std::log(0.25f));
    }
  }
}

TEST(Softmax, DeterministicAcrossRuns) {
  const int64_t N = 64, C = 257;
  const auto x = uniform(N * C, 5, -5.0f, 5.0f), dout = uniform(N * C, 6);
  auto run = [&] {
    std::vector<float> y(N * C), dinp(N * C, 0.0f);
    softmax_forward(y.data(), x.data(), N, C);
    softmax_backward(dinp.data(), dout.data(), y.data(), N, C);
    y.insert(y.end(), dinp.begin(), dinp.end());
    return y;
  };
  expect_bitwise(run(), run(), "rerun");
}

TEST(Softmax, ReferenceBackwardsMatchFiniteDifferences) {
  const int64_t N = 3, C = 7;
  const auto x = uniform(N * C, 7, -2.0f, 2.0f), w = uniform(N * C, 8);
  std::vector<float> y(N * C), ly(N * C), dinp(N * C, 0.0f), ldinp(N * C, 0.0f);
  softmax_forward_ref(y.data(), x.data(), N, C);
  log_softmax_forward_ref(ly.data(), x.data(), N, C);
  softmax_backward_ref(dinp.data(), w.data(), y.data(), N, C);
  log_softmax_backward_ref(ldinp.data(), w.data(), ly.data(), N, C);
  expect_fd_gradient(x, dinp, [&](const std::vector<float>& xp) {
    std::vector<float> out(N * C);
    softmax_forward_ref(out.data(), xp.data(), N, C);
    return weighted_sum(out, w);
  }, "softmax");
  expect_fd_gradient(x, ldinp, [&](const std::vector<float>& xp) {
    std::vector<float> out(N * C);
    log_softmax_forward_ref(out.data(), xp.data(), N, C);
    return weighted_sum(out, w);
  }, "log_softmax");
}

}  // namespace
}  // namespace sllm::kernels
