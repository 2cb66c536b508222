// Dtype casts on the GPU between fp32 and bf16 (mixed precision: fp32 master weights are
// cast to bf16 copies for the matmuls; bf16 results are widened where fp32 is needed).
// Legend: n elements.
//
// fp32 -> bf16 rounds to nearest even and keeps NaN a NaN, bit for bit as sllm::f32_to_bf16
// (element.cuh); bf16 -> fp32 is exact (a bf16 is the top half of an fp32).
#include "kernels/cuda/element.cuh"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/pack.cuh"
#include "kernels/cuda_kernels.h"

namespace sllm::kernels::cuda {
namespace {

// out (n) = inp (n) converted, P elements per step (pack.cuh), grid-stride over packs.
template <class TOut, class TIn, int P>
__global__ void cast_kernel(TOut* out, const TIn* inp, int64_t packs) {
  SLLM_FOR_EACH_PACK(i, packs) {
    const Pack<TIn, P> x = load_pack<P>(inp, i);
    Pack<TOut, P> y;
#pragma unroll
    for (int k = 0; k < P; ++k) y.v[k] = from_float<TOut>(to_float(x.v[k]));
    store_pack<P>(out, i, y);
  }
}

// out (rows, cols) = row (cols) converted, repeated on every row; grid-stride.
template <class TOut, class TIn>
__global__ void broadcast_rows_kernel(TOut* out, const TIn* row, int64_t rows, int64_t cols) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < rows * cols; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = from_float<TOut>(to_float(row[i % cols]));
}

template <class TOut, class TIn>
void cast_launch(TOut* out, const TIn* inp, int64_t n) {
  SLLM_CHECK(n >= 0, str("cast_forward: negative element count ", n), "sizes must be >= 0");
  if (n == 0) return;
  // 4 elements per pack: 16 bytes of the fp32 side, 8 of the bf16 side.
  over_packs<4>(n, {out, inp}, [&](auto p, int64_t off, int64_t packs) {
    constexpr int P = decltype(p)::value;
    SLLM_LAUNCH(grid_for(packs), kThreads, 0, cast_kernel<TOut, TIn, P>)(out + off, inp + off, packs);
    SLLM_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace

void cast_forward(bf16* out, const float* inp, int64_t n) { cast_launch(device_ptr(out), inp, n); }

void cast_forward(float* out, const bf16* inp, int64_t n) { cast_launch(out, device_ptr(inp), n); }

void broadcast_rows(bf16* out, const float* row, int64_t rows, int64_t cols) {
  SLLM_CHECK(rows >= 0 && cols >= 0, str("broadcast_rows: bad sizes rows=", rows, " cols=", cols), "sizes must be >= 0");
  if (rows * cols == 0) return;
  SLLM_LAUNCH(grid_for(rows * cols), kThreads, 0, broadcast_rows_kernel<__nv_bfloat16, float>)(device_ptr(out), row, rows,
                                                                                              cols);
  SLLM_CUDA_CHECK_LAUNCH();
}

}  // namespace sllm::kernels::cuda
