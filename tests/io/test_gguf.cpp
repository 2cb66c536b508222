// GGUF reader (issue 12): files built byte by byte here parse as docs/gguf.md says (every
// metadata type, arrays, tensor infos, alignment, versions 2 and 3, mmap), and every malformed
// input is an sllm::Error whose message says what was wrong, never a crash.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/gguf.h"

namespace fs = std::filesystem;
using sllm::io::GgmlType;
using sllm::io::GgufFile;
using sllm::io::GgufType;

namespace {

// ---- byte builders (little endian, spelled out) ----
std::string le(uint64_t v, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
  return out;
}
std::string u32(uint32_t v) { return le(v, 4); }
std::string u64(uint64_t v) { return le(v, 8); }
std::string gstr(const std::string& s) { return u64(s.size()) + s; }
std::string f32(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  return u32(bits);
}

// One metadata pair: key, type id, value bytes.
std::string kv(const std::string& key, GgufType type, const std::string& value) {
  return gstr(key) + u32(static_cast<uint32_t>(type)) + value;
}
std::string kv_u32(const std::string& key, uint32_t v) { return kv(key, GgufType::U32, u32(v)); }
std::string kv_str(const std::string& key, const std::string& v) { return kv(key, GgufType::STRING, gstr(v)); }
std::string kv_array(const std::string& key, GgufType elem, uint64_t count, const std::string& payload) {
  return kv(key, GgufType::ARRAY, u32(static_cast<uint32_t>(elem)) + u64(count) + payload);
}

struct TensorSpec {
  std::string name;
  std::vector<uint64_t> dims;
  uint32_t type;
  std::string data;                  // the tensor's bytes
  std::optional<uint64_t> offset{};  // default: packed, each aligned
};

struct FileSpec {
  std::string magic = "GGUF";
  uint32_t version = 3;
  std::vector<std::string> kvs;
  std::vector<TensorSpec> tensors;
  uint64_t alignment = 32;  // the padding used to lay out the data (not written as a key)
  std::optional<uint64_t> n_tensors{}, n_kv{};
};

uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

// A whole file. The data section ends right after the last tensor (no trailing padding), so
// any truncation cuts into something the reader needs.
std::string build(const FileSpec& s) {
  std::string out = s.magic + u32(s.version) + u64(s.n_tensors.value_or(s.tensors.size())) +
                    u64(s.n_kv.value_or(s.kvs.size()));
  for (const auto& k : s.kvs) out += k;
  std::vector<uint64_t> offsets;
  uint64_t next = 0;
  for (const auto& t : s.tensors) {
    uint64_t off = t.offset.value_or(align_up(next, s.alignment));
    offsets.push_back(off);
    next = off + t.data.size();
    out += gstr(t.name) + u32(static_cast<uint32_t>(t.dims.size()));
    for (uint64_t d : t.dims) out += u64(d);
    out += u32(t.type) + u64(off);
  }
  if (s.tensors.empty()) return out;
  out.resize(align_up(out.size(), s.alignment), '\0');
  const size_t data_start = out.size();
  for (size_t i = 0; i < s.tensors.size(); ++i) {
    if (offsets[i] > (1u << 24)) continue;  // a far-away offset (bad-input tests): no data written
    const size_t at = data_start + offsets[i];
    if (out.size() < at + s.tensors[i].data.size()) out.resize(at + s.tensors[i].data.size(), '\0');
    std::memcpy(out.data() + at, s.tensors[i].data.data(), s.tensors[i].data.size());
  }
  return out;
}

std::string f32_data(const std::vector<float>& v) {
  std::string out;
  for (float f : v) out += f32(f);
  return out;
}

// A Q8_0 block: d = 0.5 (f16 0x3800), qs = 0, 1, ..., 31 minus 16.
std::string q8_0_block() {
  std::string b = le(0x3800, 2);
  for (int j = 0; j < 32; ++j) b.push_back(static_cast<char>(j - 16));
  return b;
}

// A small valid file: a few keys and two tensors.
FileSpec valid_spec() {
  FileSpec s;
  s.kvs = {kv_str("general.architecture", "llama"), kv_u32("llama.block_count", 2)};
  s.tensors = {{"a.weight", {3, 2}, 0, f32_data({1, 2, 3, 4, 5, 6})}, {"b.weight", {32, 2}, 8, q8_0_block() + q8_0_block()}};
  return s;
}

// The message of the sllm::Error that parsing `bytes` throws ("" if it parses).
std::string parse_error(const std::string& bytes) {
  try {
    GgufFile::from_bytes(bytes, "test.gguf");
  } catch (const sllm::Error& e) {
    return e.what();
  }
  return "";
}

#define EXPECT_PARSE_ERROR(bytes, fragment)                                   \
  do {                                                                        \
    const std::string msg = parse_error(bytes);                               \
    EXPECT_NE(msg.find(fragment), std::string::npos) << "error was: " << msg; \
    EXPECT_NE(msg.find("HINT"), std::string::npos) << msg;                    \
  } while (0)

}  // namespace

// ---- valid files ----------------------------------------------------------------------------

TEST(Gguf, EveryMetadataTypeAndArrays) {
  FileSpec s;
  s.kvs = {
      kv("t.u8", GgufType::U8, le(200, 1)),
      kv("t.i8", GgufType::I8, le(0xFE, 1)),  // -2
      kv("t.u16", GgufType::U16, le(60000, 2)),
      kv("t.i16", GgufType::I16, le(0x8000, 2)),  // -32768
      kv("t.u32", GgufType::U32, u32(4000000000u)),
      kv("t.i32", GgufType::I32, u32(0xFFFFFFFFu)),  // -1
      kv("t.f32", GgufType::F32, f32(1e-5f)),
      kv("t.bool", GgufType::BOOL, le(1, 1)),
      kv("t.string", GgufType::STRING, gstr("héllo")),
      kv("t.u64", GgufType::U64, u64(1ull << 40)),
      kv("t.i64", GgufType::I64, u64(static_cast<uint64_t>(-5))),
      kv("t.f64", GgufType::F64, le(0x400921FB54442D18ull, 8)),  // pi
      kv_array("t.tokens", GgufType::STRING, 3, gstr("a") + gstr("") + gstr("<|im_end|>")),
      kv_array("t.scores", GgufType::F32, 2, f32(-1.5f) + f32(2.0f)),
      kv_array("t.types", GgufType::I32, 3, u32(1) + u32(3) + u32(0xFFFFFFFFu)),
      kv_array("t.flags", GgufType::BOOL, 2, le(0, 1) + le(1, 1)),
      kv_array("t.empty", GgufType::U64, 0, ""),
  };
  GgufFile f = GgufFile::from_bytes(build(s));
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), 32u);
  EXPECT_EQ(f.metadata().size(), s.kvs.size());
  EXPECT_EQ(f.metadata()[0].first, "t.u8");  // file order kept
  EXPECT_EQ(f.get_u8("t.u8"), 200);
  EXPECT_EQ(f.get_i8("t.i8"), -2);
  EXPECT_EQ(f.get_u16("t.u16"), 60000);
  EXPECT_EQ(f.get_i16("t.i16"), -32768);
  EXPECT_EQ(f.get_u32("t.u32"), 4000000000u);
  EXPECT_EQ(f.get_i32("t.i32"), -1);
  EXPECT_EQ(f.get_f32("t.f32"), 1e-5f);
  EXPECT_TRUE(f.get_bool("t.bool"));
  EXPECT_EQ(f.get_string("t.string"), "héllo");
  EXPECT_EQ(f.get_u64("t.u64"), 1ull << 40);
  EXPECT_EQ(f.get_i64("t.i64"), -5);
  EXPECT_DOUBLE_EQ(f.get_f64("t.f64"), 3.141592653589793);
  EXPECT_EQ(f.get_string_array("t.tokens"), (std::vector<std::string>{"a", "", "<|im_end|>"}));
  EXPECT_EQ(f.get_f32_array("t.scores"), (std::vector<float>{-1.5f, 2.0f}));
  EXPECT_EQ(f.get_i32_array("t.types"), (std::vector<int32_t>{1, 3, -1}));
  EXPECT_EQ(f.get_int_array("t.types"), (std::vector<int64_t>{1, 3, -1}));
  EXPECT_EQ(f.get("t.flags").count, 2u);
  EXPECT_EQ(f.get("t.empty").count, 0u);
  EXPECT_EQ(f.get("t.tokens").type_text(), "array of string");
  // The lenient getters: any integer width, sign-extended; f32 or f64.
  EXPECT_EQ(f.get_int("t.i8"), -2);
  EXPECT_EQ(f.get_int("t.u32"), 4000000000LL);
  EXPECT_EQ(f.get_int("t.i16"), -32768);
  EXPECT_FLOAT_EQ(static_cast<float>(f.get_float("t.f32")), 1e-5f);
  EXPECT_DOUBLE_EQ(f.get_float("t.f64"), 3.141592653589793);
  EXPECT_TRUE(f.tensors().empty());
}

TEST(Gguf, TensorInfosShapesAndData) {
  for (uint32_t version : {2u, 3u}) {
    FileSpec s = valid_spec();
    s.version = version;
    GgufFile f = GgufFile::from_bytes(build(s));
    EXPECT_EQ(f.version(), version);
    ASSERT_EQ(f.tensors().size(), 2u);
    const auto& a = f.tensor("a.weight");
    EXPECT_EQ(a.type, GgmlType::F32);
    EXPECT_EQ(a.dims, (std::vector<int64_t>{3, 2}));
    EXPECT_EQ(a.shape(), (std::vector<int64_t>{2, 3}));  // row-major: 2 rows of 3
    EXPECT_EQ(a.n_elements, 6);
    EXPECT_EQ(a.nbytes, 24u);
    EXPECT_EQ(a.offset, 0u);
    EXPECT_EQ(f.dequantize(a), (std::vector<float>{1, 2, 3, 4, 5, 6}));
    const auto& b = f.tensor("b.weight");
    EXPECT_EQ(b.type, GgmlType::Q8_0);
    EXPECT_EQ(b.offset, 32u);  // 24 bytes, padded to the alignment
    EXPECT_EQ(b.nbytes, 68u);
    EXPECT_EQ(f.data_offset() % 32, 0u);
    EXPECT_EQ(b.data - a.data, 32);  // both point into the file's bytes
    std::vector<float> v = f.dequantize(b);
    ASSERT_EQ(v.size(), 64u);
    EXPECT_EQ(v[0], -8.0f);   // (0 - 16) * 0.5
    EXPECT_EQ(v[31], 7.5f);   // (31 - 16) * 0.5
    EXPECT_EQ(v[32], -8.0f);  // second row, second block
    EXPECT_EQ(f.find_tensor("nope"), nullptr);
    EXPECT_THROW(f.tensor("nope"), sllm::Error);
    std::vector<float> small(3);
    EXPECT_THROW(f.dequantize_into(b, small.data(), small.size()), sllm::Error);
  }
}

TEST(Gguf, CustomAlignmentAndScalarTensor) {
  FileSpec s = valid_spec();
  s.alignment = 64;
  s.kvs.push_back(kv_u32("general.alignment", 64));
  s.tensors.push_back({"scalar", {}, 0, f32_data({42})});
  GgufFile f = GgufFile::from_bytes(build(s));
  EXPECT_EQ(f.alignment(), 64u);
  EXPECT_EQ(f.data_offset() % 64, 0u);
  EXPECT_EQ(f.tensor("b.weight").offset, 64u);
  EXPECT_EQ(f.tensor("scalar").shape(), std::vector<int64_t>{});
  EXPECT_EQ(f.dequantize(f.tensor("scalar")), std::vector<float>{42});
}

TEST(Gguf, OpensFromDiskByMmap) {
  const fs::path path = fs::temp_directory_path() / ("sllm_test_gguf_" + std::to_string(getpid()) + ".gguf");
  const std::string bytes = build(valid_spec());
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  {
    GgufFile f = GgufFile::open(path.string());
    GgufFile moved = std::move(f);  // data pointers survive the move
    EXPECT_EQ(moved.get_string("general.architecture"), "llama");
    EXPECT_EQ(moved.dequantize(moved.tensor("a.weight"))[5], 6.0f);
  }
  fs::remove(path);
  try {
    GgufFile::open(path.string());
    FAIL() << "opened a missing file";
  } catch (const sllm::Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot open GGUF file"), std::string::npos);
  }
  EXPECT_THROW(GgufFile::open(fs::temp_directory_path().string()), sllm::Error);  // a directory
}

// ---- getters: missing keys and type mismatches ----------------------------------------------

TEST(Gguf, MissingKeyNamesItAndItsFamily) {
  GgufFile f = GgufFile::from_bytes(build(valid_spec()), "m.gguf");
  try {
    f.get_u32("llama.context_length");
    FAIL();
  } catch (const sllm::Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("'llama.context_length' is missing"), std::string::npos) << msg;
    EXPECT_NE(msg.find("llama.block_count"), std::string::npos) << msg;  // the keys it does have
    EXPECT_NE(msg.find("m.gguf"), std::string::npos) << msg;
  }
  EXPECT_FALSE(f.has("llama.context_length"));
  EXPECT_TRUE(f.has("llama.block_count"));
}

TEST(Gguf, TypeMismatchNamesKeyAndBothTypes) {
  GgufFile f = GgufFile::from_bytes(build(valid_spec()));
  auto message = [](auto&& call) {
    try {
      call();
    } catch (const sllm::Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  std::string msg = message([&] { f.get_u32("general.architecture"); });
  EXPECT_NE(msg.find("'general.architecture' is string, expected u32"), std::string::npos) << msg;
  msg = message([&] { f.get_string("llama.block_count"); });
  EXPECT_NE(msg.find("'llama.block_count' is u32, expected string"), std::string::npos) << msg;
  msg = message([&] { f.get_u64("llama.block_count"); });
  EXPECT_NE(msg.find("is u32, expected u64"), std::string::npos) << msg;
  msg = message([&] { f.get_string_array("general.architecture"); });
  EXPECT_NE(msg.find("expected array of string"), std::string::npos) << msg;
  msg = message([&] { f.get_float("llama.block_count"); });
  EXPECT_NE(msg.find("expected f32 or f64"), std::string::npos) << msg;
  msg = message([&] { f.get_int("llama.block_count", 3, 10); });
  EXPECT_NE(msg.find("outside [3, 10]"), std::string::npos) << msg;
  EXPECT_EQ(f.get_int("llama.block_count", 1, 10), 2);
}

// ---- bad input: each a clear sllm::Error ----------------------------------------------------

TEST(GgufBadInput, EveryTruncationIsAnError) {
  const std::string bytes = build(valid_spec());
  ASSERT_EQ(parse_error(bytes), "");
  for (size_t n = 0; n < bytes.size(); ++n) {
    const std::string msg = parse_error(bytes.substr(0, n));
    EXPECT_FALSE(msg.empty()) << "a file cut to " << n << " of " << bytes.size() << " bytes parsed";
  }
  EXPECT_PARSE_ERROR(bytes.substr(0, 2), "only 2 bytes");
  EXPECT_PARSE_ERROR(bytes.substr(0, bytes.size() - 1), "runs past the end of the data section");
}

TEST(GgufBadInput, MagicAndVersion) {
  FileSpec s = valid_spec();
  s.magic = "GGUX";
  EXPECT_PARSE_ERROR(build(s), "bad magic 'GGUX'");
  s = valid_spec();
  s.version = 1;
  EXPECT_PARSE_ERROR(build(s), "unsupported GGUF version 1");
  s.version = 0;
  EXPECT_PARSE_ERROR(build(s), "unsupported GGUF version 0");
  s.version = 4;
  EXPECT_PARSE_ERROR(build(s), "unsupported GGUF version 4");
  s.version = 0x03000000;  // version 3 written big-endian
  EXPECT_PARSE_ERROR(build(s), "big-endian");
}

TEST(GgufBadInput, TensorDataOutOfBoundsAndMisaligned) {
  FileSpec s = valid_spec();
  s.tensors[1].offset = 1u << 30;
  EXPECT_PARSE_ERROR(build(s), "runs past the end of the data section");
  s = valid_spec();
  s.tensors[1].offset = 40;  // past a's 24 bytes but not a multiple of 32
  EXPECT_PARSE_ERROR(build(s), "data offset 40 is not a multiple of the alignment 32");
  s = valid_spec();
  s.tensors[1].offset = UINT64_MAX - 31;  // aligned, and offset + size overflows
  EXPECT_PARSE_ERROR(build(s), "runs past the end of the data section");
  s = valid_spec();
  s.tensors[1].offset = 0;  // on top of a
  EXPECT_PARSE_ERROR(build(s), "overlap");
}

TEST(GgufBadInput, Alignment) {
  for (uint32_t bad : {0u, 3u, 48u, 0x80000001u}) {
    FileSpec s = valid_spec();
    s.kvs.push_back(kv_u32("general.alignment", bad));
    EXPECT_PARSE_ERROR(build(s), "not a power of two");
  }
  FileSpec s = valid_spec();
  s.kvs.push_back(kv("general.alignment", GgufType::U64, u64(32)));
  EXPECT_PARSE_ERROR(build(s), "'general.alignment' is u64, expected u32");
}

TEST(GgufBadInput, TensorTypesAndShapes) {
  FileSpec s = valid_spec();
  s.tensors[0].type = 999;
  EXPECT_PARSE_ERROR(build(s), "unknown ggml type id 999");
  s.tensors[0].type = 4;  // Q4_2, retired by ggml
  EXPECT_PARSE_ERROR(build(s), "unknown ggml type id 4");
  s = valid_spec();
  s.tensors[1].dims = {31, 2};  // Q8_0 rows must be whole 32-element blocks
  EXPECT_PARSE_ERROR(build(s), "not a multiple of Q8_0's block size 32");
  s = valid_spec();
  s.tensors[0].dims = {1, 1, 1, 1, 6};
  EXPECT_PARSE_ERROR(build(s), "5 dimensions");
  s = valid_spec();
  s.tensors[0].dims = {1ull << 62, 8};
  EXPECT_PARSE_ERROR(build(s), "overflows int64");
  s = valid_spec();
  s.tensors[0].dims = {1ull << 63, 1};
  EXPECT_PARSE_ERROR(build(s), "negative as int64");
  s = valid_spec();
  s.tensors[1].name = "a.weight";
  EXPECT_PARSE_ERROR(build(s), "tensor name 'a.weight' appears twice");
}

TEST(GgufBadInput, Metadata) {
  FileSpec s = valid_spec();
  s.kvs.push_back(kv_u32("llama.block_count", 3));
  EXPECT_PARSE_ERROR(build(s), "metadata key 'llama.block_count' appears twice");
  s = valid_spec();
  s.kvs.push_back(kv("x", static_cast<GgufType>(13), u32(0)));
  EXPECT_PARSE_ERROR(build(s), "unknown value type 13");
  s = valid_spec();
  s.kvs.push_back(kv_array("x", GgufType::ARRAY, 1, u32(4) + u64(0)));
  EXPECT_PARSE_ERROR(build(s), "array of arrays");
  s = valid_spec();
  s.kvs.push_back(kv("", GgufType::U32, u32(0)));
  EXPECT_PARSE_ERROR(build(s), "is empty");
}

TEST(GgufBadInput, LengthsPastTheEndAndAbsurdCounts) {
  // A string whose length runs past the end: the key, a value, an array element.
  FileSpec s = valid_spec();
  s.kvs.push_back(u64(1ull << 40) + "key");
  EXPECT_PARSE_ERROR(build(s), "claims 1099511627776 bytes");
  s = valid_spec();
  s.kvs.push_back(kv("k", GgufType::STRING, u64(5000) + "short"));
  EXPECT_PARSE_ERROR(build(s), "claims 5000 bytes");
  s = valid_spec();
  s.kvs.push_back(kv_array("k", GgufType::STRING, 1, u64(UINT64_MAX) + "x"));
  EXPECT_PARSE_ERROR(build(s), "claims 18446744073709551615 bytes");
  // Counts that no file of this size could hold are refused before any allocation.
  s = valid_spec();
  s.kvs.push_back(kv_array("k", GgufType::U32, 1ull << 61, ""));
  EXPECT_PARSE_ERROR(build(s), "claims 2305843009213693952 elements of u32");
  s = valid_spec();
  s.kvs.push_back(kv_array("k", GgufType::STRING, 1ull << 60, ""));
  EXPECT_PARSE_ERROR(build(s), "claims 1152921504606846976 strings");
  s = valid_spec();
  s.n_kv = 1ull << 62;
  EXPECT_PARSE_ERROR(build(s), "header claims 4611686018427387904 metadata pairs");
  s = valid_spec();
  s.n_tensors = UINT64_MAX;
  EXPECT_PARSE_ERROR(build(s), "header claims 18446744073709551615 tensors");
  s = valid_spec();
  s.tensors[0].name = std::string(100, 'x');
  std::string bytes = build(s);
  const size_t at = bytes.find(std::string(100, 'x')) - 8;
  bytes.replace(at, 8, u64(1ull << 62));  // the tensor name's length
  EXPECT_PARSE_ERROR(bytes, "claims 4611686018427387904 bytes");
}

TEST(GgufBadInput, TypeWithoutKernelOpensButDoesNotDequantize) {
  FileSpec s;
  s.tensors = {{"q2", {256}, 10, std::string(84, '\0')}};  // Q2_K: sized, no kernel
  GgufFile f = GgufFile::from_bytes(build(s), "q2.gguf");
  EXPECT_EQ(f.tensor("q2").nbytes, 84u);
  try {
    f.dequantize(f.tensor("q2"));
    FAIL();
  } catch (const sllm::Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("cannot dequantize ggml type Q2_K"), std::string::npos) << msg;
    EXPECT_NE(msg.find("tensor 'q2'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("Q4_K"), std::string::npos) << msg;  // the hint lists what works
  }
}
