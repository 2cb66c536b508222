// SFT batches: right padding, seeded order per epoch, the validation split, and bit-exact
// resume from state().
#include "data/sft_loader.h"

#include <algorithm>
#include <set>

#include <gtest/gtest.h>

#include "core/error.h"
#include "test_sft_common.h"

namespace sllm::data {
namespace {

using testing::chat_tokenizer;
using testing::completion_line;
using testing::options;

// n examples of different lengths, each recognisable by its first input ids.
SftDataset numbered(int64_t n, int64_t seq = 48, const std::string& answer = "Four.") {
  std::vector<std::string> lines;
  for (int64_t i = 0; i < n; ++i)
    lines.push_back(
        completion_line("example " + std::to_string(i) + std::string(static_cast<size_t>(i % 4), '!'), answer));
  return SftDataset::parse(testing::join_lines(lines), "n.jsonl", chat_tokenizer(), options(seq));
}

std::vector<int64_t> all(const SftDataset& d) {
  std::vector<int64_t> v(static_cast<size_t>(d.size()));
  for (int64_t i = 0; i < d.size(); ++i) v[i] = i;
  return v;
}

struct Batch {
  std::vector<int32_t> inputs, targets;
  SftBatchCounts counts;
  bool operator==(const Batch& o) const {
    return inputs == o.inputs && targets == o.targets && counts.tokens == o.counts.tokens &&
           counts.label_tokens == o.counts.label_tokens;
  }
};

Batch draw(SftLoader& loader) {
  const auto n = static_cast<size_t>(loader.batch_size() * loader.seq_len());
  Batch b{std::vector<int32_t>(n), std::vector<int32_t>(n), {}};
  b.counts = loader.next(b.inputs.data(), b.targets.data());
  return b;
}

// Which example each row of the next batches holds (rows compared with the examples' inputs).
std::vector<int64_t> rows(SftLoader& loader, const SftDataset& data, int64_t count) {
  std::vector<int64_t> out;
  const int64_t T = loader.seq_len();
  while (static_cast<int64_t>(out.size()) < count) {
    const Batch b = draw(loader);
    for (int64_t r = 0; r < loader.batch_size(); ++r) {
      int64_t found = -1;
      for (int64_t i = 0; i < data.size(); ++i) {
        const auto& in = data.examples()[i].inputs;
        if (std::equal(in.begin(), in.end(), b.inputs.begin() + r * T)) found = i;
      }
      EXPECT_GE(found, 0);
      out.push_back(found);
    }
  }
  out.resize(static_cast<size_t>(count));
  return out;
}

TEST(SftLoader, RowsAreRightPaddedWithIgnoredTargets) {
  const auto data = numbered(3);
  const int64_t T = 48, pad = 7;
  SftLoader loader(data, all(data), 3, T, 1, pad, /*shuffle=*/false);
  const Batch b = draw(loader);
  int64_t tokens = 0, labels = 0;
  for (int64_t r = 0; r < 3; ++r) {
    const SftExample& ex = data.examples()[r];
    const auto n = static_cast<int64_t>(ex.inputs.size());
    ASSERT_LT(n, T);
    for (int64_t t = 0; t < T; ++t) {
      EXPECT_EQ(b.inputs[r * T + t], t < n ? ex.inputs[t] : pad) << r << "," << t;
      EXPECT_EQ(b.targets[r * T + t], t < n ? ex.targets[t] : kIgnoreIndex) << r << "," << t;
    }
    tokens += n;
    labels += std::count_if(ex.targets.begin(), ex.targets.end(), [](int32_t x) { return x != kIgnoreIndex; });
  }
  EXPECT_EQ(b.counts.tokens, tokens);
  EXPECT_EQ(b.counts.label_tokens, labels);
}

TEST(SftLoader, DefaultPadIdIsEndOfTextOrZero) {
  EXPECT_EQ(default_pad_id(chat_tokenizer()), *chat_tokenizer().special_id("<|endoftext|>"));
  EXPECT_EQ(default_pad_id(tokenizer::Tokenizer::train({"abc"}, 257, "gpt2", {})), 0);
}

TEST(SftLoader, ShuffleIsDeterministicPerSeedAndReshufflesEachEpoch) {
  const auto data = numbered(20);
  SftLoader a(data, all(data), 3, 48, 42, 0), b(data, all(data), 3, 48, 42, 0), c(data, all(data), 3, 48, 43, 0);
  const auto order_a = rows(a, data, 60), order_b = rows(b, data, 60), order_c = rows(c, data, 60);
  EXPECT_EQ(order_a, order_b);
  EXPECT_NE(order_a, order_c);
  for (int e = 0; e < 3; ++e) {  // each epoch: every example exactly once
    const std::set<int64_t> seen(order_a.begin() + e * 20, order_a.begin() + (e + 1) * 20);
    EXPECT_EQ(seen.size(), 20u) << "epoch " << e;
  }
  EXPECT_NE(std::vector<int64_t>(order_a.begin(), order_a.begin() + 20),
            std::vector<int64_t>(order_a.begin() + 20, order_a.begin() + 40));
  EXPECT_EQ(a.epoch(), 2);
  SftLoader in_order(data, all(data), 4, 48, 42, 0, /*shuffle=*/false);
  const auto sequential = rows(in_order, data, 20);
  for (int64_t i = 0; i < 20; ++i) EXPECT_EQ(sequential[i], i);
}

TEST(SftLoader, ValidationSplitIsDeterministicPerSeed) {
  const auto data = numbered(20);
  const SftSplit s1 = split_sft(data, {0.25, 0}, 5), s2 = split_sft(data, {0.25, 0}, 5),
                 s3 = split_sft(data, {0.25, 0}, 6);
  EXPECT_EQ(s1.val, s2.val);
  EXPECT_EQ(s1.train, s2.train);
  EXPECT_NE(s1.val, s3.val);
  EXPECT_EQ(s1.val.size(), 5u);
  EXPECT_EQ(s1.train.size(), 15u);
  std::set<int64_t> both(s1.val.begin(), s1.val.end());
  both.insert(s1.train.begin(), s1.train.end());
  EXPECT_EQ(both.size(), 20u);  // disjoint and complete
  EXPECT_TRUE(std::is_sorted(s1.val.begin(), s1.val.end()));
  EXPECT_EQ(split_sft(data, {0, 3}, 5).val.size(), 3u);
  EXPECT_EQ(split_sft(data, {0.01, 0}, 5).val.size(), 1u);  // a positive fraction takes at least one
  EXPECT_TRUE(split_sft(data, {}, 5).val.empty());
  EXPECT_THROW(split_sft(data, {0, 20}, 5), Error);  // nothing left to train on
  EXPECT_THROW(split_sft(data, {0.5, 2}, 5), Error);
  EXPECT_THROW(split_sft(data, {1.0, 0}, 5), Error);
}

TEST(SftLoader, RestoredStateGivesTheSameBatchesBitForBit) {
  const auto data = numbered(10);
  const auto split = split_sft(data, {0, 2}, 3);
  SftLoader loader(data, split.train, 3, 48, 9, 0);
  for (int i = 0; i < 4; ++i) draw(loader);  // 12 rows of 8: into epoch 1
  const std::string saved = loader.state().dump();
  std::vector<Batch> expected;
  for (int i = 0; i < 6; ++i) expected.push_back(draw(loader));

  SftLoader resumed(data, split.train, 3, 48, 9, 0);
  resumed.restore(nlohmann::json::parse(saved));
  EXPECT_EQ(resumed.epoch(), 1);
  EXPECT_EQ(resumed.position(), 4);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(draw(resumed), expected[i]) << "batch " << i;

  resumed.reset();
  SftLoader fresh(data, split.train, 3, 48, 9, 0);
  EXPECT_EQ(draw(resumed), draw(fresh));
}

TEST(SftLoader, RestoreRejectsAnotherSeedDataOrSplit) {
  const auto data = numbered(10);
  const auto split = split_sft(data, {0, 2}, 3);
  SftLoader loader(data, split.train, 2, 48, 9, 0);
  draw(loader);
  const nlohmann::json state = loader.state();

  SftLoader other_seed(data, split.train, 2, 48, 10, 0);
  EXPECT_THROW(other_seed.restore(state), Error);
  SftLoader other_split(data, split_sft(data, {0, 2}, 4).train, 2, 48, 9, 0);
  EXPECT_THROW(other_split.restore(state), Error);
  const auto other_data = numbered(10, 48, "Four!");  // same size, other answers
  SftLoader other_answers(other_data, split.train, 2, 48, 9, 0);
  try {
    other_answers.restore(state);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("---> HINT"), std::string::npos);
  }
  SftLoader unshuffled(data, split.train, 2, 48, 9, 0, false);
  EXPECT_THROW(unshuffled.restore(state), Error);
  nlohmann::json broken = state;
  broken["position"] = 99;
  EXPECT_THROW(loader.restore(broken), Error);
  broken.erase("position");
  EXPECT_THROW(loader.restore(broken), Error);
  EXPECT_THROW(loader.restore(nlohmann::json::array()), Error);
}

TEST(SftLoader, BadArguments) {
  const auto data = numbered(4);
  EXPECT_THROW(SftLoader(data, all(data), 0, 48, 1, 0), Error);
  EXPECT_THROW(SftLoader(data, all(data), 2, 32, 1, 0), Error);  // shorter than the data's seq_len
  EXPECT_THROW(SftLoader(data, {}, 2, 48, 1, 0), Error);
}

}  // namespace
}  // namespace sllm::data
