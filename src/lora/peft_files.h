// PEFT's adapter directory (huggingface/peft, PeftModel.save_pretrained / from_pretrained):
//   adapter_config.json        LoraConfig as JSON (peft_type "LORA", r, lora_alpha, ...)
//   adapter_model.safetensors  "base_model.model.<module path>.lora_A.weight" (r, in) and
//                              "….lora_B.weight" (out, r), for every adapted Linear
// The tensor layout is the same for GPT-2's Conv1D (PEFT builds lora_A/lora_B as nn.Linear
// whatever the base); fan_in_fan_out = true only tells PEFT the base weight is [in, out].
#pragma once
#include <string>

#include "lora/lora_config.h"
#include "lora/lora_model.h"

namespace sllm::lora {

inline constexpr const char* kAdapterConfigFile = "adapter_config.json";
inline constexpr const char* kAdapterWeightsFile = "adapter_model.safetensors";

// Writes adapter `name` (the active one by default) into `dir` (created if missing); each
// file is written atomically. base_model_name_or_path goes into the config as PEFT expects.
void save_adapter(LoraModel& lora, const std::string& dir, const std::string& base_model_name_or_path,
                  const std::string& name = "");

// The LoraConfig in dir/adapter_config.json (sllm::Error naming the file for anything sllm
// cannot honor: another peft_type, a bias other than "none", DoRA, per-layer patterns, ...).
LoraConfig read_adapter_config(const std::string& dir);

// Adds adapter `name` from `dir` and makes it active. Every targeted Linear must find its A
// and B with this model's shapes, and every LoRA tensor of the file must belong to a
// targeted Linear; otherwise sllm::Error naming the tensor (and both shapes), and the model
// is left unchanged.
void load_adapter(LoraModel& lora, const std::string& dir, const std::string& name = "default");

}  // namespace sllm::lora
