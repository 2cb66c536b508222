#include "nn/mlp.h"

#include "ops/ops.h"

namespace sllm::nn {

GPT2MLP::GPT2MLP(const std::string& path, const ModelConfig& config)
    : gelu_tanh_(config.gelu_tanh),
      c_fc_(path + ".c_fc", config.n_embd, config.n_inner, /*bias=*/true, /*conv1d=*/true),
      c_proj_(path + ".c_proj", config.n_inner, config.n_embd, /*bias=*/true, /*conv1d=*/true) {}

Tensor GPT2MLP::forward(const Tensor& h) const {
  Tensor u = c_fc_.forward(h);  // (B, T, H)
  return c_proj_.forward(ops::gelu(u, gelu_tanh_));
}

void GPT2MLP::append_parameters(std::vector<Parameter>& out) {
  c_fc_.append_parameters(out);
  c_proj_.append_parameters(out);
}

void GPT2MLP::append_linears(std::vector<Linear*>& out) {
  out.push_back(&c_fc_);
  out.push_back(&c_proj_);
}

LlamaMLP::LlamaMLP(const std::string& path, const ModelConfig& config)
    : gate_proj_(path + ".gate_proj", config.n_embd, config.n_inner, false, false),
      up_proj_(path + ".up_proj", config.n_embd, config.n_inner, false, false),
      down_proj_(path + ".down_proj", config.n_inner, config.n_embd, false, false) {}

Tensor LlamaMLP::forward(const Tensor& h) const {
  Tensor gate = gate_proj_.forward(h);  // (B, T, H)
  Tensor up = up_proj_.forward(h);      // (B, T, H)
  return down_proj_.forward(ops::swiglu(gate, up));
}

void LlamaMLP::append_parameters(std::vector<Parameter>& out) {
  for (Linear* l : {&gate_proj_, &up_proj_, &down_proj_}) l->append_parameters(out);
}

void LlamaMLP::append_linears(std::vector<Linear*>& out) {
  for (Linear* l : {&gate_proj_, &up_proj_, &down_proj_}) out.push_back(l);
}

}  // namespace sllm::nn
