// The pretraining batch loader: targets are the next token, every window once per epoch,
// seeded order, exact resume from state().
#include "data/batch_loader.h"

#include <algorithm>
#include <set>
#include <vector>

#include <gtest/gtest.h>

#include "core/error.h"
#include "test_dir.h"

namespace sllm::data {
namespace {

// A shard whose id at position i is i, so a window's ids say where it came from.
struct PositionShard {
  testing::TempDir dir;
  TokenShard shard;
  explicit PositionShard(int64_t n) : shard(make(dir.path, n)) {}
  static TokenShard make(const std::string& dir, int64_t n) {
    std::vector<int32_t> ids(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) ids[i] = static_cast<int32_t>(i);
    write_token_shard(dir + "/p.bin", ids, n);
    return TokenShard::open(dir + "/p.bin");
  }
};

struct Batch {
  std::vector<int32_t> inputs, targets;
  bool operator==(const Batch&) const = default;
};

Batch draw(BatchLoader& loader) {
  Batch b{std::vector<int32_t>(loader.batch_size() * loader.seq_len()),
          std::vector<int32_t>(loader.batch_size() * loader.seq_len())};
  loader.next(b.inputs.data(), b.targets.data());
  return b;
}

// The window starts of the first `rows` rows of the next batches (the rest of the last batch
// is dropped, so call it once per test).
std::vector<int32_t> starts(BatchLoader& loader, int64_t rows) {
  std::vector<int32_t> out;
  while (static_cast<int64_t>(out.size()) < rows) {
    const Batch b = draw(loader);
    for (int64_t r = 0; r < loader.batch_size(); ++r) out.push_back(b.inputs[r * loader.seq_len()]);
  }
  out.resize(rows);
  return out;
}

TEST(BatchLoader, TargetsAreInputsShiftedByOneInTheStream) {
  PositionShard data(1003);
  const int64_t B = 4, T = 10;
  BatchLoader loader(data.shard, B, T, 1);
  EXPECT_EQ(loader.windows_per_epoch(), 100);  // floor((1003 - 1) / 10)
  for (int step = 0; step < 30; ++step) {
    const Batch b = draw(loader);
    for (int64_t r = 0; r < B; ++r) {
      const int32_t start = b.inputs[r * T];
      EXPECT_EQ(start % T, 0);
      for (int64_t t = 0; t < T; ++t) {
        EXPECT_EQ(b.inputs[r * T + t], start + t);
        EXPECT_EQ(b.targets[r * T + t], start + t + 1);
      }
    }
  }
}

TEST(BatchLoader, EveryWindowOncePerEpochInAFreshOrder) {
  PositionShard data(1003);
  BatchLoader loader(data.shard, 7, 10, 3);  // 7 does not divide 100: batches straddle epochs
  std::vector<int32_t> all_starts(100);
  for (int i = 0; i < 100; ++i) all_starts[i] = i * 10;
  const std::vector<int32_t> rows = starts(loader, 200);  // 29 batches: 203 rows
  const std::vector<int32_t> epoch0(rows.begin(), rows.begin() + 100), epoch1(rows.begin() + 100, rows.end());
  for (const auto& epoch : {epoch0, epoch1}) {
    std::vector<int32_t> sorted = epoch;
    std::sort(sorted.begin(), sorted.end());
    EXPECT_EQ(sorted, all_starts);
  }
  EXPECT_NE(epoch0, all_starts);  // shuffled
  EXPECT_NE(epoch0, epoch1);      // reshuffled each epoch
  EXPECT_EQ(loader.epoch(), 2);
}

TEST(BatchLoader, WithoutShuffleWindowsComeInFileOrder) {
  PositionShard data(101);
  BatchLoader loader(data.shard, 3, 10, 9, /*shuffle=*/false);
  std::vector<int32_t> expected;
  for (int e = 0; e < 2; ++e)
    for (int i = 0; i < 10; ++i) expected.push_back(i * 10);
  EXPECT_EQ(starts(loader, 20), expected);
}

TEST(BatchLoader, SameSeedSameOrderDifferentSeedDifferentOrder) {
  PositionShard data(2001);
  BatchLoader a(data.shard, 5, 8, 11), b(data.shard, 5, 8, 11), c(data.shard, 5, 8, 12);
  const auto sa = starts(a, 250), sb = starts(b, 250), sc = starts(c, 250);
  EXPECT_EQ(sa, sb);
  EXPECT_NE(sa, sc);
}

TEST(BatchLoader, RestoreReproducesTheFollowingBatches) {
  PositionShard data(1003);
  BatchLoader loader(data.shard, 6, 10, 5);
  for (int i = 0; i < 23; ++i) draw(loader);  // 138 windows: into the second epoch
  // Through text, as a checkpoint would store it.
  const nlohmann::json saved = nlohmann::json::parse(loader.state().dump());
  EXPECT_EQ(saved["epoch"], 1);
  EXPECT_EQ(saved["position"], 38);
  EXPECT_EQ(saved["seed"], 5);
  std::vector<Batch> expected;
  for (int i = 0; i < 40; ++i) expected.push_back(draw(loader));  // crosses into epoch 3

  BatchLoader resumed(data.shard, 6, 10, 5);
  draw(resumed);  // a resumed loader's own history must not matter
  resumed.restore(saved);
  for (int i = 0; i < 40; ++i) EXPECT_EQ(draw(resumed), expected[i]) << "batch " << i;
}

TEST(BatchLoader, ResetStartsOver) {
  PositionShard data(500);
  BatchLoader loader(data.shard, 4, 16, 2);
  const Batch first = draw(loader);
  for (int i = 0; i < 20; ++i) draw(loader);
  loader.reset();
  EXPECT_EQ(loader.epoch(), 0);
  EXPECT_EQ(draw(loader), first);
}

TEST(BatchLoader, RestoreRejectsMismatchedOrMalformedState) {
  PositionShard data(1003), other(2003);
  BatchLoader loader(data.shard, 2, 10, 5);
  const nlohmann::json good = loader.state();
  auto with = [&](const char* key, nlohmann::json value) {
    nlohmann::json s = good;
    s[key] = std::move(value);
    return s;
  };
  EXPECT_THROW(loader.restore(with("seed", 6)), Error);
  EXPECT_THROW(loader.restore(with("seq_len", 11)), Error);
  EXPECT_THROW(loader.restore(with("windows_per_epoch", 99)), Error);
  EXPECT_THROW(loader.restore(with("shuffle", false)), Error);
  EXPECT_THROW(loader.restore(with("position", 101)), Error);
  EXPECT_THROW(loader.restore(with("position", -1)), Error);
  EXPECT_THROW(loader.restore(with("epoch", "one")), Error);
  EXPECT_THROW(loader.restore(nlohmann::json::array()), Error);
  nlohmann::json missing = good;
  missing.erase("position");
  EXPECT_THROW(loader.restore(missing), Error);
  BatchLoader on_other(other.shard, 2, 10, 5);
  EXPECT_THROW(on_other.restore(good), Error);  // a different shard: different window count
  EXPECT_NO_THROW(loader.restore(good));
  // The minimal {epoch, position, seed} form is accepted.
  EXPECT_NO_THROW(loader.restore({{"epoch", 3}, {"position", 7}, {"seed", 5}}));
  EXPECT_EQ(loader.epoch(), 3);
  EXPECT_EQ(loader.position(), 7);
}

TEST(BatchLoader, TooSmallShardRaisesErrorWithHint) {
  PositionShard data(10);
  EXPECT_NO_THROW(BatchLoader(data.shard, 1, 9, 0));  // exactly T+1 ids: one window
  try {
    BatchLoader(data.shard, 1, 10, 0);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(e.hint().find("--seq"), std::string::npos) << e.what();
  }
  EXPECT_THROW(BatchLoader(data.shard, 0, 4, 0), Error);
}

}  // namespace
}  // namespace sllm::data
