// safetensors: read (memory-mapped, validated) and write (atomic) the Hugging Face tensor
// file format. Works on raw bytes, independent of sllm::Tensor, so every layer can use it.
//
// Format (https://huggingface.co/docs/safetensors/index, "Format" section, and the
// reference implementation huggingface/safetensors, safetensors/src/tensor.rs):
//
//   [ N: u64 little-endian ][ header: N bytes of UTF-8 JSON ][ data: the rest of the file ]
//
//   header = { "__metadata__": {"key": "value", ...},                      (optional)
//              "<tensor name>": { "dtype": "F32",
//                                 "shape": [2, 3],                         ([] = scalar)
//                                 "data_offsets": [begin, end] }, ... }
//
// Offsets are relative to the start of the data section; tensors are row-major, little
// endian, and together they cover the data section exactly (no holes, no overlaps).
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace sllm::io {

struct SafetensorsEntry {
  std::string name;
  std::string dtype;           // "F32", "F16", "BF16", "I32", "I64", "U8", ... (see safetensors_dtype_size)
  std::vector<int64_t> shape;  // empty = scalar (one element)
  const uint8_t* data;         // nbytes bytes inside the mapping; aligned to the element size when the
                               // writer aligned its header (ours and the reference writer do)
  size_t nbytes;
};

// Bytes per element of a safetensors dtype name; sllm::Error for names we do not know.
size_t safetensors_dtype_size(const std::string& dtype);

// A read-only, validated view of a safetensors file. Entries point into the mapping, so they
// live as long as the SafetensorsFile (moving it keeps them valid).
class SafetensorsFile {
 public:
  // mmap(MAP_PRIVATE, PROT_READ) and validate; sllm::Error naming the file on any problem.
  static SafetensorsFile open(const std::string& path);
  // The same validation on an owned in-memory buffer (tests, fuzzing). `name` is used in errors.
  static SafetensorsFile from_bytes(std::string bytes, const std::string& name = "<memory>");

  SafetensorsFile(SafetensorsFile&&) noexcept;
  SafetensorsFile& operator=(SafetensorsFile&&) noexcept;
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;
  ~SafetensorsFile();  // unmaps

  const std::string& path() const { return path_; }
  const std::vector<SafetensorsEntry>& entries() const { return entries_; }  // in file-offset order
  const SafetensorsEntry* find(const std::string& name) const;                // nullptr if absent
  const SafetensorsEntry& get(const std::string& name) const;  // sllm::Error listing close names if absent
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  struct Buffer;  // the mapping or the owned bytes
  SafetensorsFile(std::unique_ptr<Buffer> buffer, std::string path);
  void parse();

  std::unique_ptr<Buffer> buffer_;
  std::string path_;
  std::vector<SafetensorsEntry> entries_;
  std::unordered_map<std::string, size_t> index_;  // name -> position in entries_
  std::map<std::string, std::string> metadata_;
};

// Collects tensors and writes one safetensors file. Layout follows the reference writer:
// tensors sorted by descending dtype alignment, then by name, so with the header padded to a
// multiple of 8 bytes every tensor's data is aligned to its element size.
class SafetensorsWriter {
 public:
  // Copies nothing: `data` must stay alive until write(). Checks the dtype, the shape,
  // nbytes == product(shape) * dtype size, and that the name is new.
  void add(const std::string& name, const std::string& dtype, std::vector<int64_t> shape, const void* data,
           size_t nbytes);
  // The same with the bytes made only when write() reaches the tensor: produce(dst) fills
  // nbytes at dst, a buffer of this tensor alone, so a file of many large tensors is written
  // without holding them all at once (a ZeRO-1 checkpoint gathers each optimizer moment from
  // the ranks here). Producers run once per write() or to_bytes(), in write_order().
  void add_produced(const std::string& name, const std::string& dtype, std::vector<int64_t> shape, size_t nbytes,
                    std::function<void(void* dst)> produce);
  void set_metadata(const std::string& key, const std::string& value);
  // The tensor names in the order the file lays out their data.
  std::vector<std::string> write_order() const;

  // Atomic (temp file + fsync + rename): a crash never leaves a half-written file at `path`.
  void write(const std::string& path) const;
  // The exact bytes write() would produce (tests, small files).
  std::string to_bytes() const;

 private:
  struct Pending {
    std::string name, dtype;
    std::vector<int64_t> shape;
    const void* data;
    size_t nbytes;
    std::function<void(void* dst)> produce;  // set by add_produced (data is then null)
  };
  void check_new(const std::string& name, const std::string& dtype, const std::vector<int64_t>& shape,
                 size_t nbytes) const;
  // Calls fn(bytes, n) for each tensor's data in file order (producers fill a scratch buffer).
  void for_each_data(const std::vector<const Pending*>& order, const std::function<void(const void*, size_t)>& fn) const;
  std::vector<const Pending*> ordered() const;
  std::string header(const std::vector<const Pending*>& order) const;  // padded JSON

  std::vector<Pending> tensors_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace sllm::io
