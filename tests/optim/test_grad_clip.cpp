// clip_grad_norm: the global norm against hand-computed values, PyTorch's scaling rule, and
// the cases that must leave gradients alone.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "optim/grad_clip.h"

namespace sllm::optim {
namespace {

Tensor leaf_with_grad(const std::vector<float>& grad, const Shape& shape) {
  Tensor t = Tensor::zeros(shape);
  t.set_requires_grad(true);
  t.set_grad(Tensor::from_floats(grad, shape));
  return t;
}

TEST(ClipGradNorm, ScalesByMaxNormOverNormWhenAbove) {
  // grads (3, 4) and (12): norm sqrt(9 + 16 + 144) = 13.
  Tensor a = leaf_with_grad({3.f, 4.f}, {2}), b = leaf_with_grad({12.f}, {1, 1});
  std::vector<ParamRef> params{{"a", a, false}, {"b", b, true}};
  EXPECT_DOUBLE_EQ(clip_grad_norm(params, 6.5), 13.0);
  const double coef = 6.5 / (13.0 + 1e-6);  // ~0.5
  EXPECT_FLOAT_EQ(a.grad().to_floats()[0], float(3.0 * coef));
  EXPECT_FLOAT_EQ(a.grad().to_floats()[1], float(4.0 * coef));
  EXPECT_FLOAT_EQ(b.grad().to_floats()[0], float(12.0 * coef));
  // After clipping, the norm is max_norm (up to the 1e-6 guard and float rounding).
  EXPECT_NEAR(clip_grad_norm(params, 0.0), 6.5, 1e-5);
}

TEST(ClipGradNorm, LeavesSmallGradsAndDisabledClippingUntouched) {
  Tensor a = leaf_with_grad({0.1f, -0.2f, 0.3f}, {3});
  std::vector<ParamRef> params{{"a", a, true}};
  const std::vector<float> before = a.grad().to_floats();
  const double expected = std::sqrt(0.1 * 0.1 + 0.2 * 0.2 + 0.3 * 0.3);
  EXPECT_NEAR(clip_grad_norm(params, 1.0), expected, 1e-7);  // below max_norm
  EXPECT_EQ(a.grad().to_floats(), before);
  EXPECT_NEAR(clip_grad_norm(params, 0.0), expected, 1e-7);  // max_norm <= 0: never clips
  EXPECT_NEAR(clip_grad_norm(params, -1.0), expected, 1e-7);
  EXPECT_NEAR(clip_grad_norm(params, 0.1), expected, 1e-7);  // ... but a positive one does
  EXPECT_NE(a.grad().to_floats(), before);
}

TEST(ClipGradNorm, SkipsParamsWithoutGradAndFrozenParams) {
  Tensor a = leaf_with_grad({3.f}, {1});
  Tensor no_grad = Tensor::zeros({2});
  no_grad.set_requires_grad(true);
  Tensor frozen = Tensor::zeros({1});
  frozen.set_grad(Tensor::from_floats({100.f}, {1}));  // not requires_grad: ignored
  std::vector<ParamRef> params{{"a", a, true}, {"no_grad", no_grad, true}, {"frozen", frozen, true}};
  EXPECT_DOUBLE_EQ(clip_grad_norm(params, 1.0), 3.0);
  EXPECT_EQ(frozen.grad().to_floats()[0], 100.f);
  EXPECT_FALSE(no_grad.grad().defined());
}

TEST(ClipGradNorm, LargeTensorsMatchALongDoubleSumAndRepeatBitwise) {
  // 100003 elements span several fixed blocks (OpenMP partials) plus a ragged one.
  const int64_t n = 100003;
  std::vector<float> g(static_cast<size_t>(n));
  long double expected = 0;
  for (int64_t i = 0; i < n; ++i) {
    g[size_t(i)] = float(std::sin(0.001 * double(i)) * (1 + i % 7));
    expected += (long double)g[size_t(i)] * g[size_t(i)];
  }
  Tensor a = leaf_with_grad(g, {n});
  std::vector<ParamRef> params{{"a", a, true}};
  const double norm = clip_grad_norm(params, 0.0);
  EXPECT_NEAR(norm, double(std::sqrt(expected)), 1e-12 * norm);
  const double again = clip_grad_norm(params, 0.0);
  EXPECT_EQ(std::memcmp(&norm, &again, sizeof norm), 0);
}

}  // namespace
}  // namespace sllm::optim
