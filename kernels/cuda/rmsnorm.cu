// RMSNorm over the last dim on the GPU (Zhang & Sennrich 2019), as in Llama / HF
// LlamaRMSNorm. Formula lines as kernels/cpu/rmsnorm.cpp.
// Legend: N rows (= B*T), C channels.
// Backward ACCUMULATES (+=) into dinp and dweight; a nullptr gradient is skipped.
//
// Forward and dinp: one warp per row. dweight: partials over fixed blocks of kRowBlock
// rows, then added in block order (bitwise reproducible, no atomics), as in layernorm.cu.
//
// Mixed precision: out (forward) and dout (backward) may be bf16 (the kernels are templates
// on their type, element.cuh); input, weight, rstd and gradients stay fp32.
#include "kernels/cuda/element.cuh"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/reduce.cuh"
#include "kernels/cuda/scratch.h"
#include "kernels/cuda_kernels.h"

namespace sllm::kernels::cuda {
namespace {

constexpr int kWarps = kThreads / 32;  // rows per block of the row kernels
constexpr int64_t kRowBlock = 128;     // rows per partial of dweight
constexpr int kColTile = 32;           // columns per block of the partials kernel

template <class TO>
__global__ void rmsnorm_forward_kernel(TO* out, float* rstd, const float* inp, const float* weight, int64_t N,
                                       int64_t C, float eps) {
  const int lane = threadIdx.x % 32;
  const int64_t n = blockIdx.x * int64_t(kWarps) + threadIdx.x / 32;
  if (n >= N) return;
  const float* x = inp + n * C;  // (C)
  TO* y = out + n * C;           // (C)
  float sq = 0.0f;
  for (int64_t i = lane; i < C; i += 32) sq += x[i] * x[i];
  const float ms = warp_sum(sq) / float(C);
  const float s = 1.0f / sqrtf(ms + eps);
  for (int64_t i = lane; i < C; i += 32) y[i] = from_float<TO>((x[i] * s) * weight[i]);
  if (lane == 0 && rstd) rstd[n] = s;
}

template <class TD>
__global__ void rmsnorm_backward_dinp_kernel(float* dinp, const TD* dout, const float* inp, const float* weight,
                                             const float* rstd, int64_t N, int64_t C) {
  const int lane = threadIdx.x % 32;
  const int64_t n = blockIdx.x * int64_t(kWarps) + threadIdx.x / 32;
  if (n >= N) return;
  const float* x = inp + n * C;    // (C)
  const TD* dy = dout + n * C;     // (C)
  float* dx = dinp + n * C;        // (C)
  const float s = rstd[n];
  float b = 0.0f;
  for (int64_t i = lane; i < C; i += 32) b += weight[i] * to_float(dy[i]) * (x[i] * s);
  const float dnorm_norm_mean = warp_sum(b) / float(C);
  for (int64_t i = lane; i < C; i += 32)
    dx[i] += (weight[i] * to_float(dy[i]) - (x[i] * s) * dnorm_norm_mean) * s;
}

// Grid (ceil(C / 32), blocks), block (32, 8); partial (blocks, C) = sum of dout * norm over
// row block `blk` (threads y take its rows in turn; their sums are added in y order).
template <class TD>
__global__ void rmsnorm_dweight_partials_kernel(float* partial, const TD* dout, const float* inp, const float* rstd,
                                                int64_t N, int64_t C) {
  __shared__ float pw_s[kWarps][kColTile];
  const int64_t c = blockIdx.x * int64_t(kColTile) + threadIdx.x, blk = blockIdx.y;
  const int64_t n1 = min(N, (blk + 1) * kRowBlock);
  float pw = 0.0f;
  if (c < C)
    for (int64_t n = blk * kRowBlock + threadIdx.y; n < n1; n += kWarps)
      pw += to_float(dout[n * C + c]) * (inp[n * C + c] * rstd[n]);
  pw_s[threadIdx.y][threadIdx.x] = pw;
  __syncthreads();
  if (threadIdx.y != 0 || c >= C) return;
  float sw = 0.0f;
  for (int r = 0; r < kWarps; ++r) sw += pw_s[r][threadIdx.x];
  partial[blk * C + c] = sw;
}

// dweight (C) += the partials (blocks, C) summed in block order.
__global__ void rmsnorm_dweight_finish_kernel(float* dweight, const float* partial, int64_t blocks, int64_t C) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < C; i += int64_t(gridDim.x) * blockDim.x) {
    float sw = 0.0f;
    for (int64_t blk = 0; blk < blocks; ++blk) sw += partial[blk * C + i];
    dweight[i] += sw;
  }
}

void check_sizes(int64_t N, int64_t C, const char* op) {
  SLLM_CHECK(N >= 0 && C > 0, str(op, ": bad sizes N=", N, " C=", C), "rows must be >= 0 and channels > 0");
  SLLM_CHECK((N + kRowBlock - 1) / kRowBlock <= 65535, str(op, ": too many rows N=", N),
             "normalize at most 8M rows per call");
}

// rstd (N) may be nullptr when nothing will run backward (inference).
template <class TO>
void rmsnorm_forward_launch(TO* out, float* rstd, const float* inp, const float* weight, int64_t N, int64_t C,
                            float eps) {
  check_sizes(N, C, "rmsnorm_forward");
  if (N == 0) return;
  const unsigned blocks = unsigned((N + kWarps - 1) / kWarps);
  SLLM_LAUNCH(blocks, kThreads, 0, rmsnorm_forward_kernel<TO>)(out, rstd, inp, weight, N, C, eps);
  SLLM_CUDA_CHECK_LAUNCH();
}

template <class TD>
void rmsnorm_backward_launch(float* dinp, float* dweight, const TD* dout, const float* inp, const float* weight,
                             const float* rstd, int64_t N, int64_t C) {
  check_sizes(N, C, "rmsnorm_backward");
  if (N == 0) return;
  if (dinp) {
    const unsigned blocks = unsigned((N + kWarps - 1) / kWarps);
    SLLM_LAUNCH(blocks, kThreads, 0, rmsnorm_backward_dinp_kernel<TD>)(dinp, dout, inp, weight, rstd, N, C);
    SLLM_CUDA_CHECK_LAUNCH();
  }
  if (!dweight) return;
  const int64_t blocks = (N + kRowBlock - 1) / kRowBlock;
  Scratch<float> partial{size_t(blocks * C)};  // (blocks, C)
  const dim3 grid(unsigned((C + kColTile - 1) / kColTile), unsigned(blocks)), block(kColTile, kWarps);
  SLLM_LAUNCH(grid, block, 0, rmsnorm_dweight_partials_kernel<TD>)(partial.get(), dout, inp, rstd, N, C);
  SLLM_CUDA_CHECK_LAUNCH();
  SLLM_LAUNCH(grid_for(C), kThreads, 0, rmsnorm_dweight_finish_kernel)(dweight, partial.get(), blocks, C);
  SLLM_CUDA_CHECK_LAUNCH();
}

}  // namespace

void rmsnorm_forward(float* out, float* rstd, const float* inp, const float* weight, int64_t N, int64_t C,
                     float eps) {
  rmsnorm_forward_launch(out, rstd, inp, weight, N, C, eps);
}
void rmsnorm_forward(bf16* out, float* rstd, const float* inp, const float* weight, int64_t N, int64_t C,
                     float eps) {
  rmsnorm_forward_launch(device_ptr(out), rstd, inp, weight, N, C, eps);
}

void rmsnorm_backward(float* dinp, float* dweight, const float* dout, const float* inp, const float* weight,
                      const float* rstd, int64_t N, int64_t C) {
  rmsnorm_backward_launch(dinp, dweight, dout, inp, weight, rstd, N, C);
}
void rmsnorm_backward(float* dinp, float* dweight, const bf16* dout, const float* inp, const float* weight,
                      const float* rstd, int64_t N, int64_t C) {
  rmsnorm_backward_launch(dinp, dweight, device_ptr(dout), inp, weight, rstd, N, C);
}

}  // namespace sllm::kernels::cuda
