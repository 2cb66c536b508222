// Softmax and log-softmax over the last dim on the GPU, numerically stable (row max
// subtracted). Formula lines as kernels/cpu/softmax.cpp.
// Legend: N rows, C columns (the softmax dim).
// Backward ACCUMULATES (+=) into dinp; a nullptr dinp is skipped.
//
// softmax:      y = exp(x - max) / sum(exp(x - max));   dinp += y * (dout - sum(dout * y))
// log_softmax:  y = x - max - log(sum(exp(x - max)));    dinp += dout - exp(y) * sum(dout)
// One block per row (rows can be a whole vocabulary long); the row's max and sums are
// block reductions in a fixed order.
#include "kernels/cuda/launch.h"
#include "kernels/cuda/reduce.cuh"
#include "kernels/cuda_kernels.h"

namespace sllm::kernels::cuda {
namespace {

__global__ void softmax_forward_kernel(float* out, const float* inp, int64_t N, int64_t C) {
  for (int64_t n = blockIdx.x; n < N; n += gridDim.x) {
    const float* x = inp + n * C;  // (C)
    float* y = out + n * C;        // (C)
    float mx = -INFINITY;
    for (int64_t i = threadIdx.x; i < C; i += blockDim.x) mx = fmaxf(mx, x[i]);
    const float m = block_max(mx);
    float sum = 0.0f;
    for (int64_t i = threadIdx.x; i < C; i += blockDim.x) {
      y[i] = expf(x[i] - m);
      sum += y[i];
    }
    const float inv_sum = 1.0f / block_sum(sum);
    for (int64_t i = threadIdx.x; i < C; i += blockDim.x) y[i] *= inv_sum;  // each thread rescales its own y
  }
}

__global__ void softmax_backward_kernel(float* dinp, const float* dout, const float* out, int64_t N, int64_t C) {
  for (int64_t n = blockIdx.x; n < N; n += gridDim.x) {
    const float* y = out + n * C;    // (C)
    const float* dy = dout + n * C;  // (C)
    float* dx = dinp + n * C;        // (C)
    float acc = 0.0f;
    for (int64_t i = threadIdx.x; i < C; i += blockDim.x) acc += dy[i] * y[i];
    const float dot = block_sum(acc);
    for (int64_t i = threadIdx.x; i < C; i += blockDim.x) dx[i] += y[i] * (dy[i] - dot);
  }
}

__global__ void log_softmax_forward_kernel(float* out, const float* inp, int64_t N, int64_t C) {
  for (int64_t n = blockIdx.x; n < N; n += gridDim.x) {
    const float* x = inp + n * C;  // (C)
    float* y = out + n * C;        // (C)
    float mx = -INFINITY;
    for (int64_t i = threadIdx.x; i < C; i += blockDim.x) mx = fmaxf(mx, x[i]);
    const float m = block_max(mx);
    float sum = 0.0f;
    for (int64_t i = threadIdx.x; i < C; i += blockDim.x) sum += expf(x[i] - m);
    const float log_sum = logf(block_sum(sum));
    for (int64_t i = threadIdx.x; i < C; i += blockDim.x) y[i] = (x[i] - m) - log_sum;
  }
}

__global__ void log_softmax_backward_kernel(float* dinp, const float* dout, const float* out, int64_t N,
                                            int64_t C) {
  for (int64_t n = blockIdx.x; n < N; n += gridDim.x) {
    const float* y = out + n * C;    // (C)
    const float* dy = dout + n * C;  // (C)
    float* dx = dinp + n * C;        // (C)
    float acc = 0.0f;
    for (int64_t i = threadIdx.x; i < C; i += blockDim.x) acc += dy[i];
    const float dsum = block_sum(acc);
    for (int64_t i = threadIdx.x; i < C; i += blockDim.x) dx[i] += dy[i] - expf(y[i]) * dsum;
  }
}

void check_sizes(int64_t N, int64_t C, const char* op) {
  SLLM_CHECK(N >= 0 && C > 0, str(op, ": bad sizes N=", N, " C=", C), "rows must be >= 0 and columns > 0");
}

// One block per row, up to 65536 blocks striding over the rows.
unsigned row_blocks(int64_t N) { return unsigned(std::min<int64_t>(N, int64_t(1) << 16)); }

}  // namespace

void softmax_forward(float* out, const float* inp, int64_t N, int64_t C) {
  check_sizes(N, C, "softmax_forward");
  if (N == 0) return;
  SLLM_LAUNCH(row_blocks(N), kThreads, 0, softmax_forward_kernel)(out, inp, N, C);
  SLLM_CUDA_CHECK_LAUNCH();
}

void softmax_backward(float* dinp, const float* dout, const float* out, int64_t N, int64_t C) {
  check_sizes(N, C, "softmax_backward");
  if (!dinp || N == 0) return;
  SLLM_LAUNCH(row_blocks(N), kThreads, 0, softmax_backward_kernel)(dinp, dout, out, N, C);
  SLLM_CUDA_CHECK_LAUNCH();
}

void log_softmax_forward(float* out, const float* inp, int64_t N, int64_t C) {
  check_sizes(N, C, "log_softmax_forward");
  if (N == 0) return;
  SLLM_LAUNCH(row_blocks(N), kThreads, 0, log_softmax_forward_kernel)(out, inp, N, C);
  SLLM_CUDA_CHECK_LAUNCH();
}

void log_softmax_backward(float* dinp, const float* dout, const float* out, int64_t N, int64_t C) {
  check_sizes(N, C, "log_softmax_backward");
  if (!dinp || N == 0) return;
  SLLM_LAUNCH(row_blocks(N), kThreads, 0, log_softmax_backward_kernel)(dinp, dout, out, N, C);
  SLLM_CUDA_CHECK_LAUNCH();
}

}  // namespace sllm::kernels::cuda
