// Warp and block reductions used by the row kernels (norms, softmax, cross-entropy, sums).
// Butterfly (xor) shuffles: every lane ends with the same value, combined in a fixed order,
// so a reduction's result does not depend on scheduling.
#pragma once
#include <cuda_runtime.h>

namespace sllm::kernels::cuda {

constexpr unsigned kFullMask = 0xffffffffu;

struct SumOp {
  template <class T>
  __device__ T operator()(T a, T b) const { return a + b; }
};
struct MaxOp {
  __device__ float operator()(float a, float b) const { return fmaxf(a, b); }
};

template <class T, class Op>
__device__ inline T warp_reduce(T x, Op op) {
  for (int offset = 16; offset > 0; offset >>= 1) x = op(x, __shfl_xor_sync(kFullMask, x, offset));
  return x;
}

template <class T>
__device__ inline T warp_sum(T x) { return warp_reduce(x, SumOp{}); }
__device__ inline float warp_max(float x) { return warp_reduce(x, MaxOp{}); }

// Reduces x over the whole block (blockDim.x a multiple of 32, at most 1024) and returns
// the result to every thread. `identity` fills the unused slots (0 for sums, -inf for max).
template <class T, class Op>
__device__ inline T block_reduce(T x, Op op, T identity) {
  __shared__ T partial[32];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  x = warp_reduce(x, op);
  __syncthreads();  // a previous call's readers are done with `partial`
  if (lane == 0) partial[warp] = x;
  __syncthreads();
  return warp_reduce(lane < warps ? partial[lane] : identity, op);
}

template <class T>
__device__ inline T block_sum(T x) { return block_reduce(x, SumOp{}, T(0)); }
__device__ inline float block_max(float x) { return block_reduce(x, MaxOp{}, -INFINITY); }

}  // namespace sllm::kernels::cuda
