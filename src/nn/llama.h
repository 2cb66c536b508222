// Llama's trunk (Touvron et al. 2023; HF LlamaModel): token embeddings, pre-RMSNorm blocks
// with RoPE and grouped-query attention, a final RMSNorm. HF names:
// "model.embed_tokens", "model.layers.<l>.{input_layernorm, self_attn,
// post_attention_layernorm, mlp}", "model.norm". The untied "lm_head" is the Transformer's.
#pragma once
#include <string>
#include <vector>

#include "nn/attention.h"
#include "nn/mlp.h"
#include "nn/norm.h"
#include "nn/trunk.h"

namespace sllm::nn {

// x + self_attn(input_layernorm(x)), then that + mlp(post_attention_layernorm(that)).
class LlamaBlock {
 public:
  LlamaBlock(const std::string& path, const ModelConfig& config);  // path "model.layers.<l>"
  Tensor forward(const Tensor& x, const AttentionStep& step, const RopeTables& rope, DType act) const;
  void append_parameters(std::vector<Parameter>& out);
  void append_linears(std::vector<Linear*>& out);

 private:
  RMSNorm input_layernorm_;
  LlamaAttention self_attn_;
  RMSNorm post_attention_layernorm_;
  LlamaMLP mlp_;
};

class LlamaTrunk final : public Trunk {
 public:
  explicit LlamaTrunk(const ModelConfig& config);
  Tensor forward(const Tensor& ids, KVCache* cache, DType act) override;
  Embedding& token_embedding() override { return embed_tokens_; }
  void append_parameters(std::vector<Parameter>& out) override;
  void append_linears(std::vector<Linear*>& out) override;
  std::vector<Tensor*> buffers() override { return {&rope_.cos, &rope_.sin}; }

 private:
  Embedding embed_tokens_;  // (V, C)
  std::vector<LlamaBlock> layers_;
  RMSNorm norm_;
  RopeTables rope_;  // (n_ctx, HD/2) each
};

}  // namespace sllm::nn
