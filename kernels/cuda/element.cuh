// Element types of device buffers: fp32 and bf16. Kernels are templates on their buffers'
// element types; they load every element as float, compute in fp32 exactly as the fp32
// kernel does, and store with one rounding (round to nearest even for bf16). With float
// buffers load and store are the identity, so the fp32 instantiation is the fp32 kernel.
//
// bf16 buffers cross the C++ API as sllm::bf16 (tensor/dtype.h, no CUDA type in
// kernels/cuda_kernels.h) and are __nv_bfloat16 inside the .cu files: device_ptr() converts.
#pragma once
#include <cuda_bf16.h>  // under SLLM_CUDA=SIM: kernels/cuda_sim/include/cuda_bf16.h

#include <cstdint>
#include <cstring>

#include "tensor/dtype.h"

namespace sllm::kernels::cuda {

// The device element type of an API pointer: float stays float, sllm::bf16 (layout-
// compatible, 16 bits) becomes __nv_bfloat16.
inline float* device_ptr(float* p) { return p; }
inline const float* device_ptr(const float* p) { return p; }
inline __nv_bfloat16* device_ptr(bf16* p) { return reinterpret_cast<__nv_bfloat16*>(p); }
inline const __nv_bfloat16* device_ptr(const bf16* p) { return reinterpret_cast<const __nv_bfloat16*>(p); }

// Both conversions are the integer ones of tensor/dtype.h (bf16_to_f32, f32_to_bf16), so
// device and host agree bit for bit on every input, NaN payloads included: on sm_90
// __bfloat162float is a cvt instruction and __float2bfloat16 returns the canonical NaN
// 0x7FFF, neither of which promises that.
__device__ inline float to_float(float x) { return x; }
// Exact: a bf16 is the top half of an fp32.
__device__ inline float to_float(__nv_bfloat16 x) {
  uint16_t bits;
  memcpy(&bits, &x, sizeof(bits));
  const uint32_t u = uint32_t(bits) << 16;
  float f;
  memcpy(&f, &u, sizeof(f));
  return f;
}

template <class T>
__device__ inline T from_float(float x);

template <>
__device__ inline float from_float<float>(float x) {
  return x;
}

// Round to nearest even: add 0x7FFF plus the lowest kept bit, then truncate (overflow
// rounds to infinity). NaN keeps its sign and payload with the quiet bit forced.
template <>
__device__ inline __nv_bfloat16 from_float<__nv_bfloat16>(float x) {
  uint32_t u;
  memcpy(&u, &x, sizeof(u));
  const uint16_t bits = (u & 0x7FFFFFFFu) > 0x7F800000u ? uint16_t((u >> 16) | 0x0040u)
                                                        : uint16_t((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
  __nv_bfloat16 h;
  memcpy(&h, &bits, sizeof(h));
  return h;
}

}  // namespace sllm::kernels::cuda
