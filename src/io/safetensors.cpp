// safetensors reader and writer. The checks mirror the reference implementation
// (huggingface/safetensors, safetensors/src/tensor.rs: SafeTensors::read_metadata and
// Metadata::validate), in the same order, so a file we accept is one `safetensors` accepts.
// Where we are stricter it is said next to the check.
#include "io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>
#include <system_error>

#include "core/atomic_file.h"
#include "core/error.h"

namespace sllm::io {
using nlohmann::json;

namespace {

// Reference: MAX_HEADER_SIZE in tensor.rs. Protects against a hostile length field making us
// parse (or allocate for) gigabytes of "JSON".
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
constexpr size_t kLengthBytes = 8;  // the u64 header length prefix

// Element sizes, listed in the reference's Dtype order (increasing alignment), which is
// also the order the writer sorts by. The reference's sub-byte types (F4, F6_E2M3, F6_E3M2)
// are not supported: their tensors are not whole bytes per element.
struct DtypeInfo {
  const char* name;
  size_t size;
};
constexpr DtypeInfo kDtypes[] = {
    {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1}, {"F8_E8M0", 1}, {"I16", 2}, {"U16", 2},
    {"F16", 2},  {"BF16", 2}, {"I32", 4}, {"U32", 4},     {"F32", 4},     {"C64", 8},     {"F64", 8}, {"I64", 8},
    {"U64", 8},
};

int dtype_rank(const std::string& dtype) {
  for (size_t i = 0; i < std::size(kDtypes); ++i)
    if (dtype == kDtypes[i].name) return static_cast<int>(i);
  return -1;
}

std::string known_dtypes() {
  std::string all;
  for (const auto& d : kDtypes) all += (all.empty() ? "" : ", ") + std::string(d.name);
  return all;
}

// Position of the first byte that breaks UTF-8 (RFC 3629: no overlong forms, no surrogates,
// nothing above U+10FFFF), or n when all n bytes are valid. The reference rejects such
// headers before parsing JSON (core::str::from_utf8).
size_t first_invalid_utf8(const uint8_t* s, size_t n) {
  size_t i = 0;
  while (i < n) {
    uint8_t c = s[i];
    size_t len;
    uint32_t lo = 0x80, hi = 0xBF;  // allowed range of the first continuation byte
    if (c < 0x80) { ++i; continue; }
    else if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c == 0xE0) { len = 3; lo = 0xA0; }            // no overlong 3-byte forms
    else if (c >= 0xE1 && c <= 0xEC) len = 3;
    else if (c == 0xED) { len = 3; hi = 0x9F; }            // no UTF-16 surrogates
    else if (c >= 0xEE && c <= 0xEF) len = 3;
    else if (c == 0xF0) { len = 4; lo = 0x90; }            // no overlong 4-byte forms
    else if (c >= 0xF1 && c <= 0xF3) len = 4;
    else if (c == 0xF4) { len = 4; hi = 0x8F; }            // nothing above U+10FFFF
    else return i;
    if (n - i < len) return i;
    if (s[i + 1] < lo || s[i + 1] > hi) return i;
    for (size_t k = 2; k < len; ++k)
      if (s[i + k] < 0x80 || s[i + k] > 0xBF) return i;
    i += len;
  }
  return n;
}

bool is_utf8(const std::string& s) {
  return first_invalid_utf8(reinterpret_cast<const uint8_t*>(s.data()), s.size()) == s.size();
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

// product(shape) * element size, or false on overflow (reference: ValidationOverflow).
bool byte_size(const std::vector<int64_t>& shape, size_t elem_size, uint64_t* out) {
  uint64_t n = 1;
  for (int64_t d : shape)
    if (d < 0 || __builtin_mul_overflow(n, static_cast<uint64_t>(d), &n)) return false;
  return !__builtin_mul_overflow(n, static_cast<uint64_t>(elem_size), out);
}

// Levenshtein distance, for "did you mean" lists on a missing tensor name.
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// A short description of an untrusted JSON value for error messages. Containers are named,
// not dumped: dumping is recursive and a hostile header can nest arrays very deeply.
std::string describe(const json& v) {
  if (v.is_structured()) return str("a JSON ", v.type_name());
  std::string text = v.dump();
  return text.size() <= 64 ? text : text.substr(0, 64) + "...";
}

const char* kNotSafetensorsHint = "the file is truncated, corrupted or not a safetensors file; re-download or re-export it";

}  // namespace

size_t safetensors_dtype_size(const std::string& dtype) {
  int rank = dtype_rank(dtype);
  SLLM_CHECK(rank >= 0, str("unknown safetensors dtype '", dtype, "'"), str("supported dtypes: ", known_dtypes()));
  return kDtypes[rank].size;
}

// ---- reading ------------------------------------------------------------------------------

// The bytes of the file: either a private read-only mapping or an owned string. Held through
// a unique_ptr so its address (and every entry's data pointer) survives moves.
struct SafetensorsFile::Buffer {
  const uint8_t* bytes = nullptr;
  size_t size = 0;
  void* mapping = nullptr;  // non-null when mmap'ed
  std::string owned;

  ~Buffer() {
    if (mapping) ::munmap(mapping, size);
  }
};

SafetensorsFile::SafetensorsFile(std::unique_ptr<Buffer> buffer, std::string path)
    : buffer_(std::move(buffer)), path_(std::move(path)) {
  parse();
}
SafetensorsFile::SafetensorsFile(SafetensorsFile&&) noexcept = default;
SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&&) noexcept = default;
SafetensorsFile::~SafetensorsFile() = default;

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    fail(str("cannot open safetensors file '", path, "': ", std::system_category().message(err)),
         err == ENOENT ? "check the path; model directories usually hold model.safetensors"
                       : "check the file's permissions");
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(str("cannot open safetensors file '", path, "': not a regular file"),
         "pass the .safetensors file itself, not its directory");
  }
  auto buffer = std::make_unique<Buffer>();
  buffer->size = static_cast<size_t>(st.st_size);
  if (buffer->size > 0) {  // mmap of length 0 is an error (EINVAL); parse() reports the empty file
    void* p = ::mmap(nullptr, buffer->size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int err = errno;
      ::close(fd);
      fail(str("cannot memory-map safetensors file '", path, "': ", std::system_category().message(err)),
           "check the free memory / address space and that the file system supports mmap");
    }
    buffer->mapping = p;
    buffer->bytes = static_cast<const uint8_t*>(p);
  }
  ::close(fd);  // the mapping keeps the file alive (mmap(2))
  return SafetensorsFile(std::move(buffer), path);
}

SafetensorsFile SafetensorsFile::from_bytes(std::string bytes, const std::string& name) {
  auto buffer = std::make_unique<Buffer>();
  buffer->owned = std::move(bytes);
  buffer->bytes = reinterpret_cast<const uint8_t*>(buffer->owned.data());
  buffer->size = buffer->owned.size();
  return SafetensorsFile(std::move(buffer), name);
}

void SafetensorsFile::parse() {
  const uint8_t* bytes = buffer_->bytes;
  const size_t size = buffer_->size;
  auto where = [&](const std::string& tensor) {
    return str("safetensors file '", path_, "'", tensor.empty() ? "" : str(", tensor '", tensor, "'"), ": ");
  };

  // 1. The 8-byte little-endian header length (reference: HeaderTooSmall, HeaderTooLarge,
  //    InvalidHeaderLength).
  SLLM_CHECK(size >= kLengthBytes,
             str(where(""), "only ", size, " bytes; the format starts with an 8-byte header length"),
             kNotSafetensorsHint);
  uint64_t header_len = 0;
  for (size_t i = 0; i < kLengthBytes; ++i) header_len |= static_cast<uint64_t>(bytes[i]) << (8 * i);
  SLLM_CHECK(header_len <= kMaxHeaderBytes,
             str(where(""), "header length ", header_len, " exceeds the format's limit of ", kMaxHeaderBytes, " bytes"),
             kNotSafetensorsHint);
  SLLM_CHECK(header_len <= size - kLengthBytes,
             str(where(""), "header length ", header_len, " runs past the end of the file (", size, " bytes)"),
             kNotSafetensorsHint);
  const uint8_t* header_bytes = bytes + kLengthBytes;

  // 2. UTF-8, then JSON (reference: InvalidHeader, InvalidHeaderDeserialization).
  // nlohmann skips a leading UTF-8 byte-order mark; serde_json (the reference) rejects it.
  SLLM_CHECK(!(header_len >= 3 && header_bytes[0] == 0xEF && header_bytes[1] == 0xBB && header_bytes[2] == 0xBF),
             str(where(""), "header is not valid JSON: it starts with a UTF-8 byte-order mark"), kNotSafetensorsHint);
  size_t bad = first_invalid_utf8(header_bytes, header_len);
  SLLM_CHECK(bad == header_len, str(where(""), "header is not valid UTF-8 (byte ", bad, " of the header)"),
             kNotSafetensorsHint);

  // Stricter than the reference: a key repeated inside one JSON object is an error (serde
  // and nlohmann would both silently keep one of the values, hiding which tensor is meant).
  std::vector<std::set<std::string>> open_objects;
  auto reject_duplicate_keys = [&](int, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::object_start) open_objects.emplace_back();
    if (event == json::parse_event_t::object_end) open_objects.pop_back();
    if (event == json::parse_event_t::key && !open_objects.back().insert(parsed.get<std::string>()).second)
      fail(str(where(""), "key '", parsed.get<std::string>(), "' appears twice in the header"),
           "each tensor name (and metadata key) must be unique; fix the program that wrote the file");
    return true;
  };
  // A raw NUL byte is never valid JSON (not even inside a string), but nlohmann's lexer takes
  // it as the end of input and would ignore whatever follows; serde_json rejects it. Found by
  // fuzz_safetensors in a differential run against the reference.
  const void* nul = std::memchr(header_bytes, 0, header_len);
  SLLM_CHECK(nul == nullptr,
             str(where(""), "header is not valid JSON: NUL byte at header offset ",
                 static_cast<const uint8_t*>(nul) - header_bytes),
             kNotSafetensorsHint);
  json header;
  try {
    header = json::parse(header_bytes, header_bytes + header_len, reject_duplicate_keys);
  } catch (const json::exception& e) {
    fail(str(where(""), "header is not valid JSON: ", e.what()), kNotSafetensorsHint);
  }
  SLLM_CHECK(header.is_object(), str(where(""), "header must be a JSON object, got ", header.type_name()),
             kNotSafetensorsHint);

  // 3. Each entry: `__metadata__` (string -> string) or a tensor description.
  struct Offsets {
    uint64_t begin, end;
  };
  std::vector<Offsets> offsets;
  auto unsigned_value = [&](const json& v, const std::string& tensor, const char* field) -> uint64_t {
    SLLM_CHECK(v.is_number_unsigned(),
               str(where(tensor), "'", field, "' must hold non-negative integers, found ", describe(v)),
               kNotSafetensorsHint);
    return v.get<uint64_t>();
  };
  for (const auto& [key, value] : header.items()) {
    if (key == "__metadata__") {
      if (value.is_null()) continue;  // the reference reads a null __metadata__ as absent
      SLLM_CHECK(value.is_object(), str(where(""), "__metadata__ must be an object of strings, got ", value.type_name()),
                 kNotSafetensorsHint);
      for (const auto& [mkey, mvalue] : value.items()) {
        SLLM_CHECK(mvalue.is_string(),
                   str(where(""), "__metadata__ value of '", mkey, "' must be a string, got ", describe(mvalue)),
                   "safetensors metadata maps strings to strings; store numbers as text");
        metadata_[mkey] = mvalue.get<std::string>();
      }
      continue;
    }
    SLLM_CHECK(value.is_object(), str(where(key), "description must be a JSON object, got ", value.type_name()),
               kNotSafetensorsHint);
    for (const char* field : {"dtype", "shape", "data_offsets"})
      SLLM_CHECK(value.contains(field), str(where(key), "missing '", field, "'"), kNotSafetensorsHint);
    const json& dtype = value["dtype"];
    SLLM_CHECK(dtype.is_string() && dtype_rank(dtype.get<std::string>()) >= 0,
               str(where(key), "unknown dtype ", describe(dtype)), str("supported dtypes: ", known_dtypes()));
    const json& shape = value["shape"];
    SLLM_CHECK(shape.is_array(), str(where(key), "'shape' must be an array, got ", describe(shape)), kNotSafetensorsHint);
    const json& span = value["data_offsets"];
    SLLM_CHECK(span.is_array() && span.size() == 2,
               str(where(key), "'data_offsets' must be [begin, end], got ", describe(span)), kNotSafetensorsHint);

    SafetensorsEntry entry{key, dtype.get<std::string>(), {}, nullptr, 0};
    for (const json& d : shape) {
      uint64_t dim = unsigned_value(d, key, "shape");
      // Stricter than the reference (which allows any u64 when another dimension is 0):
      // our shapes are int64_t.
      SLLM_CHECK(dim <= static_cast<uint64_t>(INT64_MAX), str(where(key), "dimension ", dim, " is too large"),
                 kNotSafetensorsHint);
      entry.shape.push_back(static_cast<int64_t>(dim));
    }
    offsets.push_back({unsigned_value(span[0], key, "data_offsets"), unsigned_value(span[1], key, "data_offsets")});
    entries_.push_back(std::move(entry));
  }

  // 4. Offsets sorted must tile [0, last end) exactly, and each span must match its shape
  //    (reference: Metadata::validate -> InvalidOffset, ValidationOverflow, TensorInvalidInfo).
  //    Ties (zero-size tensors share an offset) are broken by name so the order is stable.
  std::vector<size_t> order(entries_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (offsets[a].begin != offsets[b].begin) return offsets[a].begin < offsets[b].begin;
    if (offsets[a].end != offsets[b].end) return offsets[a].end < offsets[b].end;
    return entries_[a].name < entries_[b].name;
  });
  uint64_t expected_begin = 0;
  std::string previous;
  for (size_t i : order) {
    const SafetensorsEntry& e = entries_[i];
    const Offsets& o = offsets[i];
    if (o.begin != expected_begin) {
      std::string why = previous.empty()        ? str("the first tensor's data must start at offset 0, not ", o.begin)
                        : o.begin > expected_begin ? str("bytes [", expected_begin, ", ", o.begin, ") after tensor '",
                                                         previous, "' belong to no tensor (a hole)")
                                                   : str("data [", o.begin, ", ", o.end, ") overlaps tensor '", previous,
                                                         "', which ends at ", expected_begin);
      fail(str(where(e.name), "invalid data_offsets: ", why), kNotSafetensorsHint);
    }
    SLLM_CHECK(o.end >= o.begin, str(where(e.name), "data_offsets end ", o.end, " is before begin ", o.begin),
               kNotSafetensorsHint);
    uint64_t need = 0;
    SLLM_CHECK(byte_size(e.shape, safetensors_dtype_size(e.dtype), &need),
               str(where(e.name), "shape ", shape_text(e.shape), " overflows 64 bits when counted in bytes"),
               kNotSafetensorsHint);
    SLLM_CHECK(o.end - o.begin == need,
               str(where(e.name), "data_offsets span ", o.end - o.begin, " bytes but shape ", shape_text(e.shape),
                   " of ", e.dtype, " needs ", need),
               kNotSafetensorsHint);
    expected_begin = o.end;
    previous = e.name;
  }

  // 5. The data section is exactly what the header describes (reference: MetadataIncompleteBuffer).
  const uint64_t data_len = size - kLengthBytes - header_len;
  SLLM_CHECK(expected_begin == data_len,
             str(where(""), "the header describes ", expected_begin, " bytes of tensor data but the file holds ",
                 data_len, data_len < expected_begin ? " (truncated)" : " (trailing bytes)"),
             kNotSafetensorsHint);

  // 6. Publish in file-offset order, with pointers into the buffer.
  const uint8_t* data = header_bytes + header_len;
  std::vector<SafetensorsEntry> sorted;
  sorted.reserve(entries_.size());
  for (size_t i : order) {
    SafetensorsEntry& e = entries_[i];
    e.data = data + offsets[i].begin;
    e.nbytes = static_cast<size_t>(offsets[i].end - offsets[i].begin);
    index_[e.name] = sorted.size();
    sorted.push_back(std::move(e));
  }
  entries_ = std::move(sorted);
}

const SafetensorsEntry* SafetensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &entries_[it->second];
}

const SafetensorsEntry& SafetensorsFile::get(const std::string& name) const {
  if (const SafetensorsEntry* e = find(name)) return *e;
  std::vector<std::pair<size_t, const std::string*>> nearest;
  for (const auto& e : entries_) nearest.push_back({edit_distance(name, e.name), &e.name});
  size_t shown = std::min<size_t>(nearest.size(), 5);
  std::partial_sort(nearest.begin(), nearest.begin() + shown, nearest.end(),
                    [](const auto& a, const auto& b) { return a.first != b.first ? a.first < b.first : *a.second < *b.second; });
  std::string hint = entries_.empty() ? "the file holds no tensors" : "closest names in the file:";
  for (size_t i = 0; i < shown; ++i) hint += str(i ? ", '" : " '", *nearest[i].second, "'");
  fail(str("safetensors file '", path_, "' has no tensor named '", name, "' (it holds ", entries_.size(), " tensors)"),
       hint);
}

// ---- writing ------------------------------------------------------------------------------

void SafetensorsWriter::check_new(const std::string& name, const std::string& dtype, const std::vector<int64_t>& shape,
                                  size_t nbytes) const {
  SLLM_CHECK(!name.empty() && name != "__metadata__" && is_utf8(name),
             str("cannot add tensor '", name, "' to a safetensors file: invalid name"),
             "tensor names must be non-empty UTF-8 and not '__metadata__'");
  for (const auto& t : tensors_)
    SLLM_CHECK(t.name != name, str("cannot add tensor '", name, "' to a safetensors file twice"),
               "each tensor name must be unique in a file");
  size_t elem = safetensors_dtype_size(dtype);
  uint64_t need = 0;
  SLLM_CHECK(byte_size(shape, elem, &need),
             str("tensor '", name, "': shape ", shape_text(shape), " has a negative dimension or overflows"),
             "dimensions must be >= 0");
  SLLM_CHECK(need == nbytes,
             str("tensor '", name, "': ", nbytes, " bytes given but shape ", shape_text(shape), " of ", dtype, " needs ",
                 need),
             "pass the byte size of the data, product(shape) * element size");
}

void SafetensorsWriter::add(const std::string& name, const std::string& dtype, std::vector<int64_t> shape,
                            const void* data, size_t nbytes) {
  check_new(name, dtype, shape, nbytes);
  SLLM_CHECK(data != nullptr || nbytes == 0, str("tensor '", name, "': data is null"), "pass the tensor's host bytes");
  tensors_.push_back({name, dtype, std::move(shape), data, nbytes, {}});
}

void SafetensorsWriter::add_produced(const std::string& name, const std::string& dtype, std::vector<int64_t> shape,
                                     size_t nbytes, std::function<void(void* dst)> produce) {
  check_new(name, dtype, shape, nbytes);
  SLLM_CHECK(static_cast<bool>(produce), str("tensor '", name, "': no producer"), "pass a function that fills the bytes");
  tensors_.push_back({name, dtype, std::move(shape), nullptr, nbytes, std::move(produce)});
}

std::vector<std::string> SafetensorsWriter::write_order() const {
  std::vector<std::string> names;
  for (const Pending* t : ordered()) names.push_back(t->name);
  return names;
}

void SafetensorsWriter::for_each_data(const std::vector<const Pending*>& order,
                                      const std::function<void(const void*, size_t)>& fn) const {
  std::vector<char> scratch;
  for (const Pending* t : order) {
    if (!t->produce) {
      fn(t->data, t->nbytes);
      continue;
    }
    scratch.resize(t->nbytes);
    t->produce(scratch.data());
    fn(scratch.data(), t->nbytes);
  }
}

void SafetensorsWriter::set_metadata(const std::string& key, const std::string& value) {
  SLLM_CHECK(is_utf8(key) && is_utf8(value), str("safetensors metadata '", key, "' is not valid UTF-8"),
             "metadata keys and values must be UTF-8 text");
  metadata_[key] = value;
}

// Reference `prepare`: descending dtype alignment, then name (byte order, like Rust's String).
std::vector<const SafetensorsWriter::Pending*> SafetensorsWriter::ordered() const {
  std::vector<const Pending*> order;
  for (const auto& t : tensors_) order.push_back(&t);
  std::sort(order.begin(), order.end(), [](const Pending* a, const Pending* b) {
    int ra = dtype_rank(a->dtype), rb = dtype_rank(b->dtype);
    return ra != rb ? ra > rb : a->name < b->name;
  });
  return order;
}

// Keys in the reference's order: `__metadata__` first, then tensors in data order, each as
// {"dtype", "shape", "data_offsets"}. Padded with spaces to a multiple of 8 bytes, which the
// format allows (trailing JSON whitespace), so the data section starts 8-byte aligned.
std::string SafetensorsWriter::header(const std::vector<const Pending*>& order) const {
  auto quote = [](const std::string& s) { return json(s).dump(); };
  std::string h = "{";
  if (!metadata_.empty()) {
    h += "\"__metadata__\":{";
    const char* separator = "";
    for (const auto& [k, v] : metadata_) {
      h += str(separator, quote(k), ":", quote(v));
      separator = ",";
    }
    h += "}";
  }
  uint64_t offset = 0;
  for (const Pending* t : order) {
    if (h.size() > 1) h += ",";
    h += str(quote(t->name), ":{\"dtype\":", quote(t->dtype), ",\"shape\":[");
    for (size_t i = 0; i < t->shape.size(); ++i) h += str(i ? "," : "", t->shape[i]);
    h += str("],\"data_offsets\":[", offset, ",", offset + t->nbytes, "]}");
    offset += t->nbytes;
  }
  h += "}";
  h.resize((h.size() + 7) / 8 * 8, ' ');
  SLLM_CHECK(h.size() <= kMaxHeaderBytes,
             str("safetensors header would be ", h.size(), " bytes, over the format's limit of ", kMaxHeaderBytes),
             "split the tensors over several files or shorten the metadata");
  return h;
}

static std::string length_prefix(uint64_t n) {
  std::string le(kLengthBytes, '\0');
  for (size_t i = 0; i < kLengthBytes; ++i) le[i] = static_cast<char>((n >> (8 * i)) & 0xFF);
  return le;
}

void SafetensorsWriter::write(const std::string& path) const {
  std::vector<const Pending*> order = ordered();
  std::string h = header(order);
  AtomicFileWriter out(path);
  std::string prefix = length_prefix(h.size());
  out.write(prefix.data(), prefix.size());
  out.write(h.data(), h.size());
  for_each_data(order, [&](const void* data, size_t n) { out.write(data, n); });
  out.commit();
}

std::string SafetensorsWriter::to_bytes() const {
  std::vector<const Pending*> order = ordered();
  std::string h = header(order);
  std::string bytes = length_prefix(h.size()) + h;
  for_each_data(order, [&](const void* data, size_t n) {
    if (n > 0) bytes.append(static_cast<const char*>(data), n);
  });
  return bytes;
}

}  // namespace sllm::io
