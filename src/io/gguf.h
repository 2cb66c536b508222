// GGUF: read (memory-mapped, validated) the llama.cpp / ggml model file format. Depends only
// on core, so the tokenizer can read its vocabulary from the same file.
//
// Format (ggml's docs/gguf.md, "File Structure"; reader: ggml/src/gguf.cpp,
// gguf_init_from_reader; gguf-py's gguf_reader.py), all little endian:
//
//   u32 magic "GGUF" | u32 version (2 or 3) | u64 tensor_count | u64 metadata_kv_count
//   metadata_kv_count x { string key | u32 value_type | value }
//   tensor_count      x { string name | u32 n_dims | u64 dims[n_dims] | u32 ggml_type | u64 offset }
//   padding to general.alignment (default 32) | tensor data
//
//   string = u64 byte length + UTF-8 bytes (no NUL); array value = u32 element type + u64 count
//   + count values. Versions 2 and 3 share this layout (v1 had 32-bit counts; v3 added
//   big-endian files, which this reader refuses with a hint).
//
// dims are in ggml order: dims[0] is the contiguous one (a row), so a (rows, cols) matrix in
// row-major terms is stored as dims = {cols, rows}; shape() gives the row-major order.
// Tensor offsets are relative to the start of the data section, a multiple of the alignment.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "io/gguf_dequant.h"

namespace sllm::io {

// Metadata value types (docs/gguf.md, enum gguf_metadata_value_type).
enum class GgufType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7, STRING = 8, ARRAY = 9,
  U64 = 10, I64 = 11, F64 = 12,
};
const char* gguf_type_name(GgufType type);  // "u32", "string", "array", ...

// One metadata value. Scalars keep their bits; arrays of numbers keep their raw little-endian
// bytes; strings and arrays of strings are copied out of the file. Nested arrays are refused,
// as ggml's reader does.
struct GgufValue {
  GgufType type = GgufType::U8;
  GgufType element_type = GgufType::U8;  // arrays only
  uint64_t count = 0;                    // arrays only: number of elements
  uint64_t scalar = 0;                   // numbers and bool: the value's bits, zero-extended
  std::string text;                      // STRING
  std::vector<std::string> strings;      // ARRAY of STRING
  std::string raw;                       // ARRAY of numbers/bool: count * element size bytes

  // "u32", or "array of string" for arrays.
  std::string type_text() const;
};

struct GgufTensor {
  std::string name;
  GgmlType type;
  std::vector<int64_t> dims;  // ggml order (dims[0] contiguous); 0 to 4 entries
  uint64_t offset;            // in the data section
  const uint8_t* data;        // nbytes bytes inside the file's buffer
  size_t nbytes;
  int64_t n_elements;

  std::vector<int64_t> shape() const;  // row-major: dims reversed, as NumPy and HF see it
};

// A validated, read-only view of a GGUF file. Tensor data points into the mapping, so it lives
// as long as the GgufFile (moving it keeps pointers valid).
class GgufFile {
 public:
  // mmap(MAP_PRIVATE, PROT_READ) and validate; sllm::Error naming the file on any problem.
  static GgufFile open(const std::string& path);
  // The same validation on an owned buffer (tests, fuzzing). `name` is used in errors.
  static GgufFile from_bytes(std::string bytes, const std::string& name = "<memory>");

  GgufFile(GgufFile&&) noexcept;
  GgufFile& operator=(GgufFile&&) noexcept;
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;
  ~GgufFile();

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }  // start of the data section in the file

  // ---- metadata, in file order ----
  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return metadata_; }
  const GgufValue* find(const std::string& key) const;  // nullptr if absent
  bool has(const std::string& key) const { return find(key) != nullptr; }
  // Typed getters: sllm::Error if the key is missing (naming it) or has another type (naming
  // the key, the type asked for and the type in the file).
  const GgufValue& get(const std::string& key) const;
  uint8_t get_u8(const std::string& key) const;
  int8_t get_i8(const std::string& key) const;
  uint16_t get_u16(const std::string& key) const;
  int16_t get_i16(const std::string& key) const;
  uint32_t get_u32(const std::string& key) const;
  int32_t get_i32(const std::string& key) const;
  uint64_t get_u64(const std::string& key) const;
  int64_t get_i64(const std::string& key) const;
  float get_f32(const std::string& key) const;
  double get_f64(const std::string& key) const;
  bool get_bool(const std::string& key) const;
  const std::string& get_string(const std::string& key) const;
  // Writers differ in the integer width they use for counts (u32, i32, u64): any integer type
  // whose value fits in int64 and lies in [lo, hi]; an error naming the key otherwise.
  int64_t get_int(const std::string& key, int64_t lo = INT64_MIN, int64_t hi = INT64_MAX) const;
  // f32 or f64.
  double get_float(const std::string& key) const;
  // Arrays: the element type must match.
  const std::vector<std::string>& get_string_array(const std::string& key) const;
  std::vector<float> get_f32_array(const std::string& key) const;
  std::vector<int32_t> get_i32_array(const std::string& key) const;
  // Any integer element type, each value checked to fit in int64.
  std::vector<int64_t> get_int_array(const std::string& key) const;

  // ---- tensors, in file order ----
  const std::vector<GgufTensor>& tensors() const { return tensors_; }
  const GgufTensor* find_tensor(const std::string& name) const;  // nullptr if absent
  const GgufTensor& tensor(const std::string& name) const;       // sllm::Error if absent

  // f32 values of a tensor, row-major (ggml order flattened: dims[0] fastest). sllm::Error for
  // a type without a kernel. dequantize_into writes n_elements floats to `out`.
  std::vector<float> dequantize(const GgufTensor& t) const;
  void dequantize_into(const GgufTensor& t, float* out, size_t out_count) const;

 private:
  struct Buffer;
  GgufFile(std::unique_ptr<Buffer> buffer, std::string path);
  void parse();
  [[noreturn]] void type_mismatch(const std::string& key, const std::string& wanted, const GgufValue& v) const;

  std::unique_ptr<Buffer> buffer_;
  std::string path_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, GgufValue>> metadata_;
  std::unordered_map<std::string, size_t> key_index_;
  std::vector<GgufTensor> tensors_;
  std::unordered_map<std::string, size_t> tensor_index_;
};

}  // namespace sllm::io
