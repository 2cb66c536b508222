// A frozen weight matrix kept in a packed format, which can multiply but is never
// materialized whole at full precision: NF4 / FP4 with (double-quantized) block scales
// (src/quant/quantized_weight.h, the QLoRA base). ops knows only this interface, so a
// Linear can hold either a dense f32 weight or a packed one (DESIGN.md: nn::Linear owns
// how its weight is stored), and ops::packed_linear / ops::lora_linear run on both.
// Legend: N rows of activations, in / out the weight's (out, in) sizes.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "tensor/tensor.h"

namespace sllm::ops {

class PackedWeight {
 public:
  virtual ~PackedWeight() = default;
  virtual int64_t out_features() const = 0;
  virtual int64_t in_features() const = 0;
  virtual Device device() const = 0;
  // y (N, out) = x (N, in) · deq(W)ᵀ + beta·y. x and y are both f32 (CPU or CUDA), or both
  // bf16 (CUDA mixed precision: the product reads a bf16 dequantization, fp32 accumulation).
  virtual void forward(const Tensor& x, Tensor& y, float beta) const = 0;
  // dx (N, in) = g (N, out) · deq(W) + beta·dx, in the same dtypes.
  virtual void backward_dx(const Tensor& g, Tensor& dx, float beta) const = 0;
  // The whole weight dequantized, (out, in) f32 on device(): for merging and checks, never
  // on the training path.
  virtual Tensor dequantize() const = 0;
  // Bytes the packed weight holds (codes, scales, tables), for memory reports.
  virtual int64_t nbytes() const = 0;
  // "nf4", "fp4": for messages.
  virtual std::string format() const = 0;
  // A copy on `device` (Transformer::to moves packed weights with the parameters).
  virtual std::shared_ptr<const PackedWeight> to(Device device) const = 0;
};

}  // namespace sllm::ops
