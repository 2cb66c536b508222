// Malformed tokenizer files raise sllm::Error with a hint; they never crash.
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "tests/tokenizer/test_data.h"
#include "tokenizer/tokenizer_model.h"

namespace sllm::tokenizer {
namespace {

namespace fs = std::filesystem;

class BadFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("sllm_tok_bad_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) {
    const fs::path p = dir_ / name;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << text;
    return p.string();
  }
  // Expects load(path) to fail with a message mentioning `needle` and carrying a hint.
  void expect_error(const std::string& path, const std::string& pattern, const std::string& needle) {
    try {
      Tokenizer::load(path, pattern);
      ADD_FAILURE() << "no error for " << path;
    } catch (const sllm::Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
      EXPECT_FALSE(e.hint().empty()) << e.what();
    }
  }
  // A minimal valid byte-level vocab.json: the 256 byte tokens in GPT-2's alphabet, plus "ab".
  std::string byte_vocab_json(const std::string& extra) {
    std::string s = "{";
    for (int b = 0; b < 256; ++b) {
      nlohmann::json key = bytes_to_unicode(std::string(1, static_cast<char>(b)));
      s += key.dump() + ":" + std::to_string(b) + ",";
    }
    return s + extra + "}";
  }
  fs::path dir_;
};

TEST_F(BadFiles, MissingPathAndUnknownFormat) {
  expect_error((dir_ / "nope").string(), "", "does not exist");
  expect_error(write("x.bin", "hello"), "", "cannot tell");
  expect_error(dir_.string(), "", "neither");
}

TEST_F(BadFiles, GoodMinimalGpt2FilesLoad) {
  write("ok/vocab.json", byte_vocab_json("\"ab\":256"));
  write("ok/merges.txt", "#version: 0.2\na b\n");
  const Tokenizer tok = Tokenizer::load((dir_ / "ok").string());
  EXPECT_EQ(tok.encode("abab"), (std::vector<int32_t>{256, 256}));
}

TEST_F(BadFiles, Gpt2VocabAndMerges) {
  write("v1/vocab.json", "{\"a\": 0,");  // truncated JSON
  write("v1/merges.txt", "");
  expect_error((dir_ / "v1").string(), "", "invalid JSON");
  write("v2/vocab.json", "[1, 2]");
  write("v2/merges.txt", "");
  expect_error((dir_ / "v2").string(), "", "non-empty JSON object");
  write("v3/vocab.json", byte_vocab_json("\"ab\":\"x\""));
  write("v3/merges.txt", "");
  expect_error((dir_ / "v3").string(), "", "not a non-negative integer");
  write("v4/vocab.json", "{\"a\": 0}");  // bytes missing
  write("v4/merges.txt", "");
  expect_error((dir_ / "v4").string(), "", "no token for the single byte");
  write("v5/vocab.json", byte_vocab_json("\"ab\":256"));
  write("v5/merges.txt", "#version: 0.2\na b c\n");
  expect_error((dir_ / "v5").string(), "", "expected 'left right'");
  write("v6/vocab.json", byte_vocab_json("\"ab\":256"));
  write("v6/merges.txt", "#version: 0.2\na zz\n");
  expect_error((dir_ / "v6").string(), "", "missing from vocab.json");
  write("v7/vocab.json", byte_vocab_json("\"ab\":256"));
  write("v7/merges.txt", "b a\n");  // "ba" is not in the vocab
  expect_error((dir_ / "v7").string(), "", "not in the vocabulary");
  write("v8/vocab.json", byte_vocab_json("\"x y\":256"));
  write("v8/merges.txt", "");
  expect_error((dir_ / "v8").string(), "", "byte-level alphabet");
  write("v9/vocab.json", byte_vocab_json("\"ab\":5"));
  write("v9/merges.txt", "");
  expect_error((dir_ / "v9").string(), "", "used twice");
}

TEST_F(BadFiles, TiktokenRankFiles) {
  std::string good;
  const char* b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (int b = 0; b < 256; ++b) {  // base64 of one byte: two symbols and "=="
    good += std::string{b64[b >> 2], b64[(b & 3) << 4], '=', '='} + " " + std::to_string(b) + "\n";
  }
  const Tokenizer ok = Tokenizer::load(write("ok.tiktoken", good + "YWI= 256\n"), "gpt2");  // "ab"
  EXPECT_EQ(ok.encode("ab"), (std::vector<int32_t>{256}));
  expect_error(write("p.tiktoken", good), "", "--pattern");
  expect_error(write("a.tiktoken", good + "YWI=256\n"), "gpt2", "expected '<base64> <rank>'");
  expect_error(write("b.tiktoken", good + "Y!I= 256\n"), "gpt2", "invalid base64");
  expect_error(write("c.tiktoken", good + "YWI= -3\n"), "gpt2", "invalid rank");
  expect_error(write("d.tiktoken", good + "YWI= 99999999999\n"), "gpt2", "invalid rank");
  // 20 digits: once overflowed int64 while parsing (found by fuzz_tokenizer_files under UBSan).
  expect_error(write("d2.tiktoken", good + "YWI= 66777777777777777777\n"), "gpt2", "invalid rank");
  expect_error(write("e.tiktoken", good + "YWI= 7\n"), "gpt2", "appears twice");
  expect_error(write("f.tiktoken", "YWI= 0\n"), "gpt2", "no token for the single byte");
  expect_error(write("g.tiktoken", ""), "gpt2", "no tokens");
  expect_error(write("h.tiktoken", good), "gpt7", "unknown pre-tokenizer pattern");
  write("m.meta.json", "{\"special_tokens\": {\"<|x|>\": 3}}");
  expect_error(write("m.tiktoken", good), "gpt2", "reuses id");
}

TEST_F(BadFiles, HfTokenizerJson) {
  auto model = [&](const std::string& vocab_extra, const std::string& merges, const std::string& rest) {
    return "{\"model\": {\"type\": \"BPE\", \"vocab\": " + byte_vocab_json(vocab_extra) + ", \"merges\": " + merges + "}" + rest + "}";
  };
  const std::string pre = ", \"pre_tokenizer\": {\"type\": \"ByteLevel\", \"use_regex\": true}";
  const Tokenizer ok = Tokenizer::load(write("ok.json", model("\"ab\":256", "[\"a b\"]", pre)));
  EXPECT_EQ(ok.encode("ab"), (std::vector<int32_t>{256}));
  const Tokenizer ok2 = Tokenizer::load(write("ok2.json", model("\"ab\":256", "[[\"a\", \"b\"]]", pre)));
  EXPECT_EQ(ok2.encode("ab"), (std::vector<int32_t>{256}));
  expect_error(write("t1.json", "{\"model\": 3}"), "", "no \"model\" object");
  expect_error(write("t2.json", "{\"model\": {\"type\": \"WordPiece\"}}"), "", "is not BPE");
  expect_error(write("t3.json", model("\"ab\":256", "[\"a b\"]", "")), "", "no pre_tokenizer");
  expect_error(write("t4.json", model("\"ab\":256", "[\"a b\"]", ", \"pre_tokenizer\": {\"type\": \"Whitespace\"}")), "", "unsupported pre_tokenizer");
  expect_error(write("t5.json", model("\"ab\":256", "[\"a\"]", pre)), "", "is not 'left right'");
  expect_error(write("t6.json", model("\"ab\":256", "[7]", pre)), "", "malformed");
  expect_error(write("t7.json", model("\"ab\":256", "{}", pre)), "", "merges must be an array");
  expect_error(write("t8.json", model("\"ab\":256", "[\"a b\"]", pre + ", \"normalizer\": {\"type\": \"NFC\"}")), "", "normalizers");
  expect_error(write("t9.json", model("\"ab\":256", "[\"a b\"]", pre + ", \"added_tokens\": [{\"id\": 3, \"content\": \"<s>\"}]")), "", "used twice");
  expect_error(write("t10.json", "{\"model\": {\"type\": 5}}"), "", "malformed tokenizer.json");
  expect_error(write("t11.json", "not json"), "", "invalid JSON");
  expect_error(write("t12.json", model("\"ab\":256", "[\"a b\"]",
      ", \"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": {\"Regex\": \"\\\\w+\"}}, "
      "{\"type\": \"ByteLevel\", \"use_regex\": false}]}")), "", "not one of ours");
  // --pattern overrides a missing or unknown pre_tokenizer.
  EXPECT_EQ(Tokenizer::load((dir_ / "t3.json").string(), "cl100k").pattern_name(), "cl100k");
}

}  // namespace
}  // namespace sllm::tokenizer
