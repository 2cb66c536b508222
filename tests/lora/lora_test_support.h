// Shared helpers of the LoRA tests: tiny GPT-2 (Conv1D c_attn/c_proj/c_fc) and Llama
// (q/k/v/o, gate/up/down, GQA) models, token batches, trained-looking adapters, scratch dirs.
#pragma once
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/error.h"
#include "core/rng.h"
#include "lora/lora_model.h"
#include "nn/transformer.h"
#include "tensor/tensor.h"

namespace sllm::lora::testing {

inline constexpr int64_t kVocab = 97;

inline std::unique_ptr<nn::Transformer> tiny_model(nn::Family family, int64_t n_embd = 32, uint64_t seed = 7) {
  nn::ModelConfig cfg;
  cfg.family = family;
  cfg.vocab_size = kVocab;
  cfg.n_ctx = 32;
  cfg.n_embd = n_embd;
  cfg.n_layer = 2;
  cfg.n_head = 4;
  cfg.n_kv_head = family == nn::Family::GPT2 ? 4 : 2;
  cfg.n_inner = family == nn::Family::GPT2 ? 4 * n_embd : 3 * n_embd;
  cfg.tie_embeddings = family == nn::Family::GPT2;
  auto model = std::make_unique<nn::Transformer>(cfg);
  model->init(seed);
  return model;
}

// (B, T) ids and next-token targets.
inline std::pair<Tensor, Tensor> batch(int64_t B = 2, int64_t T = 8, uint64_t seed = 3) {
  Rng rng(seed);
  std::vector<int32_t> ids(B * T), targets(B * T);
  for (auto& v : ids) v = static_cast<int32_t>(rng.below(kVocab));
  for (auto& v : targets) v = static_cast<int32_t>(rng.below(kVocab));
  return {Tensor::from_ints(ids, {B, T}), Tensor::from_ints(targets, {B, T})};
}

// Gives every B of adapter `name` random values (as if trained), so the adapter changes the output.
inline void randomize_B(LoraModel& lora, uint64_t seed, const std::string& name = "", float stddev = 0.05f) {
  Rng rng(seed);
  for (const nn::Parameter& p : lora.parameters(name)) {
    if (p.name.find("lora_B") == std::string::npos) continue;
    float* b = p.value.mutable_f32();
    for (int64_t i = 0; i < p.value.numel(); ++i) b[i] = static_cast<float>(rng.normal()) * stddev;
  }
}

inline std::vector<float> floats(const Tensor& t) { return t.to_floats(); }

// The test-name suffix of a suite run over both families ("gpt2", "llama").
inline std::string family_name(const ::testing::TestParamInfo<nn::Family>& info) {
  return info.param == nn::Family::GPT2 ? "gpt2" : "llama";
}

inline std::vector<std::vector<float>> snapshot(nn::Transformer& model) {
  std::vector<std::vector<float>> out;
  for (const nn::Parameter& p : model.parameters()) out.push_back(p.value.to_floats());
  return out;
}

class ScratchDir {
 public:
  explicit ScratchDir(const std::string& tag) {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = std::filesystem::temp_directory_path() /
            ("sllm_lora_" + std::to_string(::getpid()) + "_" + (info ? std::string(info->name()) : "") + "_" + tag);
    std::filesystem::remove_all(path_);
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string str() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

// Runs fn and returns the sllm::Error's text ("" when nothing was thrown).
template <class Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace sllm::lora::testing
