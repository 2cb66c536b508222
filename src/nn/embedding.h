// A lookup table of rows: token embeddings (V, C), and GPT-2's learned positions (n_ctx, C).
// The token table doubles as the LM head's weight when the embeddings are tied.
#pragma once
#include <string>
#include <vector>

#include "nn/parameter.h"
#include "tensor/tensor.h"

namespace sllm::nn {

class Embedding {
 public:
  // Parameter "<path>.weight" (rows, C).
  Embedding(const std::string& path, int64_t rows, int64_t C);
  Tensor forward(const Tensor& ids) const;  // i32 (...) → (..., C)
  Tensor& weight() { return weight_; }
  const Tensor& weight() const { return weight_; }
  void append_parameters(std::vector<Parameter>& out);

 private:
  std::string weight_name_;
  Tensor weight_;  // (rows, C)
};

}  // namespace sllm::nn
