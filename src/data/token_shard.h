// Token shards: the tokenized corpus on disk, read by memory mapping so that a multi-GB
// corpus costs no RAM up front and opens instantly.
//
// Layout (all little-endian):
//   offset  0  char[8]   magic "SLLMTOK1"
//   offset  8  uint32    version = 1
//   offset 12  uint32    dtype: bytes per id, 2 (uint16, when vocab_size <= 65536) or 4 (uint32)
//   offset 16  uint64    count: number of ids
//   offset 24  count ids of `dtype` bytes each; the file ends exactly there
// `sllm prepare` writes one shard per split (train.bin, val.bin). Documents are concatenated,
// each followed by the tokenizer's "<|endoftext|>" id.
#pragma once
#include <cstdint>
#include <span>
#include <string>

namespace sllm::data {

inline constexpr char kShardMagic[8] = {'S', 'L', 'L', 'M', 'T', 'O', 'K', '1'};
inline constexpr uint32_t kShardVersion = 1;
inline constexpr int64_t kShardHeaderBytes = 24;

// Bytes per id for a vocabulary: 2 when every id fits in uint16, else 4.
uint32_t shard_dtype_for_vocab(int64_t vocab_size);

// Writes `ids` as a shard at `path`, atomically (temp file + fsync + rename). Every id must be
// in [0, vocab_size); the dtype follows shard_dtype_for_vocab(vocab_size).
void write_token_shard(const std::string& path, std::span<const int32_t> ids, int64_t vocab_size);

class TokenShard {
 public:
  // Maps the file read-only and validates magic, version, dtype and count against the file
  // length; any mismatch raises sllm::Error naming the file and what is wrong.
  static TokenShard open(const std::string& path);

  TokenShard(TokenShard&& other) noexcept;
  TokenShard& operator=(TokenShard&& other) noexcept;
  TokenShard(const TokenShard&) = delete;
  TokenShard& operator=(const TokenShard&) = delete;
  ~TokenShard();

  int64_t size() const { return count_; }
  int32_t operator[](int64_t i) const;
  // out[0..n) = ids[begin .. begin+n): one bounds check for a whole window.
  void read(int64_t begin, int64_t n, int32_t* out) const;
  uint32_t dtype_bytes() const { return dtype_; }
  const std::string& path() const { return path_; }

 private:
  TokenShard() = default;
  void release();
  std::string path_;
  void* map_ = nullptr;             // the whole file, header included
  size_t map_bytes_ = 0;
  const unsigned char* ids_ = nullptr;  // (count) ids of dtype_ bytes, right after the header
  int64_t count_ = 0;
  uint32_t dtype_ = 0;
};

}  // namespace sllm::data
