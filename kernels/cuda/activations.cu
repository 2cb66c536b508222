// Pointwise activations on the GPU: GELU (tanh approximation and exact erf form), SiLU,
// SwiGLU. The formula lines are those of kernels/cpu/activations.cpp (read it for the
// derivations); expf and erff replace the CPU's exp_approx and std::erf.
// Legend: n elements.
// Backward ACCUMULATES (+=) into dinp / dgate / dup; a nullptr gradient is skipped. The bf16
// entries take accumulate = false for a fresh gradient buffer: written, no zero-fill needed.
//
// Every buffer of a call has one element type T, fp32 or bf16 (element.cuh): loaded as
// float, computed in fp32 as the fp32 kernel, rounded once on store (a bf16 gradient's +=
// included).
#include "kernels/cuda/element.cuh"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/pack.cuh"
#include "kernels/cuda_kernels.h"

namespace sllm::kernels::cuda {
namespace {

constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kGeluCubic = 0.044715f;
constexpr float kInvSqrt2 = 0.7071067811865476f;
constexpr float kInvSqrt2Pi = 0.3989422804014327f;  // 1 / sqrt(2π): the normal density's scale

__device__ inline float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

// ---- the formulas, one element in fp32 ------------------------------------------------------

struct Gelu {
  bool tanh_approx;
  __device__ float forward(float x) const {
    if (tanh_approx) {
      const float u = kSqrt2OverPi * (x + kGeluCubic * x * x * x);
      return x * sigmoid(2.0f * u);
    }
    return 0.5f * x * (1.0f + erff(x * kInvSqrt2));
  }
  __device__ float derivative(float x) const {
    if (tanh_approx) {
      const float u = kSqrt2OverPi * (x + kGeluCubic * x * x * x);
      const float du = kSqrt2OverPi * (1.0f + 3.0f * kGeluCubic * x * x);
      const float s = sigmoid(2.0f * u);
      return s + 2.0f * x * s * (1.0f - s) * du;
    }
    const float cdf = 0.5f * (1.0f + erff(x * kInvSqrt2));
    const float pdf = kInvSqrt2Pi * expf(-0.5f * x * x);
    return cdf + x * pdf;
  }
};

struct Silu {
  __device__ float forward(float x) const { return x * sigmoid(x); }
  __device__ float derivative(float x) const {
    const float s = sigmoid(x);
    return s * (1.0f + x * (1.0f - s));
  }
};

// ---- kernels: grid-stride over packs of P elements (pack.cuh) --------------------------------
// P = 16 / sizeof(T) (8 bf16 or 4 floats) when every pointer is 16-byte aligned, else 1; the
// n % P tail runs as a second launch with P = 1. A gradient is accumulated (+=, one rounding)
// or, for a fresh buffer, written (the same expression with 0 in place of the old value).

// out = f(inp)
template <class T, int P, class F>
__global__ void activation_forward_kernel(T* out, const T* inp, int64_t packs, F f) {
  SLLM_FOR_EACH_PACK(i, packs) {
    const Pack<T, P> x = load_pack<P>(inp, i);
    Pack<T, P> y;
#pragma unroll
    for (int k = 0; k < P; ++k) y.v[k] = from_float<T>(f.forward(to_float(x.v[k])));
    store_pack<P>(out, i, y);
  }
}

// dinp (+)= dout * f'(inp)
template <class T, int P, class F>
__global__ void activation_backward_kernel(T* dinp, const T* dout, const T* inp, int64_t packs, F f, bool accumulate) {
  SLLM_FOR_EACH_PACK(i, packs) {
    const Pack<T, P> x = load_pack<P>(inp, i), dy = load_pack<P>(dout, i);
    Pack<T, P> d;
    if (accumulate) d = load_pack<P>(dinp, i);
#pragma unroll
    for (int k = 0; k < P; ++k) {
      const float old = accumulate ? to_float(d.v[k]) : 0.0f;
      d.v[k] = from_float<T>(old + to_float(dy.v[k]) * f.derivative(to_float(x.v[k])));
    }
    store_pack<P>(dinp, i, d);
  }
}

// out = silu(gate) * up
template <class T, int P>
__global__ void swiglu_forward_kernel(T* out, const T* gate, const T* up, int64_t packs) {
  SLLM_FOR_EACH_PACK(i, packs) {
    const Pack<T, P> g = load_pack<P>(gate, i), u = load_pack<P>(up, i);
    Pack<T, P> y;
#pragma unroll
    for (int k = 0; k < P; ++k) {
      const float x = to_float(g.v[k]);
      y.v[k] = from_float<T>(x * sigmoid(x) * to_float(u.v[k]));
    }
    store_pack<P>(out, i, y);
  }
}

// dgate (+)= dout * up * silu'(gate);  dup (+)= dout * silu(gate).
template <class T, int P>
__global__ void swiglu_backward_kernel(T* dgate, T* dup, const T* dout, const T* gate, const T* up, int64_t packs,
                                       bool accumulate) {
  SLLM_FOR_EACH_PACK(i, packs) {
    const Pack<T, P> g = load_pack<P>(gate, i), u = load_pack<P>(up, i), dy = load_pack<P>(dout, i);
    Pack<T, P> dg, du;
    if (accumulate && dgate) dg = load_pack<P>(dgate, i);
    if (accumulate && dup) du = load_pack<P>(dup, i);
#pragma unroll
    for (int k = 0; k < P; ++k) {
      const float x = to_float(g.v[k]), s = sigmoid(x), y = to_float(dy.v[k]);
      if (dgate)
        dg.v[k] = from_float<T>((accumulate ? to_float(dg.v[k]) : 0.0f) +
                                y * to_float(u.v[k]) * (s * (1.0f + x * (1.0f - s))));
      if (dup) du.v[k] = from_float<T>((accumulate ? to_float(du.v[k]) : 0.0f) + y * (x * s));
    }
    if (dgate) store_pack<P>(dgate, i, dg);
    if (dup) store_pack<P>(dup, i, du);
  }
}

void check_count(int64_t n, const char* op) {
  SLLM_CHECK(n >= 0, str(op, ": negative element count ", n), "sizes must be >= 0");
}

// ---- launchers: validate, launch, check the launch ---------------------------------------

template <class T, class F>
void activation_forward_launch(const char* op, T* out, const T* inp, int64_t n, F f) {
  check_count(n, op);
  if (n == 0) return;
  over_packs<int(16 / sizeof(T))>(n, {out, inp}, [&](auto p, int64_t off, int64_t packs) {
    constexpr int P = decltype(p)::value;
    SLLM_LAUNCH(grid_for(packs), kThreads, 0, activation_forward_kernel<T, P, F>)(out + off, inp + off, packs, f);
    SLLM_CUDA_CHECK_LAUNCH();
  });
}

template <class T, class F>
void activation_backward_launch(const char* op, T* dinp, const T* dout, const T* inp, int64_t n, F f,
                                bool accumulate) {
  check_count(n, op);
  if (!dinp || n == 0) return;
  over_packs<int(16 / sizeof(T))>(n, {dinp, dout, inp}, [&](auto p, int64_t off, int64_t packs) {
    constexpr int P = decltype(p)::value;
    SLLM_LAUNCH(grid_for(packs), kThreads, 0, activation_backward_kernel<T, P, F>)(dinp + off, dout + off, inp + off,
                                                                                    packs, f, accumulate);
    SLLM_CUDA_CHECK_LAUNCH();
  });
}

template <class T>
void swiglu_forward_launch(T* out, const T* gate, const T* up, int64_t n) {
  check_count(n, "swiglu_forward");
  if (n == 0) return;
  over_packs<int(16 / sizeof(T))>(n, {out, gate, up}, [&](auto p, int64_t off, int64_t packs) {
    constexpr int P = decltype(p)::value;
    SLLM_LAUNCH(grid_for(packs), kThreads, 0, swiglu_forward_kernel<T, P>)(out + off, gate + off, up + off, packs);
    SLLM_CUDA_CHECK_LAUNCH();
  });
}

template <class T>
void swiglu_backward_launch(T* dgate, T* dup, const T* dout, const T* gate, const T* up, int64_t n, bool accumulate) {
  check_count(n, "swiglu_backward");
  if ((!dgate && !dup) || n == 0) return;
  over_packs<int(16 / sizeof(T))>(n, {dgate, dup, dout, gate, up}, [&](auto p, int64_t off, int64_t packs) {
    constexpr int P = decltype(p)::value;
    SLLM_LAUNCH(grid_for(packs), kThreads, 0, swiglu_backward_kernel<T, P>)(
        dgate ? dgate + off : nullptr, dup ? dup + off : nullptr, dout + off, gate + off, up + off, packs, accumulate);
    SLLM_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace

// ---- entries: fp32, and every buffer bf16 ---------------------------------------------------

void gelu_forward(float* out, const float* inp, int64_t n, bool tanh_approx) {
  activation_forward_launch("gelu_forward", out, inp, n, Gelu{tanh_approx});
}
void gelu_forward(bf16* out, const bf16* inp, int64_t n, bool tanh_approx) {
  activation_forward_launch("gelu_forward", device_ptr(out), device_ptr(inp), n, Gelu{tanh_approx});
}

void gelu_backward(float* dinp, const float* dout, const float* inp, int64_t n, bool tanh_approx) {
  activation_backward_launch("gelu_backward", dinp, dout, inp, n, Gelu{tanh_approx}, true);
}
void gelu_backward(bf16* dinp, const bf16* dout, const bf16* inp, int64_t n, bool tanh_approx, bool accumulate) {
  activation_backward_launch("gelu_backward", device_ptr(dinp), device_ptr(dout), device_ptr(inp), n,
                             Gelu{tanh_approx}, accumulate);
}

void silu_forward(float* out, const float* inp, int64_t n) { activation_forward_launch("silu_forward", out, inp, n, Silu{}); }
void silu_forward(bf16* out, const bf16* inp, int64_t n) {
  activation_forward_launch("silu_forward", device_ptr(out), device_ptr(inp), n, Silu{});
}

void silu_backward(float* dinp, const float* dout, const float* inp, int64_t n) {
  activation_backward_launch("silu_backward", dinp, dout, inp, n, Silu{}, true);
}
void silu_backward(bf16* dinp, const bf16* dout, const bf16* inp, int64_t n, bool accumulate) {
  activation_backward_launch("silu_backward", device_ptr(dinp), device_ptr(dout), device_ptr(inp), n, Silu{},
                             accumulate);
}

void swiglu_forward(float* out, const float* gate, const float* up, int64_t n) {
  swiglu_forward_launch(out, gate, up, n);
}
void swiglu_forward(bf16* out, const bf16* gate, const bf16* up, int64_t n) {
  swiglu_forward_launch(device_ptr(out), device_ptr(gate), device_ptr(up), n);
}

void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up, int64_t n) {
  swiglu_backward_launch(dgate, dup, dout, gate, up, n, true);
}
void swiglu_backward(bf16* dgate, bf16* dup, const bf16* dout, const bf16* gate, const bf16* up, int64_t n,
                     bool accumulate) {
  swiglu_backward_launch(device_ptr(dgate), device_ptr(dup), device_ptr(dout), device_ptr(gate), device_ptr(up), n,
                         accumulate);
}

}  // namespace sllm::kernels::cuda
