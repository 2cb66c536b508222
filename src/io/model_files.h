// Model directories: config.json + model.safetensors with Hugging Face tensor names, so
// `transformers` loads what sllm trains and sllm loads HF checkpoints of these families.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "nn/transformer.h"

namespace sllm::io {

// Reads DIR/config.json and DIR/model.safetensors; a .gguf file instead of DIR is read by
// load_gguf_model (gguf_model.h).
std::unique_ptr<nn::Transformer> load_model(const std::string& dir);
// Loads weights into an existing model. Accepts f32/f16/bf16 tensors, GPT-2 names with or
// without the "transformer." prefix, and ignores HF's non-parameter buffers (attn.bias,
// attn.masked_bias, rotary_emb.inv_freq) and a tied lm_head.weight. Any other tensor the
// model has no parameter for is an error, as is a missing one.
//
// `extra`: tensors the file holds beside the model's parameters (a reward model's
// score.weight, rl/reward_model.h), by their exact names in the file (no "transformer."
// prefix is added, nothing is transposed), each read into the given defined CPU f32 tensor
// of the expected shape. Each must be in the file.
void load_weights(nn::Transformer& model, const std::string& safetensors_path,
                  const std::map<std::string, Tensor*>& extra = {});
// Writes DIR/config.json and DIR/model.safetensors (f32), each atomically; DIR is created.
void save_model(const nn::Transformer& model, const std::string& dir);
// `extra`: tensors written after the parameters under their names (f32, as they are; on any
// device). `replaced`: parameter name → the tensor written in that parameter's place (the
// same shape, f32: a LoRA run's merged weights), leaving the model untouched.
void save_weights(const nn::Transformer& model, const std::string& safetensors_path,
                  const std::vector<std::pair<std::string, Tensor>>& extra = {},
                  const std::map<std::string, Tensor>& replaced = {});
void save_config(const nn::ModelConfig& config, const std::string& path);

}  // namespace sllm::io
