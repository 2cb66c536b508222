#include "infer/generate.h"

#include "infer/batch_generate.h"

#include <algorithm>

#include "autograd/autograd.h"
#include "core/error.h"
#include "ops/ops.h"

namespace sllm::infer {

const char* stop_reason_name(StopReason reason) {
  switch (reason) {
    case StopReason::MaxTokens: return "max_tokens";
    case StopReason::StopToken: return "stop_token";
    case StopReason::Context: return "context";
    case StopReason::StopString: return "stop_string";
  }
  return "?";
}

static void check_ids(const std::vector<int32_t>& ids, int64_t V, const char* what) {
  for (size_t i = 0; i < ids.size(); ++i)
    SLLM_CHECK(ids[i] >= 0 && ids[i] < V, str(what, ": token id ", ids[i], " at position ", i, " is outside the vocabulary"),
               str("the model's vocabulary holds ids 0..", V - 1, "; use the tokenizer the model was trained with"));
}

// Host copy of a forward's logits (B, T, V); a no-op for CPU tensors.
static Tensor on_host(const Tensor& t) { return t.device() == Device::CPU ? t : t.to(Device::CPU); }

std::vector<int32_t> generate(nn::Transformer& model, const std::vector<int32_t>& prompt, int64_t max_new_tokens,
                              const SamplingConfig& config, const std::vector<int32_t>& stop_ids,
                              const std::function<void(int32_t)>& on_token, StopReason* reason) {
  BatchGenerateOptions options;
  options.max_new_tokens = max_new_tokens;
  options.sampling = config;
  options.stop_ids = stop_ids;
  if (on_token) options.on_token = [&on_token](size_t, int32_t token) { on_token(token); };
  GeneratedRow row = std::move(generate_batch(model, {prompt}, options).front());
  if (reason) *reason = row.reason;
  return std::move(row.tokens);
}

std::vector<float> score_logprobs(nn::Transformer& model, const std::vector<int32_t>& ids) {
  const int64_t T = static_cast<int64_t>(ids.size()), n_ctx = model.config().n_ctx;
  SLLM_CHECK(T >= 2, str("score: need at least 2 tokens, got ", T), "a score is log p(next token | earlier ones): give a longer text");
  SLLM_CHECK(T <= n_ctx, str("score: ", T, " tokens exceed the model's context of ", n_ctx),
             str("score at most ", n_ctx, " tokens (split the text into windows)"));
  check_ids(ids, model.config().vocab_size, "score");
  autograd::NoGradGuard no_grad;
  // Inputs ids[0..T-2] predict targets ids[1..T-1]; the fused cross-entropy is the same
  // kernel the training loss uses, so `sllm score` and training report the same numbers.
  std::vector<int32_t> inputs(ids.begin(), ids.end() - 1), targets(ids.begin() + 1, ids.end());
  Tensor logits = model.forward(Tensor::from_ints(inputs, {1, T - 1}));  // (1, T-1, V)
  Tensor nll = on_host(ops::cross_entropy_per_token(logits, Tensor::from_ints(targets, {1, T - 1})));  // (1, T-1)
  std::vector<float> logprobs(static_cast<size_t>(T - 1));
  for (int64_t i = 0; i < T - 1; ++i) logprobs[static_cast<size_t>(i)] = -nll.f32()[i];
  return logprobs;
}

double mean_loss(const std::vector<float>& logprobs) {
  SLLM_CHECK(!logprobs.empty(), "mean_loss: no log-probabilities", "score at least 2 tokens");
  double sum = 0.0;
  for (float lp : logprobs) sum += lp;
  return -sum / static_cast<double>(logprobs.size());
}

}  // namespace sllm::infer
