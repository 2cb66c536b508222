// The frozen 4-bit base weight of a QLoRA Linear (Dettmers et al. 2023, equation 5):
//   y = x · doubleDequant(c1, c2, W_NF4)ᵀ,     dx = g · doubleDequant(c1, c2, W_NF4)
// an ops::PackedWeight, so nn::Linear holds it in place of its dense weight and
// ops::packed_linear / ops::lora_linear multiply by it. No full-precision copy of W is kept:
//  - CPU (f32): W is dequantized a tile of rows at a time into a bounded workspace (at most
//    kTileElements floats, shared by every weight), each tile followed by its GEMM;
//  - CUDA: W is dequantized whole into a workspace from the caching allocator, f32 or bf16
//    to match the activations (bf16 = mixed precision, cuBLAS with fp32 accumulation), which
//    the allocator hands to the next Linear once the GEMM is done.
// Legend: N rows of activations, in / out the (out, in) sizes, R rows in a tile.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "ops/packed_weight.h"
#include "quant/quantized_tensor.h"

namespace sllm::quant {

class QuantizedWeight : public ops::PackedWeight {
 public:
  // q is a 2-D (out, in) quantized tensor on the CPU or CUDA.
  explicit QuantizedWeight(QuantizedTensor q);

  // The largest CPU tile: 4M floats (16 MiB), a whole Linear of models up to ~1B.
  static constexpr int64_t kTileElements = int64_t(1) << 22;

  int64_t out_features() const override { return q_.shape[0]; }
  int64_t in_features() const override { return q_.shape[1]; }
  Device device() const override { return q_.device(); }
  void forward(const Tensor& x, Tensor& y, float beta) const override;
  void backward_dx(const Tensor& g, Tensor& dx, float beta) const override;
  Tensor dequantize() const override;
  int64_t nbytes() const override { return q_.nbytes(); }
  std::string format() const override { return quant_type_name(q_.type); }
  std::shared_ptr<const ops::PackedWeight> to(Device device) const override;

  const QuantizedTensor& tensor() const { return q_; }

 private:
  QuantizedTensor q_;
};

}  // namespace sllm::quant
