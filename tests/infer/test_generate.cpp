// generate(): agreement with a cache-free greedy decoder, stop ids, max_new_tokens, the
// context limit, seeding. score_logprobs(): against log_softmax of a full forward.
#include <cmath>
#include <string>

#include <gtest/gtest.h>

#include "autograd/autograd.h"
#include "core/error.h"
#include "infer/generate.h"
#include "ops/ops.h"
#include "tests/infer/infer_test_support.h"

namespace sllm::infer {
namespace {

using testing::gpt2_config;
using testing::greedy_reference;
using testing::llama_config;
using testing::random_ids;
using testing::randomize;

SamplingConfig greedy() {
  SamplingConfig c;
  c.temperature = 0.0f;
  return c;
}

TEST(Generate, GreedyMatchesFullForwardDecoding) {
  for (const auto& config : {gpt2_config(), llama_config()}) {
    SCOPED_TRACE(config.family_name());
    nn::Transformer model(config);
    randomize(model, 21);
    const auto prompt = random_ids(6, config.vocab_size, 1);
    const auto want = greedy_reference(model, prompt, 15);
    std::vector<int32_t> seen;
    StopReason reason = StopReason::StopToken;
    const auto got = generate(model, prompt, 15, greedy(), {}, [&](int32_t id) { seen.push_back(id); }, &reason);
    EXPECT_EQ(got, want);
    EXPECT_EQ(seen, want);  // every token streamed, in order
    EXPECT_EQ(reason, StopReason::MaxTokens);
  }
}

TEST(Generate, StopsAtAStopIdWithoutEmittingIt) {
  nn::Transformer model(gpt2_config());
  randomize(model, 22);
  const auto prompt = random_ids(5, 512, 2);
  const auto free_run = greedy_reference(model, prompt, 12);
  ASSERT_EQ(free_run.size(), 12u);
  const int32_t stop = free_run[6];
  const size_t first = static_cast<size_t>(std::find(free_run.begin(), free_run.end(), stop) - free_run.begin());
  ASSERT_GT(first, 0u) << "the fixture should stop mid-way, after some emitted tokens";
  const std::vector<int32_t> want(free_run.begin(), free_run.begin() + static_cast<std::ptrdiff_t>(first));
  std::vector<int32_t> seen;
  StopReason reason = StopReason::MaxTokens;
  const auto got = generate(model, prompt, 12, greedy(), {999, stop}, [&](int32_t id) { seen.push_back(id); }, &reason);
  EXPECT_EQ(got, want);
  EXPECT_EQ(seen, want);
  EXPECT_EQ(reason, StopReason::StopToken);
}

TEST(Generate, StopsAtMaxNewTokens) {
  nn::Transformer model(llama_config());
  randomize(model, 23);
  SamplingConfig c;
  c.temperature = 1.0f;
  for (int64_t n : {0, 1, 9}) {
    StopReason reason = StopReason::StopToken;
    EXPECT_EQ(generate(model, {1, 2, 3}, n, c, {}, nullptr, &reason).size(), static_cast<size_t>(n));
    EXPECT_EQ(reason, StopReason::MaxTokens);
  }
}

TEST(Generate, StopsAtTheContextLimit) {
  nn::Transformer model(gpt2_config());  // n_ctx 64
  randomize(model, 24);
  StopReason reason = StopReason::MaxTokens;
  auto out = generate(model, random_ids(60, 512, 3), 100, greedy(), {}, nullptr, &reason);
  EXPECT_EQ(out.size(), 4u);  // 60 + 4 = n_ctx
  EXPECT_EQ(reason, StopReason::Context);
  EXPECT_EQ(out, greedy_reference(model, random_ids(60, 512, 3), 4));
  out = generate(model, random_ids(64, 512, 3), 100, greedy(), {}, nullptr, &reason);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(reason, StopReason::Context);
  try {
    generate(model, random_ids(65, 512, 3), 10, greedy(), {}, nullptr);
    FAIL() << "a prompt longer than the context must be rejected";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("65 tokens"), std::string::npos) << e.what();
    EXPECT_NE(e.hint().find("shorter prompt"), std::string::npos) << e.hint();
  }
}

TEST(Generate, SeededSamplingIsReproducible) {
  nn::Transformer model(llama_config());
  randomize(model, 25);
  SamplingConfig c;
  c.temperature = 1.5f;
  c.seed = 7;
  const auto a = generate(model, {5, 6}, 20, c, {}, nullptr);
  EXPECT_EQ(generate(model, {5, 6}, 20, c, {}, nullptr), a);
  c.seed = 8;
  EXPECT_NE(generate(model, {5, 6}, 20, c, {}, nullptr), a);
}

TEST(Generate, VocabLimitBoundsTheDrawnIds) {
  nn::Transformer model(gpt2_config());
  randomize(model, 26);
  SamplingConfig c;
  c.temperature = 3.0f;
  c.vocab_limit = 10;
  for (int32_t id : generate(model, {1}, 40, c, {}, nullptr)) EXPECT_LT(id, 10);
  c.temperature = 0.0f;
  EXPECT_EQ(generate(model, {1, 2}, 8, c, {}, nullptr), greedy_reference(model, {1, 2}, 8, 10));
}

TEST(Generate, BadPromptsRaiseErrors) {
  nn::Transformer model(llama_config());
  EXPECT_THROW(generate(model, {}, 5, greedy(), {}, nullptr), Error);
  EXPECT_THROW(generate(model, {1, 96}, 5, greedy(), {}, nullptr), Error);  // V = 96
  EXPECT_THROW(generate(model, {1, -1}, 5, greedy(), {}, nullptr), Error);
  EXPECT_THROW(generate(model, {1}, -1, greedy(), {}, nullptr), Error);
}

// score_logprobs against an independent path: log_softmax over a full forward of all T
// tokens, picked at the next token. Same tolerance reasoning as the KV-cache test (the
// same f32 math on T-1 vs T rows, fused cross-entropy vs log_softmax).
TEST(Score, MatchesLogSoftmaxOfAFullForward) {
  for (const auto& config : {gpt2_config(), llama_config()}) {
    SCOPED_TRACE(config.family_name());
    nn::Transformer model(config);
    randomize(model, 31);
    const int64_t T = 20, V = config.vocab_size;
    const auto ids = random_ids(T, V, 9);
    const auto logprobs = score_logprobs(model, ids);
    ASSERT_EQ(logprobs.size(), static_cast<size_t>(T - 1));

    autograd::NoGradGuard no_grad;
    const Tensor ls = ops::log_softmax(model.forward(Tensor::from_ints(ids, {1, T})));  // (1, T, V)
    double sum = 0.0;
    for (int64_t i = 0; i + 1 < T; ++i) {
      const float want = ls.f32()[i * V + ids[static_cast<size_t>(i + 1)]];
      EXPECT_NEAR(logprobs[static_cast<size_t>(i)], want, 1e-5f * std::max(1.0f, std::fabs(want))) << "position " << i;
      EXPECT_LT(logprobs[static_cast<size_t>(i)], 0.0f);
      sum += want;
    }
    EXPECT_NEAR(mean_loss(logprobs), -sum / static_cast<double>(T - 1), 1e-5);
  }
}

TEST(Score, BadInputsRaiseErrors) {
  nn::Transformer model(gpt2_config());
  EXPECT_THROW(score_logprobs(model, {}), Error);
  EXPECT_THROW(score_logprobs(model, {3}), Error);
  EXPECT_THROW(score_logprobs(model, random_ids(65, 512, 1)), Error);  // n_ctx 64
  EXPECT_NO_THROW(score_logprobs(model, random_ids(64, 512, 1)));
  EXPECT_THROW(score_logprobs(model, {1, 512}), Error);
  EXPECT_THROW(mean_loss({}), Error);
}

}  // namespace
}  // namespace sllm::infer
