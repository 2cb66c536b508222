#include "nn/llama.h"

#include "autograd/autograd.h"

#include "kernels/kernels.h"
#include "ops/ops.h"

namespace sllm::nn {

LlamaBlock::LlamaBlock(const std::string& path, const ModelConfig& config)
    : input_layernorm_(path + ".input_layernorm", config.n_embd, static_cast<float>(config.norm_eps)),
      self_attn_(path + ".self_attn", config),
      post_attention_layernorm_(path + ".post_attention_layernorm", config.n_embd, static_cast<float>(config.norm_eps)),
      mlp_(path + ".mlp", config) {}

Tensor LlamaBlock::forward(const Tensor& x, const AttentionStep& step, const RopeTables& rope, DType act) const {
  Tensor a = self_attn_.forward(input_layernorm_.forward(x, act), step, rope);
  Tensor x1 = ops::add(x, a);  // the residual stream stays fp32 (f32 + bf16 -> f32)
  return ops::add(x1, mlp_.forward(post_attention_layernorm_.forward(x1, act)));
}

void LlamaBlock::append_parameters(std::vector<Parameter>& out) {
  input_layernorm_.append_parameters(out);
  self_attn_.append_parameters(out);
  post_attention_layernorm_.append_parameters(out);
  mlp_.append_parameters(out);
}

void LlamaBlock::append_linears(std::vector<Linear*>& out) {
  self_attn_.append_linears(out);
  mlp_.append_linears(out);
}

LlamaTrunk::LlamaTrunk(const ModelConfig& config)
    : embed_tokens_("model.embed_tokens", config.vocab_size, config.n_embd),
      norm_("model.norm", config.n_embd, static_cast<float>(config.norm_eps)) {
  layers_.reserve(static_cast<size_t>(config.n_layer));  // the blocks never move once built: Linear* stay valid
  for (int64_t l = 0; l < config.n_layer; ++l) layers_.emplace_back("model.layers." + std::to_string(l), config);
  const int64_t HD = config.head_dim();
  rope_.cos = Tensor::empty({config.n_ctx, HD / 2});
  rope_.sin = Tensor::empty({config.n_ctx, HD / 2});
  kernels::rope_table(rope_.cos.mutable_f32(), rope_.sin.mutable_f32(), config.n_ctx, HD,
                      static_cast<float>(config.rope_theta));
}

Tensor LlamaTrunk::forward(const Tensor& ids, KVCache* cache, DType act) {
  Tensor x = embed_tokens_.forward(ids);  // (B, T, C)
  for (size_t l = 0; l < layers_.size(); ++l) {
    const LlamaBlock& block = layers_[l];
    const AttentionStep step = attention_step(cache, l);
    if (checkpoint_blocks && !cache)
      x = autograd::checkpoint([&block, step, this, act](const Tensor& in) { return block.forward(in, step, rope_, act); },
                               x);
    else
      x = block.forward(x, step, rope_, act);
  }
  return norm_.forward(x, act);
}

void LlamaTrunk::append_parameters(std::vector<Parameter>& out) {
  embed_tokens_.append_parameters(out);
  for (LlamaBlock& block : layers_) block.append_parameters(out);
  norm_.append_parameters(out);
}

void LlamaTrunk::append_linears(std::vector<Linear*>& out) {
  for (LlamaBlock& block : layers_) block.append_linears(out);
}

}  // namespace sllm::nn
