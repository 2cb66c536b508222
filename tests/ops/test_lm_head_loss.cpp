// ops::linear_cross_entropy on the CPU in f32 with a frozen head weight (LoRA, QLoRA): the
// chunked path of ops/loss.cpp, which computes the gradient of the mean in forward, one
// chunk of rows at a time, instead of keeping the (N, V) logits. Checked against the plain
// graph cross_entropy(linear(x, W)) with enough rows for several chunks and a short last one,
// ignored targets, a loss scaled before backward (g != 1), and every target ignored.
#include <gtest/gtest.h>

#include <cmath>

#include "autograd/autograd.h"
#include "core/error.h"
#include "core/rng.h"
#include "ops/linear_detail.h"
#include "ops/ops.h"

namespace sllm {
namespace {

// V = 65536 makes a chunk 32 rows; B x T = 3 x 25 = 75 rows: chunks of 32, 32 and 11.
constexpr int64_t kB = 3, kT = 25, kC = 6, kV = 65536;

Tensor random_tensor(const Shape& shape, uint64_t seed, float scale) {
  Rng rng(seed);
  Tensor t = Tensor::empty(shape);
  float* p = t.mutable_f32();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<float>(rng.normal()) * scale;
  return t;
}

Tensor targets_with(int32_t ignore_every) {
  Rng rng(5);
  std::vector<int32_t> ids(kB * kT);
  for (size_t i = 0; i < ids.size(); ++i)
    ids[i] = ignore_every > 0 && i % size_t(ignore_every) == 1 ? -100 : int32_t(rng.below(kV));
  return Tensor::from_ints(ids, {kB, kT});
}

struct LossAndGrad {
  float loss;
  std::vector<float> dx;
};

// The loss times `g` (1: a plain backward), through the fused op or the plain graph.
LossAndGrad run(bool fused, const Tensor& x0, const Tensor& w, const Tensor& targets, float g) {
  Tensor x = x0.clone();
  x.set_requires_grad(true);
  Tensor loss = fused ? ops::linear_cross_entropy(x, w, targets) : ops::cross_entropy(ops::linear(x, w), targets);
  Tensor root = g == 1.0f ? loss : ops::scale(loss, g);
  autograd::backward(root);
  const Tensor dx = x.grad();
  return {loss.item(), std::vector<float>(dx.f32(), dx.f32() + dx.numel())};
}

void expect_same(const LossAndGrad& got, const LossAndGrad& want, const char* what) {
  // Each logit is the same K = 6 dot product (GEMM row blocks do not change a row's sum), so
  // the per-row losses agree to the last bits; dx sums V = 65536 products, blocked the same
  // way, so a relative 1e-5 of the largest entry leaves room for a different GEMM path.
  EXPECT_NEAR(got.loss, want.loss, 1e-6f * std::fabs(want.loss)) << what;
  ASSERT_EQ(got.dx.size(), want.dx.size());
  float scale = 0.0f;
  for (float v : want.dx) scale = std::max(scale, std::fabs(v));
  ASSERT_GT(scale, 0.0f) << what;
  for (size_t i = 0; i < want.dx.size(); ++i) ASSERT_NEAR(got.dx[i], want.dx[i], 1e-5f * scale) << what << " dx[" << i << "]";
}

TEST(LmHeadLoss, ChunksCoverTheRowsUnevenly) {
  const int64_t rows = ops::detail::lm_head_chunk_rows(kV);
  ASSERT_LT(rows, kB * kT) << "the test needs more than one chunk";
  ASSERT_NE((kB * kT) % rows, 0) << "the test needs a short last chunk";
}

TEST(LmHeadLoss, FrozenHeadEqualsThePlainGraph) {
  const Tensor x = random_tensor({kB, kT, kC}, 1, 1.0f), w = random_tensor({kV, kC}, 2, 0.5f);
  for (int32_t every : {0, 3}) {  // no ignored target, then every third one ignored
    const Tensor t = targets_with(every);
    expect_same(run(true, x, w, t, 1.0f), run(false, x, w, t, 1.0f), every ? "ignored targets" : "all targets");
  }
}

TEST(LmHeadLoss, AScaledLossScalesTheGradient) {
  const Tensor x = random_tensor({kB, kT, kC}, 3, 1.0f), w = random_tensor({kV, kC}, 4, 0.5f);
  const Tensor t = targets_with(4);
  const LossAndGrad fused = run(true, x, w, t, 2.5f), plain = run(false, x, w, t, 2.5f);
  expect_same(fused, plain, "g = 2.5");
  const LossAndGrad unit = run(true, x, w, t, 1.0f);
  for (size_t i = 0; i < unit.dx.size(); ++i) ASSERT_FLOAT_EQ(fused.dx[i], 2.5f * unit.dx[i]) << i;
}

TEST(LmHeadLoss, EveryTargetIgnoredGivesZeroLossAndGradient) {
  const Tensor x = random_tensor({kB, kT, kC}, 5, 1.0f), w = random_tensor({kV, kC}, 6, 0.5f);
  const Tensor t = Tensor::from_ints(std::vector<int32_t>(kB * kT, -100), {kB, kT});
  const LossAndGrad r = run(true, x, w, t, 1.0f);
  EXPECT_EQ(r.loss, 0.0f);
  for (float v : r.dx) ASSERT_EQ(v, 0.0f);
}

TEST(LmHeadLoss, BadTargetsAreErrors) {
  Tensor x = random_tensor({2, kC}, 7, 1.0f), w = random_tensor({kV, kC}, 8, 0.5f);
  x.set_requires_grad(true);
  EXPECT_THROW(ops::linear_cross_entropy(x, w, Tensor::from_ints({1, int32_t(kV)}, {2})), sllm::Error);
  EXPECT_THROW(ops::linear_cross_entropy(x, w, Tensor::from_ints({1, 2, 3}, {3})), sllm::Error);
}

}  // namespace
}  // namespace sllm
