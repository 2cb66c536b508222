// AdamW: Adam with decoupled weight decay (Loshchilov & Hutter 2019, Alg. 2), with the
// update order of PyTorch's torch.optim.AdamW (single-tensor path):
//   param *= 1 - lr * wd                       (decay first, on the old param)
//   m = beta1 m + (1 - beta1) g,   v = beta2 v + (1 - beta2) g²
//   mhat = m / (1 - beta1^step),   vhat = v / (1 - beta2^step)      (step is 1-based)
//   param -= lr * mhat / (sqrt(vhat) + eps)
// Legend: n parameters; param, grad, m, v are all (n).
//
// Why intrinsics here: std::sqrt may set errno, so without -ffast-math GCC keeps a branch to
// libm in the loop and will not vectorize it. The AVX-512 path performs the same IEEE
// operations in the same order as the scalar one (sqrt and division are correctly rounded);
// only FMA contraction, which GCC may apply to the scalar loop, can change a last bit.
#include <algorithm>
#include <cmath>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "kernels/kernels.h"

namespace sllm::kernels {
namespace {

constexpr int64_t kBlock = 1 << 13;  // elements per OpenMP task

// Per-step scalars. Like PyTorch, the bias corrections are folded in (computed in double):
// param = param * decay - step_size * m / (sqrt(v) * inv_sqrt_bc2 + eps),
// step_size = lr / (1 - beta1^step), inv_sqrt_bc2 = 1 / sqrt(1 - beta2^step).
struct AdamScalars {
  float beta1, one_minus_beta1, beta2, one_minus_beta2, eps, decay, step_size, inv_sqrt_bc2;
};

void adamw_span_scalar(float* param, const float* grad, float* m, float* v, int64_t begin, int64_t end,
                       const AdamScalars& k) {
  for (int64_t i = begin; i < end; ++i) {
    const float g = grad[i];
    const float mi = k.beta1 * m[i] + k.one_minus_beta1 * g;
    const float vi = k.beta2 * v[i] + k.one_minus_beta2 * (g * g);
    m[i] = mi;
    v[i] = vi;
    param[i] = param[i] * k.decay - k.step_size * mi / (std::sqrt(vi) * k.inv_sqrt_bc2 + k.eps);
  }
}

#if defined(__x86_64__)
__attribute__((target("avx512f"))) void adamw_span_avx512(float* param, const float* grad, float* m, float* v,
                                                          int64_t begin, int64_t end, const AdamScalars& k) {
  const __m512 beta1 = _mm512_set1_ps(k.beta1), omb1 = _mm512_set1_ps(k.one_minus_beta1);
  const __m512 beta2 = _mm512_set1_ps(k.beta2), omb2 = _mm512_set1_ps(k.one_minus_beta2);
  const __m512 eps = _mm512_set1_ps(k.eps), decay = _mm512_set1_ps(k.decay);
  const __m512 step_size = _mm512_set1_ps(k.step_size), inv_sqrt_bc2 = _mm512_set1_ps(k.inv_sqrt_bc2);
  int64_t i = begin;
  for (; i + 16 <= end; i += 16) {
    const __m512 g = _mm512_loadu_ps(grad + i);
    const __m512 mi = _mm512_add_ps(_mm512_mul_ps(beta1, _mm512_loadu_ps(m + i)), _mm512_mul_ps(omb1, g));
    const __m512 vi =
        _mm512_add_ps(_mm512_mul_ps(beta2, _mm512_loadu_ps(v + i)), _mm512_mul_ps(omb2, _mm512_mul_ps(g, g)));
    _mm512_storeu_ps(m + i, mi);
    _mm512_storeu_ps(v + i, vi);
    // maskz form: the plain _mm512_sqrt_ps trips a false -Wmaybe-uninitialized in GCC 12.
    const __m512 root = _mm512_maskz_sqrt_ps(__mmask16(0xFFFF), vi);
    const __m512 denom = _mm512_add_ps(_mm512_mul_ps(root, inv_sqrt_bc2), eps);
    const __m512 upd = _mm512_div_ps(_mm512_mul_ps(step_size, mi), denom);
    _mm512_storeu_ps(param + i, _mm512_sub_ps(_mm512_mul_ps(_mm512_loadu_ps(param + i), decay), upd));
  }
  adamw_span_scalar(param, grad, m, v, i, end, k);
}
#endif

bool cpu_has_avx512f() {
#if defined(__x86_64__)
  static const bool has = __builtin_cpu_supports("avx512f");
  return has;
#else
  return false;
#endif
}

}  // namespace

void adamw_update(float* param, const float* grad, float* m, float* v, int64_t n, float lr, float beta1,
                  float beta2, float eps, float weight_decay, int64_t step) {
  const double bc1 = 1.0 - std::pow(double(beta1), double(step));
  const double bc2 = 1.0 - std::pow(double(beta2), double(step));
  const AdamScalars k{beta1,
                      1.0f - beta1,
                      beta2,
                      1.0f - beta2,
                      eps,
                      1.0f - lr * weight_decay,
                      float(double(lr) / bc1),
                      float(1.0 / std::sqrt(bc2))};
  const bool avx512 = cpu_has_avx512f();
  const int64_t blocks = (n + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (blocks > 1)
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const int64_t begin = blk * kBlock, end = std::min(n, begin + kBlock);
#if defined(__x86_64__)
    if (avx512) {
      adamw_span_avx512(param, grad, m, v, begin, end, k);
      continue;
    }
#endif
    adamw_span_scalar(param, grad, m, v, begin, end, k);
  }
}

void adamw_update_ref(float* param, const float* grad, float* m, float* v, int64_t n, float lr, float beta1,
                      float beta2, float eps, float weight_decay, int64_t step) {
  for (int64_t i = 0; i < n; ++i) {
    const double g = grad[i];
    const double mi = double(beta1) * m[i] + (1.0 - double(beta1)) * g;
    const double vi = double(beta2) * v[i] + (1.0 - double(beta2)) * g * g;
    const double mhat = mi / (1.0 - std::pow(double(beta1), double(step)));
    const double vhat = vi / (1.0 - std::pow(double(beta2), double(step)));
    double p = double(param[i]) * (1.0 - double(lr) * double(weight_decay));
    p -= double(lr) * mhat / (std::sqrt(vhat) + double(eps));
    m[i] = float(mi);
    v[i] = float(vi);
    param[i] = float(p);
  }
}

}  // namespace sllm::kernels
