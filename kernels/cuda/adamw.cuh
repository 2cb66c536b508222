// The AdamW arithmetic of one element, shared by the per-tensor kernel (adamw.cu) and the
// multi-tensor one (multi_tensor_adamw.cu), so the two agree bit for bit by construction.
// The formula lines and their order are kernels/cpu/adamw.cpp's (adamw_span_scalar):
//   m = beta1 m + (1 - beta1) g,   v = beta2 v + (1 - beta2) g²
//   param = param * decay - step_size * m / (sqrt(v) * inv_sqrt_bc2 + eps)
// Every product is rounded on its own (no FMA contraction): nvcc would otherwise contract
// a * b + c into one FMA (--fmad=true is its default), and so would GCC in the simulator
// (C++ keeps -ffp-contract=fast even under -std=c++20; -march=native has FMA). The rounded
// operations are __fmul_rn & co. on a GPU and a volatile store of each product in the
// simulator. Unfused, the update is the CPU kernel's formula lines as written, which is
// what its AVX-512 path computes (kernels/cpu/adamw.cpp); its scalar loop may be contracted
// by the host compiler and then differ in a last bit.
#pragma once
#include <cuda_runtime.h>  // under SLLM_CUDA=SIM: kernels/cuda_sim/include/cuda_runtime.h

#include <cmath>
#include <cstdint>

namespace sllm::kernels::cuda {

// Per-step scalars, computed on the host as the CPU kernel does (bias corrections in double):
// step_size = lr / (1 - beta1^step), inv_sqrt_bc2 = 1 / sqrt(1 - beta2^step),
// decay = 1 - lr * weight_decay (per tensor in a multi-tensor update).
struct AdamScalars {
  float beta1, one_minus_beta1, beta2, one_minus_beta2, eps, decay, step_size, inv_sqrt_bc2;
};

inline AdamScalars adam_scalars(float lr, float beta1, float beta2, float eps, float weight_decay, int64_t step) {
  const double bc1 = 1.0 - std::pow(double(beta1), double(step));
  const double bc2 = 1.0 - std::pow(double(beta2), double(step));
  return AdamScalars{beta1,
                     1.0f - beta1,
                     beta2,
                     1.0f - beta2,
                     eps,
                     1.0f - lr * weight_decay,
                     float(double(lr) / bc1),
                     float(1.0 / std::sqrt(bc2))};
}

// One rounding per operation (see the top of the file).
#if SLLM_CUDA_SIM
__device__ inline float mul_rn(float a, float b) {
  volatile float product = a * b;  // stored as a float: nothing can fuse it into an add
  return product;
}
__device__ inline float add_rn(float a, float b) { return a + b; }
__device__ inline float sub_rn(float a, float b) { return a - b; }
__device__ inline float div_rn(float a, float b) { return a / b; }
__device__ inline float sqrt_rn(float a) { return std::sqrt(a); }
#else
__device__ inline float mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ inline float add_rn(float a, float b) { return __fadd_rn(a, b); }
__device__ inline float sub_rn(float a, float b) { return __fsub_rn(a, b); }
__device__ inline float div_rn(float a, float b) { return __fdiv_rn(a, b); }
__device__ inline float sqrt_rn(float a) { return __fsqrt_rn(a); }
#endif

// Updates m and v in place and returns the new param.
__device__ inline float adamw_element(float param, float g, float& m, float& v, const AdamScalars& k) {
  const float mi = add_rn(mul_rn(k.beta1, m), mul_rn(k.one_minus_beta1, g));
  const float vi = add_rn(mul_rn(k.beta2, v), mul_rn(k.one_minus_beta2, mul_rn(g, g)));
  m = mi;
  v = vi;
  const float denom = add_rn(mul_rn(sqrt_rn(vi), k.inv_sqrt_bc2), k.eps);
  return sub_rn(mul_rn(param, k.decay), div_rn(mul_rn(k.step_size, mi), denom));
}

}  // namespace sllm::kernels::cuda
