// GGUF reader. The checks follow ggml's own reader (ggml/src/gguf.cpp, gguf_init_from_reader)
// in the same order, so a file we accept is one llama.cpp accepts; where we differ it is said
// next to the check. Every length, count and offset read from the file is checked against the
// bytes that remain before anything is allocated for it: a hostile header cannot make us
// allocate more than the file's own size.
#include "io/gguf.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>

#include "core/error.h"

namespace sllm::io {

namespace {

constexpr uint64_t kDefaultAlignment = 32;  // docs/gguf.md: general.alignment, "if not present, 32"
constexpr uint32_t kMaxDims = 4;            // GGML_MAX_DIMS
const char* kTruncatedHint =
    "the file is truncated, corrupted or not a GGUF file; re-download it and compare its size and sha256 with the source";

// Bytes of one value of a scalar type; 0 for STRING and ARRAY (variable length).
size_t scalar_size(GgufType t) {
  switch (t) {
    case GgufType::U8: case GgufType::I8: case GgufType::BOOL: return 1;
    case GgufType::U16: case GgufType::I16: return 2;
    case GgufType::U32: case GgufType::I32: case GgufType::F32: return 4;
    case GgufType::U64: case GgufType::I64: case GgufType::F64: return 8;
    default: return 0;
  }
}

bool is_integer(GgufType t) {
  switch (t) {
    case GgufType::U8: case GgufType::I8: case GgufType::U16: case GgufType::I16:
    case GgufType::U32: case GgufType::I32: case GgufType::U64: case GgufType::I64: return true;
    default: return false;
  }
}

bool is_known_type(uint32_t id) { return id <= static_cast<uint32_t>(GgufType::F64); }

// An integer value's bits (zero-extended to 64) as int64, sign-extending the signed types.
// false for a u64 above INT64_MAX.
bool integer_value(GgufType t, uint64_t bits, int64_t* out) {
  switch (t) {
    case GgufType::I8: *out = static_cast<int8_t>(bits); return true;
    case GgufType::I16: *out = static_cast<int16_t>(bits); return true;
    case GgufType::I32: *out = static_cast<int32_t>(bits); return true;
    case GgufType::I64: *out = static_cast<int64_t>(bits); return true;
    case GgufType::U64:
      if (bits > static_cast<uint64_t>(INT64_MAX)) return false;
      *out = static_cast<int64_t>(bits);
      return true;
    default: *out = static_cast<int64_t>(bits); return true;  // u8, u16, u32
  }
}

uint64_t load_le(const uint8_t* p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

std::string dims_text(const std::vector<int64_t>& dims) {
  std::string out = "[";
  for (size_t i = 0; i < dims.size(); ++i) out += (i ? ", " : "") + std::to_string(dims[i]);
  return out + "]";
}

// Reads the file front to back; every read is bounds-checked and names what it was reading.
class Cursor {
 public:
  Cursor(const uint8_t* bytes, size_t size, std::string where) : bytes_(bytes), size_(size), where_(std::move(where)) {}

  size_t pos() const { return pos_; }
  size_t remaining() const { return size_ - pos_; }

  const uint8_t* take(uint64_t n, const std::string& what) {
    SLLM_CHECK(n <= remaining(),
               str(where_, what, " at byte ", pos_, " needs ", n, " bytes but only ", remaining(), " remain"),
               kTruncatedHint);
    const uint8_t* p = bytes_ + pos_;
    pos_ += static_cast<size_t>(n);
    return p;
  }
  uint32_t u32(const std::string& what) { return static_cast<uint32_t>(load_le(take(4, what), 4)); }
  uint64_t u64(const std::string& what) { return load_le(take(8, what), 8); }
  std::string string(const std::string& what) {
    const uint64_t n = u64(what + "'s length");
    SLLM_CHECK(n <= remaining(),
               str(where_, what, " at byte ", pos_, " claims ", n, " bytes but only ", remaining(), " remain"),
               kTruncatedHint);
    const uint8_t* p = take(n, what);
    return std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(n));
  }

 private:
  const uint8_t* bytes_;
  size_t size_;
  size_t pos_ = 0;
  std::string where_;
};

}  // namespace

const char* gguf_type_name(GgufType type) {
  switch (type) {
    case GgufType::U8: return "u8";
    case GgufType::I8: return "i8";
    case GgufType::U16: return "u16";
    case GgufType::I16: return "i16";
    case GgufType::U32: return "u32";
    case GgufType::I32: return "i32";
    case GgufType::F32: return "f32";
    case GgufType::BOOL: return "bool";
    case GgufType::STRING: return "string";
    case GgufType::ARRAY: return "array";
    case GgufType::U64: return "u64";
    case GgufType::I64: return "i64";
    case GgufType::F64: return "f64";
  }
  return "unknown";
}

std::string GgufValue::type_text() const {
  return type == GgufType::ARRAY ? str("array of ", gguf_type_name(element_type)) : gguf_type_name(type);
}

std::vector<int64_t> GgufTensor::shape() const { return std::vector<int64_t>(dims.rbegin(), dims.rend()); }

// ---- opening --------------------------------------------------------------------------------

// The file's bytes: a private read-only mapping or an owned string, behind a unique_ptr so
// that tensor data pointers survive moves of the GgufFile.
struct GgufFile::Buffer {
  const uint8_t* bytes = nullptr;
  size_t size = 0;
  void* mapping = nullptr;
  std::string owned;
  ~Buffer() {
    if (mapping) ::munmap(mapping, size);
  }
};

GgufFile::GgufFile(std::unique_ptr<Buffer> buffer, std::string path)
    : buffer_(std::move(buffer)), path_(std::move(path)) {
  parse();
}
GgufFile::GgufFile(GgufFile&&) noexcept = default;
GgufFile& GgufFile::operator=(GgufFile&&) noexcept = default;
GgufFile::~GgufFile() = default;

GgufFile GgufFile::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    fail(str("cannot open GGUF file '", path, "': ", std::system_category().message(err)),
         err == ENOENT ? "check the path (make smollm2 puts the SmolLM2 file under data/models/)"
                       : "check the file's permissions");
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(str("cannot open GGUF file '", path, "': not a regular file"), "pass the .gguf file itself");
  }
  auto buffer = std::make_unique<Buffer>();
  buffer->size = static_cast<size_t>(st.st_size);
  if (buffer->size > 0) {  // mmap of length 0 is EINVAL; parse() reports the empty file
    void* p = ::mmap(nullptr, buffer->size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int err = errno;
      ::close(fd);
      fail(str("cannot memory-map GGUF file '", path, "': ", std::system_category().message(err)),
           "check the free address space and that the file system supports mmap");
    }
    buffer->mapping = p;
    buffer->bytes = static_cast<const uint8_t*>(p);
  }
  ::close(fd);  // the mapping keeps the file alive (mmap(2))
  return GgufFile(std::move(buffer), path);
}

GgufFile GgufFile::from_bytes(std::string bytes, const std::string& name) {
  auto buffer = std::make_unique<Buffer>();
  buffer->owned = std::move(bytes);
  buffer->bytes = reinterpret_cast<const uint8_t*>(buffer->owned.data());
  buffer->size = buffer->owned.size();
  return GgufFile(std::move(buffer), name);
}

// ---- parsing --------------------------------------------------------------------------------

void GgufFile::parse() {
  const std::string where = str("GGUF file '", path_, "': ");
  Cursor in(buffer_->bytes, buffer_->size, where);

  // 1. Magic and version.
  SLLM_CHECK(buffer_->size >= 4, str(where, "only ", buffer_->size, " bytes; a GGUF file starts with the magic 'GGUF'"),
             kTruncatedHint);
  const uint8_t* magic = in.take(4, "the magic");
  if (std::memcmp(magic, "GGUF", 4) != 0) {
    std::string shown;
    for (int i = 0; i < 4; ++i) shown += (magic[i] >= 32 && magic[i] < 127) ? static_cast<char>(magic[i]) : '?';
    fail(str(where, "bad magic '", shown, "', expected 'GGUF'"),
         "this is not a GGUF file (safetensors and PyTorch checkpoints load through a model directory instead)");
  }
  version_ = in.u32("the version");
  // A file of the other byte order reads its small version number byte-swapped (gguf.cpp).
  SLLM_CHECK(!(version_ != 0 && (version_ & 0xFFFF) == 0),
             str(where, "version field reads ", version_, ": this is a big-endian GGUF file"),
             "sllm reads little-endian GGUF only; convert the model again on a little-endian machine");
  SLLM_CHECK(version_ == 2 || version_ == 3, str(where, "unsupported GGUF version ", version_),
             version_ < 2 ? "GGUF v1 (32-bit counts) is obsolete; re-convert the model with a current llama.cpp"
                          : "sllm reads GGUF versions 2 and 3; this file is newer than this build of sllm");
  const uint64_t n_tensors = in.u64("the tensor count");
  const uint64_t n_kv = in.u64("the metadata count");

  // 2. Metadata. Each pair takes at least 8 (key length) + 4 (type) + 1 bytes, so a count the
  //    rest of the file cannot hold is refused before any allocation.
  SLLM_CHECK(n_kv <= in.remaining() / 13,
             str(where, "header claims ", n_kv, " metadata pairs but the remaining ", in.remaining(),
                 " bytes can hold at most ", in.remaining() / 13),
             kTruncatedHint);
  metadata_.reserve(static_cast<size_t>(n_kv));
  for (uint64_t i = 0; i < n_kv; ++i) {
    std::string key = in.string(str("metadata key #", i));
    SLLM_CHECK(!key.empty(), str(where, "metadata key #", i, " is empty"), kTruncatedHint);
    SLLM_CHECK(key_index_.count(key) == 0, str(where, "metadata key '", key, "' appears twice"),
               "each key must be unique; fix the program that wrote the file");
    const std::string what = str("the value of '", key, "'");
    GgufValue v;
    const uint32_t type_id = in.u32(what + "'s type");
    SLLM_CHECK(is_known_type(type_id), str(where, "metadata key '", key, "' has unknown value type ", type_id),
               "valid types are 0..12 (docs/gguf.md, gguf_metadata_value_type); the file is corrupt or newer than sllm");
    v.type = static_cast<GgufType>(type_id);
    if (v.type == GgufType::STRING) {
      v.text = in.string(what);
    } else if (v.type != GgufType::ARRAY) {
      v.scalar = load_le(in.take(scalar_size(v.type), what), scalar_size(v.type));
    } else {
      const uint32_t elem_id = in.u32(what + "'s element type");
      SLLM_CHECK(is_known_type(elem_id), str(where, "metadata key '", key, "' is an array of unknown type ", elem_id),
                 "valid types are 0..12 (docs/gguf.md); the file is corrupt or newer than sllm");
      v.element_type = static_cast<GgufType>(elem_id);
      SLLM_CHECK(v.element_type != GgufType::ARRAY, str(where, "metadata key '", key, "' is an array of arrays"),
                 "nested arrays are not supported (ggml's own reader refuses them too)");
      v.count = in.u64(what + "'s element count");
      if (v.element_type == GgufType::STRING) {
        SLLM_CHECK(v.count <= in.remaining() / 8,  // each string has at least its 8-byte length
                   str(where, "metadata key '", key, "' claims ", v.count, " strings but only ", in.remaining(),
                       " bytes remain"),
                   kTruncatedHint);
        v.strings.reserve(static_cast<size_t>(v.count));
        for (uint64_t k = 0; k < v.count; ++k) v.strings.push_back(in.string(str(what, "[", k, "]")));
      } else {
        const size_t elem = scalar_size(v.element_type);
        SLLM_CHECK(v.count <= in.remaining() / elem,
                   str(where, "metadata key '", key, "' claims ", v.count, " elements of ",
                       gguf_type_name(v.element_type), " but only ", in.remaining(), " bytes remain"),
                   kTruncatedHint);
        const uint8_t* p = in.take(v.count * elem, what);
        v.raw.assign(reinterpret_cast<const char*>(p), static_cast<size_t>(v.count * elem));
      }
    }
    key_index_.emplace(key, metadata_.size());
    metadata_.emplace_back(std::move(key), std::move(v));
  }

  // 3. Alignment: a u32 power of two (gguf.cpp refuses other types and values the same way).
  if (const GgufValue* a = find("general.alignment")) {
    if (a->type != GgufType::U32) type_mismatch("general.alignment", "u32", *a);
    alignment_ = a->scalar;
    SLLM_CHECK(alignment_ != 0 && (alignment_ & (alignment_ - 1)) == 0,
               str(where, "general.alignment is ", alignment_, ", not a power of two"),
               "the data section's alignment must be a power of two (docs/gguf.md); the file is corrupt");
  } else {
    alignment_ = kDefaultAlignment;
  }

  // 4. Tensor infos. Each takes at least 8 (name length) + 4 (n_dims) + 4 (type) + 8 (offset).
  SLLM_CHECK(n_tensors <= in.remaining() / 24,
             str(where, "header claims ", n_tensors, " tensors but the remaining ", in.remaining(),
                 " bytes can hold at most ", in.remaining() / 24),
             kTruncatedHint);
  tensors_.reserve(static_cast<size_t>(n_tensors));
  for (uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensor t{};
    t.name = in.string(str("tensor name #", i));
    const std::string tw = str(where, "tensor '", t.name, "': ");
    SLLM_CHECK(tensor_index_.count(t.name) == 0, str(where, "tensor name '", t.name, "' appears twice"),
               "each tensor name must be unique; fix the program that wrote the file");
    const uint32_t n_dims = in.u32(str("tensor '", t.name, "'s dimension count"));
    SLLM_CHECK(n_dims <= kMaxDims, str(tw, n_dims, " dimensions; ggml tensors have at most ", kMaxDims),
               "the file is corrupt or not a ggml model");
    int64_t n = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t ne = in.u64(str("tensor '", t.name, "'s dimension ", d));
      SLLM_CHECK(ne <= static_cast<uint64_t>(INT64_MAX), str(tw, "dimension ", d, " is ", ne, ", negative as int64"),
                 "the file is corrupt");
      t.dims.push_back(static_cast<int64_t>(ne));
    }
    for (int64_t ne : t.dims)
      SLLM_CHECK(!__builtin_mul_overflow(n, ne, &n), str(tw, "shape ", dims_text(t.dims), " overflows int64"),
                 "the file is corrupt");
    t.n_elements = n;
    const uint32_t type_id = in.u32(str("tensor '", t.name, "'s type"));
    const GgmlTypeInfo* info = ggml_type_info(type_id);
    SLLM_CHECK(info != nullptr, str(tw, "unknown ggml type id ", type_id),
               str("the file is corrupt or uses a type newer than sllm; sllm dequantizes ", ggml_dequantizable_types()));
    t.type = static_cast<GgmlType>(type_id);
    const int64_t row = t.dims.empty() ? 1 : t.dims[0];
    SLLM_CHECK(row % info->block_size == 0,
               str(tw, "rows of ", row, " elements are not a multiple of ", info->name, "'s block size ",
                   info->block_size),
               "ggml stores whole blocks per row; the file is corrupt");
    uint64_t nbytes = 0;
    SLLM_CHECK(!__builtin_mul_overflow(static_cast<uint64_t>(n / info->block_size), info->type_size, &nbytes) &&
                   nbytes <= SIZE_MAX,
               str(tw, "byte size of shape ", dims_text(t.dims), " overflows"), "the file is corrupt");
    t.nbytes = static_cast<size_t>(nbytes);
    t.offset = in.u64(str("tensor '", t.name, "'s offset"));
    // docs/gguf.md: each offset "MUST be a multiple of ALIGNMENT". (gguf.cpp is stricter still:
    // tensors must follow each other in info order with minimal padding. We accept any
    // order and padding, as gguf-py does, but refuse overlaps below.)
    SLLM_CHECK(t.offset % alignment_ == 0,
               str(tw, "data offset ", t.offset, " is not a multiple of the alignment ", alignment_),
               "GGUF requires aligned tensor data (docs/gguf.md); the file is corrupt");
    tensor_index_.emplace(t.name, tensors_.size());
    tensors_.push_back(std::move(t));
  }

  // 5. The data section starts at the next multiple of the alignment.
  const uint64_t end_of_infos = in.pos();
  data_offset_ = (end_of_infos + alignment_ - 1) / alignment_ * alignment_;  // no overflow: both < 2^63
  SLLM_CHECK(tensors_.empty() || data_offset_ <= buffer_->size,
             str(where, "the data section would start at byte ", data_offset_, " but the file has ", buffer_->size),
             kTruncatedHint);
  const uint64_t data_size = data_offset_ <= buffer_->size ? buffer_->size - data_offset_ : 0;
  for (GgufTensor& t : tensors_) {
    SLLM_CHECK(t.offset <= data_size && t.nbytes <= data_size - t.offset,
               str(where, "tensor '", t.name, "' (", ggml_type_name(t.type), " ", dims_text(t.dims), ", ", t.nbytes,
                   " bytes at data offset ", t.offset, ") runs past the end of the data section (", data_size,
                   " bytes)"),
               kTruncatedHint);
    t.data = buffer_->bytes + data_offset_ + t.offset;
  }
  // 6. No two tensors share bytes (stricter than gguf-py; implied by gguf.cpp's layout rule).
  std::vector<const GgufTensor*> by_offset;
  for (const GgufTensor& t : tensors_) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const GgufTensor* a, const GgufTensor* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const GgufTensor& a = *by_offset[i - 1];
    const GgufTensor& b = *by_offset[i];
    SLLM_CHECK(a.nbytes == 0 || a.offset + a.nbytes <= b.offset,
               str(where, "tensors '", a.name, "' and '", b.name, "' overlap in the data section"),
               "each tensor must have its own bytes; the file is corrupt");
  }
}

// ---- metadata -------------------------------------------------------------------------------

const GgufValue* GgufFile::find(const std::string& key) const {
  auto it = key_index_.find(key);
  return it == key_index_.end() ? nullptr : &metadata_[it->second].second;
}

const GgufValue& GgufFile::get(const std::string& key) const {
  if (const GgufValue* v = find(key)) return *v;
  // Suggest keys of the same family ("llama.*" for "llama.block_count").
  const std::string family = key.substr(0, key.find('.') + 1);
  std::string near;
  int shown = 0;
  for (const auto& [k, v] : metadata_)
    if (k.compare(0, family.size(), family) == 0 && shown++ < 12) near += (near.empty() ? "" : ", ") + k;
  fail(str("GGUF file '", path_, "': required metadata key '", key, "' is missing"),
       near.empty() ? str("the file has ", metadata_.size(), " keys, none starting with '", family,
                          "'; was it converted for another architecture?")
                    : str("keys present with that prefix: ", near));
}

void GgufFile::type_mismatch(const std::string& key, const std::string& wanted, const GgufValue& v) const {
  fail(str("GGUF file '", path_, "': metadata key '", key, "' is ", v.type_text(), ", expected ", wanted),
       "the file was written with a different type for this key than the GGUF conventions (docs/gguf.md); "
       "re-convert it with a current llama.cpp");
}

namespace {
template <typename T>
T bits_as(uint64_t bits) {
  T out;
  std::memcpy(&out, &bits, sizeof(T));  // little-endian host: the low bytes hold the value
  return out;
}
}  // namespace

#define SLLM_GGUF_SCALAR_GETTER(fn, T, TYPE, name)                     \
  T GgufFile::fn(const std::string& key) const {                       \
    const GgufValue& v = get(key);                                     \
    if (v.type != GgufType::TYPE) type_mismatch(key, name, v);         \
    return bits_as<T>(v.scalar);                                       \
  }
SLLM_GGUF_SCALAR_GETTER(get_u8, uint8_t, U8, "u8")
SLLM_GGUF_SCALAR_GETTER(get_i8, int8_t, I8, "i8")
SLLM_GGUF_SCALAR_GETTER(get_u16, uint16_t, U16, "u16")
SLLM_GGUF_SCALAR_GETTER(get_i16, int16_t, I16, "i16")
SLLM_GGUF_SCALAR_GETTER(get_u32, uint32_t, U32, "u32")
SLLM_GGUF_SCALAR_GETTER(get_i32, int32_t, I32, "i32")
SLLM_GGUF_SCALAR_GETTER(get_u64, uint64_t, U64, "u64")
SLLM_GGUF_SCALAR_GETTER(get_i64, int64_t, I64, "i64")
SLLM_GGUF_SCALAR_GETTER(get_f32, float, F32, "f32")
SLLM_GGUF_SCALAR_GETTER(get_f64, double, F64, "f64")
#undef SLLM_GGUF_SCALAR_GETTER

bool GgufFile::get_bool(const std::string& key) const {
  const GgufValue& v = get(key);
  if (v.type != GgufType::BOOL) type_mismatch(key, "bool", v);
  return v.scalar != 0;  // gguf.cpp reads a bool as int8 != 0
}

const std::string& GgufFile::get_string(const std::string& key) const {
  const GgufValue& v = get(key);
  if (v.type != GgufType::STRING) type_mismatch(key, "string", v);
  return v.text;
}

int64_t GgufFile::get_int(const std::string& key, int64_t lo, int64_t hi) const {
  const GgufValue& v = get(key);
  if (!is_integer(v.type)) type_mismatch(key, "an integer", v);
  int64_t out = 0;
  const bool fits = integer_value(v.type, v.scalar, &out);
  SLLM_CHECK(fits && out >= lo && out <= hi,
             str("GGUF file '", path_, "': metadata key '", key, "' is ",
                 fits ? std::to_string(out) : std::to_string(v.scalar), ", outside [", lo, ", ", hi, "]"),
             "the file is corrupt or describes a model sllm cannot build");
  return out;
}

double GgufFile::get_float(const std::string& key) const {
  const GgufValue& v = get(key);
  if (v.type == GgufType::F32) return bits_as<float>(v.scalar);
  if (v.type == GgufType::F64) return bits_as<double>(v.scalar);
  type_mismatch(key, "f32 or f64", v);
}

const std::vector<std::string>& GgufFile::get_string_array(const std::string& key) const {
  const GgufValue& v = get(key);
  if (v.type != GgufType::ARRAY || v.element_type != GgufType::STRING) type_mismatch(key, "array of string", v);
  return v.strings;
}

std::vector<float> GgufFile::get_f32_array(const std::string& key) const {
  const GgufValue& v = get(key);
  if (v.type != GgufType::ARRAY || v.element_type != GgufType::F32) type_mismatch(key, "array of f32", v);
  std::vector<float> out(static_cast<size_t>(v.count));
  if (!out.empty()) std::memcpy(out.data(), v.raw.data(), v.raw.size());
  return out;
}

std::vector<int32_t> GgufFile::get_i32_array(const std::string& key) const {
  const GgufValue& v = get(key);
  if (v.type != GgufType::ARRAY || v.element_type != GgufType::I32) type_mismatch(key, "array of i32", v);
  std::vector<int32_t> out(static_cast<size_t>(v.count));
  if (!out.empty()) std::memcpy(out.data(), v.raw.data(), v.raw.size());
  return out;
}

std::vector<int64_t> GgufFile::get_int_array(const std::string& key) const {
  const GgufValue& v = get(key);
  if (v.type != GgufType::ARRAY || !is_integer(v.element_type)) type_mismatch(key, "array of integers", v);
  const size_t elem = scalar_size(v.element_type);
  std::vector<int64_t> out(static_cast<size_t>(v.count));
  for (size_t i = 0; i < out.size(); ++i) {
    const uint64_t bits = load_le(reinterpret_cast<const uint8_t*>(v.raw.data()) + i * elem, elem);
    SLLM_CHECK(integer_value(v.element_type, bits, &out[i]),
               str("GGUF file '", path_, "': metadata key '", key, "'[", i, "] = ", bits, " does not fit in int64"),
               "the file is corrupt");
  }
  return out;
}

// ---- tensors --------------------------------------------------------------------------------

const GgufTensor* GgufFile::find_tensor(const std::string& name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const GgufTensor& GgufFile::tensor(const std::string& name) const {
  if (const GgufTensor* t = find_tensor(name)) return *t;
  fail(str("GGUF file '", path_, "': no tensor named '", name, "' (the file has ", tensors_.size(), " tensors)"),
       "GGUF uses llama.cpp names such as token_embd.weight and blk.0.attn_q.weight; check the architecture");
}

void GgufFile::dequantize_into(const GgufTensor& t, float* out, size_t out_count) const {
  SLLM_CHECK(out_count == static_cast<uint64_t>(t.n_elements),
             str("GGUF tensor '", t.name, "' has ", t.n_elements, " elements but the destination holds ", out_count),
             "size the destination to the tensor's element count");
  try {
    io::dequantize(t.type, t.data, out, t.n_elements);
  } catch (const Error& e) {
    fail(str("GGUF file '", path_, "', tensor '", t.name, "': ", e.message()), e.hint());
  }
}

std::vector<float> GgufFile::dequantize(const GgufTensor& t) const {
  std::vector<float> out(static_cast<size_t>(t.n_elements));
  dequantize_into(t, out.data(), out.size());
  return out;
}

}  // namespace sllm::io
