#include "nn/norm.h"

#include "ops/ops.h"

namespace sllm::nn {

LayerNorm::LayerNorm(const std::string& path, int64_t C, float eps)
    : weight_name_(path + ".weight"), bias_name_(path + ".bias"), eps_(eps) {
  weight_ = new_parameter(weight_name_, {C});
  bias_ = new_parameter(bias_name_, {C});
}

Tensor LayerNorm::forward(const Tensor& x, DType out_dtype) const {
  return ops::layernorm(x, weight_, bias_, eps_, out_dtype);
}

void LayerNorm::append_parameters(std::vector<Parameter>& out) {
  out.push_back({weight_name_, weight_});
  out.push_back({bias_name_, bias_});
}

RMSNorm::RMSNorm(const std::string& path, int64_t C, float eps) : weight_name_(path + ".weight"), eps_(eps) {
  weight_ = new_parameter(weight_name_, {C});
}

Tensor RMSNorm::forward(const Tensor& x, DType out_dtype) const { return ops::rmsnorm(x, weight_, eps_, out_dtype); }

void RMSNorm::append_parameters(std::vector<Parameter>& out) { out.push_back({weight_name_, weight_}); }

}  // namespace sllm::nn
