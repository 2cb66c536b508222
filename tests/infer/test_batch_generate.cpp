// Batched generation (src/infer/batch_generate.h): a row of a ragged batch equals that row
// generated alone, bit for bit (tokens, log-probabilities, stop reasons), for both model
// families, with prompts of different lengths, rows stopping at different steps (so the
// cache is compacted) and top-k / top-p sampling; greedy rows follow the slow full-forward
// decoder; the returned log-probabilities are those of a full forward; bad input is an error.
#include <cmath>
#include <set>

#include <gtest/gtest.h>

#include "core/error.h"
#include "infer/batch_generate.h"
#include "ops/ops.h"
#include "tests/infer/infer_test_support.h"

namespace sllm::infer {
namespace {

using testing::gpt2_config;
using testing::greedy_reference;
using testing::llama_config;
using testing::random_ids;
using testing::randomize;

nn::Transformer make_model(const nn::ModelConfig& config, uint64_t seed) {
  nn::Transformer model(config);
  randomize(model, seed);
  return model;
}

// Prompts of lengths 1, 2, 5, 9, 17 and 3 (short, long, and around the kernels' tile sizes).
std::vector<std::vector<int32_t>> ragged_prompts(int64_t V, uint64_t seed) {
  std::vector<std::vector<int32_t>> prompts;
  uint64_t s = seed;
  for (int64_t len : {1, 2, 5, 9, 17, 3}) prompts.push_back(random_ids(len, V, ++s));
  return prompts;
}

void expect_rows_equal_alone(nn::Transformer& model, const BatchGenerateOptions& options) {
  const auto prompts = ragged_prompts(model.config().vocab_size, 7);
  const std::vector<GeneratedRow> batch = generate_batch(model, prompts, options);
  ASSERT_EQ(batch.size(), prompts.size());
  std::set<size_t> lengths;
  for (size_t b = 0; b < prompts.size(); ++b) {
    BatchGenerateOptions alone = options;
    alone.seeds = {options.seeds.empty() ? options.sampling.seed + b : options.seeds[b]};
    const GeneratedRow row = generate_batch(model, {prompts[b]}, alone).front();
    EXPECT_EQ(batch[b].tokens, row.tokens) << "row " << b;
    ASSERT_EQ(batch[b].logprobs.size(), row.logprobs.size()) << "row " << b;
    for (size_t i = 0; i < row.logprobs.size(); ++i)  // bitwise: == on floats, no tolerance
      EXPECT_EQ(batch[b].logprobs[i], row.logprobs[i]) << "row " << b << " token " << i;
    EXPECT_EQ(batch[b].reason, row.reason) << "row " << b;
    lengths.insert(row.tokens.size());
  }
  // The rows stop at different steps: the batch shrinks (and is compacted) along the way.
  EXPECT_GE(lengths.size(), 3u);
}

BatchGenerateOptions sampled_options(int32_t stop_id) {
  BatchGenerateOptions o;
  o.max_new_tokens = 20;
  o.sampling.temperature = 1.0f;
  o.sampling.seed = 11;
  o.stop_ids = {stop_id};
  return o;
}

TEST(BatchGenerate, Gpt2RowsEqualEachRowAloneBitForBit) {
  nn::Transformer model = make_model(gpt2_config(), 3);
  BatchGenerateOptions o = sampled_options(5);
  // A stop check too: a row ends after drawing an id below 40 (stop strings work this way).
  o.stop_check = [](size_t, const std::vector<int32_t>& t) { return t.back() < 40; };
  expect_rows_equal_alone(model, o);
}

TEST(BatchGenerate, LlamaRowsEqualEachRowAloneBitForBitWithTopKTopP) {
  nn::Transformer model = make_model(llama_config(), 4);
  BatchGenerateOptions o = sampled_options(7);
  o.sampling.top_k = 20;
  o.sampling.top_p = 0.9f;
  o.sampling.temperature = 0.8f;
  o.stop_check = [](size_t, const std::vector<int32_t>& t) { return t.back() < 6; };
  expect_rows_equal_alone(model, o);
}

TEST(BatchGenerate, ExplicitSeedsAndContextLimit) {
  // Long prompts run into the context (n_ctx 48) at different steps.
  nn::Transformer model = make_model(llama_config(), 5);
  BatchGenerateOptions o;
  o.max_new_tokens = 100;
  o.sampling.temperature = 1.0f;
  o.seeds = {101, 7, 55};
  const std::vector<std::vector<int32_t>> prompts = {random_ids(40, 96, 1), random_ids(30, 96, 2), random_ids(47, 96, 3)};
  const auto rows = generate_batch(model, prompts, o);
  for (size_t b = 0; b < prompts.size(); ++b) {
    EXPECT_EQ(rows[b].reason, StopReason::Context);
    EXPECT_EQ(prompts[b].size() + rows[b].tokens.size(), 48u);
    BatchGenerateOptions alone = o;
    alone.seeds = {o.seeds[b]};
    EXPECT_EQ(generate_batch(model, {prompts[b]}, alone).front().tokens, rows[b].tokens);
  }
}

TEST(BatchGenerate, GreedyRowsFollowTheFullForwardDecoder) {
  for (const nn::ModelConfig& config : {gpt2_config(), llama_config()}) {
    nn::Transformer model = make_model(config, 9);
    BatchGenerateOptions o;
    o.max_new_tokens = 12;
    o.sampling.temperature = 0.0f;
    const auto prompts = ragged_prompts(config.vocab_size, 3);
    const auto rows = generate_batch(model, prompts, o);
    for (size_t b = 0; b < prompts.size(); ++b)
      EXPECT_EQ(rows[b].tokens, greedy_reference(model, prompts[b], 12)) << "row " << b;
  }
}

TEST(BatchGenerate, LogprobsAreThoseOfAFullForwardAtTheTemperature) {
  nn::Transformer model = make_model(gpt2_config(), 12);
  BatchGenerateOptions o = sampled_options(-1);
  o.sampling.temperature = 0.7f;
  const auto prompts = ragged_prompts(model.config().vocab_size, 5);
  const auto rows = generate_batch(model, prompts, o);
  autograd::NoGradGuard no_grad;
  const int64_t V = model.config().vocab_size;
  for (size_t b = 0; b < prompts.size(); ++b) {
    std::vector<int32_t> seq = prompts[b];
    seq.insert(seq.end(), rows[b].tokens.begin(), rows[b].tokens.end());
    const int64_t T = static_cast<int64_t>(seq.size()), P = static_cast<int64_t>(prompts[b].size());
    const Tensor logits = model.forward(Tensor::from_ints(seq, {1, T}));
    ASSERT_EQ(rows[b].logprobs.size(), rows[b].tokens.size());
    for (size_t i = 0; i < rows[b].tokens.size(); ++i) {
      const float* row = logits.f32() + (P - 1 + static_cast<int64_t>(i)) * V;
      double mx = -1e300, sum = 0;
      for (int64_t v = 0; v < V; ++v) mx = std::max(mx, row[v] / 0.7);
      for (int64_t v = 0; v < V; ++v) sum += std::exp(row[v] / 0.7 - mx);
      const double want = row[rows[b].tokens[i]] / 0.7 - mx - std::log(sum);
      EXPECT_NEAR(rows[b].logprobs[i], want, 1e-4) << "row " << b << " token " << i;
    }
  }
}

TEST(BatchGenerate, StopCheckKeepsTheTokenAndNamesTheReason) {
  nn::Transformer model = make_model(gpt2_config(), 13);
  BatchGenerateOptions o;
  o.max_new_tokens = 10;
  o.sampling.temperature = 0.0f;
  o.stop_check = [](size_t row, const std::vector<int32_t>& t) { return row == 1 && t.size() == 3; };
  const auto rows = generate_batch(model, {{1, 2}, {3, 4}}, o);
  EXPECT_EQ(rows[0].tokens.size(), 10u);
  EXPECT_EQ(rows[0].reason, StopReason::MaxTokens);
  EXPECT_EQ(rows[1].tokens.size(), 3u);
  EXPECT_EQ(rows[1].reason, StopReason::StopString);
  EXPECT_STREQ(stop_reason_name(rows[1].reason), "stop_string");
}

TEST(BatchGenerate, BadInputIsAClearError) {
  nn::Transformer model = make_model(gpt2_config(), 1);
  BatchGenerateOptions o;
  EXPECT_THROW(generate_batch(model, {}, o), Error);
  EXPECT_THROW(generate_batch(model, {{1}, {}}, o), Error);
  EXPECT_THROW(generate_batch(model, {{1}, {512}}, o), Error);                        // id outside V
  EXPECT_THROW(generate_batch(model, {std::vector<int32_t>(65, 1)}, o), Error);      // past n_ctx
  o.seeds = {1, 2, 3};
  EXPECT_THROW(generate_batch(model, {{1}, {2}}, o), Error);                         // one seed per row
}

}  // namespace
}  // namespace sllm::infer
