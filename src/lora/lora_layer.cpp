#include "lora/lora_layer.h"

#include "autograd/autograd.h"
#include "core/error.h"
#include "core/rng.h"
#include "ops/ops.h"

namespace sllm::lora {

Tensor LoraLayer::forward(const Tensor& x, const nn::Linear& base) const {
  const auto it = adapters_.find(state_->active);
  if (state_->disabled > 0 || !merged_.empty() || it == adapters_.end()) return base.base_forward(x);
  const AdapterWeights& w = it->second;
  const bool dropout_on = state_->training && w.dropout > 0;
  // The mask depends on (this Linear's seed, step) only: reproducible and resumable.
  uint64_t mix = w.dropout_seed ^ (state_->dropout_step * 0x9E3779B97F4A7C15ull);
  const uint64_t seed = splitmix64(mix);
  const float p = dropout_on ? w.dropout : 0.0f;
  if (x.dtype() == DType::F32 && base.is_packed())
    return ops::lora_linear(x, base.packed_weight(), base.bias(), w.A, w.B, w.scale, p, seed);
  if (x.dtype() == DType::F32) return ops::lora_linear(x, base.weight(), base.bias(), w.A, w.B, w.scale, p, seed);

  // bf16 mixed precision (CUDA): composed from ops, which cast A and s·B to bf16 and return
  // their fp32 gradients (ops/mixed_precision.h).
  const Tensor base_out = base.base_forward(x);
  Tensor h = x;  // (..., in)
  if (dropout_on) {
    // Inverted dropout on the adapter's input only, as PEFT's lora_dropout (the base path
    // sees x untouched). ops::dropout is f32-only, so bf16 x makes the round trip through f32.
    h = ops::cast(ops::dropout(ops::cast(x, DType::F32), w.dropout, true, seed, 0), x.dtype());
  }
  // (…, in)·Aᵀ → (…, R), then ·(s·B)ᵀ → (…, out). s scales B (out·R values) rather than the
  // activations.
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
  SLLM_CHECK(!base_.is_packed(),
             str("cannot merge adapter '", name, "' into ", base_.path(), ": its weight is ",
                 base_.packed_weight()->format(), " (4-bit)"),
             "merge the adapter into the unquantized base model (sllm merge --model <the fp32 or bf16 model>)");
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
