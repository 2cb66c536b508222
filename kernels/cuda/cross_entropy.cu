// Fused softmax + cross-entropy over the vocab on the GPU: the probabilities are never
// stored. Formula lines as kernels/cpu/cross_entropy.cpp.
// Legend: N rows (= B*T), V vocab.
// Backward ACCUMULATES (+=) into dlogits; a nullptr dlogits is skipped. The exception is
// cross_entropy_backward_overwrite (the padded LM head): it writes dlogits over the logits.
//
// Forward:  lse = log(sum_v exp(logits[v])),  loss = lse - logits[target]  (0 if ignored).
// Backward: dlogits[v] += dloss * (exp(logits[v] - lse) - [v == target])   (nothing if ignored).
//
// One block per row. The row is read once: each thread keeps a running max m and a sum s
// of exp(x - m) over its strided share, rescaling s when m grows (the online softmax of
// Milakov & Gimelshein 2018); the block then merges the (m, s) pairs: M = max m,
// S = sum s * exp(m - M).
//
// Mixed precision: logits and dlogits may be bf16 (element.cuh: loaded as float, computed in
// fp32); losses and lse stay fp32. Backward computes each dlogits element's whole update
// (the one-hot term included) in fp32 and stores it once, so a bf16 dlogits is rounded once.
#include "kernels/cuda/element.cuh"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/reduce.cuh"
#include "kernels/cuda_kernels.h"

namespace sllm::kernels::cuda {
namespace {

template <class TL>
__global__ void cross_entropy_forward_kernel(float* losses, float* lse, const TL* logits, int64_t ld,
                                             const int32_t* targets, int64_t N, int64_t V, int32_t ignore_index) {
  for (int64_t n = blockIdx.x; n < N; n += gridDim.x) {
    const TL* x = logits + n * ld;  // (V) of a row of ld >= V elements
    float m = -INFINITY, s = 0.0f;
    for (int64_t v = threadIdx.x; v < V; v += blockDim.x) {
      const float x_v = to_float(x[v]);
      if (x_v > m) {
        s = s * expf(m - x_v) + 1.0f;
        m = x_v;
      } else {
        s += expf(x_v - m);
      }
    }
    const float M = block_max(m);
    // A thread that saw no element has m = -inf and s = 0: it adds 0.
    const float S = block_sum(s == 0.0f ? 0.0f : s * expf(m - M));
    if (threadIdx.x == 0) {
      const float l = M + logf(S);
      lse[n] = l;
      losses[n] = targets[n] == ignore_index ? 0.0f : l - to_float(x[targets[n]]);
    }
  }
}

// The target's element gets (dx + dl * p) - dl: the CPU's two steps (add p, then subtract
// the one-hot term) in the same order, by the one thread that owns the element.
template <class TL>
__global__ void cross_entropy_backward_kernel(TL* dlogits, const float* dlosses, const TL* logits, const float* lse,
                                              const int32_t* targets, int64_t N, int64_t V, int32_t ignore_index) {
  for (int64_t n = blockIdx.x; n < N; n += gridDim.x) {
    const int32_t target = targets[n];
    if (target == ignore_index) continue;  // the same for the whole block
    const TL* x = logits + n * V;  // (V)
    TL* dx = dlogits + n * V;      // (V)
    const float dl = dlosses[n], l = lse[n];
    for (int64_t v = threadIdx.x; v < V; v += blockDim.x) {
      float d = to_float(dx[v]) + dl * expf(to_float(x[v]) - l);
      if (v == target) d -= dl;  // the one-hot term, as on the CPU
      dx[v] = from_float<TL>(d);
    }
  }
}

// The LM head's padded rows (ops::linear_cross_entropy): logits (N, ld), the first V columns
// real, the rest padding. The row's dlogits overwrite its logits in place, every one of the
// ld elements written once: d = dl * (p - onehot) on the V real columns, 0 on the padding
// and on ignored rows (so the GEMMs that read dlogits over all ld columns add nothing).
// The element's logit is read and its gradient written by the same thread.
__global__ void cross_entropy_backward_overwrite_kernel(__nv_bfloat16* logits_dlogits, float dl, const float* lse,
                                                        const int32_t* targets, int64_t N, int64_t V, int64_t ld,
                                                        int32_t ignore_index) {
  for (int64_t n = blockIdx.x; n < N; n += gridDim.x) {
    const int32_t target = targets[n];
    __nv_bfloat16* x = logits_dlogits + n * ld;  // (ld)
    const float l = lse[n];
    const bool ignored = target == ignore_index;  // the same for the whole block
    for (int64_t v = threadIdx.x; v < ld; v += blockDim.x) {
      float d = 0.0f;
      if (!ignored && v < V) {
        d = 0.0f + dl * expf(to_float(x[v]) - l);  // the accumulating kernel's sum into a zeroed buffer
        if (v == target) d -= dl;
      }
      x[v] = from_float<__nv_bfloat16>(d);
    }
  }
}

void check_sizes(int64_t N, int64_t V, const char* op) {
  SLLM_CHECK(N >= 0 && V > 0, str(op, ": bad sizes N=", N, " V=", V), "rows must be >= 0 and the vocab non-empty");
}

unsigned row_blocks(int64_t N) { return unsigned(std::min<int64_t>(N, int64_t(1) << 16)); }

// Targets are validated by the caller (in [0, V) or ignore_index), as on the CPU.
template <class TL>
void cross_entropy_forward_launch(float* losses, float* lse, const TL* logits, int64_t ld, const int32_t* targets,
                                  int64_t N, int64_t V, int32_t ignore_index) {
  check_sizes(N, V, "cross_entropy_forward");
  SLLM_CHECK(ld >= V, str("cross_entropy_forward: row stride ", ld, " < V=", V), "rows hold at least V logits");
  if (N == 0) return;
  SLLM_LAUNCH(row_blocks(N), kThreads, 0, cross_entropy_forward_kernel<TL>)(losses, lse, logits, ld, targets, N, V,
                                                                             ignore_index);
  SLLM_CUDA_CHECK_LAUNCH();
}

template <class TL>
void cross_entropy_backward_launch(TL* dlogits, const float* dlosses, const TL* logits, const float* lse,
                                   const int32_t* targets, int64_t N, int64_t V, int32_t ignore_index) {
  check_sizes(N, V, "cross_entropy_backward");
  if (!dlogits || N == 0) return;
  SLLM_LAUNCH(row_blocks(N), kThreads, 0, cross_entropy_backward_kernel<TL>)(dlogits, dlosses, logits, lse, targets,
                                                                              N, V, ignore_index);
  SLLM_CUDA_CHECK_LAUNCH();
}

}  // namespace

void cross_entropy_forward(float* losses, float* lse, const float* logits, const int32_t* targets, int64_t N,
                           int64_t V, int32_t ignore_index) {
  cross_entropy_forward_launch(losses, lse, logits, V, targets, N, V, ignore_index);
}
void cross_entropy_forward(float* losses, float* lse, const bf16* logits, const int32_t* targets, int64_t N,
                           int64_t V, int32_t ignore_index) {
  cross_entropy_forward_launch(losses, lse, device_ptr(logits), V, targets, N, V, ignore_index);
}
void cross_entropy_forward_padded(float* losses, float* lse, const bf16* logits, int64_t ld, const int32_t* targets,
                                  int64_t N, int64_t V, int32_t ignore_index) {
  cross_entropy_forward_launch(losses, lse, device_ptr(logits), ld, targets, N, V, ignore_index);
}
void cross_entropy_backward_overwrite(bf16* logits_dlogits, float dl, const float* lse, const int32_t* targets,
                                      int64_t N, int64_t V, int64_t ld, int32_t ignore_index) {
  check_sizes(N, V, "cross_entropy_backward_overwrite");
  SLLM_CHECK(ld >= V, str("cross_entropy_backward_overwrite: row stride ", ld, " < V=", V),
             "rows hold at least V logits");
  if (N == 0) return;
  SLLM_LAUNCH(row_blocks(N), kThreads, 0, cross_entropy_backward_overwrite_kernel)(
      device_ptr(logits_dlogits), dl, lse, targets, N, V, ld, ignore_index);
  SLLM_CUDA_CHECK_LAUNCH();
}

void cross_entropy_backward(float* dlogits, const float* dlosses, const float* logits, const float* lse,
                            const int32_t* targets, int64_t N, int64_t V, int32_t ignore_index) {
  cross_entropy_backward_launch(dlogits, dlosses, logits, lse, targets, N, V, ignore_index);
}
void cross_entropy_backward(bf16* dlogits, const float* dlosses, const bf16* logits, const float* lse,
                            const int32_t* targets, int64_t N, int64_t V, int32_t ignore_index) {
  cross_entropy_backward_launch(device_ptr(dlogits), dlosses, device_ptr(logits), lse, targets, N, V, ignore_index);
}

}  // namespace sllm::kernels::cuda
