// Inverted dropout on the GPU (Srivastava et al. 2014), for f32 and bf16 buffers. The keep
// decision is kernels/dropout_rng.h's, the very function the CPU kernel (kernels/cpu/
// dropout.cpp) calls, so for the same (seed, offset) the mask is the CPU's, bit for bit,
// whatever the launch shape.
// Legend: n elements.
// Backward ACCUMULATES (+=) into dinp; a nullptr dinp is skipped.
//
// The f32 forward is the CPU's expression (inp * scale or 0): the same bits. The backward
// adds dout * scale to dinp, which nvcc may fuse into one FMA (one rounding instead of two),
// so an accumulation into a non-zero dinp can differ from the CPU's in the last bit. bf16
// buffers are loaded as fp32 and rounded once on store (element.cuh).
#include "kernels/cuda/element.cuh"
#include "kernels/cuda/launch.h"
#include "kernels/cuda_kernels.h"
#include "kernels/dropout_rng.h"

namespace sllm::kernels::cuda {
namespace {

// ---- kernels: one thread per element, grid-stride ----------------------------------------

// mask (n) = 1 keeps, 0 drops; out (n) = inp * mask * scale.
template <class T>
__global__ void dropout_forward_kernel(T* out, uint8_t* mask, const T* inp, int64_t n, float scale, uint64_t seed,
                                       uint64_t offset, uint64_t threshold) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const bool keep = dropout_keep(seed, offset + uint64_t(i), threshold);
    mask[i] = keep;
    out[i] = from_float<T>(keep ? to_float(inp[i]) * scale : 0.0f);
  }
}

// dinp (n) += dout * mask * scale.
template <class T>
__global__ void dropout_backward_kernel(T* dinp, const T* dout, const uint8_t* mask, int64_t n, float scale) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    dinp[i] = from_float<T>(to_float(dinp[i]) + (mask[i] ? to_float(dout[i]) * scale : 0.0f));
}

// ---- launchers (on device element types: float, __nv_bfloat16) ---------------------------

void check_args(int64_t n, float p, const char* op) {
  SLLM_CHECK(n >= 0, str(op, ": negative element count ", n), "sizes must be >= 0");
  SLLM_CHECK(p >= 0.0f && p <= 1.0f, str(op, ": p = ", p, " is outside [0, 1]"), "use a probability like 0.1");
}

template <class T>
void launch_forward(T* out, uint8_t* mask, const T* inp, int64_t n, float p, uint64_t seed, uint64_t offset) {
  check_args(n, p, "dropout_forward");
  if (n == 0) return;
  SLLM_LAUNCH(grid_for(n), kThreads, 0, dropout_forward_kernel<T>)(out, mask, inp, n, dropout_scale(p), seed, offset, dropout_threshold(p));
  SLLM_CUDA_CHECK_LAUNCH();
}

template <class T>
void launch_backward(T* dinp, const T* dout, const uint8_t* mask, int64_t n, float p) {
  check_args(n, p, "dropout_backward");
  if (!dinp || n == 0) return;
  SLLM_LAUNCH(grid_for(n), kThreads, 0, dropout_backward_kernel<T>)(dinp, dout, mask, n, dropout_scale(p));
  SLLM_CUDA_CHECK_LAUNCH();
}

}  // namespace

// ---- validated entries --------------------------------------------------------------------

void dropout_forward(float* out, uint8_t* mask, const float* inp, int64_t n, float p, uint64_t seed, uint64_t offset) {
  launch_forward(device_ptr(out), mask, device_ptr(inp), n, p, seed, offset);
}
void dropout_forward(bf16* out, uint8_t* mask, const bf16* inp, int64_t n, float p, uint64_t seed, uint64_t offset) {
  launch_forward(device_ptr(out), mask, device_ptr(inp), n, p, seed, offset);
}
void dropout_backward(float* dinp, const float* dout, const uint8_t* mask, int64_t n, float p) {
  launch_backward(device_ptr(dinp), device_ptr(dout), mask, n, p);
}
void dropout_backward(bf16* dinp, const bf16* dout, const uint8_t* mask, int64_t n, float p) {
  launch_backward(device_ptr(dinp), device_ptr(dout), mask, n, p);
}

}  // namespace sllm::kernels::cuda
