// libFuzzer target: arbitrary bytes -> SafetensorsFile::from_bytes. A malformed file must be
// an sllm::Error, never a crash, an out-of-bounds read (ASan) or undefined behaviour (UBSan).
// Every accepted file must also survive a round trip through our writer unchanged: the
// reader and the writer agree on the format. Build/run: see tests/fuzz/CMakeLists.txt.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/error.h"
#include "io/safetensors.h"

using sllm::io::SafetensorsFile;

namespace {

// Reads every byte of every tensor so ASan sees any entry pointing outside the buffer.
uint8_t touch_all(const SafetensorsFile& f) {
  uint8_t acc = 0;
  for (const auto& e : f.entries())
    for (size_t i = 0; i < e.nbytes; ++i) acc ^= e.data[i];
  return acc;
}

void check_round_trip(const SafetensorsFile& f) {
  sllm::io::SafetensorsWriter w;
  for (const auto& e : f.entries()) w.add(e.name, e.dtype, e.shape, e.data, e.nbytes);
  for (const auto& [k, v] : f.metadata()) w.set_metadata(k, v);
  SafetensorsFile g = SafetensorsFile::from_bytes(w.to_bytes(), "round trip");
  if (g.entries().size() != f.entries().size() || g.metadata() != f.metadata()) std::abort();
  for (const auto& e : f.entries()) {
    const auto& r = g.get(e.name);
    if (r.dtype != e.dtype || r.shape != e.shape || r.nbytes != e.nbytes) std::abort();
    if (e.nbytes > 0 && std::memcmp(r.data, e.data, e.nbytes) != 0) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    SafetensorsFile f = SafetensorsFile::from_bytes(std::string(reinterpret_cast<const char*>(data), size), "fuzz");
    volatile uint8_t sink = touch_all(f);
    (void)sink;
    check_round_trip(f);
  } catch (const sllm::Error&) {
    // Expected for malformed input.
  }
  return 0;
}
