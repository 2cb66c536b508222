// Rotary position embedding (Su et al. 2021, "RoFormer", eq. 34).
// Legend: B batch, T time, NH heads, HD head dim (even), T_max table length.
// Backward ACCUMULATES (+=) into dinp; a nullptr dinp is skipped.
//
// Each pair (x0, x1) of a head vector at position p is rotated by angle(p, i):
//   out0 = x0 cos - x1 sin,   out1 = x1 cos + x0 sin.
// A rotation's transpose is its inverse, so backward rotates dout by -angle:
//   dinp0 += dout0 cos + dout1 sin,   dinp1 += dout1 cos - dout0 sin.
// Pair i is (i, i + HD/2) in the HF half-split layout, (2i, 2i+1) in the interleaved one.
#include <cmath>

#include "core/error.h"
#include "kernels/kernels.h"

namespace sllm::kernels {

// cos, sin (T_max, HD/2). Computed the way HF LlamaRotaryEmbedding does it, in float32:
// inv_freq[i] = 1 / theta^(2i/HD), angle = float(p) * inv_freq[i]; so the tables agree with
// transformers' to about an ulp (only cos/sin themselves are evaluated in double here).
void rope_table(float* cos, float* sin, int64_t T_max, int64_t HD, float theta) {
  SLLM_ASSERT(HD % 2 == 0);
  const int64_t half = HD / 2;
  for (int64_t i = 0; i < half; ++i) {
    const float exponent = float(2 * i) / float(HD);
    const float inv_freq = 1.0f / float(std::pow(double(theta), double(exponent)));
    for (int64_t p = 0; p < T_max; ++p) {
      const float angle = float(p) * inv_freq;
      cos[p * half + i] = float(std::cos(double(angle)));
      sin[p * half + i] = float(std::sin(double(angle)));
    }
  }
}

namespace {

// Below this many elements a kernel runs on one thread: a parallel region costs microseconds.
constexpr int64_t kParallelMin = 1 << 14;

// y[i0], y[i1] (=, or += when accumulating) the pair (x[i0], x[i1]) rotated by (c, sn).
template <bool accumulate>
inline void rotate_pair(float* y, const float* x, int64_t i0, int64_t i1, float c, float sn) {
  const float x0 = x[i0], x1 = x[i1];
  const float y0 = x0 * c - x1 * sn, y1 = x1 * c + x0 * sn;
  if constexpr (accumulate) {
    y[i0] += y0;
    y[i1] += y1;
  } else {
    y[i0] = y0;
    y[i1] = y1;
  }
}

// sign = +1 rotates by +angle (forward, y = R x); -1 by -angle (backward, y += Rᵀ x).
template <bool accumulate>
void rope_apply(float* out, const float* inp, const float* cos, const float* sin, int64_t B, int64_t T,
                int64_t NH, int64_t HD, int64_t pos0, bool interleaved, float sign) {
  SLLM_ASSERT(HD % 2 == 0);
  const int64_t half = HD / 2;
#pragma omp parallel for schedule(static) if (B * T * NH * HD >= kParallelMin)
  for (int64_t bt = 0; bt < B * T; ++bt) {
    const int64_t pos = pos0 + bt % T;
    const float* c = cos + pos * half;  // (HD/2)
    const float* s = sin + pos * half;  // (HD/2)
    for (int64_t h = 0; h < NH; ++h) {
      const float* x = inp + (bt * NH + h) * HD;  // (HD)
      float* y = out + (bt * NH + h) * HD;        // (HD)
      if (interleaved)
        for (int64_t i = 0; i < half; ++i) rotate_pair<accumulate>(y, x, 2 * i, 2 * i + 1, c[i], sign * s[i]);
      else
        for (int64_t i = 0; i < half; ++i) rotate_pair<accumulate>(y, x, i, i + half, c[i], sign * s[i]);
    }
  }
}

}  // namespace

// x (B, T, NH, HD) at positions pos0 + t; out may alias inp.
void rope_forward(float* out, const float* inp, const float* cos, const float* sin, int64_t B, int64_t T,
                  int64_t NH, int64_t HD, int64_t pos0, bool interleaved) {
  rope_apply<false>(out, inp, cos, sin, B, T, NH, HD, pos0, interleaved, 1.0f);
}

void rope_backward(float* dinp, const float* dout, const float* cos, const float* sin, int64_t B, int64_t T,
                   int64_t NH, int64_t HD, int64_t pos0, bool interleaved) {
  if (!dinp) return;
  rope_apply<true>(dinp, dout, cos, sin, B, T, NH, HD, pos0, interleaved, -1.0f);
}

void rope_forward_ref(float* out, const float* inp, const float* cos, const float* sin, int64_t B, int64_t T,
                      int64_t NH, int64_t HD, int64_t pos0, bool interleaved) {
  const int64_t half = HD / 2;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t h = 0; h < NH; ++h) {
        const int64_t base = ((b * T + t) * NH + h) * HD, pos = pos0 + t;
        for (int64_t i = 0; i < half; ++i) {
          const int64_t i0 = interleaved ? 2 * i : i, i1 = interleaved ? 2 * i + 1 : i + half;
          const double c = cos[pos * half + i], s = sin[pos * half + i];
          const double x0 = inp[base + i0], x1 = inp[base + i1];
          out[base + i0] = float(x0 * c - x1 * s);
          out[base + i1] = float(x1 * c + x0 * s);
        }
      }
}

void rope_backward_ref(float* dinp, const float* dout, const float* cos, const float* sin, int64_t B,
                       int64_t T, int64_t NH, int64_t HD, int64_t pos0, bool interleaved) {
  if (!dinp) return;
  const int64_t half = HD / 2;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t h = 0; h < NH; ++h) {
        const int64_t base = ((b * T + t) * NH + h) * HD, pos = pos0 + t;
        for (int64_t i = 0; i < half; ++i) {
          const int64_t i0 = interleaved ? 2 * i : i, i1 = interleaved ? 2 * i + 1 : i + half;
          const double c = cos[pos * half + i], s = sin[pos * half + i];
          const double g0 = dout[base + i0], g1 = dout[base + i1];
          dinp[base + i0] += float(g0 * c + g1 * s);
          dinp[base + i1] += float(g1 * c - g0 * s);
        }
      }
}

}  // namespace sllm::kernels
