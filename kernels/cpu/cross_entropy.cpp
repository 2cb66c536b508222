// Fused softmax + cross-entropy over the vocab: the probabilities are never stored.
// Legend: N rows (= B*T), V vocab.
// Backward ACCUMULATES (+=) into dlogits; a nullptr dlogits is skipped.
//
// Forward:  lse = log(sum_v exp(logits[v])),  loss = lse - logits[target]  (0 if ignored).
// Backward: dlogits[v] += dloss * (exp(logits[v] - lse) - [v == target])   (nothing if ignored).
#include <algorithm>
#include <cmath>

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

// Below this many elements a kernel runs on one thread: a parallel region costs microseconds.
constexpr int64_t kParallelMin = 1 << 14;

// The row is read once from memory in chunks that stay in L1: each chunk's max is taken,
// then its exps are summed against the running max, rescaling the running sum when the
// max grows (the "online softmax" of Milakov & Gimelshein 2018, per chunk rather than per
// element so only one exp per logit is paid).
constexpr int64_t kChunk = 512;  // 2 KiB of logits

// The exps of a chunk go to a small buffer in their own loop first: GCC vectorizes that
// plain loop, but not exp inside lane_sum's term (it would stay scalar, ~4x slower). The
// sum then adds the same values in the same order.
float row_logsumexp(const float* x, int64_t V) {
  float m = -INFINITY, s = 0.0f;
  alignas(64) float e[kChunk];
  for (int64_t c0 = 0; c0 < V; c0 += kChunk) {
    const int64_t len = std::min(kChunk, V - c0);
    const float* xc = x + c0;
    const float m_new = std::max(m, lane_max(xc, len));
    if (m_new != m) s *= std::exp(m - m_new);
    m = m_new;
    for (int64_t i = 0; i < len; ++i) e[i] = exp_approx(xc[i] - m_new);
    s += lane_sum(len, [&](int64_t i) { return e[i]; });
  }
  return m + std::log(s);
}

}  // namespace

void cross_entropy_forward(float* losses, float* lse, const float* logits, const int32_t* targets,
                           int64_t N, int64_t V, int32_t ignore_index) {
#pragma omp parallel for schedule(static) if (N * V >= kParallelMin)
  for (int64_t n = 0; n < N; ++n) {
    const float* x = logits + n * V;  // (V)
    const float l = row_logsumexp(x, V);
    lse[n] = l;
    losses[n] = targets[n] == ignore_index ? 0.0f : l - x[targets[n]];
  }
}

void cross_entropy_backward(float* dlogits, const float* dlosses, const float* logits, const float* lse,
                            const int32_t* targets, int64_t N, int64_t V, int32_t ignore_index) {
  if (!dlogits) return;
#pragma omp parallel for schedule(static) if (N * V >= kParallelMin)
  for (int64_t n = 0; n < N; ++n) {
    if (targets[n] == ignore_index) continue;
    const float* x = logits + n * V;  // (V)
    float* dx = dlogits + n * V;      // (V)
    const float dl = dlosses[n], l = lse[n];
    for (int64_t v = 0; v < V; ++v) dx[v] += dl * exp_approx(x[v] - l);
    dx[targets[n]] -= dl;  // the one-hot term, outside the loop so the loop stays a pure stream
  }
}

void cross_entropy_backward_inplace(float* logits, const float* dlosses, const float* lse, const int32_t* targets,
                                    int64_t N, int64_t V, int32_t ignore_index) {
#pragma omp parallel for schedule(static) if (N * V >= kParallelMin)
  for (int64_t n = 0; n < N; ++n) {
    float* x = logits + n * V;  // (V): logits in, dlogits out
    if (targets[n] == ignore_index) {
      std::fill(x, x + V, 0.0f);
      continue;
    }
    const float dl = dlosses[n], l = lse[n];
    for (int64_t v = 0; v < V; ++v) x[v] = dl * exp_approx(x[v] - l);  // = 0 + the same term
    x[targets[n]] -= dl;
  }
}

void cross_entropy_forward_ref(float* losses, float* lse, const float* logits, const int32_t* targets,
                               int64_t N, int64_t V, int32_t ignore_index) {
  for (int64_t n = 0; n < N; ++n) {
    const float* x = logits + n * V;
    double m = -INFINITY, sum = 0.0;
    for (int64_t v = 0; v < V; ++v) m = std::fmax(m, double(x[v]));
    for (int64_t v = 0; v < V; ++v) sum += std::exp(x[v] - m);
    const double l = m + std::log(sum);
    lse[n] = float(l);
    losses[n] = targets[n] == ignore_index ? 0.0f : float(l - x[targets[n]]);
  }
}

void cross_entropy_backward_ref(float* dlogits, const float* dlosses, const float* logits, const float* lse,
                                const int32_t* targets, int64_t N, int64_t V, int32_t ignore_index) {
  if (!dlogits) return;
  for (int64_t n = 0; n < N; ++n) {
    if (targets[n] == ignore_index) continue;
    for (int64_t v = 0; v < V; ++v) {
      const double p = std::exp(double(logits[n * V + v]) - double(lse[n]));
      dlogits[n * V + v] += float(dlosses[n] * (p - (v == targets[n] ? 1.0 : 0.0)));
    }
  }
}

}  // namespace sllm::kernels
