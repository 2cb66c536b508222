#include "infer/batch_generate.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "autograd/autograd.h"
#include "core/error.h"
#include "kernels/kernels.h"
#include "ops/ops.h"

namespace sllm::infer {

namespace {

// log_softmax(row / temperature)[id] over V ids, with the max shifted out and the sum in double.
float sampled_logprob(const float* row, int64_t V, float temperature, int32_t id) {
  const double inv_t = temperature > 0.0f ? 1.0 / static_cast<double>(temperature) : 1.0;
  double mx = -std::numeric_limits<double>::infinity();
  for (int64_t i = 0; i < V; ++i) mx = std::max(mx, static_cast<double>(row[i]) * inv_t);
  double sum = 0.0;
  for (int64_t i = 0; i < V; ++i) sum += std::exp(static_cast<double>(row[i]) * inv_t - mx);
  return static_cast<float>(static_cast<double>(row[id]) * inv_t - mx - std::log(sum));
}

Tensor on_host(const Tensor& t) { return t.device() == Device::CPU ? t : t.to(Device::CPU); }

// The LM head on the rows `picks` of a forward's hidden states (N, C) → host logits (len, V):
// only the rows that get sampled pay for the head.
Tensor head_logits(nn::Transformer& model, const Tensor& hidden_rows, const std::vector<int32_t>& picks) {
  // index_select gathers f32 rows; under bf16 compute the rows go through f32 (exact both ways).
  const Tensor idx = Tensor::from_ints(picks, {static_cast<int64_t>(picks.size())});
  const bool bf16 = hidden_rows.dtype() == DType::BF16;
  Tensor rows = ops::index_select(bf16 ? ops::cast(hidden_rows, DType::F32) : hidden_rows, idx);
  if (bf16) rows = ops::cast(rows, DType::BF16);
  Tensor logits = ops::linear(rows, model.lm_head_weight());
  if (logits.dtype() != DType::F32) logits = ops::cast(logits, DType::F32);
  return on_host(logits);
}

// Keeps the cache rows `keep` (in order): the batch shrinks to the rows still running.
void compact_cache(nn::KVCache& cache, const std::vector<int32_t>& keep) {
  const Tensor idx = Tensor::from_ints(keep, {static_cast<int64_t>(keep.size())});
  for (auto* layer : {&cache.k, &cache.v})
    for (Tensor& t : *layer)
      t = t.dtype() == DType::F32 ? ops::index_select(t, idx)
                                  : ops::cast(ops::index_select(ops::cast(t, DType::F32), idx), t.dtype());  // exact
  std::vector<int64_t> lengths;
  for (int32_t r : keep) lengths.push_back(cache.row_length[size_t(r)]);
  cache.row_length = std::move(lengths);
  cache.batch = static_cast<int64_t>(keep.size());
}

}  // namespace

std::vector<GeneratedRow> generate_batch(nn::Transformer& model, const std::vector<std::vector<int32_t>>& prompts,
                                         const BatchGenerateOptions& options) {
  const nn::ModelConfig& mc = model.config();
  const int64_t B = static_cast<int64_t>(prompts.size()), V = mc.vocab_size, n_ctx = mc.n_ctx;
  const SamplingConfig& sampling = options.sampling;
  validate(sampling);
  SLLM_CHECK(B > 0, "generate: no prompts", "give at least one prompt");
  SLLM_CHECK(options.max_new_tokens >= 0, str("generate: max_new_tokens must be >= 0, got ", options.max_new_tokens),
             "use a count such as 200");
  SLLM_CHECK(options.seeds.empty() || static_cast<int64_t>(options.seeds.size()) == B,
             str("generate: ", options.seeds.size(), " seeds for ", B, " prompts"), "give one seed per prompt, or none");
  int64_t P_max = 0;
  for (int64_t b = 0; b < B; ++b) {
    const std::vector<int32_t>& p = prompts[size_t(b)];
    const int64_t P = static_cast<int64_t>(p.size());
    SLLM_CHECK(P > 0, str("generate: prompt ", b, " is empty"),
               "give at least one token, e.g. <|endoftext|> to generate unconditionally");
    SLLM_CHECK(P <= n_ctx, str("generate: prompt ", b, " has ", P, " tokens but the model's context is ", n_ctx),
               str("use a shorter prompt (at most ", n_ctx, " tokens, fewer to leave room for new ones)"));
    for (size_t i = 0; i < p.size(); ++i)
      SLLM_CHECK(p[i] >= 0 && p[i] < V, str("generate: prompt ", b, ": token id ", p[i], " at position ", i, " is outside the vocabulary"),
                 str("the model's vocabulary holds ids 0..", V - 1, "; use the tokenizer the model was trained with"));
    P_max = std::max(P_max, P);
  }
  const int64_t V_draw = sampling.vocab_limit > 0 ? std::min(sampling.vocab_limit, V) : V;

  autograd::NoGradGuard no_grad;
  kernels::RowInvariantGemm row_invariant;
  std::vector<GeneratedRow> out(static_cast<size_t>(B));
  std::vector<Rng> rngs;
  for (int64_t b = 0; b < B; ++b)
    rngs.emplace_back(options.seeds.empty() ? sampling.seed + static_cast<uint64_t>(b) : options.seeds[size_t(b)]);

  // Whether row b may emit another token; sets its stop reason when not. A sequence of n_ctx
  // tokens is complete: a token beyond it has no position.
  auto room_left = [&](int64_t b) {
    GeneratedRow& row = out[size_t(b)];
    const int64_t n = static_cast<int64_t>(row.tokens.size());
    if (n >= options.max_new_tokens) return row.reason = StopReason::MaxTokens, false;
    if (static_cast<int64_t>(prompts[size_t(b)].size()) + n >= n_ctx) return row.reason = StopReason::Context, false;
    return true;
  };
  // slot_of[s]: the row that cache slot s holds; live: the slots still generating, in slot
  // order (row i of `logits` belongs to live[i]).
  std::vector<int32_t> slot_of, live;
  for (int64_t b = 0; b < B; ++b)
    if (room_left(b)) slot_of.push_back(static_cast<int32_t>(b));
  if (slot_of.empty()) return out;

  // Prefill: the running prompts, right-padded, each row cached up to its own length.
  const int64_t R0 = static_cast<int64_t>(slot_of.size());
  std::vector<int32_t> ids(static_cast<size_t>(R0 * P_max), 0), last;
  // Room for the longest prompt and every new token, not the whole context: a rollout of 32
  // rows of a 256-context model would otherwise hold ~150 MB of cache for 50 positions.
  nn::KVCache cache = model.make_cache(R0, std::min(n_ctx, P_max + options.max_new_tokens));
  cache.row_length.assign(size_t(R0), 0);
  for (int64_t s = 0; s < R0; ++s) {
    const std::vector<int32_t>& p = prompts[size_t(slot_of[size_t(s)])];
    std::copy(p.begin(), p.end(), ids.begin() + s * P_max);
    cache.row_new.push_back(static_cast<int64_t>(p.size()));
    last.push_back(static_cast<int32_t>(s * P_max + static_cast<int64_t>(p.size()) - 1));
    live.push_back(static_cast<int32_t>(s));
  }
  Tensor h = model.hidden(Tensor::from_ints(ids, {R0, P_max}), &cache);               // (R0, P_max, C)
  Tensor logits = head_logits(model, ops::reshape(h, {R0 * P_max, h.dim(2)}), last);  // (R0, V)

  while (true) {
    // Draw each live row's next token; keep the slots that go on.
    std::vector<int32_t> next_ids, keep;
    for (size_t i = 0; i < live.size(); ++i) {
      const int64_t b = slot_of[size_t(live[i])];
      GeneratedRow& row = out[size_t(b)];
      const float* lg = logits.f32() + static_cast<int64_t>(i) * V;
      const int32_t next = sample_next(lg, V_draw, sampling, rngs[size_t(b)]);
      if (std::find(options.stop_ids.begin(), options.stop_ids.end(), next) != options.stop_ids.end()) {
        row.reason = StopReason::StopToken;
        continue;
      }
      row.tokens.push_back(next);
      row.logprobs.push_back(sampled_logprob(lg, V_draw, sampling.temperature, next));
      if (options.on_token) options.on_token(size_t(b), next);
      if (options.stop_check && options.stop_check(size_t(b), row.tokens)) {
        row.reason = StopReason::StopString;
        continue;
      }
      if (!room_left(b)) continue;
      keep.push_back(live[i]);
      next_ids.push_back(next);
    }
    if (keep.empty()) break;
    // Finished rows stay in the cache, fed a padding token that is neither cached nor attended
    // to, until at most half of the slots run: then the cache keeps only the live ones.
    if (static_cast<int64_t>(keep.size()) * 2 <= cache.batch) {
      compact_cache(cache, keep);
      std::vector<int32_t> rows;
      for (int32_t s : keep) rows.push_back(slot_of[size_t(s)]);
      slot_of = std::move(rows);
      for (size_t i = 0; i < keep.size(); ++i) keep[i] = static_cast<int32_t>(i);
    }
    const int64_t R = cache.batch;
    std::vector<int32_t> step_ids(static_cast<size_t>(R), 0);
    cache.row_new.assign(size_t(R), 0);
    for (size_t i = 0; i < keep.size(); ++i) {
      step_ids[size_t(keep[i])] = next_ids[i];
      cache.row_new[size_t(keep[i])] = 1;
    }
    live = std::move(keep);
    h = model.hidden(Tensor::from_ints(step_ids, {R, 1}), &cache);       // (R, 1, C)
    logits = head_logits(model, ops::reshape(h, {R, h.dim(2)}), live);  // (live, V)
  }
  return out;
}

}  // namespace sllm::infer
