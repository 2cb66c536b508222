// Stand-in for <cuda_bf16.h> under the CPU simulator: the storage type and the two
// conversions sllm's kernels use (round to nearest even, as the hardware's cvt.rn.bf16.f32).
#pragma once
#include <cstdint>

#include "cuda_runtime.h"
#include "tensor/dtype.h"

struct __nv_bfloat16 {
  uint16_t __x;
};

inline __nv_bfloat16 __float2bfloat16(float f) { return {sllm::f32_to_bf16(f)}; }
inline __nv_bfloat16 __float2bfloat16_rn(float f) { return {sllm::f32_to_bf16(f)}; }
inline float __bfloat162float(__nv_bfloat16 h) { return sllm::bf16_to_f32(h.__x); }
