// Batched generation on the (simulated) GPU with bf16 compute: the KV cache holds bf16 keys
// and values, each row of a ragged batch equals that row generated alone bit for bit, the
// drawn tokens' log-probabilities agree with a bf16 full forward (no cache) within bf16's
// precision, and greedy rows follow the f32 CPU model's tokens for the first steps.
#include <cmath>

#include <gtest/gtest.h>

#include "autograd/autograd.h"
#include "core/rng.h"
#include "infer/batch_generate.h"
#include "nn/config.h"
#include "nn/transformer.h"
#include "ops/device.h"
#include "ops/ops.h"
#include "tests/cuda/cuda_test_support.h"

namespace sllm::infer {
namespace {

// Llama with GQA and a head dim of 16, the smallest the bf16 attention kernel takes.
nn::ModelConfig config() {
  nn::ModelConfig c;
  c.family = nn::Family::Llama;
  c.vocab_size = 64;
  c.n_ctx = 32;
  c.n_embd = 64;
  c.n_layer = 2;
  c.n_head = 4;
  c.n_kv_head = 2;
  c.n_inner = 96;
  c.tie_embeddings = false;
  return c;
}

std::vector<std::vector<int32_t>> prompts() {
  Rng rng(3);
  std::vector<std::vector<int32_t>> out;
  for (int len : {1, 5, 9, 3}) {
    std::vector<int32_t> p;
    for (int i = 0; i < len; ++i) p.push_back(static_cast<int32_t>(rng.below(64)));
    out.push_back(p);
  }
  return out;
}

class CudaBatchGenerate : public kernels::cuda::testing::CudaOpsTest {};

TEST_F(CudaBatchGenerate, Bf16CacheRowsEqualEachRowAloneAndFollowAFullForward) {
  nn::Transformer model(config());
  model.init(5);
  model.to(Device::CUDA);
  model.set_compute_dtype(DType::BF16);
  EXPECT_EQ(model.make_cache(2).k.front().dtype(), DType::BF16);
  BatchGenerateOptions o;
  o.max_new_tokens = 8;
  o.sampling.temperature = 1.0f;
  o.sampling.seed = 9;
  o.stop_ids = {7};
  const auto ps = prompts();
  const std::vector<GeneratedRow> rows = generate_batch(model, ps, o);
  for (size_t b = 0; b < ps.size(); ++b) {
    BatchGenerateOptions alone = o;
    alone.seeds = {o.sampling.seed + b};
    const GeneratedRow one = generate_batch(model, {ps[b]}, alone).front();
    EXPECT_EQ(rows[b].tokens, one.tokens) << "row " << b;
    EXPECT_EQ(rows[b].logprobs, one.logprobs) << "row " << b;
    // The cached decoding against a full bf16 forward over the whole sequence: the same
    // arithmetic in another order, so within bf16 rounding (a position or cache bug is O(1)).
    std::vector<int32_t> seq = ps[b];
    seq.insert(seq.end(), rows[b].tokens.begin(), rows[b].tokens.end());
    autograd::NoGradGuard no_grad;
    const int64_t T = static_cast<int64_t>(seq.size()), P = static_cast<int64_t>(ps[b].size()), V = 64;
    const Tensor logits = ops::cast(model.forward(Tensor::from_ints(seq, {1, T})), DType::F32).to(Device::CPU);
    for (size_t i = 0; i < rows[b].tokens.size(); ++i) {
      const float* row = logits.f32() + (P - 1 + static_cast<int64_t>(i)) * V;
      double mx = -1e30, z = 0;
      for (int64_t v = 0; v < V; ++v) mx = std::max<double>(mx, row[v]);
      for (int64_t v = 0; v < V; ++v) z += std::exp(row[v] - mx);
      EXPECT_NEAR(rows[b].logprobs[i], row[rows[b].tokens[i]] - mx - std::log(z), 0.05) << "row " << b << " token " << i;
    }
  }
}

TEST_F(CudaBatchGenerate, Bf16GreedyFollowsTheF32CpuModelAtFirst) {
  nn::Transformer cpu(config());
  cpu.init(6);
  nn::Transformer gpu(config());
  gpu.init(6);
  gpu.to(Device::CUDA);
  gpu.set_compute_dtype(DType::BF16);
  BatchGenerateOptions o;
  o.max_new_tokens = 2;
  o.sampling.temperature = 0.0f;
  const auto ps = prompts();
  const auto a = generate_batch(cpu, ps, o), b = generate_batch(gpu, ps, o);
  int same = 0;
  for (size_t r = 0; r < ps.size(); ++r) same += a[r].tokens.front() == b[r].tokens.front();
  EXPECT_GE(same, 3) << "bf16 greedy's first token differs from f32's on most rows";
}

}  // namespace
}  // namespace sllm::infer
