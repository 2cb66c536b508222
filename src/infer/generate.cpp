#include "infer/generate.h"

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
  const nn::ModelConfig& mc = model.config();
  const int64_t P = static_cast<int64_t>(prompt.size()), V = mc.vocab_size, n_ctx = mc.n_ctx;
  validate(config);
  SLLM_CHECK(P > 0, "generate: empty prompt", "give at least one token, e.g. <|endoftext|> to generate unconditionally");
  SLLM_CHECK(P <= n_ctx, str("generate: the prompt has ", P, " tokens but the model's context is ", n_ctx),
             str("use a shorter prompt (at most ", n_ctx, " tokens, fewer to leave room for new ones)"));
  SLLM_CHECK(max_new_tokens >= 0, str("generate: max_new_tokens must be >= 0, got ", max_new_tokens), "use a count such as 200");
  check_ids(prompt, V, "generate: prompt");
  const int64_t V_draw = config.vocab_limit > 0 ? std::min(config.vocab_limit, V) : V;

  autograd::NoGradGuard no_grad;
  Rng rng(config.seed);
  std::vector<int32_t> out;
  StopReason why = StopReason::MaxTokens;
  // Emits nothing more once max_new_tokens are out or the sequence fills the context; a
  // sequence of n_ctx tokens is complete, since a token beyond it has no position to sit at.
  auto room_left = [&] {
    if (static_cast<int64_t>(out.size()) >= max_new_tokens) return why = StopReason::MaxTokens, false;
    if (P + static_cast<int64_t>(out.size()) >= n_ctx) return why = StopReason::Context, false;
    return true;
  };
  if (room_left()) {
    nn::KVCache cache = model.make_cache(1);
    Tensor logits = on_host(model.forward(Tensor::from_ints(prompt, {1, P}), &cache));  // (1, P, V)
    const float* row = logits.f32() + (P - 1) * V;  // the prediction after the last prompt token
    while (true) {
      const int32_t next = sample_next(row, V_draw, config, rng);
      if (std::find(stop_ids.begin(), stop_ids.end(), next) != stop_ids.end()) {
        why = StopReason::StopToken;
        break;
      }
      out.push_back(next);
      if (on_token) on_token(next);
      if (!room_left()) break;
      logits = on_host(model.forward(Tensor::from_ints({next}, {1, 1}), &cache));  // (1, 1, V)
      row = logits.f32();
    }
  }
  if (reason) *reason = why;
  return out;
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
