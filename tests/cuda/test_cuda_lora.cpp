// LoRA on the GPU against the CPU (src/lora): the same tiny model and adapter on both, fp32
// logits and the gradients of every A and B, merge, and the bf16 mixed-precision path
// (ops::linear reads the bf16 shadows of A and s·B; dropout's f32 round trip).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "autograd/autograd.h"
#include "core/rng.h"
#include "lora/lora_model.h"
#include "nn/transformer.h"
#include "ops/device.h"
#include "tests/cuda/cuda_test_support.h"

namespace sllm::kernels::cuda::testing {
namespace {

// fp32 on both sides, sums in another order: the bound of test_cuda_train_step.cpp.
constexpr double kModelTol = 1e-4;
// A whole bf16 model against fp32: bf16's 8-bit mantissa (2^-9 relative per rounding)
// over a few chained matmuls; the gradients' L2 error stays within a few percent.
constexpr double kBf16GradL2 = 5e-2;

double worst_scaled(const std::vector<float>& got, const std::vector<float>& want) {
  double scale = 0, worst = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    scale = std::max(scale, double(std::fabs(want[i])));
    worst = std::max(worst, std::fabs(double(got[i]) - want[i]));
  }
  return worst / std::max(scale, 1e-30);
}

nn::ModelConfig tiny(nn::Family family) {
  nn::ModelConfig c;
  c.family = family;
  c.vocab_size = 67;
  c.n_ctx = 32;
  c.n_embd = 32;
  c.n_layer = 2;
  c.n_head = 4;
  c.n_kv_head = family == nn::Family::GPT2 ? 4 : 2;
  c.n_inner = family == nn::Family::GPT2 ? 128 : 96;
  c.tie_embeddings = family == nn::Family::GPT2;
  return c;
}

// B gets the same random values on both models (A already agrees: same seed).
void same_random_B(lora::LoraModel& cpu, lora::LoraModel& gpu) {
  Rng rng(5);
  auto pc = cpu.parameters(), pg = gpu.parameters();
  ASSERT_EQ(pc.size(), pg.size());
  for (size_t i = 0; i < pc.size(); ++i) {
    ASSERT_EQ(pc[i].name, pg[i].name);
    EXPECT_EQ(pg[i].value.to_floats(), pc[i].value.to_floats()) << pc[i].name;
    if (pc[i].name.find("lora_B") == std::string::npos) continue;
    for (int64_t k = 0; k < pc[i].value.numel(); ++k) pc[i].value.mutable_f32()[k] = float(rng.normal()) * 0.1f;
    pg[i].value.copy_from(pc[i].value.to(Device::CUDA));
  }
}

class CudaLora : public CudaOpsTest, public ::testing::WithParamInterface<nn::Family> {};

TEST_P(CudaLora, MatchesTheCpuInFp32AndBf16) {
  set_tf32(false);
  const nn::ModelConfig config = tiny(GetParam());
  Tensor ids = Tensor::from_ints(random_ids(2 * 16, 67, 21), {2, 16});
  Tensor targets = Tensor::from_ints(random_ids(2 * 16, 67, 22), {2, 16});
  nn::Transformer cpu(config), gpu(config);
  cpu.init(3);
  gpu.init(3);
  gpu.to(Device::CUDA);
  lora::LoraModel lc(cpu), lg(gpu);
  lora::LoraConfig cfg;
  cfg.r = 4;
  cfg.lora_alpha = 8;
  lc.add_adapter("default", cfg);
  lg.add_adapter("default", cfg);
  same_random_B(lc, lg);

  const std::vector<float> logits_cpu = cpu.forward(ids).to_floats();
  EXPECT_LE(worst_scaled(gpu.forward(ids).to_floats(), logits_cpu), kModelTol);
  autograd::backward(cpu.loss(ids, targets));
  autograd::backward(gpu.loss(ids, targets));
  for (auto& p : gpu.parameters()) EXPECT_FALSE(p.value.grad().defined()) << p.name;
  auto pc = lc.parameters(), pg = lg.parameters();
  for (size_t i = 0; i < pc.size(); ++i)
    EXPECT_LE(worst_scaled(pg[i].value.grad().to_floats(), pc[i].value.grad().to_floats()), kModelTol) << pc[i].name;

  lg.merge();
  EXPECT_LE(worst_scaled(gpu.forward(ids).to_floats(), logits_cpu), kModelTol);
  lg.unmerge();

  // bf16 mixed precision, with dropout on (training): runs, gives A and B fp32 gradients
  // close to the fp32 ones, and none to the base.
  for (auto& p : pg) p.value.zero_grad();
  gpu.set_compute_dtype(DType::BF16);
  autograd::backward(gpu.loss(ids, targets));
  for (auto& p : gpu.parameters()) EXPECT_FALSE(p.value.grad().defined()) << p.name;
  for (size_t i = 0; i < pc.size(); ++i) {
    ASSERT_EQ(pg[i].value.grad().dtype(), DType::F32) << pc[i].name;
    EXPECT_LE(relative_l2(pg[i].value.grad().to_floats(), pc[i].value.grad().to_floats()), kBf16GradL2) << pc[i].name;
  }
  lora::LoraConfig drop = cfg;
  drop.lora_dropout = 0.2f;
  lg.add_adapter("dropout", drop);
  // B of the first adapter, so the dropout adapter changes the output and its masks show.
  const auto trained = lg.parameters("default"), fresh = lg.parameters("dropout");
  for (size_t i = 1; i < fresh.size(); i += 2) fresh[i].value.copy_from(trained[i].value);
  lg.set_training(false);
  const float eval_loss = gpu.loss(ids, targets).item();
  lg.set_training(true);
  const float l1 = gpu.loss(ids, targets).item(), l2 = gpu.loss(ids, targets).item();
  EXPECT_TRUE(std::isfinite(l1));
  EXPECT_EQ(l1, l2);  // same step, same masks
  EXPECT_NE(l1, eval_loss);  // the masks do act
}

INSTANTIATE_TEST_SUITE_P(Families, CudaLora, ::testing::Values(nn::Family::GPT2, nn::Family::Llama),
                         [](const auto& info) { return info.param == nn::Family::GPT2 ? "gpt2" : "llama"; });

}  // namespace
}  // namespace sllm::kernels::cuda::testing
