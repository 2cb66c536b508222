// Pointwise activations on the GPU: GELU (tanh approximation and exact erf form), SiLU,
// SwiGLU. The formula lines are those of kernels/cpu/activations.cpp (read it for the
// derivations); expf and erff replace the CPU's exp_approx and std::erf.
// Legend: n elements.
// Backward ACCUMULATES (+=) into dinp / dgate / dup; a nullptr gradient is skipped.
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

__global__ void gelu_forward_kernel(float* out, const float* inp, int64_t n, bool tanh_approx) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float x = inp[i];
    if (tanh_approx) {
      const float u = kSqrt2OverPi * (x + kGeluCubic * x * x * x);
      out[i] = x * sigmoid(2.0f * u);
    } else {
      out[i] = 0.5f * x * (1.0f + erff(x * kInvSqrt2));
    }
  }
}

__global__ void gelu_backward_kernel(float* dinp, const float* dout, const float* inp, int64_t n,
                                     bool tanh_approx) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float x = inp[i];
    if (tanh_approx) {
      const float u = kSqrt2OverPi * (x + kGeluCubic * x * x * x);
      const float du = kSqrt2OverPi * (1.0f + 3.0f * kGeluCubic * x * x);
      const float s = sigmoid(2.0f * u);
      dinp[i] += dout[i] * (s + 2.0f * x * s * (1.0f - s) * du);
    } else {
      const float cdf = 0.5f * (1.0f + erff(x * kInvSqrt2));
      const float pdf = kInvSqrt2Pi * expf(-0.5f * x * x);
      dinp[i] += dout[i] * (cdf + x * pdf);
    }
  }
}

__global__ void silu_forward_kernel(float* out, const float* inp, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = inp[i] * sigmoid(inp[i]);
}

__global__ void silu_backward_kernel(float* dinp, const float* dout, const float* inp, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float x = inp[i], s = sigmoid(x);
    dinp[i] += dout[i] * (s * (1.0f + x * (1.0f - s)));
  }
}

__global__ void swiglu_forward_kernel(float* out, const float* gate, const float* up, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = gate[i] * sigmoid(gate[i]) * up[i];
}

// dgate += dout * up * silu'(gate);  dup += dout * silu(gate).
__global__ void swiglu_backward_kernel(float* dgate, float* dup, const float* dout, const float* gate,
                                       const float* up, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float x = gate[i], s = sigmoid(x);
    if (dgate) dgate[i] += dout[i] * up[i] * (s * (1.0f + x * (1.0f - s)));
    if (dup) dup[i] += dout[i] * (x * s);
  }
}

void check_count(int64_t n, const char* op) {
  SLLM_CHECK(n >= 0, str(op, ": negative element count ", n), "sizes must be >= 0");
}

}  // namespace

// ---- entries: validate, launch, check the launch ---------------------------------------

void gelu_forward(float* out, const float* inp, int64_t n, bool tanh_approx) {
  check_count(n, "gelu_forward");
  if (n == 0) return;
  SLLM_LAUNCH(grid_for(n), kThreads, 0, gelu_forward_kernel)(out, inp, n, tanh_approx);
  SLLM_CUDA_CHECK_LAUNCH();
}

void gelu_backward(float* dinp, const float* dout, const float* inp, int64_t n, bool tanh_approx) {
  check_count(n, "gelu_backward");
  if (!dinp || n == 0) return;
  SLLM_LAUNCH(grid_for(n), kThreads, 0, gelu_backward_kernel)(dinp, dout, inp, n, tanh_approx);
  SLLM_CUDA_CHECK_LAUNCH();
}

void silu_forward(float* out, const float* inp, int64_t n) {
  check_count(n, "silu_forward");
  if (n == 0) return;
  SLLM_LAUNCH(grid_for(n), kThreads, 0, silu_forward_kernel)(out, inp, n);
  SLLM_CUDA_CHECK_LAUNCH();
}

void silu_backward(float* dinp, const float* dout, const float* inp, int64_t n) {
  check_count(n, "silu_backward");
  if (!dinp || n == 0) return;
  SLLM_LAUNCH(grid_for(n), kThreads, 0, silu_backward_kernel)(dinp, dout, inp, n);
  SLLM_CUDA_CHECK_LAUNCH();
}

void swiglu_forward(float* out, const float* gate, const float* up, int64_t n) {
  check_count(n, "swiglu_forward");
  if (n == 0) return;
  SLLM_LAUNCH(grid_for(n), kThreads, 0, swiglu_forward_kernel)(out, gate, up, n);
  SLLM_CUDA_CHECK_LAUNCH();
}

void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up, int64_t n) {
  check_count(n, "swiglu_backward");
  if ((!dgate && !dup) || n == 0) return;
  SLLM_LAUNCH(grid_for(n), kThreads, 0, swiglu_backward_kernel)(dgate, dup, dout, gate, up, n);
  SLLM_CUDA_CHECK_LAUNCH();
}

}  // namespace sllm::kernels::cuda
