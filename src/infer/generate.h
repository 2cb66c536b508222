// Autoregressive generation with the KV cache, and teacher-forced scoring of a sequence.
// Legend: P prompt length, T sequence length, V vocabulary size, n_ctx the model's context.
//
// generate(): one forward over the whole prompt fills the cache (prefill), then each step
// feeds only the newest token, attending to the cached keys and values of all earlier
// positions, so a step costs O(n_layer * position) instead of a full re-forward.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "infer/sampling.h"
#include "nn/transformer.h"

namespace sllm::infer {

enum class StopReason {
  MaxTokens,  // max_new_tokens were generated
  StopToken,  // a stop id was sampled (and not emitted)
  Context,    // prompt + generated tokens filled the model's context (n_ctx)
  StopString, // a stop check (a stop string in the decoded text) ended the row (batch_generate.h)
};
const char* stop_reason_name(StopReason reason);  // "max_tokens" | "stop_token" | "context" | "stop_string"

// Generates up to max_new_tokens after `prompt` (ids, at least one). on_token (may be
// empty) sees each emitted token as soon as it is sampled. The returned ids exclude the
// prompt and the stop token. Stops early when a stop id is drawn or when the sequence
// reaches n_ctx tokens. Runs under NoGradGuard. Draws come from Rng(config.seed). It is
// generate_batch (batch_generate.h) with one row, so it equals any batch row with that seed.
// sllm::Error if the prompt is empty, longer than n_ctx, or holds an id outside the vocabulary.
std::vector<int32_t> generate(nn::Transformer& model, const std::vector<int32_t>& prompt, int64_t max_new_tokens,
                              const SamplingConfig& config, const std::vector<int32_t>& stop_ids,
                              const std::function<void(int32_t)>& on_token, StopReason* reason = nullptr);

// logprobs[i] = log p(ids[i+1] | ids[0..i]) for i < T-1, from one full forward (no cache).
// sllm::Error if fewer than 2 ids, more than n_ctx, or an id outside the vocabulary.
std::vector<float> score_logprobs(nn::Transformer& model, const std::vector<int32_t>& ids);

// The mean next-token loss of a scored sequence: -mean(logprobs) (nats per token).
double mean_loss(const std::vector<float>& logprobs);

}  // namespace sllm::infer
