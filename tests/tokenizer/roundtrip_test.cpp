// decode(encode(x)) == x on random Unicode and random byte strings, for every reference
// encoding and a freshly trained tokenizer; the two BPE merge algorithms agree.
#include <climits>

#include "core/error.h"
#include "core/rng.h"
#include "tests/tokenizer/test_data.h"
#include "tokenizer/tokenizer_model.h"
#include "tokenizer/utf8.h"

namespace sllm::tokenizer {
namespace {

// Code points drawn from blocks that exercise every scanner branch: ASCII (letters, digits,
// punctuation, whitespace), Latin-1, combining marks, Greek, CJK, Hangul, emoji, and the
// odd spaces (U+0085, U+00A0, U+3000).
std::string random_unicode(Rng& rng, int chars) {
  static const int32_t ranges[][2] = {{0x20, 0x7E}, {0x20, 0x7E}, {0x20, 0x7E}, {'\n', '\r'}, {0xA0, 0xFF}, {0x300, 0x36F},
                                      {0x391, 0x3C9}, {0x4E00, 0x4FFF}, {0xAC00, 0xAD00}, {0x1F600, 0x1F64F}, {0x85, 0x85}, {0x3000, 0x3000}};
  std::string s;
  for (int k = 0; k < chars; ++k) {
    const auto& r = ranges[rng.below(std::size(ranges))];
    utf8_append(s, r[0] + static_cast<int32_t>(rng.below(static_cast<uint64_t>(r[1] - r[0] + 1))));
  }
  return s;
}

std::string random_bytes(Rng& rng, int n) {
  std::string s;
  for (int k = 0; k < n; ++k) s += static_cast<char>(rng.below(256));
  return s;
}

void check_roundtrip(const Tokenizer& tok, const std::string& name) {
  Rng rng(1234);
  for (int trial = 0; trial < 200; ++trial) {
    const std::string u = random_unicode(rng, 1 + static_cast<int>(rng.below(80)));
    const auto ids = tok.encode(u);
    ASSERT_EQ(tok.decode(ids), u) << name << " unicode trial " << trial;
    const std::string b = random_bytes(rng, 1 + static_cast<int>(rng.below(80)));
    ASSERT_EQ(tok.decode_bytes(tok.encode(b)), b) << name << " bytes trial " << trial;
    ASSERT_EQ(tok.decode(tok.encode(b)), utf8_sanitize(b)) << name;
  }
}

TEST(TokenizerRoundTrip, ReferenceEncodings) {
  SLLM_REQUIRE_SHARED_TOKENIZERS();
  for (const char* name : {"gpt2", "cl100k_base", "o200k_base"}) check_roundtrip(testing::reference(name), name);
}

TEST(TokenizerRoundTrip, TrainedTokenizerEveryPattern) {
  Rng rng(7);
  std::vector<std::string> texts;
  for (int k = 0; k < 50; ++k) texts.push_back(random_unicode(rng, 200));
  for (const char* p : {"gpt2", "cl100k", "o200k", "digits"}) check_roundtrip(Tokenizer::train(texts, 600, p), p);
}

TEST(TokenizerRoundTrip, HeapAndArrayMergesAgree) {
  SLLM_REQUIRE_SHARED_TOKENIZERS();
  Rng rng(99);
  for (const char* name : {"gpt2", "cl100k_base"}) {
    const Model& m = testing::reference(name).model();
    for (int trial = 0; trial < 100; ++trial) {
      // Long single pieces: letters only, or a repeated unit that makes many equal-rank ties.
      std::string piece = trial % 2 ? std::string(1 + rng.below(200), "ab"[trial % 4 / 2]) : std::string();
      while (piece.size() < 150) piece += static_cast<char>('a' + rng.below(26));
      std::vector<int32_t> array_ids, heap_ids;
      bpe_merge(m, piece, array_ids, INT_MAX, false);
      bpe_merge(m, piece, heap_ids, INT_MAX, true);
      ASSERT_EQ(array_ids, heap_ids) << name << ": " << piece;
    }
  }
}

TEST(TokenizerRoundTrip, DecodeReplacesInvalidUtf8AtTheBoundaryOnly) {
  // Maximal subparts (Unicode 3.9): "\xE2\x82" is one truncated sequence -> one U+FFFD.
  EXPECT_EQ(utf8_sanitize("a\xE2\x82z"), "a\xEF\xBF\xBDz");
  EXPECT_EQ(utf8_sanitize("\xFF\xFE"), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(utf8_sanitize("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // a surrogate: each byte
  SLLM_REQUIRE_SHARED_TOKENIZERS();
  const Tokenizer& tok = testing::reference("cl100k_base");
  // A character split across tokens decodes whole once both tokens are joined.
  const std::string euro = "\xE2\x82\xAC";
  std::vector<int32_t> ids;
  for (char c : euro) ids.push_back(tok.encode(std::string(1, c))[0]);
  EXPECT_EQ(tok.decode(ids), euro);
  EXPECT_EQ(tok.decode({ids[0], ids[1]}), "\xEF\xBF\xBD");
}

TEST(TokenizerRoundTrip, BadIdIsAnError) {
  SLLM_REQUIRE_SHARED_TOKENIZERS();
  const Tokenizer& tok = testing::reference("cl100k_base");
  EXPECT_THROW(tok.decode({-1}), sllm::Error);
  EXPECT_THROW(tok.decode({100256}), sllm::Error);  // a hole between the ranks and the specials
  EXPECT_THROW(tok.decode({1 << 30}), sllm::Error);
}

}  // namespace
}  // namespace sllm::tokenizer
