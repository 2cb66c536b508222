// LayerNorm over the last dim on the GPU (Ba, Kiros & Hinton 2016), GPT-2 style with weight
// and bias. Formula lines as kernels/cpu/layernorm.cpp (read it for the derivation).
// Legend: N rows (= B*T), C channels.
// Backward ACCUMULATES (+=) into dinp, dweight, dbias; a nullptr gradient is skipped.
//
// Forward and dinp: one warp per row (the row's sums are warp reductions).
// dweight, dbias: summed over fixed blocks of kRowBlock rows into partials (blocks, 2, C),
// then the partials are added in block order: bitwise reproducible, no atomics.
//
// Mixed precision: out (forward) and dout (backward) may be bf16 (the kernels are templates
// on their type, element.cuh); input, parameters, statistics and gradients stay fp32.
#include "kernels/cuda/element.cuh"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/reduce.cuh"
#include "kernels/cuda/scratch.h"
#include "kernels/cuda_kernels.h"

namespace sllm::kernels::cuda {
namespace {

constexpr int kWarps = kThreads / 32;  // rows per block of the row kernels
constexpr int64_t kRowBlock = 128;     // rows per partial of dweight / dbias
constexpr int kColTile = 32;           // columns per block of the partials kernel

template <class TO>
__global__ void layernorm_forward_kernel(TO* out, float* mean, float* rstd, const float* inp, const float* weight,
                                         const float* bias, int64_t N, int64_t C, float eps) {
  const int lane = threadIdx.x % 32;
  const int64_t n = blockIdx.x * int64_t(kWarps) + threadIdx.x / 32;
  if (n >= N) return;
  const float* x = inp + n * C;  // (C)
  TO* y = out + n * C;           // (C)
  float sum = 0.0f;
  for (int64_t i = lane; i < C; i += 32) sum += x[i];
  const float m = warp_sum(sum) / float(C);
  float sq = 0.0f;
  for (int64_t i = lane; i < C; i += 32) sq += (x[i] - m) * (x[i] - m);
  const float var = warp_sum(sq) / float(C);
  const float s = 1.0f / sqrtf(var + eps);
  for (int64_t i = lane; i < C; i += 32)
    y[i] = from_float<TO>((x[i] - m) * s * weight[i] + (bias ? bias[i] : 0.0f));
  if (lane == 0 && mean) mean[n] = m;
  if (lane == 0 && rstd) rstd[n] = s;
}

template <class TD>
__global__ void layernorm_backward_dinp_kernel(float* dinp, const TD* dout, const float* inp, const float* weight,
                                               const float* mean, const float* rstd, int64_t N, int64_t C) {
  const int lane = threadIdx.x % 32;
  const int64_t n = blockIdx.x * int64_t(kWarps) + threadIdx.x / 32;
  if (n >= N) return;
  const float* x = inp + n * C;    // (C)
  const TD* dy = dout + n * C;     // (C)
  float* dx = dinp + n * C;        // (C)
  const float m = mean[n], s = rstd[n];
  float a = 0.0f, b = 0.0f;
  for (int64_t i = lane; i < C; i += 32) {
    a += weight[i] * to_float(dy[i]);
    b += weight[i] * to_float(dy[i]) * ((x[i] - m) * s);
  }
  const float dnorm_mean = warp_sum(a) / float(C);
  const float dnorm_norm_mean = warp_sum(b) / float(C);
  for (int64_t i = lane; i < C; i += 32) {
    const float norm = (x[i] - m) * s;
    dx[i] += (weight[i] * to_float(dy[i]) - dnorm_mean - norm * dnorm_norm_mean) * s;
  }
}

// Grid (ceil(C / 32), blocks), block (32, 8): column c0 + x, rows of row block `blk`
// taken by the 8 threads y in turn; the 8 sums are then added in y order.
// partial (blocks, 2, C): rows of sum(dout * norm), sum(dout).
template <class TD>
__global__ void layernorm_param_partials_kernel(float* partial, const TD* dout, const float* inp, const float* mean,
                                                const float* rstd, int64_t N, int64_t C) {
  __shared__ float pw_s[kWarps][kColTile], pb_s[kWarps][kColTile];
  const int64_t c = blockIdx.x * int64_t(kColTile) + threadIdx.x, blk = blockIdx.y;
  const int64_t n1 = min(N, (blk + 1) * kRowBlock);
  float pw = 0.0f, pb = 0.0f;
  if (c < C)
    for (int64_t n = blk * kRowBlock + threadIdx.y; n < n1; n += kWarps) {
      const float dy = to_float(dout[n * C + c]);
      pw += dy * ((inp[n * C + c] - mean[n]) * rstd[n]);
      pb += dy;
    }
  pw_s[threadIdx.y][threadIdx.x] = pw;
  pb_s[threadIdx.y][threadIdx.x] = pb;
  __syncthreads();
  if (threadIdx.y != 0 || c >= C) return;
  float sw = 0.0f, sb = 0.0f;
  for (int r = 0; r < kWarps; ++r) {
    sw += pw_s[r][threadIdx.x];
    sb += pb_s[r][threadIdx.x];
  }
  partial[blk * 2 * C + c] = sw;
  partial[blk * 2 * C + C + c] = sb;
}

// dweight, dbias (C) += the partials (blocks, 2, C) summed in block order.
__global__ void layernorm_param_finish_kernel(float* dweight, float* dbias, const float* partial, int64_t blocks,
                                              int64_t C) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < C; i += int64_t(gridDim.x) * blockDim.x) {
    float sw = 0.0f, sb = 0.0f;
    for (int64_t blk = 0; blk < blocks; ++blk) {
      sw += partial[blk * 2 * C + i];
      sb += partial[blk * 2 * C + C + i];
    }
    if (dweight) dweight[i] += sw;
    if (dbias) dbias[i] += sb;
  }
}

void check_sizes(int64_t N, int64_t C, const char* op) {
  SLLM_CHECK(N >= 0 && C > 0, str(op, ": bad sizes N=", N, " C=", C), "rows must be >= 0 and channels > 0");
  SLLM_CHECK((N + kRowBlock - 1) / kRowBlock <= 65535, str(op, ": too many rows N=", N),
             "normalize at most 8M rows per call");
}

// mean, rstd (N) may be nullptr when nothing will run backward (inference).
template <class TO>
void layernorm_forward_launch(TO* out, float* mean, float* rstd, const float* inp, const float* weight,
                              const float* bias, int64_t N, int64_t C, float eps) {
  check_sizes(N, C, "layernorm_forward");
  if (N == 0) return;
  const unsigned blocks = unsigned((N + kWarps - 1) / kWarps);
  SLLM_LAUNCH(blocks, kThreads, 0, layernorm_forward_kernel<TO>)(out, mean, rstd, inp, weight, bias, N, C, eps);
  SLLM_CUDA_CHECK_LAUNCH();
}

template <class TD>
void layernorm_backward_launch(float* dinp, float* dweight, float* dbias, const TD* dout, const float* inp,
                               const float* weight, const float* mean, const float* rstd, int64_t N, int64_t C) {
  check_sizes(N, C, "layernorm_backward");
  if (N == 0) return;
  if (dinp) {
    const unsigned blocks = unsigned((N + kWarps - 1) / kWarps);
    SLLM_LAUNCH(blocks, kThreads, 0, layernorm_backward_dinp_kernel<TD>)(dinp, dout, inp, weight, mean, rstd, N, C);
    SLLM_CUDA_CHECK_LAUNCH();
  }
  if (!dweight && !dbias) return;
  const int64_t blocks = (N + kRowBlock - 1) / kRowBlock;
  Scratch<float> partial{size_t(blocks * 2 * C)};  // (blocks, 2, C)
  const dim3 grid(unsigned((C + kColTile - 1) / kColTile), unsigned(blocks)), block(kColTile, kWarps);
  SLLM_LAUNCH(grid, block, 0, layernorm_param_partials_kernel<TD>)(partial.get(), dout, inp, mean, rstd, N, C);
  SLLM_CUDA_CHECK_LAUNCH();
  SLLM_LAUNCH(grid_for(C), kThreads, 0, layernorm_param_finish_kernel)(dweight, dbias, partial.get(), blocks, C);
  SLLM_CUDA_CHECK_LAUNCH();
}

}  // namespace

void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* weight,
                       const float* bias, int64_t N, int64_t C, float eps) {
  layernorm_forward_launch(out, mean, rstd, inp, weight, bias, N, C, eps);
}
void layernorm_forward(bf16* out, float* mean, float* rstd, const float* inp, const float* weight,
                       const float* bias, int64_t N, int64_t C, float eps) {
  layernorm_forward_launch(device_ptr(out), mean, rstd, inp, weight, bias, N, C, eps);
}

void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                        const float* weight, const float* mean, const float* rstd, int64_t N, int64_t C) {
  layernorm_backward_launch(dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C);
}
void layernorm_backward(float* dinp, float* dweight, float* dbias, const bf16* dout, const float* inp,
                        const float* weight, const float* mean, const float* rstd, int64_t N, int64_t C) {
  layernorm_backward_launch(dinp, dweight, dbias, device_ptr(dout), inp, weight, mean, rstd, N, C);
}

}  // namespace sllm::kernels::cuda
