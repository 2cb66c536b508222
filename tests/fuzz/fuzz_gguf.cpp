// libFuzzer target: arbitrary bytes -> GgufFile::from_bytes (issue 12). A malformed file must
// be an sllm::Error, never a crash, an out-of-bounds read (ASan) or undefined behaviour (UBSan).
// For an accepted file every metadata value is read back through its getter, every tensor's
// bytes are touched, and every tensor of a type with a kernel is dequantized by both the fast
// and the reference kernel, which must agree bit for bit (NaN payloads aside).
// Build/run: see tests/fuzz/CMakeLists.txt.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/gguf.h"

using sllm::io::GgufFile;
using sllm::io::GgufType;

namespace {

void read_every_value(const GgufFile& f) {
  for (const auto& [key, v] : f.metadata()) {
    switch (v.type) {
      case GgufType::STRING: (void)f.get_string(key); break;
      case GgufType::BOOL: (void)f.get_bool(key); break;
      case GgufType::F32: case GgufType::F64: (void)f.get_float(key); break;
      case GgufType::ARRAY:
        if (v.element_type == GgufType::STRING && f.get_string_array(key).size() != v.count) std::abort();
        if (v.element_type == GgufType::F32 && f.get_f32_array(key).size() != v.count) std::abort();
        if (v.element_type == GgufType::I32 && f.get_i32_array(key).size() != v.count) std::abort();
        break;
      default:
        try {
          (void)f.get_int(key);  // a u64 above INT64_MAX is an Error, anything else a value
        } catch (const sllm::Error&) {
          if (v.type != GgufType::U64) std::abort();
        }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    GgufFile f = GgufFile::from_bytes(std::string(reinterpret_cast<const char*>(data), size), "fuzz");
    read_every_value(f);
    uint8_t acc = 0;
    for (const auto& t : f.tensors()) {
      for (size_t i = 0; i < t.nbytes; ++i) acc ^= t.data[i];
      const auto* info = sllm::io::ggml_type_info(static_cast<uint32_t>(t.type));
      if (!info->dequantizable || t.n_elements > (1 << 20)) continue;
      std::vector<float> fast = f.dequantize(t), ref(fast.size());
      sllm::io::dequantize_ref(t.type, t.data, ref.data(), t.n_elements);
      for (size_t i = 0; i < fast.size(); ++i)
        if (std::memcmp(&fast[i], &ref[i], 4) != 0 && !(std::isnan(fast[i]) && std::isnan(ref[i]))) std::abort();
    }
    volatile uint8_t sink = acc;
    (void)sink;
  } catch (const sllm::Error&) {
    // Expected for malformed input.
  }
  return 0;
}
