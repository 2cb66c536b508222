// The 4-bit Linear (quant::QuantizedWeight under ops::packed_linear and ops::lora_linear):
// y = x·deq(W)ᵀ + b, dx = dy·deq(W), db = Σ dy, and no weight gradient (QLoRA, Dettmers
// et al. 2023, equation 5), against a float64 product with the dequantized weight, which
// test_quant_golden.cpp and test_quant_math.cpp check on their own.
// Tolerances: the GEMM sums K float32 products; its error is at most about K·u·Σ|x||w|
// (u = 2^-24) and in practice ~√K·u of it, so 4·√K·u·Σ|x_k||w_k| per output element keeps
// a margin while a row, tile or block off by one moves outputs by O(Σ|x||w|).
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <vector>

#include "autograd/autograd.h"
#include "core/error.h"
#include "core/rng.h"
#include "nn/linear.h"
#include "ops/ops.h"
#include "quant/quantized_weight.h"

namespace sllm::quant {
namespace {

Tensor random(const Shape& shape, uint64_t seed, float scale = 1.0f) {
  Rng rng(seed);
  Tensor t = Tensor::empty(shape);
  float* p = t.mutable_f32();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = (2.0f * rng.uniform() - 1.0f) * scale;
  return t;
}

std::shared_ptr<const QuantizedWeight> packed(const Tensor& w, const QuantOptions& o = {}) {
  return std::make_shared<QuantizedWeight>(quantize(w, o));
}

// C (M, N) = A (M, K) · op(B) in float64, and Σ|a||b| per element for the tolerance, where
// op(B) is B (K, N), or Bᵀ for B (N, K).
struct Product {
  std::vector<double> value, magnitude;
};
Product product(const std::vector<float>& a, const std::vector<float>& b, int64_t M, int64_t N, int64_t K,
                bool b_is_nk) {
  Product p{std::vector<double>(size_t(M * N)), std::vector<double>(size_t(M * N))};
  for (int64_t i = 0; i < M; ++i)  // loops ordered so that b is read contiguously
    for (int64_t outer = 0; outer < (b_is_nk ? N : K); ++outer)
      for (int64_t inner = 0; inner < (b_is_nk ? K : N); ++inner) {
        const int64_t j = b_is_nk ? outer : inner, k = b_is_nk ? inner : outer;
        const double ab = double(a[size_t(i * K + k)]) * b[size_t(outer * (b_is_nk ? K : N) + inner)];
        p.value[size_t(i * N + j)] += ab;
        p.magnitude[size_t(i * N + j)] += std::fabs(ab);
      }
  return p;
}

// y = packed_linear(x, W, b) and its backward with upstream gradient R, against float64.
void expect_packed_linear_matches_dense(int64_t N, int64_t in, int64_t out, const QuantOptions& o, bool bias) {
  const Tensor w = random({out, in}, 1, 0.05f);
  const auto pw = packed(w, o);
  const std::vector<float> deq = dequantize(pw->tensor()).to_floats();
  Tensor x = random({N, in}, 2);
  x.set_requires_grad(true);
  Tensor b = bias ? random({out}, 3) : Tensor();
  if (bias) b.set_requires_grad(true);
  Tensor y = ops::packed_linear(x, pw, b);
  ASSERT_EQ(y.shape(), (Shape{N, out}));
  const Tensor R = random({N, out}, 4);
  autograd::backward(ops::sum(ops::mul(y, R)));

  const double tol = 4.0 * std::sqrt(double(in)) * 0x1.0p-24;
  const Product fwd = product(x.to_floats(), deq, N, out, in, true);  // x·deq(W)ᵀ
  const std::vector<float> yv = y.to_floats();
  for (int64_t i = 0; i < N * out; ++i) {
    const double bj = bias ? b.f32()[i % out] : 0.0;  // the bias add is one more rounding
    ASSERT_NEAR(yv[size_t(i)], fwd.value[size_t(i)] + bj, tol * (fwd.magnitude[size_t(i)] + std::fabs(bj)))
        << "y[" << i << "]";
  }
  const double tol_dx = 4.0 * std::sqrt(double(out)) * 0x1.0p-24;
  const Product bwd = product(R.to_floats(), deq, N, in, out, false);  // R·deq(W)
  const std::vector<float> dx = x.grad().to_floats();
  for (int64_t i = 0; i < N * in; ++i)
    ASSERT_NEAR(dx[size_t(i)], bwd.value[size_t(i)], tol_dx * bwd.magnitude[size_t(i)]) << "dx[" << i << "]";
  if (bias) {
    const std::vector<float> db = b.grad().to_floats(), r = R.to_floats();
    for (int64_t j = 0; j < out; ++j) {
      double s = 0;
      for (int64_t i = 0; i < N; ++i) s += r[size_t(i * out + j)];
      ASSERT_NEAR(db[size_t(j)], s, 1e-5) << "db[" << j << "]";
    }
  }
}

TEST(PackedLinear, ForwardAndBackwardEqualTheDequantizedProduct) {
  expect_packed_linear_matches_dense(5, 96, 40, {}, true);                          // NF4 + DQ, bs 64
  expect_packed_linear_matches_dense(3, 100, 7, {QuantType::FP4, 32, false}, false);  // rows not block-aligned
  expect_packed_linear_matches_dense(1, 33, 3, {QuantType::NF4, 4096, true}, true);   // one short block, odd sizes
}

// The CPU path dequantizes at most QuantizedWeight::kTileElements of W at a time: with
// in = 1000, a tile is 4194 rows, so 4201 rows make two tiles, the boundary in the middle
// of a block of 64 (4194·1000 is not a multiple of 64) and a short second tile. Backward
// applies beta on the first tile only and accumulates the second.
TEST(PackedLinear, SpansSeveralWorkspaceTiles) {
  const int64_t in = 1000, tile_rows = QuantizedWeight::kTileElements / in, out = tile_rows + 7;
  ASSERT_NE((tile_rows * in) % 64, 0);
  expect_packed_linear_matches_dense(2, in, out, {}, true);
}

// A finite-difference check, as tests/ops/test_gradcheck.cpp does for every dense op (that
// table cannot hold packed_linear: a packed weight lives in the quant layer, above ops).
// L(x, b) = Σ packed_linear(x, W, b) ⊙ R is linear in x and b, so central differences are
// exact up to rounding: h = 1e-2, |num − ana| <= 1e-2·(1 + |ana|).
TEST(PackedLinear, GradientCheck) {
  const auto pw = packed(random({6, 64}, 5), {QuantType::NF4, 32, true});
  const Tensor R = random({3, 4, 6}, 6);
  Tensor x = random({3, 4, 64}, 7), b = random({6}, 8);
  auto L = [&](const Tensor& xv, const Tensor& bv) {
    const std::vector<float> y = ops::packed_linear(xv, pw, bv).to_floats(), r = R.to_floats();
    double acc = 0;
    for (size_t i = 0; i < y.size(); ++i) acc += double(y[i]) * r[i];
    return acc;
  };
  x.set_requires_grad(true);
  b.set_requires_grad(true);
  autograd::backward(ops::sum(ops::mul(ops::packed_linear(x, pw, b), R)));
  const float h = 1e-2f;
  for (Tensor* t : {&x, &b}) {
    const std::vector<float> ana = t->grad().to_floats();
    for (int64_t i = 0; i < t->numel(); i += (t == &x ? 7 : 1)) {
      autograd::NoGradGuard no_grad;
      float* p = t->mutable_f32();
      const float v = p[i];
      p[i] = v + h;
      const double up = L(x, b);
      p[i] = v - h;
      const double down = L(x, b);
      p[i] = v;
      const double num = (up - down) / (2.0 * h);
      ASSERT_LE(std::fabs(num - ana[size_t(i)]), 1e-2 * (1 + std::fabs(ana[size_t(i)])))
          << (t == &x ? "x" : "b") << "[" << i << "]";
    }
  }
}

// nn::Linear with a packed weight: the dense weight is released and leaves the parameter
// list, the bias stays and trains, and nothing else gets a gradient.
TEST(PackedLinear, LinearReleasesItsWeightAndGetsNoWeightGradient) {
  nn::Linear linear("layer", 64, 8, true, false);
  linear.weight() = random({8, 64}, 9);
  linear.bias() = random({8}, 10);
  linear.bias().set_requires_grad(true);
  const auto pw = packed(linear.weight());
  linear.set_packed_weight(pw);
  EXPECT_FALSE(linear.weight().defined());
  std::vector<nn::Parameter> params;
  linear.append_parameters(params);
  ASSERT_EQ(params.size(), 1u);
  EXPECT_EQ(params[0].name, "layer.bias");
  Tensor x = random({2, 64}, 11);
  x.set_requires_grad(true);
  autograd::backward(ops::sum(linear.forward(x)));
  EXPECT_TRUE(x.grad().defined());
  EXPECT_TRUE(linear.bias().grad().defined());
  EXPECT_EQ(linear.forward(x).to_floats(), ops::packed_linear(x, pw, linear.bias()).to_floats());
  // A packed weight of the wrong shape is refused.
  EXPECT_THROW(linear.set_packed_weight(packed(random({8, 32}, 12))), Error);
}

// LoRA over the packed base (QLoRA) equals LoRA over the dequantized base held as a frozen
// dense weight: the same y, dx, dA, dB and db (the products' float32 rounding apart).
TEST(PackedLinear, LoraOverThePackedBaseEqualsLoraOverTheDequantizedDenseBase) {
  const int64_t in = 96, out = 40, r = 4;
  const auto pw = packed(random({out, in}, 13, 0.05f));
  const Tensor w_dense = dequantize(pw->tensor());  // frozen: requires_grad false
  Tensor xs[2], As[2], Bs[2], bs[2], ys[2];
  for (int side = 0; side < 2; ++side) {
    xs[side] = random({2, 3, in}, 14).set_requires_grad(true);
    As[side] = random({r, in}, 15, 0.1f).set_requires_grad(true);
    Bs[side] = random({out, r}, 16, 0.1f).set_requires_grad(true);
    bs[side] = random({out}, 17).set_requires_grad(true);
    ys[side] = side == 0 ? ops::lora_linear(xs[0], pw, bs[0], As[0], Bs[0], 2.0f, 0.0f, 0)
                         : ops::lora_linear(xs[1], w_dense, bs[1], As[1], Bs[1], 2.0f, 0.0f, 0);
    autograd::backward(ops::sum(ops::mul(ys[side], random({2, 3, out}, 18))));
  }
  EXPECT_FALSE(w_dense.grad().defined());
  auto close = [](const Tensor& a, const Tensor& b, const char* what) {
    const std::vector<float> u = a.to_floats(), v = b.to_floats();
    ASSERT_EQ(u.size(), v.size()) << what;
    double scale = 0;
    for (float f : v) scale = std::max(scale, double(std::fabs(f)));
    for (size_t i = 0; i < u.size(); ++i) ASSERT_NEAR(u[i], v[i], 1e-5 * scale) << what << "[" << i << "]";
  };
  close(ys[0], ys[1], "y");
  close(xs[0].grad(), xs[1].grad(), "dx");
  close(As[0].grad(), As[1].grad(), "dA");
  close(Bs[0].grad(), Bs[1].grad(), "dB");
  close(bs[0].grad(), bs[1].grad(), "db");
}

}  // namespace
}  // namespace sllm::quant
