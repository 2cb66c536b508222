// Model directories: config.json + model.safetensors with Hugging Face tensor names, so
// `transformers` loads what sllm trains and sllm loads HF checkpoints of these families.
#pragma once
#include <memory>
#include <string>

#include "nn/transformer.h"

namespace sllm::io {

// Reads DIR/config.json and DIR/model.safetensors; a .gguf file instead of DIR is read by
// load_gguf_model (gguf_model.h).
std::unique_ptr<nn::Transformer> load_model(const std::string& dir);
// Loads weights into an existing model. Accepts f32/f16/bf16 tensors, GPT-2 names with or
// without the "transformer." prefix, and ignores HF's non-parameter buffers (attn.bias,
// attn.masked_bias, rotary_emb.inv_freq) and a tied lm_head.weight.
void load_weights(nn::Transformer& model, const std::string& safetensors_path);
// Writes DIR/config.json and DIR/model.safetensors (f32), each atomically; DIR is created.
void save_model(const nn::Transformer& model, const std::string& dir);
void save_weights(const nn::Transformer& model, const std::string& safetensors_path);
void save_config(const nn::ModelConfig& config, const std::string& path);

}  // namespace sllm::io
