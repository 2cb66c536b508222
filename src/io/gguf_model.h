// Llama models from GGUF files (issue 12, deliverable 3): llama.cpp's tensor names and
// hyperparameter keys mapped to sllm's (Hugging Face) ones, quantized weights dequantized to
// f32 on load, and the Q/K row permutation of llama.cpp's converter undone.
#pragma once
#include <memory>
#include <string>

#include "io/gguf.h"
#include "nn/config.h"
#include "nn/transformer.h"

namespace sllm::io {

// The config from the `llama.*` keys (general.architecture must be "llama"; any other
// architecture is an error naming it). Tied head when the file has no output.weight.
nn::ModelConfig gguf_llama_config(const GgufFile& file);

// "blk.3.attn_q.weight" -> "model.layers.3.self_attn.q_proj.weight"; "" for a name that has
// no Hugging Face counterpart.
std::string gguf_to_hf_name(const std::string& gguf_name);

// Undo llama.cpp's rotary row permutation of a Q or K weight in place: `w` holds rows x cols
// floats (rows = n_heads * head_dim), `n_heads` is the query or the KV head count.
void gguf_unpermute_rows(float* w, int64_t rows, int64_t cols, int64_t n_heads);

std::unique_ptr<nn::Transformer> load_gguf_model(const std::string& path);

// A regular file whose name ends in ".gguf": what every `--model` accepts beside a model
// directory (io::load_model, infer::resolve_model_dir route it here).
bool is_gguf_file(const std::string& path);
std::unique_ptr<nn::Transformer> load_gguf_model(const GgufFile& file);

}  // namespace sllm::io
