// KV-cache parity: logits computed incrementally through the cache (a prefill of a
// prefix, then chunks, then one token at a time) equal those of one full forward over the
// whole sequence, for both model families.
//
// Tolerance 1e-5 (relative to max(1, |logit|)): both paths do the same f32 arithmetic on
// the same values, but in a different reduction order (the attention kernel blocks keys
// differently for 1 query row than for T rows, and GEMMs with M = 1 take another path), so
// results agree to a few f32 ulps of the O(1) logits, not bitwise. A cache bug (wrong
// position, stale keys, RoPE offset) moves logits by O(0.1), far outside it.
#include <cmath>

#include <gtest/gtest.h>

#include "autograd/autograd.h"
#include "tests/infer/infer_test_support.h"

namespace sllm::infer {
namespace {

using testing::gpt2_config;
using testing::llama_config;
using testing::random_ids;
using testing::randomize;

constexpr float kTol = 1e-5f;

// ids (B, T) row-major → the columns [t0, t1) as a (B, t1 - t0) tensor.
Tensor columns(const std::vector<int32_t>& ids, int64_t B, int64_t T, int64_t t0, int64_t t1) {
  std::vector<int32_t> part;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = t0; t < t1; ++t) part.push_back(ids[static_cast<size_t>(b * T + t)]);
  return Tensor::from_ints(part, {B, t1 - t0});
}

// Feeds the sequence through the cache in `chunks` (sizes summing to T) and compares every
// position's logits with the full forward. Returns the largest absolute difference.
float check_parity(nn::Transformer& model, int64_t B, const std::vector<int64_t>& chunks, uint64_t seed) {
  autograd::NoGradGuard no_grad;
  int64_t T = 0;
  for (int64_t c : chunks) T += c;
  const int64_t V = model.config().vocab_size;
  const std::vector<int32_t> ids = random_ids(B * T, V, seed);
  const Tensor full = model.forward(Tensor::from_ints(ids, {B, T}));  // (B, T, V)

  nn::KVCache cache = model.make_cache(B);
  int64_t pos = 0;
  float worst = 0.0f;
  for (int64_t c : chunks) {
    const Tensor part = model.forward(columns(ids, B, T, pos, pos + c), &cache);  // (B, c, V)
    EXPECT_EQ(cache.length, pos + c);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < c; ++t)
        for (int64_t v = 0; v < V; ++v) {
          const float want = full.f32()[(b * T + pos + t) * V + v];
          const float got = part.f32()[(b * c + t) * V + v];
          const float diff = std::fabs(got - want);
          worst = std::max(worst, diff);
          if (diff > kTol * std::max(1.0f, std::fabs(want))) {
            ADD_FAILURE() << "batch " << b << " position " << pos + t << " token " << v << ": cached " << got << " vs full "
                          << want;
            return worst;
          }
        }
    pos += c;
  }
  ::testing::Test::RecordProperty("max_abs_diff_" + model.config().family_name(), std::to_string(worst));
  return worst;
}

// The same last token without its context (a fresh cache, position 0) must give clearly
// different logits; otherwise the parity check above could not see a cache that drops
// context.
void expect_context_matters(nn::Transformer& model, uint64_t seed) {
  autograd::NoGradGuard no_grad;
  const int64_t T = 12, V = model.config().vocab_size;
  const std::vector<int32_t> ids = random_ids(T, V, seed);
  const Tensor full = model.forward(Tensor::from_ints(ids, {1, T}));
  const Tensor alone = model.forward(Tensor::from_ints({ids.back()}, {1, 1}));
  float diff = 0.0f;
  for (int64_t v = 0; v < V; ++v) diff = std::max(diff, std::fabs(full.f32()[(T - 1) * V + v] - alone.f32()[v]));
  EXPECT_GT(diff, 1e-2f);
}

TEST(KVCacheParity, Gpt2PrefillThenOneTokenAtATime) {
  nn::Transformer model(gpt2_config());
  randomize(model, 11);
  expect_context_matters(model, 3);
  std::vector<int64_t> chunks = {7};
  chunks.resize(7 + 13, 1);  // prefill 7, then 13 single tokens
  check_parity(model, 1, chunks, 5);
}

TEST(KVCacheParity, LlamaGqaPrefillThenOneTokenAtATime) {
  nn::Transformer model(llama_config());
  randomize(model, 12);
  expect_context_matters(model, 4);
  std::vector<int64_t> chunks = {5};
  chunks.resize(5 + 15, 1);
  check_parity(model, 1, chunks, 6);
}

TEST(KVCacheParity, ChunkedPrefillsAndBatchOfTwo) {
  for (const auto& config : {gpt2_config(), llama_config()}) {
    SCOPED_TRACE(config.family_name());
    nn::Transformer model(config);
    randomize(model, 13);
    check_parity(model, 2, {4, 3, 1, 6, 1, 1}, 7);
  }
}

TEST(KVCacheParity, FillsTheWholeContext) {
  // Up to the last position n_ctx - 1: the cache and the position tables end exactly there.
  for (const auto& config : {gpt2_config(), llama_config()}) {
    SCOPED_TRACE(config.family_name());
    nn::Transformer model(config);
    randomize(model, 14);
    const int64_t n_ctx = config.n_ctx;
    std::vector<int64_t> chunks = {n_ctx - 4, 1, 1, 1, 1};
    check_parity(model, 1, chunks, 8);
  }
}

}  // namespace
}  // namespace sllm::infer
