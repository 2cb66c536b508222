// Causal self-attention layers, one per family (dimensions: B batch, T time, C channels,
// NH query heads, NKV key/value heads, HD head dim, kvC = NKV*HD):
//   GPT2Attention: one packed projection c_attn (C → 3C) with bias, then c_proj.
//   LlamaAttention: q/k/v/o_proj without biases, RoPE on q and k, grouped-query (NKV ≤ NH).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "nn/config.h"
#include "nn/kv_cache.h"
#include "nn/linear.h"
#include "tensor/tensor.h"

namespace sllm::nn {

// RoPE's rotation tables (n_ctx, HD/2), shared by every Llama layer.
struct RopeTables {
  Tensor cos, sin;
};

class GPT2Attention {
 public:
  GPT2Attention(const std::string& path, const ModelConfig& config);  // path "transformer.h.<l>.attn"
  Tensor forward(const Tensor& h, const AttentionStep& step) const;   // (B, T, C) → (B, T, C)
  void append_parameters(std::vector<Parameter>& out);
  void append_linears(std::vector<Linear*>& out);

 private:
  int64_t n_head_, n_embd_;
  Linear c_attn_;  // C → 3C: q, k, v side by side
  Linear c_proj_;  // C → C
};

class LlamaAttention {
 public:
  LlamaAttention(const std::string& path, const ModelConfig& config);  // path "model.layers.<l>.self_attn"
  Tensor forward(const Tensor& h, const AttentionStep& step, const RopeTables& rope) const;
  void append_parameters(std::vector<Parameter>& out);
  void append_linears(std::vector<Linear*>& out);

 private:
  int64_t n_head_, n_kv_head_;
  Linear q_proj_;  // C → C
  Linear k_proj_;  // C → kvC
  Linear v_proj_;  // C → kvC
  Linear o_proj_;  // C → C
};

}  // namespace sllm::nn
