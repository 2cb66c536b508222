// libFuzzer target: arbitrary bytes -> GgufFile::from_bytes -> load_gguf_tokenizer (issue 12).
// Metadata that does not describe a byte-level BPE vocabulary must be an sllm::Error, never a
// crash or undefined behaviour; an accepted tokenizer must encode a fixed text and decode it
// back (less the bytes its vocabulary has no token for, which are dropped).
// Build/run: see tests/fuzz/CMakeLists.txt.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "core/error.h"
#include "io/gguf.h"
#include "tokenizer/gguf_tokenizer.h"
#include "tokenizer/tokenizer_model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const sllm::io::GgufFile f = sllm::io::GgufFile::from_bytes(std::string(reinterpret_cast<const char*>(data), size), "fuzz");
    const sllm::tokenizer::GgufTokenizer g = sllm::tokenizer::load_gguf_tokenizer(f);
    const std::string text = "Hello, world! 123 héllo 世界 🙂\n\tend<|im_end|>";
    std::string kept;
    for (char ch : text)
      if (g.tokenizer.model().byte_id[static_cast<unsigned char>(ch)] >= 0) kept.push_back(ch);
    if (g.tokenizer.decode_bytes(g.tokenizer.encode(text)) != kept) std::abort();
    for (const auto& id : {g.bos_id, g.eos_id, g.unk_id, g.pad_id})
      if (id && (*id < 0 || *id >= g.tokenizer.vocab_size())) std::abort();
  } catch (const sllm::Error&) {
    // rejected with a message: what malformed metadata must do
  }
  return 0;
}
