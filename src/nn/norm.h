// The normalization layers: GPT-2's LayerNorm (gain and bias) and Llama's RMSNorm (gain
// only). Their outputs feed the matmuls, so they are written in the compute dtype
// (`out_dtype`: bf16 under mixed precision) while their statistics stay fp32.
#pragma once
#include <string>
#include <vector>

#include "nn/parameter.h"
#include "tensor/tensor.h"

namespace sllm::nn {

class LayerNorm {
 public:
  // Parameters "<path>.weight" and "<path>.bias", both (C).
  LayerNorm(const std::string& path, int64_t C, float eps);
  Tensor forward(const Tensor& x, DType out_dtype) const;  // (..., C) → (..., C)
  void append_parameters(std::vector<Parameter>& out);

 private:
  std::string weight_name_, bias_name_;
  float eps_;
  Tensor weight_, bias_;
};

class RMSNorm {
 public:
  // Parameter "<path>.weight" (C).
  RMSNorm(const std::string& path, int64_t C, float eps);
  Tensor forward(const Tensor& x, DType out_dtype) const;  // (..., C) → (..., C)
  void append_parameters(std::vector<Parameter>& out);

 private:
  std::string weight_name_;
  float eps_;
  Tensor weight_;
};

}  // namespace sllm::nn
