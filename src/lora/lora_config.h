// LoRA's hyperparameters, as PEFT's LoraConfig names them (peft/tuners/lora/config.py), and
// the choice of the Linears an adapter sits on (PEFT's target_modules).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "nn/linear.h"
#include "nn/transformer.h"

namespace sllm::lora {

// How A starts (B always starts at zero, so an added adapter leaves the model unchanged:
// Hu et al. 2021, section 4.1, "zero initialization for B").
enum class InitA {
  KaimingUniform,  // PEFT's default (init_lora_weights=True): U(-1/sqrt(in), 1/sqrt(in))
  Gaussian,        // PEFT's init_lora_weights="gaussian": N(0, (1/r)^2)
};

struct LoraConfig {
  int64_t r = 8;               // rank of the update B·A
  float lora_alpha = 8.0f;     // the update is scaled by alpha / r (alpha / sqrt(r) with rslora)
  float lora_dropout = 0.0f;   // dropout on the adapter's input, training only
  bool use_rslora = false;     // rank-stabilized scale alpha / sqrt(r) (Kalajdzievski 2023)
  // PEFT's target_modules: module names matched against each Linear's HF path (see
  // match_target), or the single word "all-linear" (every Linear of the trunk, not the head).
  std::vector<std::string> target_modules = {"all-linear"};
  // A regular expression matched against the whole path instead of the list (PEFT accepts a
  // string target_modules as a regex, check_target_module_exists). Empty: use the list.
  std::string target_regex;
  InitA init_a = InitA::KaimingUniform;
  uint64_t seed = 0;  // A's init and the dropout masks
};

// "q_proj,v_proj" (spaces ignored) → {"q_proj", "v_proj"}; "all-linear" stays one word.
std::vector<std::string> parse_targets(const std::string& comma_list);

// s = alpha / r, or alpha / sqrt(r) with use_rslora. Checks r > 0, alpha > 0 and
// 0 <= dropout < 1 (sllm::Error with a hint otherwise).
float lora_scale(const LoraConfig& cfg);
void check_config(const LoraConfig& cfg);

// PEFT's rule for a list entry (peft/tuners/tuners_utils.py, check_target_module_exists):
// the path equals the target or ends with "." + target.
bool match_target(const std::string& path, const std::string& target);

// The model's Linears the config selects, in model order. Each list entry must match at
// least one Linear (sllm::Error listing the valid names otherwise), and so must a regex.
std::vector<nn::Linear*> select_targets(nn::Transformer& model, const LoraConfig& cfg);

// The distinct last components of the paths ("c_attn", "q_proj"), sorted: what PEFT writes
// as target_modules after expanding "all-linear", and the names an error lists.
std::vector<std::string> module_names(const std::vector<nn::Linear*>& linears);

}  // namespace sllm::lora
