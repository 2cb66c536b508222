// The text layer of `sllm generate` / `sllm score`: streaming UTF-8 detokenization, id
// lists from the command line, and the whole path from a saved model directory (weights +
// tokenizer.json) to generated text and scores.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "core/error.h"
#include "infer/text_session.h"
#include "infer/text_stream.h"
#include "io/model_files.h"
#include "tests/infer/infer_test_support.h"
#include "tokenizer/tokenizer.h"

namespace sllm::infer {
namespace {

namespace fs = std::filesystem;
using testing::greedy_reference;
using testing::randomize;
using testing::TempDir;
using tokenizer::Tokenizer;

const std::string kFffd = "\xEF\xBF\xBD";  // U+FFFD

TEST(TextStream, HoldsBackAnUnfinishedCharacter) {
  std::string pending = "a\xC3";  // 'a' and the first byte of "é" (C3 A9)
  EXPECT_EQ(take_complete_utf8(pending), "a");
  EXPECT_EQ(pending, "\xC3");
  pending += "\xA9!";
  EXPECT_EQ(take_complete_utf8(pending), "\xC3\xA9!");
  EXPECT_EQ(pending, "");

  const std::string emoji = "\xF0\x9F\x98\x80";  // U+1F600, four bytes arriving one by one
  std::string out;
  for (char byte : emoji.substr(0, 3)) {
    pending += byte;
    EXPECT_EQ(take_complete_utf8(pending), "");
  }
  pending.clear();
  for (char byte : emoji) {
    pending += byte;
    out += take_complete_utf8(pending);
  }
  EXPECT_EQ(out, emoji);
  EXPECT_EQ(pending, "");
}

TEST(TextStream, ReplacesWhatNoLaterByteCanRepair) {
  std::string pending = "x\xFF";  // FF is never valid
  EXPECT_EQ(take_complete_utf8(pending), "x" + kFffd);
  pending = "\xE0\x80y";  // E0 must be followed by A0..BF: two maximal subparts, then 'y'
  EXPECT_EQ(take_complete_utf8(pending), kFffd + kFffd + "y");
  pending = "\xC3\xC3";  // a lead byte cut short by another lead byte: the second may still complete
  EXPECT_EQ(take_complete_utf8(pending), kFffd);
  EXPECT_EQ(pending, "\xC3");
  pending = "\x80";  // a lone continuation byte at the end cannot start a character
  EXPECT_EQ(take_complete_utf8(pending), kFffd);
}

Tokenizer ascii_tokenizer() {
  // Trained on ASCII only: non-ASCII characters stay split into single-byte tokens.
  return Tokenizer::train({"hello world, the cat sat on the mat. hello hello world"}, 256 + 20 + 1, "gpt2");
}

TEST(TextStream, StreamedTextEqualsDecodeAndIsAlwaysWholeCharacters) {
  const Tokenizer tok = ascii_tokenizer();
  const std::string text = "hello wörld — the cat 😀 sat";
  const auto ids = tok.encode(text);
  TokenTextStream stream(tok);
  std::string all;
  int held_back = 0;
  for (int32_t id : ids) {
    const std::string piece = stream.push(id);
    held_back += piece.empty();
    all += piece;
  }
  all += stream.finish();
  EXPECT_EQ(all, text);
  EXPECT_EQ(all, tok.decode(ids));
  EXPECT_GE(held_back, 1 + 2 + 3);  // ö: 1 byte held, —: 2, 😀: 3
}

TEST(TextStream, UnfinishedTailAndUnknownIds) {
  const Tokenizer tok = ascii_tokenizer();
  int32_t lead = -1;  // the single-byte token E2, lead byte of a 3-byte character
  for (int32_t id = 0; id < 256; ++id)
    if (tok.token_bytes(id) == "\xE2") lead = id;
  ASSERT_GE(lead, 0);
  TokenTextStream stream(tok);
  EXPECT_EQ(stream.push(lead), "");
  EXPECT_EQ(stream.finish(), kFffd);
  EXPECT_EQ(stream.push(100000), kFffd);  // no such token: shown, not thrown
}

TEST(ParseTokenIds, AcceptsCommaListsAcrossWords) {
  EXPECT_EQ(parse_token_ids({"1,2,3"}, 10), (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(parse_token_ids({"4", "5,6"}, 10), (std::vector<int32_t>{4, 5, 6}));
  EXPECT_EQ(parse_token_ids({" 7, 8 "}, 10), (std::vector<int32_t>{7, 8}));
  EXPECT_EQ(parse_token_ids({"0,9"}, 10), (std::vector<int32_t>{0, 9}));
}

TEST(ParseTokenIds, RejectsMalformedListsAndBadIds) {
  for (const std::string bad : {"", "1,,2", "1,2,", ",1", "a", "1.5", "1;2", "0x3", "+1", "-1", "10", "99999999999999999999"}) {
    EXPECT_THROW(parse_token_ids({bad}, 10), Error) << "'" << bad << "'";
  }
}

// A model directory as `sllm pretrain` leaves it: config.json + model.safetensors +
// tokenizer.json, the model's vocabulary (512, "tiny") padded beyond the tokenizer's (277).
struct SavedModel {
  TempDir tmp;
  Tokenizer tok = ascii_tokenizer();
  fs::path dir = tmp.path / "run" / "ckpt-5";
  nn::Transformer model{testing::gpt2_config()};
  SavedModel() {
    randomize(model, 41);
    io::save_model(model, dir.string());
    tok.save(dir.string());
    std::ofstream(tmp.path / "run" / "latest") << "ckpt-5\n";
  }
};

TEST(TextSession, GeneratesFromARunDirectoryEndToEnd) {
  SavedModel saved;
  InferenceModel m = load_inference_model((saved.tmp.path / "run").string(), true);
  EXPECT_EQ(fs::path(m.dir), saved.dir);
  ASSERT_TRUE(m.tokenizer.has_value());

  SamplingConfig greedy;
  greedy.temperature = 0.0f;
  std::string text;
  int calls = 0;
  const TextGeneration g = generate_text(m, encode_prompt(m, "hello"), 12, greedy, [&](const std::string& piece) {
    text += piece;
    ++calls;
  });
  EXPECT_EQ(g.prompt_ids, saved.tok.encode("hello"));
  // The reference: greedy over the tokenizer's ids only, stopping at <|endoftext|>.
  const int32_t eot = *saved.tok.special_id("<|endoftext|>");
  EXPECT_EQ(g.new_ids, greedy_reference(saved.model, g.prompt_ids, 12, saved.tok.vocab_size(), eot));
  for (int32_t id : g.new_ids) EXPECT_LT(id, saved.tok.vocab_size());
  EXPECT_EQ(text, saved.tok.decode(g.new_ids));
  EXPECT_EQ(calls, static_cast<int>(g.new_ids.size()) + 1);  // one per token, one to finish

  // An empty prompt starts from <|endoftext|>; one beyond the context fails before generating.
  EXPECT_EQ(encode_prompt(m, ""), std::vector<int32_t>{eot});
  std::string long_prompt;
  for (int i = 0; i < 100; ++i) long_prompt += "cat ";
  EXPECT_THROW(encode_prompt(m, long_prompt), Error);
}

TEST(TextSession, ScoresTextThroughTheSavedTokenizer) {
  SavedModel saved;
  InferenceModel m = load_inference_model(saved.dir.string(), true);
  const auto ids = m.tokenizer->encode("the cat sat on the mat");
  const auto logprobs = score_logprobs(*m.model, ids);
  const auto direct = score_logprobs(saved.model, ids);  // the weights survived the round trip
  ASSERT_EQ(logprobs.size(), ids.size() - 1);
  for (size_t i = 0; i < logprobs.size(); ++i) EXPECT_EQ(logprobs[i], direct[i]);
  // --ids needs no tokenizer.
  EXPECT_FALSE(load_inference_model(saved.dir.string(), false).tokenizer.has_value());
}

TEST(TextSession, MissingOrMismatchedTokenizerIsAClearError) {
  TempDir tmp;
  nn::Transformer model(testing::gpt2_config());
  io::save_model(model, tmp.str());
  try {
    load_inference_model(tmp.str(), true);
    FAIL() << "a model directory without tokenizer.json was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no tokenizer.json"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(load_inference_model(tmp.str(), false));

  nn::ModelConfig small = testing::gpt2_config();
  small.vocab_size = 260;  // fewer ids than the 277-token tokenizer
  io::save_model(nn::Transformer(small), tmp.str());
  ascii_tokenizer().save(tmp.str());
  EXPECT_THROW(load_inference_model(tmp.str(), true), Error);
}

}  // namespace
}  // namespace sllm::infer
