// Next-token sampling from one row of logits (V): greedy, temperature, top-k and nucleus
// (top-p) truncation. Legend: V vocabulary size.
//
// Order of the filters, as in Hugging Face `generate` (TemperatureLogitsWarper, then
// TopKLogitsWarper, then TopPLogitsWarper): p = softmax(logits / temperature); keep the k
// most probable tokens; of those keep the smallest most-probable set whose probability
// reaches top_p (Holtzman et al. 2020, "The Curious Case of Neural Text Degeneration",
// section 3.1); renormalize; draw one token with the Rng.
#pragma once
#include <cstdint>

#include "core/rng.h"

namespace sllm::infer {

struct SamplingConfig {
  float temperature = 1.0f;  // <= 0: greedy (argmax, lowest id on ties)
  int64_t top_k = 0;         // 0: no top-k filter
  float top_p = 1.0f;        // in (0, 1]; 1: no nucleus filter
  uint64_t seed = 0;         // seeds the Rng of generate()
  // generate() draws only ids < vocab_limit (0: all V). A model's embedding table is often
  // padded beyond its tokenizer (e.g. 512 rows for a 300-token tokenizer); the padding ids
  // decode to nothing, so generation should never sample them.
  int64_t vocab_limit = 0;
};

// sllm::Error with a hint on an out-of-range top_k / top_p or a NaN temperature.
void validate(const SamplingConfig& config);

// Draws the next token from logits (V). Deterministic given the Rng state; greedy draws
// consume no randomness. Error if a logit is NaN or every logit is -inf.
int32_t sample_next(const float* logits, int64_t V, const SamplingConfig& config, Rng& rng);

}  // namespace sllm::infer
