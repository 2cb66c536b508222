// One Linear's LoRA adapters (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language
// Models", equation 3): the frozen base W (out, in) plus trainable A (r, in) and B (out, r),
//   y = x·Wᵀ + b + s · dropout(x)·Aᵀ·Bᵀ,
// computed right to left through two thin products, (…, in)→(…, r)→(…, out), never forming
// the (out, in) matrix B·A: the adapter costs 2·r·(in + out) flops per token instead of a
// second in·out product. It is an nn::LinearAdapter, so nn::Linear::forward() calls it and
// the layers above never change. Several named adapters can sit on one Linear; the
// LoraModel's shared LoraState says which one is active, whether adapters are disabled and
// whether dropout is on. Legend: R = the rank r.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "nn/linear.h"
#include "tensor/tensor.h"

namespace sllm::lora {

// What every adapted Linear of one model reads on each forward (owned by the LoraModel,
// shared with its layers).
struct LoraState {
  std::string active;          // the adapter that runs; empty: none
  int disabled = 0;            // > 0 while a DisabledScope is alive: the base model runs alone
  bool training = false;       // dropout on
  uint64_t dropout_step = 0;   // new dropout masks per step (the trainer sets it)
};

// One adapter's weights on one Linear.
struct AdapterWeights {
  Tensor A;          // (R, in) f32 leaf, PEFT "…lora_A.weight"
  Tensor B;          // (out, R) f32 leaf, PEFT "…lora_B.weight"
  float scale = 1;   // s = alpha / r (or alpha / sqrt(r))
  float dropout = 0;
  uint64_t dropout_seed = 0;  // this Linear's masks: a pure function of (seed, step)
};

class LoraLayer : public nn::LinearAdapter {
 public:
  LoraLayer(nn::Linear& base, std::shared_ptr<const LoraState> state) : base_(base), state_(std::move(state)) {}

  // x·Wᵀ + b + s · dropout(x)·Aᵀ·Bᵀ for the active adapter (f32: one fused op,
  // ops::lora_linear, over the dense or the packed W (QLoRA); bf16 mixed precision: composed
  // from ops), or the base's own x·Wᵀ + b (disabled, no active adapter on this Linear, or
  // merged into W).
  Tensor forward(const Tensor& x, const nn::Linear& base) const override;

  nn::Linear& base() { return base_; }
  std::map<std::string, AdapterWeights>& adapters() { return adapters_; }  // node-stable: A and B never move
  const std::map<std::string, AdapterWeights>& adapters() const { return adapters_; }

  // W += s·B·A (merge) or W -= s·B·A (unmerge) for adapter `name`; a packed (4-bit) base
  // refuses: merge into the unquantized model instead. W is (out, in) here for
  // GPT-2's Conv1D too (sllm transposes Conv1D only in files), so PEFT's fan_in_fan_out
  // transpose is not needed. merged() names the adapter folded into W, or is empty.
  void merge(const std::string& name);
  void unmerge();
  const std::string& merged() const { return merged_; }

 private:
  nn::Linear& base_;
  std::shared_ptr<const LoraState> state_;
  std::map<std::string, AdapterWeights> adapters_;
  std::string merged_;
};

// s·B·A (out, in), on the weights' device, without autograd: the update merge adds.
Tensor delta_weight(const AdapterWeights& w);

}  // namespace sllm::lora
