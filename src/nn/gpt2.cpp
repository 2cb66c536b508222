#include "nn/gpt2.h"

#include <algorithm>

#include "autograd/autograd.h"

#include "ops/ops.h"

namespace sllm::nn {

GPT2Block::GPT2Block(const std::string& path, const ModelConfig& config)
    : ln_1_(path + ".ln_1", config.n_embd, static_cast<float>(config.norm_eps)),
      attn_(path + ".attn", config),
      ln_2_(path + ".ln_2", config.n_embd, static_cast<float>(config.norm_eps)),
      mlp_(path + ".mlp", config) {}

Tensor GPT2Block::forward(const Tensor& x, const AttentionStep& step, DType act) const {
  Tensor a = attn_.forward(ln_1_.forward(x, act), step);
  Tensor x1 = ops::add(x, a);  // the residual stream stays fp32 (f32 + bf16 -> f32)
  return ops::add(x1, mlp_.forward(ln_2_.forward(x1, act)));
}

void GPT2Block::append_parameters(std::vector<Parameter>& out) {
  ln_1_.append_parameters(out);
  attn_.append_parameters(out);
  ln_2_.append_parameters(out);
  mlp_.append_parameters(out);
}

void GPT2Block::append_linears(std::vector<Linear*>& out) {
  attn_.append_linears(out);
  mlp_.append_linears(out);
}

GPT2Trunk::GPT2Trunk(const ModelConfig& config)
    : wte_("transformer.wte", config.vocab_size, config.n_embd),
      wpe_("transformer.wpe", config.n_ctx, config.n_embd),
      ln_f_("transformer.ln_f", config.n_embd, static_cast<float>(config.norm_eps)) {
  h_.reserve(static_cast<size_t>(config.n_layer));  // the blocks never move once built: Linear* stay valid
  for (int64_t l = 0; l < config.n_layer; ++l) h_.emplace_back("transformer.h." + std::to_string(l), config);
}

Tensor GPT2Trunk::forward(const Tensor& ids, KVCache* cache, DType act) {
  const int64_t B = ids.dim(0), T = ids.dim(1), pos0 = cache ? cache->length : 0;
  Tensor positions;
  if (cache && cache->ragged()) {
    // (B, T): row b at its own positions. Padding tokens past a row's real ones may run past
    // the context; they are clamped into the table (their outputs are never used).
    const int64_t last = wpe_.weight().dim(0) - 1;
    positions = Tensor::empty({B, T}, DType::I32);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < T; ++t)
        positions.mutable_i32()[b * T + t] = static_cast<int32_t>(std::min(cache->row_length[size_t(b)] + t, last));
  } else {
    positions = Tensor::empty({T}, DType::I32);
    for (int64_t t = 0; t < T; ++t) positions.mutable_i32()[t] = static_cast<int32_t>(pos0 + t);
  }
  Tensor x = ops::add(wte_.forward(ids), wpe_.forward(positions));  // (B, T, C) + (T, C) or (B, T, C)
  for (size_t l = 0; l < h_.size(); ++l) {
    const GPT2Block& block = h_[l];
    const AttentionStep step = attention_step(cache, l);
    if (checkpoint_blocks && !cache)
      x = autograd::checkpoint([&block, step, act](const Tensor& in) { return block.forward(in, step, act); }, x);
    else
      x = block.forward(x, step, act);
  }
  return ln_f_.forward(x, act);
}

void GPT2Trunk::append_parameters(std::vector<Parameter>& out) {
  wte_.append_parameters(out);
  wpe_.append_parameters(out);
  for (GPT2Block& block : h_) block.append_parameters(out);
  ln_f_.append_parameters(out);
}

void GPT2Trunk::append_linears(std::vector<Linear*>& out) {
  for (GPT2Block& block : h_) block.append_linears(out);
}

}  // namespace sllm::nn
