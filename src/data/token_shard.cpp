#include "data/token_shard.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstring>
#include <vector>

#include "core/atomic_file.h"
#include "core/error.h"

namespace sllm::data {

// The shard stores ids little-endian and we copy them with memcpy, which is only right on a
// little-endian host (x86-64, ARM64: every machine sllm targets).
static_assert(std::endian::native == std::endian::little, "token shards assume a little-endian host");

uint32_t shard_dtype_for_vocab(int64_t vocab_size) { return vocab_size <= 65536 ? 2 : 4; }

void write_token_shard(const std::string& path, std::span<const int32_t> ids, int64_t vocab_size) {
  SLLM_CHECK(vocab_size > 0 && vocab_size <= (int64_t{1} << 31),
             str("cannot write token shard '", path, "': vocab size ", vocab_size, " is out of range"),
             "the vocabulary must hold between 1 and 2^31 tokens");
  const uint32_t dtype = shard_dtype_for_vocab(vocab_size);
  unsigned char header[kShardHeaderBytes];
  const uint64_t count = ids.size();
  std::memcpy(header, kShardMagic, 8);
  std::memcpy(header + 8, &kShardVersion, 4);
  std::memcpy(header + 12, &dtype, 4);
  std::memcpy(header + 16, &count, 8);

  AtomicFileWriter out(path);
  out.write(header, sizeof(header));
  // Convert in chunks so a billion-token shard never needs a second full-size buffer.
  constexpr size_t kChunk = size_t{1} << 20;
  std::vector<unsigned char> bytes(kChunk * dtype);
  for (size_t begin = 0; begin < ids.size(); begin += kChunk) {
    const size_t n = std::min(kChunk, ids.size() - begin);
    for (size_t i = 0; i < n; ++i) {
      const int32_t id = ids[begin + i];
      SLLM_CHECK(id >= 0 && id < vocab_size,
                 str("cannot write token shard '", path, "': id ", id, " at position ", begin + i,
                     " is outside the vocabulary [0, ", vocab_size, ")"),
                 "the ids must come from the tokenizer whose vocab size is given");
      if (dtype == 2) {
        const auto v = static_cast<uint16_t>(id);
        std::memcpy(&bytes[i * 2], &v, 2);
      } else {
        const auto v = static_cast<uint32_t>(id);
        std::memcpy(&bytes[i * 4], &v, 4);
      }
    }
    out.write(bytes.data(), n * dtype);
  }
  out.commit();
}

TokenShard TokenShard::open(const std::string& path) {
  const std::string hint = "rebuild the shard with `sllm prepare --tokenizer T --input FILE --out DIR`";
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  SLLM_CHECK(fd >= 0, str("cannot open token shard '", path, "': ", std::strerror(errno)),
             "check the path; shards are written by `sllm prepare` as DIR/train.bin and DIR/val.bin");
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(str("cannot read token shard '", path, "': not a regular file"), hint);
  }
  const auto file_bytes = static_cast<int64_t>(st.st_size);
  if (file_bytes < kShardHeaderBytes) {
    ::close(fd);
    fail(str("token shard '", path, "' is truncated: ", file_bytes, " bytes, shorter than the ", kShardHeaderBytes,
             "-byte header"),
         hint);
  }
  void* map = ::mmap(nullptr, static_cast<size_t>(file_bytes), PROT_READ, MAP_PRIVATE, fd, 0);
  const int map_errno = errno;
  ::close(fd);  // the mapping keeps the file alive
  SLLM_CHECK(map != MAP_FAILED, str("cannot map token shard '", path, "': ", std::strerror(map_errno)), hint);

  TokenShard shard;
  shard.path_ = path;
  shard.map_ = map;
  shard.map_bytes_ = static_cast<size_t>(file_bytes);
  const auto* bytes = static_cast<const unsigned char*>(map);
  uint32_t version = 0, dtype = 0;
  uint64_t count = 0;
  std::memcpy(&version, bytes + 8, 4);
  std::memcpy(&dtype, bytes + 12, 4);
  std::memcpy(&count, bytes + 16, 8);
  // `shard` unmaps itself if a check below throws.
  SLLM_CHECK(std::memcmp(bytes, kShardMagic, 8) == 0,
             str("'", path, "' is not a token shard: its first 8 bytes are not the magic \"SLLMTOK1\""), hint);
  SLLM_CHECK(version == kShardVersion,
             str("token shard '", path, "' has version ", version, "; this sllm reads version ", kShardVersion), hint);
  SLLM_CHECK(dtype == 2 || dtype == 4,
             str("token shard '", path, "' has dtype ", dtype, "; expected 2 (uint16) or 4 (uint32)"), hint);
  const uint64_t payload = static_cast<uint64_t>(file_bytes - kShardHeaderBytes);
  SLLM_CHECK(count <= payload / dtype && count * dtype == payload,
             str("token shard '", path, "' is corrupt: its header says ", count, " ids of ", dtype,
                 " bytes each, but the file holds ", payload, " bytes after the header (room for ", payload / dtype,
                 " ids)"),
             "the file was truncated or appended to; " + hint);
  shard.ids_ = bytes + kShardHeaderBytes;
  shard.count_ = static_cast<int64_t>(count);
  shard.dtype_ = dtype;
  if (dtype == 4) {  // ids are int32 in memory: one pass rejects values that would turn negative
    for (uint64_t i = 0; i < count; ++i) {
      uint32_t v;
      std::memcpy(&v, shard.ids_ + i * 4, 4);
      SLLM_CHECK(v <= 0x7FFFFFFFu, str("token shard '", path, "' holds id ", v, " at position ", i, ", above 2^31 - 1"),
                 "the file is corrupt; " + hint);
    }
  }
  return shard;
}

TokenShard::TokenShard(TokenShard&& other) noexcept { *this = std::move(other); }

TokenShard& TokenShard::operator=(TokenShard&& other) noexcept {
  if (this != &other) {
    release();
    path_ = std::move(other.path_);
    map_ = other.map_;
    map_bytes_ = other.map_bytes_;
    ids_ = other.ids_;
    count_ = other.count_;
    dtype_ = other.dtype_;
    other.map_ = nullptr;
    other.map_bytes_ = 0;
    other.ids_ = nullptr;
    other.count_ = 0;
  }
  return *this;
}

TokenShard::~TokenShard() { release(); }

void TokenShard::release() {
  if (map_ != nullptr) ::munmap(map_, map_bytes_);
  map_ = nullptr;
}

int32_t TokenShard::operator[](int64_t i) const {
  SLLM_ASSERT(i >= 0 && i < count_);
  if (dtype_ == 2) {
    uint16_t v;
    std::memcpy(&v, ids_ + i * 2, 2);
    return v;
  }
  uint32_t v;
  std::memcpy(&v, ids_ + i * 4, 4);
  return static_cast<int32_t>(v);
}

void TokenShard::read(int64_t begin, int64_t n, int32_t* out) const {
  SLLM_ASSERT(begin >= 0 && n >= 0 && begin + n <= count_);
  if (dtype_ == 2) {
    for (int64_t i = 0; i < n; ++i) {
      uint16_t v;
      std::memcpy(&v, ids_ + (begin + i) * 2, 2);
      out[i] = v;
    }
  } else {
    std::memcpy(out, ids_ + begin * 4, static_cast<size_t>(n) * 4);
  }
}

}  // namespace sllm::data
