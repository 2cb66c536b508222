#include "lora/lora_layer.h"

#include "autograd/autograd.h"
#include "core/error.h"
#include "core/rng.h"
#include "ops/ops.h"

namespace sllm::lora {

Tensor LoraLayer::add_to(const Tensor& x, const Tensor& base_out) const {
  if (state_->disabled > 0 || !merged_.empty()) return base_out;
  const auto it = adapters_.find(state_->active);
  if (it == adapters_.end()) return base_out;
  const AdapterWeights& w = it->second;

  Tensor h = x;  // (..., in)
  if (state_->training && w.dropout > 0) {
    // Inverted dropout on the adapter's input only, as PEFT's lora_dropout (the base path
    // sees x untouched). The mask depends on (this Linear's seed, step) only: reproducible
    // and resumable. ops::dropout is f32-only, so a bf16 x makes the round trip through f32.
    uint64_t mix = w.dropout_seed ^ (state_->dropout_step * 0x9E3779B97F4A7C15ull);
    const uint64_t seed = splitmix64(mix);
    h = x.dtype() == DType::F32 ? ops::dropout(x, w.dropout, true, seed, 0)
                                : ops::cast(ops::dropout(ops::cast(x, DType::F32), w.dropout, true, seed, 0), x.dtype());
  }
  // (…, in)·Aᵀ → (…, R), then ·(s·B)ᵀ → (…, out). s scales B (out·R values) rather than the
  // activations; ops::linear does the bf16 cast of A and s·B under mixed precision and
  // returns their fp32 gradients (ops/mixed_precision.h).
  const Tensor down = ops::linear(h, w.A);
  const Tensor up = ops::linear(down, w.scale == 1.0f ? w.B : ops::scale(w.B, w.scale));
  return ops::add(base_out, up);
}

Tensor delta_weight(const AdapterWeights& w) {
  autograd::NoGradGuard no_grad;
  return ops::scale(ops::matmul(w.B, w.A), w.scale);  // (out, R)·(R, in)
}

void LoraLayer::merge(const std::string& name) {
  SLLM_CHECK(merged_.empty(), str(base_.path(), " already has adapter '", merged_, "' merged"),
             "unmerge it before merging another one");
  const auto it = adapters_.find(name);
  SLLM_ASSERT(it != adapters_.end());
  autograd::NoGradGuard no_grad;
  Tensor& W = base_.weight();
  W.copy_from(ops::add(W, delta_weight(it->second)));
  merged_ = name;
}

void LoraLayer::unmerge() {
  if (merged_.empty()) return;
  autograd::NoGradGuard no_grad;
  Tensor& W = base_.weight();
  // The same delta as merge computed (same kernels, same inputs: bit-identical), so W comes
  // back to within two roundings (tests/lora/test_merge.cpp derives the bound).
  W.copy_from(ops::sub(W, delta_weight(adapters_.at(merged_))));
  merged_.clear();
}

}  // namespace sllm::lora
