// Model configuration: one struct for both families, read from and written to a Hugging
// Face style config.json (GPT2Config / LlamaConfig keys), or taken from a built-in preset.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace sllm::nn {

enum class Family { GPT2, Llama };

struct ModelConfig {
  Family family = Family::GPT2;
  int64_t vocab_size = 0;
  int64_t n_ctx = 0;        // max positions
  int64_t n_embd = 0;       // C
  int64_t n_layer = 0;
  int64_t n_head = 0;       // NH
  int64_t n_kv_head = 0;    // NKV (== NH for GPT-2)
  int64_t n_inner = 0;      // MLP hidden size (4C for GPT-2; intermediate_size for Llama)
  double norm_eps = 1e-5;   // double so config.json gets the written value back, not a widened float
  double rope_theta = 10000.0;
  bool tie_embeddings = true;
  bool gelu_tanh = true;    // GPT-2 activation: gelu_new (tanh approximation) or exact gelu

  int64_t head_dim() const { return n_embd / n_head; }
  std::string family_name() const { return family == Family::GPT2 ? "gpt2" : "llama"; }
  void validate() const;  // sllm::Error with a hint on inconsistent sizes
  int64_t num_parameters() const;
};

// Reads the HF keys (n_embd/hidden_size, n_layer/num_hidden_layers, ...); `where` names the
// source in errors.
ModelConfig config_from_json(const nlohmann::json& j, const std::string& where);
nlohmann::json config_to_json(const ModelConfig& c);

// Built-in presets: tiny, small, small-llama, gpt2-124m, smollm2-135m.
std::vector<std::string> preset_names();
bool is_preset(const std::string& name);
ModelConfig preset(const std::string& name);

// A preset name, a config.json file, or a directory holding config.json.
ModelConfig load_config(const std::string& preset_or_path);

}  // namespace sllm::nn
