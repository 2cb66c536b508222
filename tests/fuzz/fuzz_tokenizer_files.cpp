// libFuzzer target: arbitrary bytes as a tokenizer file. The first byte picks the format
// (HF tokenizer.json, tiktoken ranks, or GPT-2 vocab.json + merges.txt split at the first
// NUL byte); the rest is written to a temporary file and loaded with Tokenizer::load. A
// malformed file must be an sllm::Error, never a crash, an out-of-bounds access (ASan) or
// undefined behaviour (UBSan). A file that loads must round-trip a fixed text through
// encode/decode exactly (decode_bytes of encode is the input, for any valid tokenizer).
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>

#include "core/error.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_model.h"

namespace {

std::string scratch_dir() {
  static const std::string dir = [] {
    char tmpl[] = "/tmp/sllm_fuzz_tok.XXXXXX";
    const char* made = mkdtemp(tmpl);
    if (!made) std::abort();
    return std::string(made);
  }();
  return dir;
}

void write(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const std::string body(reinterpret_cast<const char*>(data + 1), size - 1);
  const std::string dir = scratch_dir();
  std::string path, pattern;
  switch (data[0] % 3) {
    case 0:
      path = dir + "/tokenizer.json";
      write(path, body);
      break;
    case 1:
      path = dir + "/ranks.tiktoken";
      pattern = "cl100k";
      write(path, body);
      break;
    default: {
      const size_t cut = body.find('\0');
      const std::string gdir = dir + "/gpt2";
      mkdir(gdir.c_str(), 0700);
      write(gdir + "/vocab.json", body.substr(0, cut));
      write(gdir + "/merges.txt", cut == std::string::npos ? std::string() : body.substr(cut + 1));
      path = gdir;
      break;
    }
  }
  try {
    const sllm::tokenizer::Tokenizer tok = sllm::tokenizer::Tokenizer::load(path, pattern);
    const std::string text = "Hello, world! 123 héllo 世界 🙂\n\tend";
    const auto ids = tok.encode(text);
    // Ids decode to the text, less the bytes the vocabulary has no token for (a tokenizer.json
    // without unk_token drops them, as Hugging Face does: Model::drop_missing_bytes).
    std::string kept;
    for (char ch : text)
      if (tok.model().byte_id[static_cast<unsigned char>(ch)] >= 0) kept.push_back(ch);
    if (tok.decode_bytes(ids) != kept) std::abort();
  } catch (const sllm::Error&) {
    // rejected with a message: what a malformed file must do
  }
  return 0;
}
