// Shared pieces of the inference tests: small models with weights large enough that
// attention is far from uniform (so a position or cache bug changes the logits), an
// independent greedy decoder that re-runs the full forward per token, and temp dirs.
#pragma once
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "autograd/autograd.h"
#include "core/rng.h"
#include "nn/config.h"
#include "nn/transformer.h"

namespace sllm::infer::testing {

// GPT-2 "tiny" preset: V 512, n_ctx 64, C 32, 2 layers, 4 heads.
inline nn::ModelConfig gpt2_config() { return nn::preset("tiny"); }

// A small Llama with grouped-query attention (6 query heads share 2 KV heads), RoPE and an
// untied lm_head.
inline nn::ModelConfig llama_config() {
  nn::ModelConfig c;
  c.family = nn::Family::Llama;
  c.vocab_size = 96;
  c.n_ctx = 48;
  c.n_embd = 48;
  c.n_layer = 2;
  c.n_head = 6;
  c.n_kv_head = 2;
  c.n_inner = 96;
  c.tie_embeddings = false;
  return c;
}

// Weights N(0, 0.15), biases N(0, 0.05), norm weights 1 + N(0, 0.1). GPT-2's init (std 0.02)
// would make attention scores ~1e-3, nearly uniform attention, and a test blind to which
// positions a query sees; with std 0.15 the scores are O(1).
inline void randomize(nn::Transformer& model, uint64_t seed) {
  Rng rng(seed);
  for (auto& p : model.parameters()) {
    float* w = p.value.mutable_f32();
    const bool vector = p.value.ndim() == 1;
    const bool bias = vector && p.name.size() >= 5 && p.name.compare(p.name.size() - 5, 5, ".bias") == 0;
    for (int64_t i = 0; i < p.value.numel(); ++i) {
      const float z = static_cast<float>(rng.normal());
      w[i] = !vector ? 0.15f * z : bias ? 0.05f * z : 1.0f + 0.1f * z;
    }
  }
}

inline std::vector<int32_t> random_ids(int64_t n, int64_t V, uint64_t seed) {
  Rng rng(seed);
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (auto& id : ids) id = static_cast<int32_t>(rng.below(static_cast<uint64_t>(V)));
  return ids;
}

// Greedy decoding the slow, obvious way: a full forward (no cache) over the whole sequence
// for every new token, argmax over ids < vocab_limit (first maximum), stop before `stop`.
inline std::vector<int32_t> greedy_reference(nn::Transformer& model, std::vector<int32_t> seq, int64_t n,
                                             int64_t vocab_limit = 0, int32_t stop = -1) {
  autograd::NoGradGuard no_grad;
  const int64_t V = model.config().vocab_size, Vd = vocab_limit > 0 ? vocab_limit : V;
  std::vector<int32_t> out;
  for (int64_t step = 0; step < n; ++step) {
    const int64_t T = static_cast<int64_t>(seq.size());
    Tensor logits = model.forward(Tensor::from_ints(seq, {1, T}));
    const float* row = logits.f32() + (T - 1) * V;
    int32_t best = 0;
    for (int32_t i = 1; i < Vd; ++i)
      if (row[i] > row[best]) best = i;
    if (best == stop) break;
    out.push_back(best);
    seq.push_back(best);
  }
  return out;
}

// A fresh directory per test, removed at the end of the test.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path = std::filesystem::temp_directory_path() /
           (std::string("sllm_test_infer_") + info->test_suite_name() + "_" + info->name() + "_" + std::to_string(::getpid()));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string str() const { return path.string(); }
};

}  // namespace sllm::infer::testing
