// Pointwise activations on the GPU: GELU (tanh approximation and exact erf form), SiLU,
// SwiGLU. The formula lines are those of kernels/cpu/activations.cpp (read it for the
// derivations); expf and erff replace the CPU's exp_approx and std::erf.
// Legend: n elements.
// Backward ACCUMULATES (+=) into dinp / dgate / dup; a nullptr gradient is skipped.
//
// Every buffer of a call has one element type T, fp32 or bf16 (element.cuh): loaded as
// float, computed in fp32 as the fp32 kernel, rounded once on store (a bf16 gradient's +=
// included).
#include "kernels/cuda/element.cuh"
#include "kernels/cuda/launch.h"
#include "kernels/cuda_kernels.h"

namespace sllm::kernels::cuda {
namespace {

constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kGeluCubic = 0.044715f;
constexpr float kInvSqrt2 = 0.7071067811865476f;
constexpr float kInvSqrt2Pi = 0.3989422804014327f;  // 1 / sqrt(2π): the normal density's scale

__device__ inline float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

// ---- kernels: one thread per element, grid-stride --------------------------------------

template <class T>
__global__ void gelu_forward_kernel(T* out, const T* inp, int64_t n, bool tanh_approx) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float x = to_float(inp[i]);
    if (tanh_approx) {
      const float u = kSqrt2OverPi * (x + kGeluCubic * x * x * x);
      out[i] = from_float<T>(x * sigmoid(2.0f * u));
    } else {
      out[i] = from_float<T>(0.5f * x * (1.0f + erff(x * kInvSqrt2)));
    }
  }
}

template <class T>
__global__ void gelu_backward_kernel(T* dinp, const T* dout, const T* inp, int64_t n, bool tanh_approx) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float x = to_float(inp[i]);
    if (tanh_approx) {
      const float u = kSqrt2OverPi * (x + kGeluCubic * x * x * x);
      const float du = kSqrt2OverPi * (1.0f + 3.0f * kGeluCubic * x * x);
      const float s = sigmoid(2.0f * u);
      dinp[i] = from_float<T>(to_float(dinp[i]) + to_float(dout[i]) * (s + 2.0f * x * s * (1.0f - s) * du));
    } else {
      const float cdf = 0.5f * (1.0f + erff(x * kInvSqrt2));
      const float pdf = kInvSqrt2Pi * expf(-0.5f * x * x);
      dinp[i] = from_float<T>(to_float(dinp[i]) + to_float(dout[i]) * (cdf + x * pdf));
    }
  }
}

template <class T>
__global__ void silu_forward_kernel(T* out, const T* inp, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float x = to_float(inp[i]);
    out[i] = from_float<T>(x * sigmoid(x));
  }
}

template <class T>
__global__ void silu_backward_kernel(T* dinp, const T* dout, const T* inp, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float x = to_float(inp[i]), s = sigmoid(x);
    dinp[i] = from_float<T>(to_float(dinp[i]) + to_float(dout[i]) * (s * (1.0f + x * (1.0f - s))));
  }
}

template <class T>
__global__ void swiglu_forward_kernel(T* out, const T* gate, const T* up, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float g = to_float(gate[i]);
    out[i] = from_float<T>(g * sigmoid(g) * to_float(up[i]));
  }
}

// dgate += dout * up * silu'(gate);  dup += dout * silu(gate).
template <class T>
__global__ void swiglu_backward_kernel(T* dgate, T* dup, const T* dout, const T* gate, const T* up, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float x = to_float(gate[i]), s = sigmoid(x), dy = to_float(dout[i]);
    if (dgate) dgate[i] = from_float<T>(to_float(dgate[i]) + dy * to_float(up[i]) * (s * (1.0f + x * (1.0f - s))));
    if (dup) dup[i] = from_float<T>(to_float(dup[i]) + dy * (x * s));
  }
}

void check_count(int64_t n, const char* op) {
  SLLM_CHECK(n >= 0, str(op, ": negative element count ", n), "sizes must be >= 0");
}

// ---- launchers: validate, launch, check the launch ---------------------------------------

template <class T>
void gelu_forward_launch(T* out, const T* inp, int64_t n, bool tanh_approx) {
  check_count(n, "gelu_forward");
  if (n == 0) return;
  SLLM_LAUNCH(grid_for(n), kThreads, 0, gelu_forward_kernel<T>)(out, inp, n, tanh_approx);
  SLLM_CUDA_CHECK_LAUNCH();
}

template <class T>
void gelu_backward_launch(T* dinp, const T* dout, const T* inp, int64_t n, bool tanh_approx) {
  check_count(n, "gelu_backward");
  if (!dinp || n == 0) return;
  SLLM_LAUNCH(grid_for(n), kThreads, 0, gelu_backward_kernel<T>)(dinp, dout, inp, n, tanh_approx);
  SLLM_CUDA_CHECK_LAUNCH();
}

template <class T>
void silu_forward_launch(T* out, const T* inp, int64_t n) {
  check_count(n, "silu_forward");
  if (n == 0) return;
  SLLM_LAUNCH(grid_for(n), kThreads, 0, silu_forward_kernel<T>)(out, inp, n);
  SLLM_CUDA_CHECK_LAUNCH();
}

template <class T>
void silu_backward_launch(T* dinp, const T* dout, const T* inp, int64_t n) {
  check_count(n, "silu_backward");
  if (!dinp || n == 0) return;
  SLLM_LAUNCH(grid_for(n), kThreads, 0, silu_backward_kernel<T>)(dinp, dout, inp, n);
  SLLM_CUDA_CHECK_LAUNCH();
}

template <class T>
void swiglu_forward_launch(T* out, const T* gate, const T* up, int64_t n) {
  check_count(n, "swiglu_forward");
  if (n == 0) return;
  SLLM_LAUNCH(grid_for(n), kThreads, 0, swiglu_forward_kernel<T>)(out, gate, up, n);
  SLLM_CUDA_CHECK_LAUNCH();
}

template <class T>
void swiglu_backward_launch(T* dgate, T* dup, const T* dout, const T* gate, const T* up, int64_t n) {
  check_count(n, "swiglu_backward");
  if ((!dgate && !dup) || n == 0) return;
  SLLM_LAUNCH(grid_for(n), kThreads, 0, swiglu_backward_kernel<T>)(dgate, dup, dout, gate, up, n);
  SLLM_CUDA_CHECK_LAUNCH();
}

}  // namespace

// ---- entries: fp32, and every buffer bf16 ---------------------------------------------------

void gelu_forward(float* out, const float* inp, int64_t n, bool tanh_approx) {
  gelu_forward_launch(out, inp, n, tanh_approx);
}
void gelu_forward(bf16* out, const bf16* inp, int64_t n, bool tanh_approx) {
  gelu_forward_launch(device_ptr(out), device_ptr(inp), n, tanh_approx);
}

void gelu_backward(float* dinp, const float* dout, const float* inp, int64_t n, bool tanh_approx) {
  gelu_backward_launch(dinp, dout, inp, n, tanh_approx);
}
void gelu_backward(bf16* dinp, const bf16* dout, const bf16* inp, int64_t n, bool tanh_approx) {
  gelu_backward_launch(device_ptr(dinp), device_ptr(dout), device_ptr(inp), n, tanh_approx);
}

void silu_forward(float* out, const float* inp, int64_t n) { silu_forward_launch(out, inp, n); }
void silu_forward(bf16* out, const bf16* inp, int64_t n) { silu_forward_launch(device_ptr(out), device_ptr(inp), n); }

void silu_backward(float* dinp, const float* dout, const float* inp, int64_t n) {
  silu_backward_launch(dinp, dout, inp, n);
}
void silu_backward(bf16* dinp, const bf16* dout, const bf16* inp, int64_t n) {
  silu_backward_launch(device_ptr(dinp), device_ptr(dout), device_ptr(inp), n);
}

void swiglu_forward(float* out, const float* gate, const float* up, int64_t n) {
  swiglu_forward_launch(out, gate, up, n);
}
void swiglu_forward(bf16* out, const bf16* gate, const bf16* up, int64_t n) {
  swiglu_forward_launch(device_ptr(out), device_ptr(gate), device_ptr(up), n);
}

void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up, int64_t n) {
  swiglu_backward_launch(dgate, dup, dout, gate, up, n);
}
void swiglu_backward(bf16* dgate, bf16* dup, const bf16* dout, const bf16* gate, const bf16* up, int64_t n) {
  swiglu_backward_launch(device_ptr(dgate), device_ptr(dup), device_ptr(dout), device_ptr(gate), device_ptr(up), n);
}

}  // namespace sllm::kernels::cuda
