// The feed-forward layers, one per family (C channels, H = n_inner):
//   GPT2MLP: c_fc (C → H) with bias, GELU (tanh approximation by default), c_proj (H → C).
//   LlamaMLP: SwiGLU, down_proj(silu(gate_proj(x)) * up_proj(x)), no biases.
#pragma once
#include <string>
#include <vector>

#include "nn/config.h"
#include "nn/linear.h"
#include "tensor/tensor.h"

namespace sllm::nn {

class GPT2MLP {
 public:
  GPT2MLP(const std::string& path, const ModelConfig& config);  // path "transformer.h.<l>.mlp"
  Tensor forward(const Tensor& h) const;                         // (B, T, C) → (B, T, C)
  void append_parameters(std::vector<Parameter>& out);
  void append_linears(std::vector<Linear*>& out);

 private:
  bool gelu_tanh_;
  Linear c_fc_;    // C → H
  Linear c_proj_;  // H → C
};

class LlamaMLP {
 public:
  LlamaMLP(const std::string& path, const ModelConfig& config);  // path "model.layers.<l>.mlp"
  Tensor forward(const Tensor& h) const;                          // (B, T, C) → (B, T, C)
  void append_parameters(std::vector<Parameter>& out);
  void append_linears(std::vector<Linear*>& out);

 private:
  Linear gate_proj_;  // C → H
  Linear up_proj_;    // C → H
  Linear down_proj_;  // H → C
};

}  // namespace sllm::nn
