// layernorm_forward / _backward (kernels/cpu/layernorm.cpp) against their references, plus
// checks that do not go through the kernel's formulas: normalized rows have mean 0 and
// variance 1, and the reference backward matches central differences of the reference forward.
#include "kernels/kernels.h"
#include "tests/kernels/kernel_test_support.h"

namespace sllm::kernels {
namespace {
using namespace testing;

constexpr float kEps = 1e-5f;

struct LnCase {
  int64_t N, C;
};
const LnCase kCases[] = {{1, 1}, {3, 7}, {5, 33}, {67, 257}, {130, 384}};

struct LnData {
  int64_t N, C;
  std::vector<float> inp, weight, bias, dout;
  LnData(int64_t n, int64_t c, uint32_t seed)
      : N(n), C(c), inp(uniform(n * c, seed, -2.0f, 3.0f)), weight(uniform(c, seed + 1, 0.5f, 1.5f)),
        bias(uniform(c, seed + 2)), dout(uniform(n * c, seed + 3)) {}
};

TEST(LayerNorm, ForwardMatchesReference) {
  for (auto [N, C] : kCases) {
    LnData d(N, C, 11);
    for (bool with_bias : {true, false}) {
      const float* bias = with_bias ? d.bias.data() : nullptr;
      std::vector<float> out(N * C), mean(N), rstd(N), out_r(N * C), mean_r(N), rstd_r(N);
      layernorm_forward(out.data(), mean.data(), rstd.data(), d.inp.data(), d.weight.data(), bias, N, C, kEps);
      layernorm_forward_ref(out_r.data(), mean_r.data(), rstd_r.data(), d.inp.data(), d.weight.data(), bias, N, C,
                            kEps);
      const std::string at = " N=" + std::to_string(N) + " C=" + std::to_string(C);
      expect_close(out, out_r, kRowReduction, "out" + at);
      expect_close(mean, mean_r, kRowReduction, "mean" + at);
      expect_close(rstd, rstd_r, kRowReduction, "rstd" + at);
    }
  }
}

TEST(LayerNorm, NormalizedRowsHaveZeroMeanUnitVariance) {
  const int64_t N = 9, C = 257;
  LnData d(N, C, 5);
  std::vector<float> ones(C, 1.0f), zeros(C, 0.0f), out(N * C), mean(N), rstd(N);
  layernorm_forward(out.data(), mean.data(), rstd.data(), d.inp.data(), ones.data(), zeros.data(), N, C, kEps);
  for (int64_t n = 0; n < N; ++n) {
    double m = 0.0, var = 0.0;
    for (int64_t c = 0; c < C; ++c) m += out[n * C + c];
    m /= C;
    for (int64_t c = 0; c < C; ++c) var += (out[n * C + c] - m) * (out[n * C + c] - m);
    var /= C;
    EXPECT_NEAR(m, 0.0, 1e-6) << "row " << n;
    // The inputs' variance is ~2; eps = 1e-5 lowers the output variance by ~eps/2 = 5e-6.
    EXPECT_NEAR(var, 1.0, 2e-5) << "row " << n;
  }
}

TEST(LayerNorm, BackwardMatchesReferenceAndAccumulates) {
  for (auto [N, C] : kCases) {
    LnData d(N, C, 21);
    std::vector<float> out(N * C), mean(N), rstd(N);
    layernorm_forward_ref(out.data(), mean.data(), rstd.data(), d.inp.data(), d.weight.data(), d.bias.data(), N, C,
                          kEps);
    // Pre-filled gradients: backward must add to them.
    const auto dinp0 = uniform(N * C, 31), dw0 = uniform(C, 32), db0 = uniform(C, 33);
    auto dinp = dinp0, dw = dw0, db = db0, dinp_r = dinp0, dw_r = dw0, db_r = db0;
    layernorm_backward(dinp.data(), dw.data(), db.data(), d.dout.data(), d.inp.data(), d.weight.data(), mean.data(),
                       rstd.data(), N, C);
    layernorm_backward_ref(dinp_r.data(), dw_r.data(), db_r.data(), d.dout.data(), d.inp.data(), d.weight.data(),
                           mean.data(), rstd.data(), N, C);
    const std::string at = " N=" + std::to_string(N) + " C=" + std::to_string(C);
    expect_close(dinp, dinp_r, kRowReduction, "dinp" + at);
    expect_close(dw, dw_r, kRowReduction, "dweight" + at);
    expect_close(db, db_r, kRowReduction, "dbias" + at);

    // Into zeroed buffers we get what was added above: prefill + that == the result (+=, not =).
    std::vector<float> dinp_z(N * C, 0.0f), dw_z(C, 0.0f), db_z(C, 0.0f);
    layernorm_backward(dinp_z.data(), dw_z.data(), db_z.data(), d.dout.data(), d.inp.data(), d.weight.data(),
                       mean.data(), rstd.data(), N, C);
    expect_close(dinp, plus(dinp0, dinp_z), kPointwise, "dinp accumulates" + at);
    expect_close(dw, plus(dw0, dw_z), kPointwise, "dweight accumulates" + at);
    expect_close(db, plus(db0, db_z), kPointwise, "dbias accumulates" + at);
  }
}

TEST(LayerNorm, NullGradientsAreSkipped) {
  const int64_t N = 67, C = 33;
  LnData d(N, C, 41);
  std::vector<float> out(N * C), mean(N), rstd(N);
  layernorm_forward(out.data(), mean.data(), rstd.data(), d.inp.data(), d.weight.data(), d.bias.data(), N, C, kEps);
  std::vector<float> dinp_all(N * C, 0.0f), dw_all(C, 0.0f), db_all(C, 0.0f);
  layernorm_backward(dinp_all.data(), dw_all.data(), db_all.data(), d.dout.data(), d.inp.data(), d.weight.data(),
                     mean.data(), rstd.data(), N, C);
  // Frozen weight and bias: only dinp, with the same bits.
  std::vector<float> dinp(N * C, 0.0f);
  layernorm_backward(dinp.data(), nullptr, nullptr, d.dout.data(), d.inp.data(), d.weight.data(), mean.data(),
                     rstd.data(), N, C);
  expect_bitwise(dinp, dinp_all, "dinp alone");
  // Only parameter gradients (e.g. first layer input needs no gradient).
  std::vector<float> dw(C, 0.0f), db(C, 0.0f);
  layernorm_backward(nullptr, dw.data(), nullptr, d.dout.data(), d.inp.data(), d.weight.data(), mean.data(),
                     rstd.data(), N, C);
  layernorm_backward(nullptr, nullptr, db.data(), d.dout.data(), d.inp.data(), d.weight.data(), mean.data(),
                     rstd.data(), N, C);
  expect_bitwise(dw, dw_all, "dweight alone");
  expect_bitwise(db, db_all, "dbias alone");
  layernorm_backward_ref(nullptr, nullptr, nullptr, d.dout.data(), d.inp.data(), d.weight.data(), mean.data(),
                         rstd.data(), N, C);
}

TEST(LayerNorm, DeterministicAcrossRunsAndThreadCounts) {
  const int64_t N = 300, C = 97;
  LnData d(N, C, 51);
  std::vector<float> out(N * C), mean(N), rstd(N);
  layernorm_forward(out.data(), mean.data(), rstd.data(), d.inp.data(), d.weight.data(), d.bias.data(), N, C, kEps);
  auto run = [&](int threads) {
    ThreadCount tc(threads);
    std::vector<float> g(N * C + 2 * C, 0.0f);  // dinp, dweight, dbias
    layernorm_backward(g.data(), g.data() + N * C, g.data() + N * C + C, d.dout.data(), d.inp.data(),
                       d.weight.data(), mean.data(), rstd.data(), N, C);
    return g;
  };
  const auto first = run(2);
  expect_bitwise(run(2), first, "rerun");
  // Parameter gradients use fixed row blocks, so even the thread count does not matter.
  expect_bitwise(run(1), first, "1 thread vs 2");
  expect_bitwise(run(3), first, "3 threads vs 2");
}

TEST(LayerNorm, ReferenceBackwardMatchesFiniteDifferences) {
  const int64_t N = 3, C = 7;
  LnData d(N, C, 61);
  auto forward = [&](const std::vector<float>& inp, const std::vector<float>& w, const std::vector<float>& b) {
    std::vector<float> out(N * C), mean(N), rstd(N);
    layernorm_forward_ref(out.data(), mean.data(), rstd.data(), inp.data(), w.data(), b.data(), N, C, kEps);
    return weighted_sum(out, d.dout);
  };
  std::vector<float> out(N * C), mean(N), rstd(N);
  layernorm_forward_ref(out.data(), mean.data(), rstd.data(), d.inp.data(), d.weight.data(), d.bias.data(), N, C,
                        kEps);
  std::vector<float> dinp(N * C, 0.0f), dw(C, 0.0f), db(C, 0.0f);
  layernorm_backward_ref(dinp.data(), dw.data(), db.data(), d.dout.data(), d.inp.data(), d.weight.data(), mean.data(),
                         rstd.data(), N, C);
  expect_fd_gradient(d.inp, dinp, [&](const auto& x) { return forward(x, d.weight, d.bias); }, "dinp");
  expect_fd_gradient(d.weight, dw, [&](const auto& w) { return forward(d.inp, w, d.bias); }, "dweight");
  expect_fd_gradient(d.bias, db, [&](const auto& b) { return forward(d.inp, d.weight, b); }, "dbias");
}

}  // namespace
}  // namespace sllm::kernels
