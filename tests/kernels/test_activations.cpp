// GELU (tanh and exact), SiLU and SwiGLU (kernels/cpu/activations.cpp): fast kernels against
// the double references, values at points known in closed form (computed independently,
// e.g. exact gelu(1) = Φ(1) = 0.8413447460685429), accumulate / nullptr semantics, and the
// references' backward against central differences.
#include "kernels/kernels.h"
#include "tests/kernels/kernel_test_support.h"

namespace sllm::kernels {
namespace {
using namespace testing;

const int64_t kSizes[] = {1, 7, 33, 257, 40000};  // 40000 takes the multithreaded path

// Inputs in [-8, 8] plus a few points where exp under- or overflows.
std::vector<float> activation_inputs(int64_t n, uint32_t seed) {
  auto x = uniform(n, seed, -8.0f, 8.0f);
  const float specials[] = {0.0f, -0.0f, 20.0f, -20.0f, 60.0f, -60.0f, 1e-4f, -1e-4f};
  for (int64_t i = 0; i < n && i < 8; ++i) x[i * 5 % n] = specials[i];
  return x;
}

TEST(Gelu, FastMatchesReference) {
  for (bool tanh_approx : {true, false})
    for (int64_t n : kSizes) {
      const auto x = activation_inputs(n, 1), dout = uniform(n, 2), dinp0 = uniform(n, 3);
      std::vector<float> out(n), out_r(n);
      gelu_forward(out.data(), x.data(), n, tanh_approx);
      gelu_forward_ref(out_r.data(), x.data(), n, tanh_approx);
      const std::string at = std::string(tanh_approx ? " tanh" : " erf") + " n=" + std::to_string(n);
      expect_close(out, out_r, kPointwise, "forward" + at);
      auto dinp = dinp0, dinp_r = dinp0;
      gelu_backward(dinp.data(), dout.data(), x.data(), n, tanh_approx);
      gelu_backward_ref(dinp_r.data(), dout.data(), x.data(), n, tanh_approx);
      expect_close(dinp, dinp_r, kPointwise, "backward" + at);
      std::vector<float> dinp_z(n, 0.0f);
      gelu_backward(dinp_z.data(), dout.data(), x.data(), n, tanh_approx);
      expect_close(dinp, plus(dinp0, dinp_z), kPointwise, "backward accumulates" + at);
      gelu_backward(nullptr, dout.data(), x.data(), n, tanh_approx);
      gelu_backward_ref(nullptr, dout.data(), x.data(), n, tanh_approx);
    }
}

TEST(Gelu, KnownValues) {
  // Closed forms evaluated independently (Python math.erf / math.tanh in double):
  //   exact: x Φ(x);  tanh: 0.5 x (1 + tanh(sqrt(2/π)(x + 0.044715 x³))).
  struct Point {
    bool tanh_approx;
    float x;
    double want;
  };
  const Point points[] = {{false, 0.0f, 0.0},  {false, 1.0f, 0.8413447460685429}, {false, -1.0f, -0.15865525393145707},
                          {true, 0.0f, 0.0},   {true, 1.0f, 0.8411919906082768},  {true, -1.0f, -0.15880800939172324},
                          {false, 10.0f, 10.0}, {true, 10.0f, 10.0},              {false, -10.0f, 0.0},
                          {true, -10.0f, 0.0}};
  for (const auto& p : points) {
    float fast = 0.0f, ref = 0.0f;
    gelu_forward(&fast, &p.x, 1, p.tanh_approx);
    gelu_forward_ref(&ref, &p.x, 1, p.tanh_approx);
    EXPECT_NEAR(fast, p.want, 3e-7 * std::max(1.0, std::fabs(p.want))) << "fast x=" << p.x << " tanh=" << p.tanh_approx;
    EXPECT_NEAR(ref, p.want, 1e-7 * std::max(1.0, std::fabs(p.want))) << "ref x=" << p.x << " tanh=" << p.tanh_approx;
  }
  // gelu'(0) = Φ(0) = 1/2 in both forms.
  for (bool tanh_approx : {true, false}) {
    const float x = 0.0f, one = 1.0f;
    float d = 0.0f;
    gelu_backward(&d, &one, &x, 1, tanh_approx);
    EXPECT_FLOAT_EQ(d, 0.5f);
  }
  const float nan = std::nanf("");
  float out = 0.0f;
  gelu_forward(&out, &nan, 1, true);
  EXPECT_TRUE(std::isnan(out)) << "NaN must propagate, not be hidden";
}

TEST(Silu, FastMatchesReferenceAndKnownValues) {
  for (int64_t n : kSizes) {
    const auto x = activation_inputs(n, 4), dout = uniform(n, 5), dinp0 = uniform(n, 6);
    std::vector<float> out(n), out_r(n);
    silu_forward(out.data(), x.data(), n);
    silu_forward_ref(out_r.data(), x.data(), n);
    expect_close(out, out_r, kPointwise, "silu forward n=" + std::to_string(n));
    auto dinp = dinp0, dinp_r = dinp0;
    silu_backward(dinp.data(), dout.data(), x.data(), n);
    silu_backward_ref(dinp_r.data(), dout.data(), x.data(), n);
    expect_close(dinp, dinp_r, kPointwise, "silu backward n=" + std::to_string(n));
    std::vector<float> dinp_z(n, 0.0f);
    silu_backward(dinp_z.data(), dout.data(), x.data(), n);
    expect_close(dinp, plus(dinp0, dinp_z), kPointwise, "silu backward accumulates");
    silu_backward(nullptr, dout.data(), x.data(), n);
  }
  // silu(1) = 1/(1+e^-1), silu(2) = 2/(1+e^-2) (Python, double); silu'(0) = 1/2.
  const float xs[] = {0.0f, 1.0f, 2.0f};
  const double want[] = {0.0, 0.7310585786300049, 1.7615941559557646};
  float out[3];
  silu_forward(out, xs, 3);
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(out[i], want[i], 3e-7) << "x=" << xs[i];
  const float one = 1.0f;
  float d = 0.0f;
  silu_backward(&d, &one, xs, 1);
  EXPECT_FLOAT_EQ(d, 0.5f);
}

TEST(SwiGlu, FastMatchesReferenceAndNullGradients) {
  for (int64_t n : kSizes) {
    const auto gate = activation_inputs(n, 7), up = uniform(n, 8, -2.0f, 2.0f), dout = uniform(n, 9);
    std::vector<float> out(n), out_r(n), silu(n);
    swiglu_forward(out.data(), gate.data(), up.data(), n);
    swiglu_forward_ref(out_r.data(), gate.data(), up.data(), n);
    const std::string at = " n=" + std::to_string(n);
    expect_close(out, out_r, kPointwise, "swiglu forward" + at);
    // Independent of the swiglu code path: silu(gate) * up.
    silu_forward_ref(silu.data(), gate.data(), n);
    std::vector<float> composed(n);
    for (int64_t i = 0; i < n; ++i) composed[i] = silu[i] * up[i];
    expect_close(out, composed, kPointwise, "swiglu == silu(gate) * up" + at);

    const auto dg0 = uniform(n, 10), du0 = uniform(n, 11);
    auto dg = dg0, du = du0, dg_r = dg0, du_r = du0;
    swiglu_backward(dg.data(), du.data(), dout.data(), gate.data(), up.data(), n);
    swiglu_backward_ref(dg_r.data(), du_r.data(), dout.data(), gate.data(), up.data(), n);
    expect_close(dg, dg_r, kPointwise, "dgate" + at);
    expect_close(du, du_r, kPointwise, "dup" + at);
    // Each gradient alone gives the same bits as both together.
    auto dg_only = dg0, du_only = du0;
    swiglu_backward(dg_only.data(), nullptr, dout.data(), gate.data(), up.data(), n);
    swiglu_backward(nullptr, du_only.data(), dout.data(), gate.data(), up.data(), n);
    expect_bitwise(dg_only, dg, "dgate alone" + at);
    expect_bitwise(du_only, du, "dup alone" + at);
    swiglu_backward(nullptr, nullptr, dout.data(), gate.data(), up.data(), n);
    swiglu_backward_ref(nullptr, nullptr, dout.data(), gate.data(), up.data(), n);
  }
}

TEST(Activations, ReferenceBackwardsMatchFiniteDifferences) {
  const int64_t n = 40;
  const auto x = uniform(n, 12, -4.0f, 4.0f), w = uniform(n, 13), up = uniform(n, 14, -2.0f, 2.0f);
  for (bool tanh_approx : {true, false}) {
    std::vector<float> dinp(n, 0.0f);
    gelu_backward_ref(dinp.data(), w.data(), x.data(), n, tanh_approx);
    expect_fd_gradient(x, dinp, [&](const std::vector<float>& xp) {
      std::vector<float> out(n);
      gelu_forward_ref(out.data(), xp.data(), n, tanh_approx);
      return weighted_sum(out, w);
    }, tanh_approx ? "gelu tanh" : "gelu erf");
  }
  std::vector<float> dsilu(n, 0.0f), dgate(n, 0.0f), dup(n, 0.0f);
  silu_backward_ref(dsilu.data(), w.data(), x.data(), n);
  expect_fd_gradient(x, dsilu, [&](const std::vector<float>& xp) {
    std::vector<float> out(n);
    silu_forward_ref(out.data(), xp.data(), n);
    return weighted_sum(out, w);
  }, "silu");
  swiglu_backward_ref(dgate.data(), dup.data(), w.data(), x.data(), up.data(), n);
  auto swiglu_loss = [&](const std::vector<float>& g, const std::vector<float>& u) {
    std::vector<float> out(n);
    swiglu_forward_ref(out.data(), g.data(), u.data(), n);
    return weighted_sum(out, w);
  };
  expect_fd_gradient(x, dgate, [&](const auto& g) { return swiglu_loss(g, up); }, "swiglu dgate");
  expect_fd_gradient(up, dup, [&](const auto& u) { return swiglu_loss(x, u); }, "swiglu dup");
}

}  // namespace
}  // namespace sllm::kernels
