// Element types. f32 is the compute type; bf16 and f16 are storage types converted with
// round-to-nearest-even (IEEE 754-2008 §4.3.1); integer types hold ids, masks and codes.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>

namespace sllm {

enum class DType : uint8_t { F32, BF16, F16, I32, I64, U8 };

size_t dtype_size(DType t);
const char* dtype_name(DType t);  // "f32", "bf16", ...

// bf16 keeps the top 16 bits of an f32; rounding adds 0x7FFF plus the lowest kept bit
// (ties to even). NaN stays NaN (quiet bit forced) instead of rounding into infinity.
inline uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((u >> 16) | 0x0040u);
  u += 0x7FFFu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
inline float bf16_to_f32(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// A bfloat16 element as stored (its 16 bits): the element type of bf16 buffers in kernel
// signatures, so a bf16 pointer cannot be passed where a float one is expected. Layout-
// compatible with uint16_t and with CUDA's __nv_bfloat16.
struct bf16 {
  uint16_t bits;
};
static_assert(sizeof(bf16) == 2);

// IEEE half: 1 sign, 5 exponent (bias 15), 10 mantissa bits; subnormals and inf/NaN handled.
uint16_t f32_to_f16(float f);
float f16_to_f32(uint16_t h);

}  // namespace sllm
