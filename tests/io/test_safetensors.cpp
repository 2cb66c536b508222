// safetensors: hand-built files parse as the format spec says, our writer reproduces the
// reference writer's bytes, round trips keep every dtype/shape/metadata, and every malformed
// input is an sllm::Error (never a crash).
#include <gtest/gtest.h>
#include <unistd.h>

#include <bit>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/atomic_file.h"
#include "core/error.h"
#include "io/safetensors.h"

namespace fs = std::filesystem;
using sllm::io::SafetensorsFile;
using sllm::io::SafetensorsWriter;

static_assert(std::endian::native == std::endian::little, "these tests build little-endian payloads with memcpy");

namespace {

// The 8-byte little-endian length prefix, spelled out byte by byte.
std::string le64(uint64_t n) {
  std::string out;
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xFF));
  return out;
}

// A whole file: length prefix + header JSON (exactly as given) + data section.
std::string file_bytes(const std::string& header, const std::string& data = "") {
  return le64(header.size()) + header + data;
}

template <typename T>
std::string raw(const std::vector<T>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}

template <typename T>
std::vector<T> values_of(const sllm::io::SafetensorsEntry& e) {
  std::vector<T> out(e.nbytes / sizeof(T));
  std::memcpy(out.data(), e.data, e.nbytes);
  return out;
}

std::string temp_path(const std::string& name) {
  return (fs::temp_directory_path() / ("sllm_st_" + std::to_string(::getpid()) + "_" + name)).string();
}

// ---- the format, independently of our writer -------------------------------------------

TEST(Safetensors, ParsesHandBuiltFile) {
  // Keys deliberately out of offset order and the header unpadded: both are legal.
  std::string header =
      R"({"b":{"dtype":"I32","shape":[2],"data_offsets":[8,16]},)"
      R"("__metadata__":{"format":"pt","note":"hi"},)"
      R"("a":{"dtype":"F32","shape":[2,1],"data_offsets":[0,8]}})";
  std::string data = raw(std::vector<float>{1.5f, -2.0f}) + raw(std::vector<int32_t>{7, -9});
  SafetensorsFile f = SafetensorsFile::from_bytes(file_bytes(header, data));

  ASSERT_EQ(f.entries().size(), 2u);
  EXPECT_EQ(f.entries()[0].name, "a");  // file-offset order
  EXPECT_EQ(f.entries()[1].name, "b");
  const auto& a = f.get("a");
  EXPECT_EQ(a.dtype, "F32");
  EXPECT_EQ(a.shape, (std::vector<int64_t>{2, 1}));
  EXPECT_EQ(values_of<float>(a), (std::vector<float>{1.5f, -2.0f}));
  const auto& b = f.get("b");
  EXPECT_EQ(b.dtype, "I32");
  EXPECT_EQ(b.nbytes, 8u);
  EXPECT_EQ(values_of<int32_t>(b), (std::vector<int32_t>{7, -9}));
  EXPECT_EQ(f.metadata().at("format"), "pt");
  EXPECT_EQ(f.metadata().at("note"), "hi");
  EXPECT_EQ(f.find("c"), nullptr);
}

TEST(Safetensors, AcceptsNullMetadataAndEmptyFile) {
  EXPECT_TRUE(SafetensorsFile::from_bytes(file_bytes(R"({"__metadata__":null})")).metadata().empty());
  SafetensorsFile empty = SafetensorsFile::from_bytes(file_bytes("{}      "));  // trailing spaces are padding
  EXPECT_TRUE(empty.entries().empty());
}

// The reference writer's own expected bytes (huggingface/safetensors, tensor.rs tests
// test_serialization, test_serialization_forced_alignement, test_empty), rebuilt here from
// the header text so a reader can check them by eye.
TEST(Safetensors, WriterReproducesReferenceBytes) {
  std::vector<float> values = {0, 1, 2, 3, 4, 5};
  {
    SafetensorsWriter w;
    w.add("attn.0", "F32", {1, 2, 3}, values.data(), 24);
    // 64 header bytes: already a multiple of 8, no padding.
    EXPECT_EQ(w.to_bytes(),
              file_bytes(R"({"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}})", raw(values)));
  }
  {
    SafetensorsWriter w;
    w.add("attn0", "F32", {1, 1, 2, 3}, values.data(), 24);
    // 65 header bytes, padded with 7 spaces to 72.
    EXPECT_EQ(w.to_bytes(), file_bytes(R"({"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}})"
                                       "       ",
                                       raw(values)));
  }
  EXPECT_EQ(SafetensorsWriter().to_bytes(), file_bytes("{}      "));
  SafetensorsWriter with_metadata;
  with_metadata.set_metadata("framework", "pt");
  EXPECT_EQ(with_metadata.to_bytes(), file_bytes(R"({"__metadata__":{"framework":"pt"}})"
                                                 "     "));
}

TEST(Safetensors, WriterOrdersByAlignmentThenNameAndAligns) {
  std::vector<uint8_t> u8 = {1, 2, 3};
  std::vector<float> f32 = {1, 2};
  std::vector<int64_t> i64 = {5};
  std::vector<uint16_t> bf16 = {0x3F80};
  SafetensorsWriter w;
  w.add("z", "U8", {3}, u8.data(), 3);
  w.add("b", "F32", {2}, f32.data(), 8);
  w.add("a", "F32", {2}, f32.data(), 8);
  w.add("c", "BF16", {1}, bf16.data(), 2);
  w.add("m", "I64", {1}, i64.data(), 8);
  std::string path = temp_path("order.safetensors");
  w.write(path);
  {
    SafetensorsFile f = SafetensorsFile::open(path);
    std::vector<std::string> names;
    for (const auto& e : f.entries()) {
      names.push_back(e.name);
      // The mapping is page-aligned, so this checks the file layout itself.
      EXPECT_EQ(reinterpret_cast<uintptr_t>(e.data) % sllm::io::safetensors_dtype_size(e.dtype), 0u) << e.name;
    }
    EXPECT_EQ(names, (std::vector<std::string>{"m", "a", "b", "c", "z"}));
    EXPECT_EQ(reinterpret_cast<uintptr_t>(f.entries()[0].data) % 8, 0u);
  }
  fs::remove(path);
}

// Produced tensors (add_produced) make the same file as given bytes, their producers run once
// per write in write_order(), and write_order() is the order of the file's entries.
TEST(Safetensors, ProducedTensorsWriteTheSameFileInWriteOrder) {
  std::vector<float> a = {1, 2, 3}, b = {4, 5};
  std::vector<int64_t> m = {7};
  SafetensorsWriter given, produced;
  given.add("b", "F32", {2}, b.data(), 8);
  given.add("a", "F32", {3}, a.data(), 12);
  given.add("m", "I64", {1}, m.data(), 8);
  std::vector<std::string> calls;
  auto fill = [&calls](const std::string& name, const void* src, size_t n) {
    return [&calls, name, src, n](void* dst) {
      calls.push_back(name);
      std::memcpy(dst, src, n);
    };
  };
  produced.add_produced("b", "F32", {2}, 8, fill("b", b.data(), 8));
  produced.add("a", "F32", {3}, a.data(), 12);
  produced.add_produced("m", "I64", {1}, 8, fill("m", m.data(), 8));
  EXPECT_EQ(produced.write_order(), (std::vector<std::string>{"m", "a", "b"}));
  EXPECT_EQ(produced.to_bytes(), given.to_bytes());
  EXPECT_EQ(calls, (std::vector<std::string>{"m", "b"}));
  const std::string path = temp_path("produced.safetensors");
  produced.write(path);
  EXPECT_EQ(sllm::read_file(path), given.to_bytes());
  fs::remove(path);
  EXPECT_THROW(produced.add_produced("c", "F32", {2}, 4, fill("c", b.data(), 4)), sllm::Error);  // 4 != 2 * 4 bytes
  EXPECT_THROW(produced.add_produced("d", "F32", {1}, 4, {}), sllm::Error);                      // no producer
}

// ---- round trips --------------------------------------------------------------------------

TEST(Safetensors, RoundTripEveryDtypeAndShape) {
  struct Case {
    std::string name, dtype;
    std::vector<int64_t> shape;
  };
  std::vector<Case> cases = {
      {"f32", "F32", {2, 3}},    {"f16", "F16", {4}},        {"bf16", "BF16", {2, 2}}, {"i32", "I32", {3}},
      {"i64", "I64", {2, 1, 1}}, {"u8", "U8", {5}},          {"i8", "I8", {1}},        {"i16", "I16", {3}},
      {"u16", "U16", {2}},       {"f64", "F64", {2}},        {"bool", "BOOL", {7}},    {"u32", "U32", {1, 2}},
      {"u64", "U64", {1}},       {"scalar", "F32", {}},      {"empty", "F32", {0, 4}}, {"empty2", "I64", {3, 0}},
      {"model.layers.0.self_attn.q_proj.weight", "BF16", {4, 4}},
  };
  std::vector<std::string> payloads;
  SafetensorsWriter w;
  for (size_t i = 0; i < cases.size(); ++i) {
    int64_t n = 1;
    for (int64_t d : cases[i].shape) n *= d;
    std::string bytes(static_cast<size_t>(n) * sllm::io::safetensors_dtype_size(cases[i].dtype), '\0');
    for (size_t k = 0; k < bytes.size(); ++k) bytes[k] = static_cast<char>(31 * i + 7 * k + 1);
    payloads.push_back(bytes);
  }
  for (size_t i = 0; i < cases.size(); ++i)
    w.add(cases[i].name, cases[i].dtype, cases[i].shape, payloads[i].data(), payloads[i].size());
  w.set_metadata("format", "pt");
  w.set_metadata("sllm.config", R"({"n_layer": 2, "name": "tiny \"quoted\" é"})");

  std::string path = temp_path("roundtrip.safetensors");
  w.write(path);
  SafetensorsFile f = SafetensorsFile::open(path);
  fs::remove(path);  // the mapping keeps the data readable after unlink
  ASSERT_EQ(f.entries().size(), cases.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto& e = f.get(cases[i].name);
    EXPECT_EQ(e.dtype, cases[i].dtype) << cases[i].name;
    EXPECT_EQ(e.shape, cases[i].shape) << cases[i].name;
    ASSERT_EQ(e.nbytes, payloads[i].size()) << cases[i].name;
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(e.data), e.nbytes), payloads[i]) << cases[i].name;
  }
  EXPECT_EQ(f.metadata().size(), 2u);
  EXPECT_EQ(f.metadata().at("sllm.config"), R"({"n_layer": 2, "name": "tiny \"quoted\" é"})");

  // Moving the file object keeps entries valid (they point into a heap-held buffer).
  SafetensorsFile moved = std::move(f);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(moved.get("f32").data), 24), payloads[0]);
}

TEST(Safetensors, SmallInMemoryBufferSurvivesMove) {
  // Short strings live inside the std::string object (SSO); the buffer must not move with it.
  std::vector<uint8_t> one = {42};
  SafetensorsWriter w;
  w.add("x", "U8", {1}, one.data(), 1);
  SafetensorsFile f = SafetensorsFile::from_bytes(w.to_bytes());
  SafetensorsFile g = std::move(f);
  EXPECT_EQ(g.get("x").data[0], 42);
}

// ---- API errors -------------------------------------------------------------------------

TEST(Safetensors, GetListsCloseNames) {
  std::vector<float> v = {1};
  SafetensorsWriter w;
  for (const char* name : {"model.layers.0.mlp.weight", "model.layers.1.mlp.weight", "lm_head.weight"})
    w.add(name, "F32", {1}, v.data(), 4);
  SafetensorsFile f = SafetensorsFile::from_bytes(w.to_bytes(), "model.safetensors");
  try {
    f.get("model.layer.0.mlp.weight");
    FAIL() << "expected sllm::Error";
  } catch (const sllm::Error& e) {
    EXPECT_NE(e.message().find("model.safetensors"), std::string::npos) << e.what();
    EXPECT_NE(e.message().find("model.layer.0.mlp.weight"), std::string::npos) << e.what();
    EXPECT_NE(e.hint().find("'model.layers.0.mlp.weight'"), std::string::npos) << e.what();
  }
}

TEST(Safetensors, WriterRejectsBadTensors) {
  std::vector<float> v = {1, 2, 3, 4};
  SafetensorsWriter w;
  w.add("x", "F32", {4}, v.data(), 16);
  EXPECT_THROW(w.add("x", "F32", {4}, v.data(), 16), sllm::Error);              // duplicate
  EXPECT_THROW(w.add("y", "F32", {3}, v.data(), 16), sllm::Error);              // size mismatch
  EXPECT_THROW(w.add("y", "F17", {4}, v.data(), 16), sllm::Error);              // unknown dtype
  EXPECT_THROW(w.add("y", "F32", {-1, -4}, v.data(), 16), sllm::Error);         // negative dims
  EXPECT_THROW(w.add("__metadata__", "F32", {4}, v.data(), 16), sllm::Error);   // reserved name
  EXPECT_THROW(w.add("\xff", "F32", {4}, v.data(), 16), sllm::Error);           // not UTF-8
  EXPECT_THROW(w.add("y", "F32", {4}, nullptr, 16), sllm::Error);               // no data
  EXPECT_THROW(w.set_metadata("k", "\xc0\xaf"), sllm::Error);                   // overlong UTF-8
  EXPECT_THROW(sllm::io::safetensors_dtype_size("float32"), sllm::Error);
  EXPECT_EQ(sllm::io::safetensors_dtype_size("BF16"), 2u);
  EXPECT_EQ(sllm::io::safetensors_dtype_size("U64"), 8u);
}

TEST(Safetensors, OpenErrorsNameThePath) {
  std::string missing = temp_path("missing.safetensors");
  try {
    SafetensorsFile::open(missing);
    FAIL() << "expected sllm::Error";
  } catch (const sllm::Error& e) {
    EXPECT_NE(e.message().find(missing), std::string::npos);
    EXPECT_FALSE(e.hint().empty());
  }
  EXPECT_THROW(SafetensorsFile::open(fs::temp_directory_path().string()), sllm::Error);
  std::string empty = temp_path("empty.safetensors");
  std::ofstream{empty};
  EXPECT_THROW(SafetensorsFile::open(empty), sllm::Error);  // zero bytes: cannot even mmap
  fs::remove(empty);
}

// ---- malformed inputs ---------------------------------------------------------------------

std::string tensor_json(const std::string& name, const std::string& dtype, const std::string& shape,
                        const std::string& offsets) {
  return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":" + offsets + "}";
}

struct Malformed {
  const char* what;
  std::string bytes;
  const char* expect;  // a phrase the error message must contain: proves the right check fired
};

std::vector<Malformed> malformed_cases() {
  const std::string f4 = tensor_json("a", "F32", "[1]", "[0,4]");
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  return {
      {"empty file", "", "only 0 bytes"},
      {"truncated length", std::string("\x08\x00\x00", 3), "only 3 bytes"},
      {"header longer than file", le64(100) + "{}", "runs past the end"},
      {"header claims > 100 MB", le64(100'000'001) + "{}", "exceeds"},
      {"header length 2^64-1", le64(~0ull) + "{}", "exceeds"},
      {"invalid JSON", file_bytes(R"({"a":)"), "not valid JSON"},
      {"trailing garbage after JSON", file_bytes("{}x"), "not valid JSON"},
      {"garbage after a NUL byte", file_bytes(std::string("{}\0x", 4)), "not valid JSON"},
      {"NUL inside a string", file_bytes(std::string("{\"a\0\":1}", 8)), "not valid JSON"},
      {"byte-order mark", file_bytes("\xef\xbb\xbf{}"), "byte-order mark"},
      {"JSON array", file_bytes("[1,2]"), "must be a JSON object"},
      {"JSON string", file_bytes(R"("x")"), "must be a JSON object"},
      {"invalid UTF-8 byte", file_bytes("{\"\xff\":1}"), "not valid UTF-8"},
      {"overlong UTF-8", file_bytes("{\"\xc0\xaf\":1}"), "not valid UTF-8"},
      {"UTF-16 surrogate", file_bytes("{\"\xed\xa0\x80\":1}"), "not valid UTF-8"},
      {"truncated UTF-8", file_bytes("{\"a\":1}\xe2\x82"), "not valid UTF-8"},
      {"tensor not an object", file_bytes(R"({"a":5})"), "tensor 'a': description must be a JSON object"},
      {"missing dtype", file_bytes(R"({"a":{"shape":[1],"data_offsets":[0,4]}})"), "missing 'dtype'"},
      {"missing shape", file_bytes(R"({"a":{"dtype":"F32","data_offsets":[0,4]}})"), "missing 'shape'"},
      {"missing offsets", file_bytes(R"({"a":{"dtype":"F32","shape":[1]}})"), "missing 'data_offsets'"},
      {"unknown dtype", file_bytes("{" + tensor_json("a", "F17", "[1]", "[0,4]") + "}", "xxxx"), "unknown dtype"},
      {"sub-byte dtype", file_bytes("{" + tensor_json("a", "F4", "[2]", "[0,1]") + "}", "x"), "unknown dtype"},
      {"dtype not a string", file_bytes(R"({"a":{"dtype":4,"shape":[1],"data_offsets":[0,4]}})", "xxxx"),
       "unknown dtype"},
      {"negative shape", file_bytes("{" + tensor_json("a", "F32", "[-1]", "[0,4]") + "}", "xxxx"),
       "non-negative integers"},
      {"fractional shape", file_bytes("{" + tensor_json("a", "F32", "[1.5]", "[0,4]") + "}", "xxxx"),
       "non-negative integers"},
      {"shape not an array", file_bytes("{" + tensor_json("a", "F32", "1", "[0,4]") + "}", "xxxx"),
       "'shape' must be an array"},
      {"deeply nested shape", file_bytes("{" + tensor_json("a", "F32", deep, "[0,4]") + "}", "xxxx"),
       "non-negative integers"},
      {"three offsets", file_bytes("{" + tensor_json("a", "F32", "[1]", "[0,4,8]") + "}", "xxxx"),
       "[begin, end]"},
      {"negative offset", file_bytes("{" + tensor_json("a", "F32", "[1]", "[-4,0]") + "}", "xxxx"),
       "non-negative integers"},
      {"offsets not starting at 0", file_bytes("{" + tensor_json("a", "F32", "[1]", "[4,8]") + "}", "xxxxxxxx"),
       "must start at offset 0"},
      {"hole between tensors",
       file_bytes("{" + f4 + "," + tensor_json("b", "F32", "[1]", "[8,12]") + "}", std::string(12, 'x')),
       "tensor 'b': invalid data_offsets: bytes [4, 8) after tensor 'a' belong to no tensor"},
      {"overlapping tensors",
       file_bytes("{" + tensor_json("a", "F32", "[2]", "[0,8]") + "," + tensor_json("b", "F32", "[1]", "[4,8]") + "}",
                  std::string(8, 'x')),
       "overlaps tensor 'a'"},
      {"end before begin",
       file_bytes("{" + f4 + "," + tensor_json("b", "F32", "[0]", "[4,0]") + "}", std::string(4, 'x')),
       "end 0 is before begin 4"},
      {"size mismatch", file_bytes("{" + tensor_json("a", "F32", "[3]", "[0,8]") + "}", std::string(8, 'x')),
       "span 8 bytes but shape [3] of F32 needs 12"},
      {"shape overflows", file_bytes("{" + tensor_json("a", "F32", "[4294967296,4294967296,16]", "[0,4]") + "}", "xxxx"),
       "overflows 64 bits"},
      {"file longer than data", file_bytes("{" + f4 + "}", "xxxxx"), "(trailing bytes)"},
      {"file shorter than data", file_bytes("{" + f4 + "}", "xxx"), "(truncated)"},
      {"metadata value not a string", file_bytes(R"({"__metadata__":{"epoch":1}})"), "must be a string"},
      {"metadata not an object", file_bytes(R"({"__metadata__":["a"]})"), "must be an object of strings"},
      {"duplicate tensor name", file_bytes("{" + f4 + "," + f4 + "}", "xxxx"), "appears twice"},
  };
}

TEST(Safetensors, MalformedInputsAreErrors) {
  for (const Malformed& m : malformed_cases()) {
    try {
      SafetensorsFile::from_bytes(m.bytes, "case.safetensors");
      ADD_FAILURE() << m.what << ": accepted";
    } catch (const sllm::Error& e) {
      std::string msg = e.message();
      EXPECT_NE(msg.find("case.safetensors"), std::string::npos) << m.what << ": " << msg;
      EXPECT_NE(msg.find(m.expect), std::string::npos) << m.what << ": " << msg;
      EXPECT_FALSE(e.hint().empty()) << m.what;
    }
  }
}

// A file written by Python's `safetensors` package (tools/check_safetensors_interop.py
// --fixture), committed so this test needs no Python. Its values are arange()-based.
TEST(Safetensors, ReadsFileWrittenByPythonSafetensors) {
  SafetensorsFile f = SafetensorsFile::open(SLLM_SOURCE_DIR "/tests/io/fixtures/python_written.safetensors");
  EXPECT_EQ(f.metadata().at("format"), "np");
  const auto& w = f.get("weight");  // np.arange(12, dtype=float32).reshape(3, 4) / 4
  EXPECT_EQ(w.dtype, "F32");
  EXPECT_EQ(w.shape, (std::vector<int64_t>{3, 4}));
  std::vector<float> wv = values_of<float>(w);
  for (int i = 0; i < 12; ++i) EXPECT_EQ(wv[i], i / 4.0f);
  const auto& ids = f.get("ids");  // np.array([-3, 0, 1 << 40], dtype=int64)
  EXPECT_EQ(values_of<int64_t>(ids), (std::vector<int64_t>{-3, 0, int64_t{1} << 40}));
  const auto& half = f.get("half");  // np.array([1.0, -2.0, 0.5], dtype=float16): IEEE binary16 bits
  EXPECT_EQ(values_of<uint16_t>(half), (std::vector<uint16_t>{0x3C00, 0xC000, 0x3800}));
  const auto& mask = f.get("mask");  // np.array([True, False, True])
  EXPECT_EQ(mask.dtype, "BOOL");
  EXPECT_EQ(values_of<uint8_t>(mask), (std::vector<uint8_t>{1, 0, 1}));
  const auto& scalar = f.get("scalar");  // np.array(7, dtype=uint8), shape ()
  EXPECT_TRUE(scalar.shape.empty());
  EXPECT_EQ(scalar.nbytes, 1u);
  EXPECT_EQ(scalar.data[0], 7);
  EXPECT_EQ(f.get("nothing").nbytes, 0u);  // np.zeros((0, 3), dtype=float64)
  EXPECT_EQ(f.get("nothing").shape, (std::vector<int64_t>{0, 3}));

  // Our writer, given the same tensors and metadata, reproduces the Python file byte for byte
  // (same tensor order, same key order, same padding).
  SafetensorsWriter rewrite;
  for (const auto& e : f.entries()) rewrite.add(e.name, e.dtype, e.shape, e.data, e.nbytes);
  for (const auto& [k, v] : f.metadata()) rewrite.set_metadata(k, v);
  EXPECT_EQ(rewrite.to_bytes(), sllm::read_file(f.path()));
}

// Dev-time interop in the other direction, driven by tools/check_safetensors_interop.py:
// writes a file that the Python script then loads with `safetensors`. Skipped in `make test`.
TEST(SafetensorsInterop, WriteForPython) {
  const char* out = std::getenv("SLLM_SAFETENSORS_INTEROP_OUT");
  if (!out) GTEST_SKIP() << "set SLLM_SAFETENSORS_INTEROP_OUT (tools/check_safetensors_interop.py does)";
  std::vector<float> weight(12);
  for (int i = 0; i < 12; ++i) weight[i] = i / 4.0f;
  std::vector<int64_t> ids = {-3, 0, int64_t{1} << 40};
  std::vector<uint16_t> bf16 = {0x3F80, 0xC000};  // 1.0, -2.0 in bfloat16
  uint8_t scalar = 7;
  SafetensorsWriter w;
  w.add("weight", "F32", {3, 4}, weight.data(), 48);
  w.add("ids", "I64", {3}, ids.data(), 24);
  w.add("bf16", "BF16", {2}, bf16.data(), 4);
  w.add("scalar", "U8", {}, &scalar, 1);
  w.add("nothing", "F64", {0, 3}, nullptr, 0);
  w.set_metadata("format", "sllm");
  w.write(out);
}

}  // namespace
