#include "infer/sampling.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "core/error.h"

namespace sllm::infer {

void validate(const SamplingConfig& c) {
  SLLM_CHECK(!std::isnan(c.temperature), "sampling: temperature is NaN", "use a temperature >= 0 (0 = greedy)");
  SLLM_CHECK(c.top_k >= 0, str("sampling: top_k must be >= 0, got ", c.top_k), "use 0 to disable the top-k filter");
  SLLM_CHECK(c.top_p > 0.0f && c.top_p <= 1.0f, str("sampling: top_p must be in (0, 1], got ", c.top_p),
             "use 1.0 to disable nucleus sampling, or a small value such as 0.9");
  SLLM_CHECK(c.vocab_limit >= 0, str("sampling: vocab_limit must be >= 0, got ", c.vocab_limit), "0 allows every id");
}

int32_t sample_next(const float* logits, int64_t V, const SamplingConfig& c, Rng& rng) {
  validate(c);
  SLLM_CHECK(V > 0, "sampling: empty logits row", "the model's vocabulary must hold at least one token");
  int64_t best = 0;  // argmax; strict > keeps the lowest id among equal maxima
  for (int64_t i = 0; i < V; ++i) {
    SLLM_CHECK(!std::isnan(logits[i]), str("sampling: logit of token ", i, " is NaN"),
               "the model produced NaN: its weights may have diverged during training");
    if (logits[i] > logits[best]) best = i;
  }
  SLLM_CHECK(logits[best] > -INFINITY, "sampling: every logit is -inf", "at least one token must be allowed");
  if (c.temperature <= 0.0f) return static_cast<int32_t>(best);

  // Unnormalized probabilities exp((x_i - max) / T) in double: the max shift keeps exp in
  // range, and the common factor exp(-max/T) cancels in the renormalization below.
  const double inv_t = 1.0 / static_cast<double>(c.temperature);
  const double top = logits[best];
  std::vector<double> p(static_cast<size_t>(V));  // (V)
  for (int64_t i = 0; i < V; ++i) p[static_cast<size_t>(i)] = std::exp((static_cast<double>(logits[i]) - top) * inv_t);

  // Candidates in sampling order: all ids in id order when nothing is truncated; otherwise
  // the k best by logit (ties: lowest id first, so top_k = 1 is exactly greedy).
  const int64_t k = c.top_k > 0 ? std::min(c.top_k, V) : V;
  const bool truncate = k < V || c.top_p < 1.0f;
  std::vector<int32_t> order(static_cast<size_t>(V));
  std::iota(order.begin(), order.end(), 0);
  if (truncate) {
    std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int32_t a, int32_t b) {
      return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
    });
    order.resize(static_cast<size_t>(k));
  }
  double total = 0.0;
  for (int32_t id : order) total += p[static_cast<size_t>(id)];
  if (c.top_p < 1.0f) {
    // Nucleus: the shortest prefix of the sorted candidates holding top_p of their mass;
    // the first (most probable) candidate is always kept.
    const double need = static_cast<double>(c.top_p) * total;
    double mass = 0.0;
    size_t keep = 0;
    while (keep < order.size()) {
      mass += p[static_cast<size_t>(order[keep++])];
      if (mass >= need) break;
    }
    order.resize(keep);
    total = mass;
  }

  // Inverse-CDF draw over the kept candidates (renormalization = scaling u by their mass).
  const double u = rng.uniform_double() * total;
  double cdf = 0.0;
  int32_t last_possible = order.front();
  for (int32_t id : order) {
    const double pi = p[static_cast<size_t>(id)];
    if (pi <= 0.0) continue;
    cdf += pi;
    last_possible = id;
    if (u < cdf) return id;
  }
  return last_possible;  // u rounded up to the total: the last candidate with mass
}

}  // namespace sllm::infer
