// rmsnorm_forward / _backward (kernels/cpu/rmsnorm.cpp) against their references, plus
// checks independent of the kernel's formulas: normalized rows have unit RMS, and the
// reference backward matches central differences of the reference forward.
#include "kernels/kernels.h"
#include "tests/kernels/kernel_test_support.h"

namespace sllm::kernels {
namespace {
using namespace testing;

constexpr float kEps = 1e-6f;

struct RmsCase {
  int64_t N, C;
};
const RmsCase kCases[] = {{1, 1}, {3, 7}, {5, 33}, {67, 257}, {130, 384}};

struct RmsData {
  std::vector<float> inp, weight, dout;
  RmsData(int64_t N, int64_t C, uint32_t seed)
      : inp(uniform(N * C, seed, -2.0f, 3.0f)), weight(uniform(C, seed + 1, 0.5f, 1.5f)),
        dout(uniform(N * C, seed + 2)) {}
};

TEST(RmsNorm, ForwardMatchesReference) {
  for (auto [N, C] : kCases) {
    RmsData d(N, C, 11);
    std::vector<float> out(N * C), rstd(N), out_r(N * C), rstd_r(N);
    rmsnorm_forward(out.data(), rstd.data(), d.inp.data(), d.weight.data(), N, C, kEps);
    rmsnorm_forward_ref(out_r.data(), rstd_r.data(), d.inp.data(), d.weight.data(), N, C, kEps);
    const std::string at = " N=" + std::to_string(N) + " C=" + std::to_string(C);
    expect_close(out, out_r, kRowReduction, "out" + at);
    expect_close(rstd, rstd_r, kRowReduction, "rstd" + at);
  }
}

TEST(RmsNorm, NormalizedRowsHaveUnitRms) {
  const int64_t N = 9, C = 257;
  RmsData d(N, C, 5);
  std::vector<float> ones(C, 1.0f), out(N * C), rstd(N);
  rmsnorm_forward(out.data(), rstd.data(), d.inp.data(), ones.data(), N, C, kEps);
  for (int64_t n = 0; n < N; ++n) {
    double ms = 0.0;
    for (int64_t c = 0; c < C; ++c) ms += double(out[n * C + c]) * out[n * C + c];
    EXPECT_NEAR(ms / C, 1.0, 1e-5) << "row " << n;  // eps = 1e-6 against a mean square ~2
  }
}

TEST(RmsNorm, BackwardMatchesReferenceAndAccumulates) {
  for (auto [N, C] : kCases) {
    RmsData d(N, C, 21);
    std::vector<float> out(N * C), rstd(N);
    rmsnorm_forward_ref(out.data(), rstd.data(), d.inp.data(), d.weight.data(), N, C, kEps);
    const auto dinp0 = uniform(N * C, 31), dw0 = uniform(C, 32);
    auto dinp = dinp0, dw = dw0, dinp_r = dinp0, dw_r = dw0;
    rmsnorm_backward(dinp.data(), dw.data(), d.dout.data(), d.inp.data(), d.weight.data(), rstd.data(), N, C);
    rmsnorm_backward_ref(dinp_r.data(), dw_r.data(), d.dout.data(), d.inp.data(), d.weight.data(), rstd.data(), N, C);
    const std::string at = " N=" + std::to_string(N) + " C=" + std::to_string(C);
    expect_close(dinp, dinp_r, kRowReduction, "dinp" + at);
    expect_close(dw, dw_r, kRowReduction, "dweight" + at);

    std::vector<float> dinp_z(N * C, 0.0f), dw_z(C, 0.0f);
    rmsnorm_backward(dinp_z.data(), dw_z.data(), d.dout.data(), d.inp.data(), d.weight.data(), rstd.data(), N, C);
    expect_close(dinp, plus(dinp0, dinp_z), kPointwise, "dinp accumulates" + at);
    expect_close(dw, plus(dw0, dw_z), kPointwise, "dweight accumulates" + at);
  }
}

TEST(RmsNorm, NullGradientsAreSkipped) {
  const int64_t N = 67, C = 33;
  RmsData d(N, C, 41);
  std::vector<float> out(N * C), rstd(N);
  rmsnorm_forward(out.data(), rstd.data(), d.inp.data(), d.weight.data(), N, C, kEps);
  std::vector<float> dinp_all(N * C, 0.0f), dw_all(C, 0.0f), dinp(N * C, 0.0f), dw(C, 0.0f);
  rmsnorm_backward(dinp_all.data(), dw_all.data(), d.dout.data(), d.inp.data(), d.weight.data(), rstd.data(), N, C);
  rmsnorm_backward(dinp.data(), nullptr, d.dout.data(), d.inp.data(), d.weight.data(), rstd.data(), N, C);
  rmsnorm_backward(nullptr, dw.data(), d.dout.data(), d.inp.data(), d.weight.data(), rstd.data(), N, C);
  expect_bitwise(dinp, dinp_all, "dinp alone");
  expect_bitwise(dw, dw_all, "dweight alone");
  rmsnorm_backward(nullptr, nullptr, d.dout.data(), d.inp.data(), d.weight.data(), rstd.data(), N, C);
  rmsnorm_backward_ref(nullptr, nullptr, d.dout.data(), d.inp.data(), d.weight.data(), rstd.data(), N, C);
}

TEST(RmsNorm, DeterministicAcrossRunsAndThreadCounts) {
  const int64_t N = 300, C = 97;
  RmsData d(N, C, 51);
  std::vector<float> out(N * C), rstd(N);
  rmsnorm_forward(out.data(), rstd.data(), d.inp.data(), d.weight.data(), N, C, kEps);
  auto run = [&](int threads) {
    ThreadCount tc(threads);
    std::vector<float> g(N * C + C, 0.0f);  // dinp, dweight
    rmsnorm_backward(g.data(), g.data() + N * C, d.dout.data(), d.inp.data(), d.weight.data(), rstd.data(), N, C);
    return g;
  };
  const auto first = run(2);
  expect_bitwise(run(2), first, "rerun");
  expect_bitwise(run(1), first, "1 thread vs 2");
  expect_bitwise(run(3), first, "3 threads vs 2");
}

TEST(RmsNorm, ReferenceBackwardMatchesFiniteDifferences) {
  const int64_t N = 3, C = 7;
  RmsData d(N, C, 61);
  auto forward = [&](const std::vector<float>& inp, const std::vector<float>& w) {
    std::vector<float> out(N * C), rstd(N);
    rmsnorm_forward_ref(out.data(), rstd.data(), inp.data(), w.data(), N, C, kEps);
    return weighted_sum(out, d.dout);
  };
  std::vector<float> out(N * C), rstd(N), dinp(N * C, 0.0f), dw(C, 0.0f);
  rmsnorm_forward_ref(out.data(), rstd.data(), d.inp.data(), d.weight.data(), N, C, kEps);
  rmsnorm_backward_ref(dinp.data(), dw.data(), d.dout.data(), d.inp.data(), d.weight.data(), rstd.data(), N, C);
  expect_fd_gradient(d.inp, dinp, [&](const auto& x) { return forward(x, d.weight); }, "dinp");
  expect_fd_gradient(d.weight, dw, [&](const auto& w) { return forward(d.inp, w); }, "dweight");
}

}  // namespace
}  // namespace sllm::kernels
