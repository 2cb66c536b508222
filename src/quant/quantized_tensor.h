// A tensor in 4-bit blockwise quantization (QLoRA, Dettmers et al. 2023, section 3), laid
// out as bitsandbytes' QuantState so the files match (quant/bnb_files.h):
//   packed          u8 ((n + 1) / 2)  two 4-bit codes per byte, the first element high
//   quant_map       f32 (16)          the code table (NF4 or FP4)
//   absmax          f32 (nb)          one scale per block of `blocksize` elements, or, with
//                                     double quantization, u8 (nb): 8-bit codes of absmax - offset
//   nested_absmax   f32 (nb2)         the scales of those codes, one per `nested_blocksize`
//   nested_quant_map f32 (256)        the signed dynamic map
//   offset          f32               mean of the fp32 absmax values, added back after
// with n = numel(shape), nb = ceil(n / blocksize), nb2 = ceil(nb / nested_blocksize).
// Bits per parameter, NF4 + double quantization at blocksize 64: 4 + 8/64 + 32/(64·256) ≈ 4.127.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "quant/codebooks.h"
#include "tensor/tensor.h"

namespace sllm::quant {

struct QuantOptions {
  QuantType type = QuantType::NF4;
  int64_t blocksize = 64;         // a power of two in [32, 4096] (bitsandbytes' range)
  bool double_quant = true;       // quantize the absmax values to 8 bits (QLoRA's DQ)
  int64_t nested_blocksize = 256; // DQ's block (bitsandbytes' fixed 256)
};

// blocksize must be a power of two in [32, 4096]: a sllm::Error naming `what` otherwise.
void check_blocksize(int64_t blocksize, const std::string& what);

struct QuantizedTensor {
  Shape shape;  // the dequantized shape, e.g. (out, in)
  QuantType type = QuantType::NF4;
  int64_t blocksize = 64;
  Tensor packed;     // u8
  Tensor quant_map;  // f32 (16)
  Tensor absmax;     // f32 (nb), or u8 (nb) when nested
  bool nested = false;
  int64_t nested_blocksize = 256;
  Tensor nested_absmax;     // f32 (nb2)
  Tensor nested_quant_map;  // f32 (256)
  float offset = 0.0f;

  int64_t numel() const { return shape_numel(shape); }
  int64_t blocks() const { return (numel() + blocksize - 1) / blocksize; }
  Device device() const { return packed.device(); }
  int64_t nbytes() const;            // every array it holds, plus the offset
  double bits_per_param() const { return 8.0 * double(nbytes()) / double(numel()); }
  QuantizedTensor to(Device device) const;
};

// Quantizes an f32 CPU tensor (any shape, numel > 0). Sizes need not be multiples of the
// blocksize: the last block is short, as bitsandbytes does it (no padding is stored).
QuantizedTensor quantize(const Tensor& x, const QuantOptions& options = {});
// The whole tensor back in f32 on the CPU (the tensor may live on either device).
Tensor dequantize(const QuantizedTensor& q);
// The f32 absmax of blocks [b0, b1) into out (b1 - b0): a copy, or double quantization
// undone (code·nested_absmax + offset), CPU tensors only.
void block_absmax(const QuantizedTensor& q, int64_t b0, int64_t b1, float* out);

// A loaded QuantState checked for consistency: every array present with the dtype and size
// the shape and blocksizes imply, the quant_map one of NF4 / FP4, every scale finite and
// non-negative. `name` says which tensor for the error (a sllm::Error with a hint).
void validate(const QuantizedTensor& q, const std::string& name);

}  // namespace sllm::quant
