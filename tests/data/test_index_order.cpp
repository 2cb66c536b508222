// IndexOrder, the epoch order both fine-tuning loaders draw from, on its own: every epoch a
// permutation of the selected indices, rebuilt from a state without replaying, the loader's
// own words in its errors and state; and split_indices' seeded, disjoint sides.
#include "data/index_order.h"

#include <algorithm>
#include <functional>
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "core/error.h"

namespace sllm::data {
namespace {

constexpr IndexOrderNames kWords{"widget split", "widget loader", "widgets", "range hint", "empty hint", "resume hint"};

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

std::vector<int64_t> take(IndexOrder& order, int64_t n) {
  std::vector<int64_t> out;
  for (int64_t i = 0; i < n; ++i) out.push_back(order.next());
  return out;
}

TEST(IndexOrder, EachEpochIsAPermutationOfTheSelectedIndicesAndEpochsDiffer) {
  const std::vector<int64_t> selected{3, 5, 8, 13, 21, 34, 55};
  IndexOrder order(selected, 7, true, 64, 99, kWords);
  const std::vector<int64_t> first = take(order, 7), second = take(order, 7);
  EXPECT_EQ(order.epoch(), 1);
  EXPECT_EQ(order.position(), 7);
  for (auto epoch : {first, second}) {
    std::sort(epoch.begin(), epoch.end());
    EXPECT_EQ(epoch, selected);
  }
  EXPECT_NE(first, second);  // 1 chance in 7! that a fresh shuffle repeats: fixed seed, so checked once
  take(order, 1);  // the eighth draw after an epoch's end opens the next one
  EXPECT_EQ(order.epoch(), 2);
  EXPECT_EQ(order.position(), 1);
}

TEST(IndexOrder, UnshuffledKeepsFileOrderEveryEpoch) {
  IndexOrder order({4, 2, 9}, 7, false, 64, 99, kWords);
  EXPECT_EQ(take(order, 7), (std::vector<int64_t>{4, 2, 9, 4, 2, 9, 4}));
}

TEST(IndexOrder, RestoreContinuesMidEpochAsIfNeverStopped) {
  const std::vector<int64_t> selected{0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  IndexOrder straight(selected, 11, true, 64, 99, kWords), saved(selected, 11, true, 64, 99, kWords);
  const std::vector<int64_t> expected = take(straight, 37);
  take(saved, 23);
  const nlohmann::json state = nlohmann::json::parse(saved.state().dump());
  EXPECT_EQ(state.at("widgets"), 10);  // the loader's word names the count, as its checkpoints store it
  EXPECT_EQ(state.at("epoch"), 2);
  EXPECT_EQ(state.at("position"), 3);
  IndexOrder resumed(selected, 11, true, 64, 99, kWords);
  resumed.restore(state);
  std::vector<int64_t> rest = take(resumed, 14);
  EXPECT_EQ(rest, std::vector<int64_t>(expected.begin() + 23, expected.end()));
  resumed.reset();
  EXPECT_EQ(take(resumed, 37), expected);
}

TEST(IndexOrder, RestoreNamesWhatDiffersInTheLoadersWords) {
  IndexOrder order({1, 2, 3}, 5, true, 64, 99, kWords);
  const nlohmann::json state = order.state();
  auto refused = [&](IndexOrder other) { return error_of([&] { other.restore(state); }); };
  EXPECT_NE(refused(IndexOrder({1, 2, 3}, 6, true, 64, 99, kWords)).find("widget loader state was saved with seed 5"),
            std::string::npos);
  EXPECT_NE(refused(IndexOrder({1, 2, 3}, 5, true, 32, 99, kWords)).find("sequence length 64"), std::string::npos);
  EXPECT_NE(refused(IndexOrder({1, 2, 4}, 5, true, 64, 99, kWords)).find("other data"), std::string::npos);
  EXPECT_NE(refused(IndexOrder({1, 2, 3}, 5, true, 64, 98, kWords)).find("other data"), std::string::npos);
  EXPECT_NE(refused(IndexOrder({1, 2, 3, 4}, 5, true, 64, 99, kWords)).find("3 widgets per epoch"), std::string::npos);
  EXPECT_NE(refused(IndexOrder({1, 2, 3}, 5, false, 64, 99, kWords)).find("shuffle"), std::string::npos);
  nlohmann::json missing = state;
  missing.erase("widgets");
  const std::string e = error_of([&] { order.restore(missing); });
  EXPECT_NE(e.find("missing or malformed \"widgets\""), std::string::npos) << e;
  EXPECT_NE(e.find("---> HINT: resume hint"), std::string::npos) << e;
}

TEST(SplitIndices, SeededDisjointCoveringAndSortedWithTheCallersWords) {
  const auto a = split_indices(50, {0.2, 0}, 3, 0x1234, "w.jsonl", kWords);
  const auto b = split_indices(50, {0.2, 0}, 3, 0x1234, "w.jsonl", kWords);
  EXPECT_EQ(a.val, b.val);
  EXPECT_EQ(a.val.size(), 10u);
  EXPECT_TRUE(std::is_sorted(a.val.begin(), a.val.end()) && std::is_sorted(a.train.begin(), a.train.end()));
  std::set<int64_t> all(a.val.begin(), a.val.end());
  all.insert(a.train.begin(), a.train.end());
  EXPECT_EQ(all.size(), 50u);
  // Another salt is another permutation: the SFT and preference splits of one seed differ.
  EXPECT_NE(split_indices(50, {0.2, 0}, 3, 0x4321, "w.jsonl", kWords).val, a.val);
  EXPECT_EQ(split_indices(50, {0.001, 0}, 3, 0x1234, "w.jsonl", kWords).val.size(), 1u);  // at least one
  const std::string e = error_of([] { split_indices(4, {0, 4}, 3, 0x1234, "w.jsonl", kWords); });
  EXPECT_NE(e.find("widget split takes 4 of the 4 widgets of 'w.jsonl', leaving none to train on"), std::string::npos)
      << e;
  EXPECT_NE(e.find("empty hint"), std::string::npos) << e;
  EXPECT_NE(error_of([] { split_indices(4, {0.5, 1}, 3, 0x1234, "w.jsonl", kWords); }).find("not both"),
            std::string::npos);
}

}  // namespace
}  // namespace sllm::data
