// Vectorizable math for the row kernels (softmax, cross-entropy, norms, activations).
//
// Why this exists: without -ffast-math (banned: IEEE semantics are part of our
// reproducibility contract) GCC will neither vectorize a call to std::exp nor reorder a
// float reduction. So we (1) write exp as branch-free float arithmetic that GCC vectorizes
// at -O3, and (2) write reductions with kLanes explicit accumulators folded in a fixed
// order. The order of every float operation is fixed by the source, so a given binary gives
// the same bits for any thread count. (GCC does contract a*b+c into FMAs in C++ mode when
// the target has them, so a -march=native build and a portable one may differ in the last
// bit; each is deterministic.)
#pragma once
#include <bit>
#include <cstdint>
#include <limits>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace sllm::kernels {

// exp_approx(x): Cephes expf (S. Moshier, cephes/single/expf.c): x = n ln2 + r with
// |r| <= ln2/2 (Cody-Waite split of ln2), e^r = 1 + r + r^2 P(r), then scale by 2^n
// built in the exponent bits. About 1 ulp over [kExpMin, kExpMax]; above kExpMax it
// returns +inf, below kExpMin it returns 0 (so exp(-inf) == 0 for masked logits), and
// NaN propagates (both clamps compare false on NaN, and P(NaN) is NaN).
inline constexpr float kExpMax = 88.37f;  // n = round(x log2 e) stays <= 127
inline constexpr float kExpMin = -87.33f; // n >= -126: 2^n is a normal float

inline float exp_approx(float x) {
  float xc = x > kExpMax ? kExpMax : x;
  xc = xc < kExpMin ? kExpMin : xc;
  // Adding 1.5 * 2^23 rounds to the nearest integer (round-to-nearest-even) and leaves
  // that integer in the low mantissa bits.
  constexpr float kShift = 12582912.0f;
  const float t = xc * 1.44269504088896341f + kShift;
  const float n = t - kShift;
  const int32_t ni = std::bit_cast<int32_t>(t) - std::bit_cast<int32_t>(kShift);
  float r = xc - n * 0.693359375f;  // high part of ln2: n * it is exact
  r = r - n * -2.12194440e-4f;      // low part
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float er = p * (r * r) + r + 1.0f;
  const float y = er * std::bit_cast<float>((ni + 127) << 23);
  const float big = x > kExpMax ? std::numeric_limits<float>::infinity() : y;
  return x < kExpMin ? 0.0f : big;
}

// sigmoid_approx(x) = 1 / (1 + e^-x); e^-x overflowing to inf gives exactly 0.
inline float sigmoid_approx(float x) { return 1.0f / (1.0f + exp_approx(-x)); }

// Reductions with kLanes independent accumulators (one AVX-512 register of floats, two
// AVX2 ones), folded pairwise in a fixed order. term(i) gives the i-th summand.
inline constexpr int kLanes = 16;

template <class Term>
inline float lane_sum(int64_t n, Term term) {
  float acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) acc[j] += term(i + j);
  for (int j = 0; i + j < n; ++j) acc[j] += term(i + j);
  for (int width = kLanes / 2; width > 0; width /= 2)
    for (int j = 0; j < width; ++j) acc[j] += acc[j + width];
  return acc[0];
}

// Largest element of x (n >= 1); NaNs are skipped here and surface in the exp that follows.
// Without -ffast-math GCC does not vectorize a float max (the select below stays scalar),
// so AVX-512 builds take 16 lanes at a time with maxps, which returns its second operand
// (the running max) when the element is NaN: NaNs are skipped the same way. A max is exact
// in any order, so both paths return the same value.
#if defined(__AVX512F__)
inline float lane_max(const float* x, int64_t n) {
  __m512 acc = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  int64_t i = 0;
  // maskz form: the plain _mm512_max_ps trips a false -Wmaybe-uninitialized in GCC 12.
  for (; i + kLanes <= n; i += kLanes) acc = _mm512_maskz_max_ps(__mmask16(0xFFFF), _mm512_loadu_ps(x + i), acc);
  alignas(64) float lanes[kLanes];
  _mm512_store_ps(lanes, acc);
  float mx = lanes[0];
  for (int j = 1; j < kLanes; ++j) mx = lanes[j] > mx ? lanes[j] : mx;
  for (; i < n; ++i) mx = x[i] > mx ? x[i] : mx;
  return mx;
}
#else
inline float lane_max(const float* x, int64_t n) {
  float acc[kLanes];
  for (int j = 0; j < kLanes; ++j) acc[j] = -std::numeric_limits<float>::infinity();
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) acc[j] = x[i + j] > acc[j] ? x[i + j] : acc[j];
  for (int j = 0; i + j < n; ++j) acc[j] = x[i + j] > acc[j] ? x[i + j] : acc[j];
  for (int width = kLanes / 2; width > 0; width /= 2)
    for (int j = 0; j < width; ++j) acc[j] = acc[j + width] > acc[j] ? acc[j + width] : acc[j];
  return acc[0];
}
#endif

}  // namespace sllm::kernels
