// Fused softmax + cross-entropy over the vocab on the GPU: the probabilities are never
// stored. Formula lines as kernels/cpu/cross_entropy.cpp.
// Legend: N rows (= B*T), V vocab.
// Backward ACCUMULATES (+=) into dlogits; a nullptr dlogits is skipped. The exception is
// cross_entropy_fused_padded (the padded LM head): it writes dlogits over the logits.
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

// One more element x of a row into a thread's running max m and sum s of exp(x - m).
__device__ inline void online_softmax_add(float x, float& m, float& s) {
  if (x > m) {
    s = s * expf(m - x) + 1.0f;
    m = x;
  } else {
    s += expf(x - m);
  }
}

template <class TL>
__global__ void cross_entropy_forward_kernel(float* losses, float* lse, const TL* logits, const int32_t* targets,
                                             int64_t N, int64_t V, int32_t ignore_index) {
  for (int64_t n = blockIdx.x; n < N; n += gridDim.x) {
    const TL* x = logits + n * V;  // (V)
    float m = -INFINITY, s = 0.0f;
    for (int64_t v = threadIdx.x; v < V; v += blockDim.x) {
      online_softmax_add(to_float(x[v]), m, s);
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

// The LM head's padded rows (ops::linear_cross_entropy), forward and backward in one pass
// over each row, as llm.c's fused classifier: logits (N, ld) bf16, the first V columns real,
// the rest padding. Pass 1 reads the row in 16-byte packs (8 bf16; ld is a multiple of 8)
// and forms lse and the loss as cross_entropy_forward_kernel does (each thread an online
// max and sum over its packs, then the block's merge). With write_dlogits, pass 2 (the row is
// still in L2) overwrites the row with dlogits = dl * (softmax - onehot) on the V real
// columns and 0 on the padding and on ignored rows: every element written once, and no
// separate backward kernel has to read the logits again. dl is the loss's gradient per
// counted row (the mean's 1 / count); an upstream factor scales the GEMMs that read dlogits.
constexpr int kPack = 8;  // bf16 per 16-byte load
struct alignas(16) Pack8 {
  __nv_bfloat16 v[kPack];
};

__global__ void cross_entropy_fused_padded_kernel(__nv_bfloat16* logits, float* losses, float* lse,
                                                  const int32_t* targets, int64_t N, int64_t V, int64_t ld,
                                                  int32_t ignore_index, float dl, bool write_dlogits) {
  const int64_t packs = ld / kPack;
  for (int64_t n = blockIdx.x; n < N; n += gridDim.x) {
    Pack8* row = reinterpret_cast<Pack8*>(logits + n * ld);  // (ld / 8)
    float m = -INFINITY, s = 0.0f;
    for (int64_t p = threadIdx.x; p < packs; p += blockDim.x) {
      const Pack8 x = row[p];
#pragma unroll
      for (int k = 0; k < kPack; ++k) {
        if (p * kPack + k >= V) break;  // padding
        online_softmax_add(to_float(x.v[k]), m, s);
      }
    }
    const float M = block_max(m);
    const float S = block_sum(s == 0.0f ? 0.0f : s * expf(m - M));
    const float l = M + logf(S);
    const int32_t target = targets[n];
    const bool ignored = target == ignore_index;
    if (threadIdx.x == 0) {
      lse[n] = l;
      losses[n] = ignored ? 0.0f : l - to_float(logits[n * ld + target]);
    }
    if (!write_dlogits) continue;
    __syncthreads();  // thread 0 read the target's logit before anyone overwrites it
    for (int64_t p = threadIdx.x; p < packs; p += blockDim.x) {
      Pack8 x = row[p];
#pragma unroll
      for (int k = 0; k < kPack; ++k) {
        const int64_t v = p * kPack + k;
        float d = 0.0f;
        if (!ignored && v < V) {
          d = dl * expf(to_float(x.v[k]) - l);
          if (v == target) d -= dl;  // the one-hot term, as on the CPU
        }
        x.v[k] = from_float<__nv_bfloat16>(d);
      }
      row[p] = x;
    }
  }
}

void check_sizes(int64_t N, int64_t V, const char* op) {
  SLLM_CHECK(N >= 0 && V > 0, str(op, ": bad sizes N=", N, " V=", V), "rows must be >= 0 and the vocab non-empty");
}

unsigned row_blocks(int64_t N) { return unsigned(std::min<int64_t>(N, int64_t(1) << 16)); }

// Targets are validated by the caller (in [0, V) or ignore_index), as on the CPU.
template <class TL>
void cross_entropy_forward_launch(float* losses, float* lse, const TL* logits, const int32_t* targets, int64_t N,
                                  int64_t V, int32_t ignore_index) {
  check_sizes(N, V, "cross_entropy_forward");
  if (N == 0) return;
  SLLM_LAUNCH(row_blocks(N), kThreads, 0, cross_entropy_forward_kernel<TL>)(losses, lse, logits, targets, N, V,
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
  cross_entropy_forward_launch(losses, lse, logits, targets, N, V, ignore_index);
}
void cross_entropy_forward(float* losses, float* lse, const bf16* logits, const int32_t* targets, int64_t N,
                           int64_t V, int32_t ignore_index) {
  cross_entropy_forward_launch(losses, lse, device_ptr(logits), targets, N, V, ignore_index);
}
void cross_entropy_fused_padded(bf16* logits, float* losses, float* lse, const int32_t* targets, int64_t N, int64_t V,
                                int64_t ld, int32_t ignore_index, float dl, bool write_dlogits) {
  check_sizes(N, V, "cross_entropy_fused_padded");
  SLLM_CHECK(ld >= V && ld % kPack == 0, str("cross_entropy_fused_padded: row stride ", ld, " (V=", V, ")"),
             "rows hold the V logits padded to a multiple of 8");
  SLLM_CHECK(reinterpret_cast<uintptr_t>(logits) % 16 == 0, "cross_entropy_fused_padded: logits not 16-byte aligned",
             "pass a buffer from the device allocator");
  if (N == 0) return;
  SLLM_LAUNCH(row_blocks(N), kThreads, 0, cross_entropy_fused_padded_kernel)(device_ptr(logits), losses, lse, targets,
                                                                              N, V, ld, ignore_index, dl, write_dlogits);
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
