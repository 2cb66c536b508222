// nn::Linear: y = x·Wᵀ + b, the one place where the model multiplies by a weight matrix.
// It owns how its weight is stored and applied, so LoRA adapters (y = base(x) + s·(x·Aᵀ)·Bᵀ)
// and 4-bit NF4 weights (QLoRA, a packed weight: ops/packed_weight.h) plug in here, and the layers that call forward() never
// change (DESIGN.md, "The model as modules").
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "nn/parameter.h"
#include "ops/packed_weight.h"
#include "tensor/tensor.h"

namespace sllm::nn {

class Linear;

// Something computed beside a Linear's own product, of a kind the Linear does not know: LoRA
// adapters (src/lora). With an adapter set, forward() returns adapter->forward(x, base), the
// whole output: the adapter decides whether it adds anything (it may be disabled, merged, or
// have no active adapter; then it returns base.base_forward(x)) and may fuse its work with
// the base product (ops::lora_linear, over a dense or a packed weight).
class LinearAdapter {
 public:
  virtual ~LinearAdapter() = default;
  virtual Tensor forward(const Tensor& x, const Linear& base) const = 0;
};

class Linear {
 public:
  // `path` is the Hugging Face module path ("transformer.h.0.attn.c_attn"); the parameters
  // are "<path>.weight" (out, in) and, with `bias`, "<path>.bias" (out). `conv1d`: GPT-2's
  // Conv1D, whose files hold the weight transposed, [in, out] (PEFT's fan_in_fan_out).
  Linear(std::string path, int64_t in_features, int64_t out_features, bool bias, bool conv1d);

  // x (..., in) → (..., out), in x's dtype (bf16 mixed precision reads the weight's bf16 shadow):
  // the adapter's output when one is set, else base_forward(x).
  Tensor forward(const Tensor& x) const;
  // The layer's own product, x·Wᵀ + b, with the dense or the packed weight; no adapter.
  Tensor base_forward(const Tensor& x) const;

  const std::string& path() const { return path_; }
  int64_t in_features() const { return in_features_; }
  int64_t out_features() const { return out_features_; }
  bool conv1d() const { return conv1d_; }
  bool has_bias() const { return bias_.defined(); }
  Tensor& weight() { return weight_; }  // (out, in) f32 leaf; undefined once packed
  const Tensor& weight() const { return weight_; }
  Tensor& bias() { return bias_; }  // (out) f32 leaf; undefined without a bias
  const Tensor& bias() const { return bias_; }

  // The adapter beside the product, or null (the default: forward() is the plain product).
  void set_adapter(std::shared_ptr<LinearAdapter> adapter) { adapter_ = std::move(adapter); }
  const std::shared_ptr<LinearAdapter>& adapter() const { return adapter_; }

  // A frozen packed weight (QLoRA's NF4, src/quant) in place of the dense one, which is
  // released: no full-precision copy of W remains. Its sizes must be (out, in). The
  // weight then leaves the parameter list (Transformer::refresh_parameters).
  void set_packed_weight(std::shared_ptr<const ops::PackedWeight> packed);
  const std::shared_ptr<const ops::PackedWeight>& packed_weight() const { return packed_; }
  bool is_packed() const { return packed_ != nullptr; }

  // Appends the weight (unless packed), then the bias, under their HF names (the files' order).
  void append_parameters(std::vector<Parameter>& out);

 private:
  std::string path_, weight_name_, bias_name_;
  int64_t in_features_, out_features_;
  bool conv1d_;
  Tensor weight_;  // (out, in)
  Tensor bias_;    // (out) or undefined
  std::shared_ptr<LinearAdapter> adapter_;
  std::shared_ptr<const ops::PackedWeight> packed_;
};

}  // namespace sllm::nn
