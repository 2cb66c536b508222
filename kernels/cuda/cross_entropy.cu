// Fused softmax + cross-entropy over the vocab on the GPU: the probabilities are never
// stored. Formula lines as kernels/cpu/cross_entropy.cpp.
// Legend: N rows (= B*T), V vocab.
// Backward ACCUMULATES (+=) into dlogits; a nullptr dlogits is skipped.
//
// Forward:  lse = log(sum_v exp(logits[v])),  loss = lse - logits[target]  (0 if ignored).
// Backward: dlogits[v] += dloss * (exp(logits[v] - lse) - [v == target])   (nothing if ignored).
//
// One block per row. The row is read once: each thread keeps a running max m and a sum s
// of exp(x - m) over its strided share, rescaling s when m grows (the online softmax of
// Milakov & Gimelshein 2018); the block then merges the (m, s) pairs: M = max m,
// S = sum s * exp(m - M).
#include "kernels/cuda/launch.h"
#include "kernels/cuda/reduce.cuh"
#include "kernels/cuda_kernels.h"

namespace sllm::kernels::cuda {
namespace {

__global__ void cross_entropy_forward_kernel(float* losses, float* lse, const float* logits,
                                             const int32_t* targets, int64_t N, int64_t V, int32_t ignore_index) {
  for (int64_t n = blockIdx.x; n < N; n += gridDim.x) {
    const float* x = logits + n * V;  // (V)
    float m = -INFINITY, s = 0.0f;
    for (int64_t v = threadIdx.x; v < V; v += blockDim.x) {
      if (x[v] > m) {
        s = s * expf(m - x[v]) + 1.0f;
        m = x[v];
      } else {
        s += expf(x[v] - m);
      }
    }
    const float M = block_max(m);
    // A thread that saw no element has m = -inf and s = 0: it adds 0.
    const float S = block_sum(s == 0.0f ? 0.0f : s * expf(m - M));
    if (threadIdx.x == 0) {
      const float l = M + logf(S);
      lse[n] = l;
      losses[n] = targets[n] == ignore_index ? 0.0f : l - x[targets[n]];
    }
  }
}

__global__ void cross_entropy_backward_kernel(float* dlogits, const float* dlosses, const float* logits,
                                              const float* lse, const int32_t* targets, int64_t N, int64_t V,
                                              int32_t ignore_index) {
  for (int64_t n = blockIdx.x; n < N; n += gridDim.x) {
    if (targets[n] == ignore_index) continue;  // the same for the whole block
    const float* x = logits + n * V;  // (V)
    float* dx = dlogits + n * V;      // (V)
    const float dl = dlosses[n], l = lse[n];
    for (int64_t v = threadIdx.x; v < V; v += blockDim.x) dx[v] += dl * expf(x[v] - l);
    __syncthreads();  // the thread that added exp(.) to dx[target] is done
    if (threadIdx.x == 0) dx[targets[n]] -= dl;  // the one-hot term, as on the CPU
    __syncthreads();
  }
}

void check_sizes(int64_t N, int64_t V, const char* op) {
  SLLM_CHECK(N >= 0 && V > 0, str(op, ": bad sizes N=", N, " V=", V), "rows must be >= 0 and the vocab non-empty");
}

unsigned row_blocks(int64_t N) { return unsigned(std::min<int64_t>(N, int64_t(1) << 16)); }

}  // namespace

// Targets are validated by the caller (in [0, V) or ignore_index), as on the CPU.
void cross_entropy_forward(float* losses, float* lse, const float* logits, const int32_t* targets, int64_t N,
                           int64_t V, int32_t ignore_index) {
  check_sizes(N, V, "cross_entropy_forward");
  if (N == 0) return;
  SLLM_LAUNCH(row_blocks(N), kThreads, 0, cross_entropy_forward_kernel)(losses, lse, logits, targets, N, V,
                                                                         ignore_index);
  SLLM_CUDA_CHECK_LAUNCH();
}

void cross_entropy_backward(float* dlogits, const float* dlosses, const float* logits, const float* lse,
                            const int32_t* targets, int64_t N, int64_t V, int32_t ignore_index) {
  check_sizes(N, V, "cross_entropy_backward");
  if (!dlogits || N == 0) return;
  SLLM_LAUNCH(row_blocks(N), kThreads, 0, cross_entropy_backward_kernel)(dlogits, dlosses, logits, lse, targets,
                                                                          N, V, ignore_index);
  SLLM_CUDA_CHECK_LAUNCH();
}

}  // namespace sllm::kernels::cuda
