// Pointwise activations: GELU (tanh approximation and exact erf form), SiLU, SwiGLU.
// Legend: n elements.
// Backward ACCUMULATES (+=) into dinp / dgate / dup; a nullptr gradient is skipped.
//
// GELU (Hendrycks & Gimpel 2016):  exact  gelu(x) = x Φ(x) = 0.5 x (1 + erf(x / sqrt 2)),
//   gelu'(x) = Φ(x) + x φ(x).   tanh ("gelu_new", GPT-2):  u = sqrt(2/π) (x + 0.044715 x³),
//   gelu(x) = 0.5 x (1 + tanh u).  The fast path uses 0.5 (1 + tanh u) = sigmoid(2u), which
//   needs one exp and has no cancellation near u = 0; with s = sigmoid(2u) and
//   sech²u = 4 s (1 - s):  gelu'(x) = s + 2 x s (1 - s) du/dx,  du/dx = sqrt(2/π)(1 + 3·0.044715 x²).
// SiLU (Elfwing et al. 2018):  silu(x) = x s,  s = sigmoid(x),  silu'(x) = s (1 + x (1 - s)).
// SwiGLU (Shazeer 2020):  out = silu(gate) * up.
#include <cmath>
#include <numbers>

#include "kernels/cpu/vec_math.h"
#include "kernels/kernels.h"

// GCC's x86 tuning prefers 256-bit vectors even where AVX-512 exists; these loops are
// long, regular streams of exp arithmetic, so full-width registers pay off (as in
// attention.cpp; no effect on other ISAs).
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#pragma GCC target("prefer-vector-width=512")
#endif

namespace sllm::kernels {
namespace {
constexpr int64_t kParallelMin = 1 << 14;  // below this, one thread (a parallel region costs ~1 us)
constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kGeluCubic = 0.044715f;
constexpr float kInvSqrt2 = 0.7071067811865476f;
constexpr float kInvSqrt2Pi = 0.3989422804014327f;  // 1 / sqrt(2π): the normal density's scale
}  // namespace

// ---- GELU ------------------------------------------------------------------------------
void gelu_forward(float* out, const float* inp, int64_t n, bool tanh_approx) {
  if (tanh_approx) {
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
    for (int64_t i = 0; i < n; ++i) {
      const float x = inp[i];
      const float u = kSqrt2OverPi * (x + kGeluCubic * x * x * x);
      out[i] = x * sigmoid_approx(2.0f * u);
    }
    return;
  }
  // std::erf is a libm call, so this loop stays scalar; GPT-2 trains with the tanh form.
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) out[i] = 0.5f * inp[i] * (1.0f + std::erf(inp[i] * kInvSqrt2));
}

void gelu_backward(float* dinp, const float* dout, const float* inp, int64_t n, bool tanh_approx) {
  if (!dinp) return;
  if (tanh_approx) {
    // `simd`: GCC's cost model rejects this loop (three streams that might alias) and runs
    // it scalar, 4x slower; the buffers never overlap, and each element is computed alone,
    // so the vector loop gives the same bits.
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
    for (int64_t i = 0; i < n; ++i) {
      const float x = inp[i];
      const float u = kSqrt2OverPi * (x + kGeluCubic * x * x * x);
      const float du = kSqrt2OverPi * (1.0f + 3.0f * kGeluCubic * x * x);
      const float s = sigmoid_approx(2.0f * u);
      dinp[i] += dout[i] * (s + 2.0f * x * s * (1.0f - s) * du);
    }
    return;
  }
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const float x = inp[i];
    const float cdf = 0.5f * (1.0f + std::erf(x * kInvSqrt2));
    const float pdf = kInvSqrt2Pi * exp_approx(-0.5f * x * x);
    dinp[i] += dout[i] * (cdf + x * pdf);
  }
}

void gelu_forward_ref(float* out, const float* inp, int64_t n, bool tanh_approx) {
  for (int64_t i = 0; i < n; ++i) {
    const double x = inp[i];
    if (tanh_approx) {
      const double u = std::sqrt(2.0 / std::numbers::pi) * (x + 0.044715 * x * x * x);
      out[i] = float(0.5 * x * (1.0 + std::tanh(u)));
    } else {
      out[i] = float(0.5 * x * (1.0 + std::erf(x / std::numbers::sqrt2)));
    }
  }
}

void gelu_backward_ref(float* dinp, const float* dout, const float* inp, int64_t n, bool tanh_approx) {
  if (!dinp) return;
  for (int64_t i = 0; i < n; ++i) {
    const double x = inp[i];
    double g;
    if (tanh_approx) {
      const double k = std::sqrt(2.0 / std::numbers::pi);
      const double t = std::tanh(k * (x + 0.044715 * x * x * x));
      g = 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * k * (1.0 + 3.0 * 0.044715 * x * x);
    } else {
      g = 0.5 * (1.0 + std::erf(x / std::numbers::sqrt2)) +
          x * std::exp(-0.5 * x * x) / std::sqrt(2.0 * std::numbers::pi);
    }
    dinp[i] += float(dout[i] * g);
  }
}

// ---- SiLU ------------------------------------------------------------------------------
void silu_forward(float* out, const float* inp, int64_t n) {
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) out[i] = inp[i] * sigmoid_approx(inp[i]);
}

void silu_backward(float* dinp, const float* dout, const float* inp, int64_t n) {
  if (!dinp) return;
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const float x = inp[i], s = sigmoid_approx(x);
    dinp[i] += dout[i] * (s * (1.0f + x * (1.0f - s)));
  }
}

void silu_forward_ref(float* out, const float* inp, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const double x = inp[i];
    out[i] = float(x / (1.0 + std::exp(-x)));
  }
}

void silu_backward_ref(float* dinp, const float* dout, const float* inp, int64_t n) {
  if (!dinp) return;
  for (int64_t i = 0; i < n; ++i) {
    const double x = inp[i], s = 1.0 / (1.0 + std::exp(-x));
    dinp[i] += float(dout[i] * s * (1.0 + x * (1.0 - s)));
  }
}

// ---- SwiGLU ----------------------------------------------------------------------------
// out (n) = silu(gate (n)) * up (n).
void swiglu_forward(float* out, const float* gate, const float* up, int64_t n) {
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) out[i] = gate[i] * sigmoid_approx(gate[i]) * up[i];
}

// dgate += dout * up * silu'(gate);  dup += dout * silu(gate).
void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up,
                     int64_t n) {
  if (!dgate && !dup) return;
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const float x = gate[i], s = sigmoid_approx(x);
    if (dgate) dgate[i] += dout[i] * up[i] * (s * (1.0f + x * (1.0f - s)));
    if (dup) dup[i] += dout[i] * (x * s);
  }
}

void swiglu_forward_ref(float* out, const float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const double x = gate[i];
    out[i] = float(x / (1.0 + std::exp(-x)) * up[i]);
  }
}

void swiglu_backward_ref(float* dgate, float* dup, const float* dout, const float* gate, const float* up,
                         int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const double x = gate[i], s = 1.0 / (1.0 + std::exp(-x));
    if (dgate) dgate[i] += float(double(dout[i]) * up[i] * s * (1.0 + x * (1.0 - s)));
    if (dup) dup[i] += float(double(dout[i]) * x * s);
  }
}

}  // namespace sllm::kernels
