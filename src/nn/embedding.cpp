#include "nn/embedding.h"

#include "ops/ops.h"

namespace sllm::nn {

Embedding::Embedding(const std::string& path, int64_t rows, int64_t C) : weight_name_(path + ".weight") {
  weight_ = new_parameter(weight_name_, {rows, C});
}

Tensor Embedding::forward(const Tensor& ids) const { return ops::embedding(ids, weight_); }

void Embedding::append_parameters(std::vector<Parameter>& out) { out.push_back({weight_name_, weight_}); }

}  // namespace sllm::nn
