// ops::linear_cross_entropy, the LM head and its loss in one op (src/ops/loss.cpp): on the
// bf16 CUDA path it pads the vocabulary to a multiple of 128 inside the op and writes
// dlogits over the logits. It must give what the two-op composition gives,
// cross_entropy(linear(x, W)), on the same device and dtype: the padding must be invisible
// (no loss term, no gradient, no trained row).
#include <gtest/gtest.h>

#include <vector>

#include "autograd/autograd.h"
#include "core/error.h"
#include "nn/config.h"
#include "nn/transformer.h"
#include "ops/device.h"
#include "ops/ops.h"
#include "tests/cuda/cuda_test_support.h"

namespace sllm::kernels::cuda::testing {
namespace {

// Both sides round the same bf16 x and the same bf16-rounded W, and each GEMM sums the same
// products in fp32 (the padded side only adds exact zeros): the logits, lse and losses are
// the same up to the GEMM's summation order, which cuBLAS may choose per shape on a GPU
// (~1e-6 relative; the simulator sums in k order and gives equal bits). dlogits are rounded
// to bf16 once on both sides, so they may differ by one bf16 ulp where the fp32 values
// straddle a rounding boundary; dx (bf16, rounded once more) and dW (fp32 sums over N rows)
// inherit that: 4e-3 relative per element (u = 2^-8) plus 1e-4 of the largest value.
constexpr Tolerance kLoss{1e-6, 1e-5};
constexpr Tolerance kGrad{1e-4, 8e-3};

struct Result {
  float loss;
  std::vector<float> dx, dw;
};

Result run(bool fused, const std::vector<float>& xv, const std::vector<float>& wv, const Tensor& targets, int64_t B,
           int64_t T, int64_t C, int64_t V, float upstream) {
  Tensor x32 = Tensor::from_floats(xv, {B, T, C}).to(Device::CUDA);
  x32.set_requires_grad(true);
  Tensor w = Tensor::from_floats(wv, {V, C}).to(Device::CUDA);
  w.set_requires_grad(true);
  Tensor x = ops::cast(x32, DType::BF16);
  Tensor loss = fused ? ops::linear_cross_entropy(x, w, targets) : ops::cross_entropy(ops::linear(x, w), targets);
  // An upstream factor (as gradient accumulation's loss / K) reaches the fused op's GEMMs.
  autograd::backward(upstream == 1.0f ? loss : ops::scale(loss, upstream));
  return {loss.item(), x32.grad().to(Device::CPU).to_floats(), w.grad().to(Device::CPU).to_floats()};
}

class LmHeadLoss : public CudaOpsTest {
 protected:
  void check(int64_t V, float upstream = 1.0f) {
    const int64_t B = 2, T = 7, C = 32;
    const std::vector<float> xv = uniform(B * T * C, 11, -2.0f, 2.0f);
    const std::vector<float> wv = uniform(V * C, 12, -0.5f, 0.5f);
    std::vector<int32_t> t = random_ids(B * T, int32_t(V), 13);
    t[3] = -100;  // ignored rows add no loss and no gradient
    t[9] = -100;
    t[0] = int32_t(V - 1);  // the last real column, next to the padding
    const Tensor targets = Tensor::from_ints(t, {B, T});
    const Result fused = run(true, xv, wv, targets, B, T, C, V, upstream);
    const Result plain = run(false, xv, wv, targets, B, T, C, V, upstream);
    expect_close({fused.loss}, {plain.loss}, kLoss, "loss");
    expect_close(fused.dx, plain.dx, kGrad, "dx");
    expect_close(fused.dw, plain.dw, kGrad, "dW");
    ASSERT_EQ(fused.dw.size(), size_t(V * C));  // the weight's gradient keeps the true vocab
  }
};

TEST_F(LmHeadLoss, PaddedVocabularyGivesTheUnpaddedLossAndGradients) { check(300); }  // padded to 384
TEST_F(LmHeadLoss, VocabularyAlreadyAMultipleOf128) { check(256); }
TEST_F(LmHeadLoss, VocabularyOneAboveAMultipleOf128) { check(129); }  // 127 padded columns
TEST_F(LmHeadLoss, UpstreamGradientScalesTheGradients) { check(300, 0.25f); }

TEST_F(LmHeadLoss, EveryTargetIgnoredGivesZeroLossAndZeroGradients) {
  Tensor x32 = Tensor::from_floats(uniform(2 * 8, 1), {2, 8}).to(Device::CUDA);
  x32.set_requires_grad(true);
  Tensor w = Tensor::from_floats(uniform(300 * 8, 2), {300, 8}).to(Device::CUDA);
  w.set_requires_grad(true);
  Tensor loss = ops::linear_cross_entropy(ops::cast(x32, DType::BF16), w, Tensor::from_ints({-100, -100}, {2}));
  autograd::backward(loss);
  EXPECT_EQ(loss.item(), 0.0f);
  for (float v : x32.grad().to(Device::CPU).to_floats()) ASSERT_EQ(v, 0.0f);
  for (float v : w.grad().to(Device::CPU).to_floats()) ASSERT_EQ(v, 0.0f);
}

TEST_F(LmHeadLoss, TargetOutsideTheTrueVocabularyIsAnError) {
  // A target in the padded range [V, Vp) must be rejected like any other out-of-range id.
  Tensor x = ops::cast(Tensor::from_floats(uniform(2 * 8, 1), {2, 8}).to(Device::CUDA), DType::BF16);
  Tensor w = Tensor::from_floats(uniform(300 * 8, 2), {300, 8}).to(Device::CUDA);
  EXPECT_THROW(ops::linear_cross_entropy(x, w, Tensor::from_ints({1, 300}, {2})), sllm::Error);
}

// The model's loss(ids, targets) is cross_entropy(forward(ids), targets), in bf16 on the
// device too (GPT-2 with its tied head and Llama with an untied one).
void check_model(nn::ModelConfig cfg) {
  nn::Transformer a(cfg), b(cfg);
  a.to(Device::CUDA);
  b.to(Device::CUDA);
  a.set_compute_dtype(DType::BF16);
  b.set_compute_dtype(DType::BF16);
  const int64_t B = 2, T = 8;
  std::vector<int32_t> ids = random_ids(B * T, int32_t(cfg.vocab_size), 5);
  std::vector<int32_t> tg = random_ids(B * T, int32_t(cfg.vocab_size), 6);
  tg[2] = -100;
  const Tensor in = Tensor::from_ints(ids, {B, T}), targets = Tensor::from_ints(tg, {B, T});
  Tensor la = a.loss(in, targets);
  Tensor lb = ops::cross_entropy(b.forward(in), targets);
  autograd::backward(la);
  autograd::backward(lb);
  expect_close({la.item()}, {lb.item()}, kLoss, "loss");
  for (size_t i = 0; i < a.parameters().size(); ++i) {
    const auto& pa = a.parameters()[i];
    expect_close(pa.value.grad().to(Device::CPU).to_floats(), b.parameters()[i].value.grad().to(Device::CPU).to_floats(),
                 kGrad, pa.name);
  }
}

TEST_F(LmHeadLoss, Gpt2ModelLossEqualsForwardThenCrossEntropy) { check_model(nn::preset("tiny")); }

TEST_F(LmHeadLoss, LlamaUntiedModelLossEqualsForwardThenCrossEntropy) {
  nn::ModelConfig cfg = nn::preset("small-llama");
  cfg.n_layer = 1;
  cfg.n_embd = 32;
  cfg.n_head = 2;
  cfg.n_kv_head = 1;
  cfg.n_inner = 64;
  cfg.vocab_size = 200;
  cfg.tie_embeddings = false;
  check_model(cfg);
}

}  // namespace
}  // namespace sllm::kernels::cuda::testing
