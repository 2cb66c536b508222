// One whole training step on the GPU against the same step on the CPU, from the same
// initialization and batch: logits, loss, every parameter gradient, the gradient norm,
// and the parameters after one AdamW step. This exercises the ops layer's device dispatch
// end to end (every op a Transformer uses, autograd's device accumulation, the optimizer).
// TF32 stays off: both sides are fp32.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "autograd/autograd.h"
#include "nn/config.h"
#include "nn/transformer.h"
#include "ops/device.h"
#include "ops/ops.h"
#include "optim/adamw.h"
#include "optim/grad_clip.h"
#include "tests/cuda/cuda_test_support.h"

namespace sllm::kernels::cuda::testing {
namespace {

// Tolerances, relative to the largest magnitude of the CPU tensor compared:
// Forward and gradients: every op is fp32 on both sides but sums in a different order
// (cuBLAS vs our GEMM, warp vs SIMD reductions); each op adds ~1e-6 relative error and a
// step chains a few dozen of them, so 1e-4 of the tensor's scale holds with margin, while a
// wrong kernel (a dropped term of a K <= 512 sum, a transposed operand) is off by >= 1e-3.
constexpr double kModelTol = 1e-4;
// AdamW on identical inputs (the GPU's own gradients): pointwise sqrt and division, a few
// ulp each, so 1e-6 of the parameter scale.
constexpr double kAdamTol = 1e-6;

void expect_near_scaled(const std::vector<float>& got, const std::vector<float>& want, double tol,
                        const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double scale = 0.0;
  for (float w : want) scale = std::max(scale, double(std::fabs(w)));
  const double bound = tol * std::max(scale, 1e-30);
  size_t bad = 0;
  for (size_t i = 0; i < got.size(); ++i)
    if (!(std::fabs(double(got[i]) - double(want[i])) <= bound) && bad++ < 3)
      ADD_FAILURE() << what << "[" << i << "]: got " << got[i] << ", want " << want[i] << " (bound " << bound << ")";
  EXPECT_EQ(bad, 0u) << what << ": elements outside the bound";
}

std::vector<optim::ParamRef> params_of(nn::Transformer& model) {
  std::vector<optim::ParamRef> refs;
  for (auto& p : model.parameters()) refs.push_back({p.name, p.value, optim::default_decay(p.name, p.value)});
  return refs;
}

class CudaTrainStep : public CudaTest {
 protected:
  void SetUp() override {
    CudaTest::SetUp();
    if (IsSkipped()) return;
    ops::init_device(Device::CUDA);
    set_tf32(false);
  }

  void check_one_step(const nn::ModelConfig& config) {
    const int64_t B = 2, T = 24;
    const auto V = static_cast<int32_t>(config.vocab_size);
    Tensor ids = Tensor::from_ints(random_ids(B * T, V, 11), {B, T});
    Tensor targets = Tensor::from_ints(random_ids(B * T, V, 12), {B, T});

    nn::Transformer cpu(config), gpu(config);
    cpu.init(7);
    gpu.init(7);
    gpu.to(Device::CUDA);

    Tensor logits_cpu = cpu.forward(ids), logits_gpu = gpu.forward(ids);
    ASSERT_EQ(logits_gpu.device(), Device::CUDA);
    expect_near_scaled(logits_gpu.to_floats(), logits_cpu.to_floats(), kModelTol, "logits");
    Tensor loss_cpu = ops::cross_entropy(logits_cpu, targets), loss_gpu = ops::cross_entropy(logits_gpu, targets);
    EXPECT_NEAR(loss_gpu.item(), loss_cpu.item(), kModelTol * loss_cpu.item());
    autograd::backward(loss_cpu);
    autograd::backward(loss_gpu);

    auto refs_cpu = params_of(cpu), refs_gpu = params_of(gpu);
    for (size_t i = 0; i < refs_cpu.size(); ++i) {
      ASSERT_TRUE(refs_gpu[i].param.grad().defined()) << refs_gpu[i].name;
      EXPECT_EQ(refs_gpu[i].param.grad().device(), Device::CUDA) << refs_gpu[i].name;
      expect_near_scaled(refs_gpu[i].param.grad().to_floats(), refs_cpu[i].param.grad().to_floats(), kModelTol,
                         "grad " + refs_cpu[i].name);
    }
    // max_norm huge: the norm is computed, nothing is scaled.
    const double norm_cpu = optim::clip_grad_norm(refs_cpu, 1e30), norm_gpu = optim::clip_grad_norm(refs_gpu, 1e30);
    EXPECT_NEAR(norm_gpu, norm_cpu, kModelTol * norm_cpu);

    // AdamW: the GPU step against the CPU optimizer applied to the same (GPU) gradients, so
    // the comparison isolates the update from the gradients' own small differences.
    nn::Transformer ref(config);
    ref.init(7);
    auto refs_ref = params_of(ref);
    for (size_t i = 0; i < refs_ref.size(); ++i) refs_ref[i].param.set_grad(refs_gpu[i].param.grad().to(Device::CPU));
    const optim::AdamWConfig adam{1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f};
    optim::AdamW opt_ref(refs_ref, adam), opt_gpu(refs_gpu, adam);
    opt_ref.step(1e-3f);
    opt_gpu.step(1e-3f);
    for (size_t i = 0; i < refs_ref.size(); ++i)
      expect_near_scaled(refs_gpu[i].param.to_floats(), refs_ref[i].param.to_floats(), kAdamTol,
                         "param after AdamW " + refs_ref[i].name);
  }
};

TEST_F(CudaTrainStep, Gpt2TinyMatchesTheCpu) { check_one_step(nn::preset("tiny")); }

TEST_F(CudaTrainStep, LlamaTinyMatchesTheCpu) {
  nn::ModelConfig c{nn::Family::Llama, 512, 64, 32, 2, 4, 2, 128};  // GQA, RoPE, SwiGLU, untied head
  c.tie_embeddings = false;
  c.validate();
  check_one_step(c);
}

}  // namespace
}  // namespace sllm::kernels::cuda::testing
