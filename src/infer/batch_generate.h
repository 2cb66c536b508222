// Batched generation: many prompts at once over one KV cache, for RLHF rollouts (src/rl) and
// `sllm bench generate`. Legend: B rows (prompts), P_b row b's prompt length, V vocabulary.
//
// The rows are ragged: row b keeps its own position in a ragged KV cache (nn::KVCache::
// row_length). The prefill runs the B prompts as one right-padded (B, max P_b) batch in which
// row b's padding is neither cached nor attended to (ops::attention_rows); every decoding step
// then feeds each running row its newest token at its own position. Rows stop on their own (a
// stop id, a stop check such as a stop string, max_new_tokens, or the context); finished rows
// leave the batch, which is compacted once at most half of it still runs.
//
// Row b is bit-for-bit the row generate_batch gives for that prompt alone with the same seed:
// each op computes a row independently of the others (row-wise norms and activations, the
// attention kernel run per row, GEMMs held to their M-independent path by
// kernels::RowInvariantGemm), and each row draws from its own Rng. infer::generate() is
// generate_batch with one row, so a batch row equals `sllm generate` of that prompt.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "infer/generate.h"
#include "infer/sampling.h"
#include "nn/transformer.h"

namespace sllm::infer {

struct GeneratedRow {
  std::vector<int32_t> tokens;  // the new tokens (no prompt, no stop id)
  // logprobs[i] = log p(tokens[i]) under the distribution it was drawn from before top-k/top-p
  // truncation: log_softmax(logits / temperature) over the drawable ids (temperature 1 when
  // greedy), as TRL computes a rollout's log-probabilities.
  std::vector<float> logprobs;
  StopReason reason = StopReason::MaxTokens;
};

struct BatchGenerateOptions {
  int64_t max_new_tokens = 64;
  SamplingConfig sampling;     // sampling.seed seeds row b's Rng as sampling.seed + b unless `seeds` is given
  std::vector<uint64_t> seeds; // one per row (e.g. derived from a run's seed and step), or empty
  std::vector<int32_t> stop_ids;  // a drawn stop id ends its row and is not emitted
  // Called after each emitted token with the row's tokens so far; true ends the row (the token
  // stays): stop strings, checked on the decoded text. May be empty.
  std::function<bool(size_t row, const std::vector<int32_t>& tokens)> stop_check;
  // Sees every emitted token as soon as it is drawn (streaming). May be empty.
  std::function<void(size_t row, int32_t token)> on_token;
};

// Generates for every prompt (each at least one id, at most n_ctx, ids inside the vocabulary:
// sllm::Error with a hint otherwise). Runs under NoGradGuard in the model's compute dtype:
// bf16 on CUDA keeps bf16 keys and values in the cache.
std::vector<GeneratedRow> generate_batch(nn::Transformer& model, const std::vector<std::vector<int32_t>>& prompts,
                                         const BatchGenerateOptions& options);

}  // namespace sllm::infer
