// Parameters as files, optimizers and tests see them. The modules (Linear, norms,
// embeddings) own their tensors; a Parameter is a view of one of them under its Hugging
// Face name. `value` is a reference to the module's own Tensor, so assigning to it (as
// Transformer::to does) replaces the module's tensor.
#pragma once
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace sllm::nn {

template <class TensorType>
struct BasicParameter {
  std::string name;     // Hugging Face tensor name, e.g. "model.layers.0.self_attn.q_proj.weight"
  TensorType& value;    // f32 leaf owned by a module
  bool conv1d = false;  // a GPT-2 Conv1D weight: (out, in) here, stored [in, out] in files
};
using Parameter = BasicParameter<Tensor>;
using ConstParameter = BasicParameter<const Tensor>;

// A new trainable f32 parameter of zeros (Transformer::init fills it) named `name`.
inline Tensor new_parameter(const std::string& name, const Shape& shape) {
  Tensor t = Tensor::zeros(shape);
  t.set_name(name).set_requires_grad(true);
  return t;
}

}  // namespace sllm::nn
