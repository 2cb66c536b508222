// Rotary position embedding on the GPU (Su et al. 2021, "RoFormer", eq. 34). Formula lines
// as kernels/cpu/rope.cpp.
// Legend: B batch, T time, NH heads, HD head dim (even), T_max table length.
// Backward ACCUMULATES (+=) into dinp; a nullptr dinp is skipped.
//
// Each pair (x0, x1) of a head vector at position p is rotated by angle(p, i):
//   out0 = x0 cos - x1 sin,   out1 = x1 cos + x0 sin.
// Backward rotates dout by -angle (a rotation's transpose is its inverse).
// Pair i is (i, i + HD/2) in the HF half-split layout, (2i, 2i+1) in the interleaved one.
// One thread per pair; a thread reads its pair before writing it, so out may alias inp.
// x and y are fp32 or bf16 (element.cuh: loaded as float, rounded once on store, the +=
// of backward included); the cos / sin tables stay fp32.
#include "kernels/cuda/element.cuh"
#include "kernels/cuda/launch.h"
#include "kernels/cuda_kernels.h"

namespace sllm::kernels::cuda {
namespace {

// sign = +1 rotates by +angle (forward, y = R x); -1 by -angle (backward, y += Rᵀ x).
// cos, sin (T_max, HD/2); x, y (B, T, NH, HD) of element type E.
template <class E>
__global__ void rope_kernel(E* y, const E* x, const float* cos, const float* sin, int64_t B, int64_t T, int64_t NH,
                            int64_t HD, int64_t pos0, bool interleaved, float sign, bool accumulate) {
  const int64_t half = HD / 2, pairs = B * T * NH * half;
  for (int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; idx < pairs;
       idx += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = idx % half, bth = idx / half;  // pair i of head row bth = (b*T + t)*NH + h
    const int64_t pos = pos0 + (bth / NH) % T;
    const float c = cos[pos * half + i], sn = sign * sin[pos * half + i];
    const int64_t i0 = bth * HD + (interleaved ? 2 * i : i), i1 = bth * HD + (interleaved ? 2 * i + 1 : i + half);
    const float x0 = to_float(x[i0]), x1 = to_float(x[i1]);
    const float y0 = x0 * c - x1 * sn, y1 = x1 * c + x0 * sn;
    if (accumulate) {
      y[i0] = from_float<E>(to_float(y[i0]) + y0);
      y[i1] = from_float<E>(to_float(y[i1]) + y1);
    } else {
      y[i0] = from_float<E>(y0);
      y[i1] = from_float<E>(y1);
    }
  }
}

void check_sizes(int64_t B, int64_t T, int64_t NH, int64_t HD, int64_t pos0, const char* op) {
  SLLM_CHECK(B >= 0 && T >= 0 && NH > 0 && HD > 0 && HD % 2 == 0 && pos0 >= 0,
             str(op, ": bad sizes B=", B, " T=", T, " NH=", NH, " HD=", HD, " pos0=", pos0),
             "the head dim must be even and positive; positions start at pos0 >= 0");
}

template <class E>
void rope_launch(E* y, const E* x, const float* cos, const float* sin, int64_t B, int64_t T, int64_t NH, int64_t HD,
                 int64_t pos0, bool interleaved, float sign, bool accumulate) {
  const int64_t pairs = B * T * NH * (HD / 2);
  if (pairs == 0) return;
  SLLM_LAUNCH(grid_for(pairs), kThreads, 0, rope_kernel<E>)(y, x, cos, sin, B, T, NH, HD, pos0, interleaved, sign,
                                                          accumulate);
  SLLM_CUDA_CHECK_LAUNCH();
}


// x (B, T, NH, HD) at positions pos0 + t; the tables must hold rows up to pos0 + T - 1.
template <class E>
void rope_forward_launch(E* out, const E* inp, const float* cos, const float* sin, int64_t B, int64_t T, int64_t NH,
                         int64_t HD, int64_t pos0, bool interleaved) {
  check_sizes(B, T, NH, HD, pos0, "rope_forward");
  rope_launch(out, inp, cos, sin, B, T, NH, HD, pos0, interleaved, 1.0f, false);
}

template <class E>
void rope_backward_launch(E* dinp, const E* dout, const float* cos, const float* sin, int64_t B, int64_t T,
                          int64_t NH, int64_t HD, int64_t pos0, bool interleaved) {
  check_sizes(B, T, NH, HD, pos0, "rope_backward");
  if (!dinp) return;
  rope_launch(dinp, dout, cos, sin, B, T, NH, HD, pos0, interleaved, -1.0f, true);
}

}  // namespace

void rope_forward(float* out, const float* inp, const float* cos, const float* sin, int64_t B, int64_t T,
                  int64_t NH, int64_t HD, int64_t pos0, bool interleaved) {
  rope_forward_launch(out, inp, cos, sin, B, T, NH, HD, pos0, interleaved);
}
void rope_forward(bf16* out, const bf16* inp, const float* cos, const float* sin, int64_t B, int64_t T,
                  int64_t NH, int64_t HD, int64_t pos0, bool interleaved) {
  rope_forward_launch(device_ptr(out), device_ptr(inp), cos, sin, B, T, NH, HD, pos0, interleaved);
}

void rope_backward(float* dinp, const float* dout, const float* cos, const float* sin, int64_t B, int64_t T,
                   int64_t NH, int64_t HD, int64_t pos0, bool interleaved) {
  rope_backward_launch(dinp, dout, cos, sin, B, T, NH, HD, pos0, interleaved);
}
void rope_backward(bf16* dinp, const bf16* dout, const float* cos, const float* sin, int64_t B, int64_t T,
                   int64_t NH, int64_t HD, int64_t pos0, bool interleaved) {
  rope_backward_launch(device_ptr(dinp), device_ptr(dout), cos, sin, B, T, NH, HD, pos0, interleaved);
}

}  // namespace sllm::kernels::cuda
