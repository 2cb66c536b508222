// GPT-2's trunk (Radford et al. 2019; HF GPT2Model): token and learned position
// embeddings, pre-LayerNorm blocks, a final LayerNorm. HF names: "transformer.wte",
// "transformer.wpe", "transformer.h.<l>.{ln_1, attn, ln_2, mlp}", "transformer.ln_f".
#pragma once
#include <string>
#include <vector>

#include "nn/attention.h"
#include "nn/mlp.h"
#include "nn/norm.h"
#include "nn/trunk.h"

namespace sllm::nn {

// x + attn(ln_1(x)), then that + mlp(ln_2(that)); the residual stream stays fp32.
class GPT2Block {
 public:
  GPT2Block(const std::string& path, const ModelConfig& config);  // path "transformer.h.<l>"
  Tensor forward(const Tensor& x, const AttentionStep& step, DType act) const;
  void append_parameters(std::vector<Parameter>& out);
  void append_linears(std::vector<Linear*>& out);

 private:
  LayerNorm ln_1_;
  GPT2Attention attn_;
  LayerNorm ln_2_;
  GPT2MLP mlp_;
};

class GPT2Trunk final : public Trunk {
 public:
  explicit GPT2Trunk(const ModelConfig& config);
  Tensor forward(const Tensor& ids, KVCache* cache, DType act) override;
  Embedding& token_embedding() override { return wte_; }
  void append_parameters(std::vector<Parameter>& out) override;
  void append_linears(std::vector<Linear*>& out) override;

 private:
  Embedding wte_;  // (V, C)
  Embedding wpe_;  // (n_ctx, C)
  std::vector<GPT2Block> h_;
  LayerNorm ln_f_;
};

}  // namespace sllm::nn
