// Token shard files: round trips in both dtypes, the exact header bytes, and clear errors on
// malformed files.
#include "data/token_shard.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include <gtest/gtest.h>

#include "core/atomic_file.h"
#include "core/error.h"
#include "test_dir.h"

namespace sllm::data {
namespace {

std::vector<int32_t> ramp(int64_t n, int64_t vocab) {
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) ids[i] = static_cast<int32_t>((i * 7919) % vocab);
  ids.back() = static_cast<int32_t>(vocab - 1);  // the largest id must survive too
  return ids;
}

void expect_round_trip(const std::string& path, const std::vector<int32_t>& ids, int64_t vocab, uint32_t dtype) {
  write_token_shard(path, ids, vocab);
  EXPECT_EQ(std::filesystem::file_size(path), static_cast<uintmax_t>(24 + ids.size() * dtype));
  const TokenShard shard = TokenShard::open(path);
  EXPECT_EQ(shard.dtype_bytes(), dtype);
  ASSERT_EQ(shard.size(), static_cast<int64_t>(ids.size()));
  for (size_t i = 0; i < ids.size(); ++i) ASSERT_EQ(shard[static_cast<int64_t>(i)], ids[i]) << i;
  std::vector<int32_t> window(10);
  shard.read(5, 10, window.data());
  EXPECT_EQ(window, std::vector<int32_t>(ids.begin() + 5, ids.begin() + 15));
}

TEST(TokenShard, RoundTripUint16) {
  testing::TempDir dir;
  expect_round_trip(dir.path + "/a.bin", ramp(3000, 50257), 50257, 2);
  expect_round_trip(dir.path + "/b.bin", ramp(3000, 65536), 65536, 2);  // 65535 still fits
}

TEST(TokenShard, RoundTripUint32) {
  testing::TempDir dir;
  expect_round_trip(dir.path + "/a.bin", ramp(3000, 65537), 65537, 4);
  expect_round_trip(dir.path + "/b.bin", ramp(3000, 200019), 200019, 4);
}

TEST(TokenShard, HeaderBytesFollowTheSpec) {
  testing::TempDir dir;
  write_token_shard(dir.path + "/s.bin", std::vector<int32_t>{1, 258, 65535}, 65536);
  const std::string bytes = read_file(dir.path + "/s.bin");
  const unsigned char expected[] = {'S', 'L', 'L', 'M', 'T', 'O', 'K', '1',  // magic
                                    1, 0, 0, 0,                              // version
                                    2, 0, 0, 0,                              // dtype: uint16
                                    3, 0, 0, 0, 0, 0, 0, 0,                  // count
                                    1, 0, 2, 1, 255, 255};                   // ids, little-endian
  ASSERT_EQ(bytes.size(), sizeof(expected));
  EXPECT_EQ(std::memcmp(bytes.data(), expected, sizeof(expected)), 0);
}

TEST(TokenShard, EmptyShardIsValid) {
  testing::TempDir dir;
  write_token_shard(dir.path + "/e.bin", std::vector<int32_t>{}, 100);
  EXPECT_EQ(TokenShard::open(dir.path + "/e.bin").size(), 0);
}

TEST(TokenShard, OutOfVocabularyIdIsRejectedAndNothingIsWritten) {
  testing::TempDir dir;
  EXPECT_THROW(write_token_shard(dir.path + "/x.bin", std::vector<int32_t>{1, 2, 100}, 100), Error);
  EXPECT_THROW(write_token_shard(dir.path + "/x.bin", std::vector<int32_t>{-1}, 100), Error);
  EXPECT_TRUE(std::filesystem::is_empty(dir.path));
}

TEST(TokenShard, MovedShardKeepsItsData) {
  testing::TempDir dir;
  write_token_shard(dir.path + "/m.bin", std::vector<int32_t>{4, 5, 6}, 10);
  TokenShard a = TokenShard::open(dir.path + "/m.bin");
  TokenShard b = std::move(a);
  EXPECT_EQ(b.size(), 3);
  EXPECT_EQ(b[2], 6);
}

// Writes a good uint16 shard of 4 ids, lets `damage` edit its bytes, and expects open() to
// throw an sllm::Error whose message contains `expected_text`.
void expect_bad_shard(const std::function<void(std::string&)>& damage, const std::string& expected_text) {
  testing::TempDir dir;
  const std::string path = dir.path + "/bad.bin";
  write_token_shard(path, std::vector<int32_t>{1, 2, 3, 4}, 1000);
  std::string bytes = read_file(path);
  damage(bytes);
  write_file_atomic(path, bytes);
  try {
    TokenShard::open(path);
    ADD_FAILURE() << "expected an error mentioning '" << expected_text << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(expected_text), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("HINT"), std::string::npos) << e.what();
  }
}

TEST(TokenShard, MalformedFilesRaiseClearErrors) {
  expect_bad_shard([](std::string& b) { b[0] = 'X'; }, "magic");
  expect_bad_shard([](std::string& b) { b.resize(10); }, "truncated");
  expect_bad_shard([](std::string& b) { b.clear(); }, "truncated");
  expect_bad_shard([](std::string& b) { b.pop_back(); }, "corrupt");          // payload one byte short
  expect_bad_shard([](std::string& b) { b.resize(b.size() - 2); }, "corrupt");  // one id short
  expect_bad_shard([](std::string& b) { b += "xy"; }, "corrupt");            // trailing garbage
  expect_bad_shard([](std::string& b) { b[16] = 5; }, "corrupt");            // count says 5
  expect_bad_shard([](std::string& b) { std::memset(&b[16], 0xff, 8); }, "corrupt");  // count overflows
  expect_bad_shard([](std::string& b) { b[8] = 2; }, "version");
  expect_bad_shard([](std::string& b) { b[12] = 3; }, "dtype");
  expect_bad_shard([](std::string& b) { b[12] = 0; }, "dtype");
}

TEST(TokenShard, Uint32IdAboveInt32IsRejected) {
  // Found by fuzz_shard_and_config: an id >= 2^31 read back as a negative int32.
  testing::TempDir dir;
  const std::string path = dir.path + "/big.bin";
  write_token_shard(path, std::vector<int32_t>{1, 2, 3}, 70000);  // uint32 ids
  std::string bytes = read_file(path);
  std::memset(&bytes[bytes.size() - 4], 0xff, 4);  // last id = 0xffffffff
  write_file_atomic(path, bytes);
  try {
    TokenShard::open(path);
    ADD_FAILURE() << "expected an error for an id above INT32_MAX";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("4294967295"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("HINT"), std::string::npos) << e.what();
  }
}

TEST(TokenShard, MissingFileRaisesError) {
  EXPECT_THROW(TokenShard::open("/nonexistent/dir/train.bin"), Error);
  testing::TempDir dir;
  EXPECT_THROW(TokenShard::open(dir.path), Error);  // a directory is not a shard
}

}  // namespace
}  // namespace sllm::data
