// The hand scanners against pieces worked out by hand from each regex (the comments say
// which alternative takes each piece).
#include <gtest/gtest.h>

#include "core/error.h"
#include "tokenizer/pretokenizer.h"

namespace sllm::tokenizer {
namespace {

std::vector<std::string> pieces(const std::string& pattern, const std::string& text) {
  std::vector<std::string> out;
  split_pieces(parse_pattern(pattern), text, [&](std::string_view p) { out.emplace_back(p); });
  return out;
}
using V = std::vector<std::string>;

TEST(Pretokenizer, Gpt2) {
  EXPECT_EQ(pieces("gpt2", "Hello world!"), (V{"Hello", " world", "!"}));
  EXPECT_EQ(pieces("gpt2", "I'm we'll THEY'RE"), (V{"I", "'m", " we", "'ll", " THEY", "'", "RE"}));  // contractions are lowercase only
  EXPECT_EQ(pieces("gpt2", "a   b"), (V{"a", "  ", " b"}));  // \s+(?!\S) leaves the last space to " b"
  EXPECT_EQ(pieces("gpt2", "x 1234 ...\n"), (V{"x", " 1234", " ...", "\n"}));
  EXPECT_EQ(pieces("gpt2", "end  "), (V{"end", "  "}));  // trailing whitespace is one piece
  EXPECT_EQ(pieces("gpt2", "a\n\nb"), (V{"a", "\n", "\n", "b"}));  // "\n\n" then b: run minus its last char
}

TEST(Pretokenizer, Cl100k) {
  EXPECT_EQ(pieces("cl100k", "Hello world!"), (V{"Hello", " world", "!"}));
  EXPECT_EQ(pieces("cl100k", "THEY'RE"), (V{"THEY", "'RE"}));                 // (?i:...) contractions
  EXPECT_EQ(pieces("cl100k", "12345 x"), (V{"123", "45", " x"}));             // \p{N}{1,3}
  EXPECT_EQ(pieces("cl100k", " 99"), (V{" ", "99"}));                         // no space before digits
  EXPECT_EQ(pieces("cl100k", "\tfoo"), (V{"\tfoo"}));                         // [^\r\n\p{L}\p{N}]?\p{L}+
  EXPECT_EQ(pieces("cl100k", "a \n\n  b"), (V{"a", " \n\n", " ", " b"}));     // \s*[\r\n]+ then \s+(?!\S)
  EXPECT_EQ(pieces("cl100k", "x);\n}"), (V{"x", ");\n", "}"}));               // punctuation keeps its newlines
}

TEST(Pretokenizer, O200k) {
  EXPECT_EQ(pieces("o200k", "HelloWorld"), (V{"Hello", "World"}));            // case change splits words
  EXPECT_EQ(pieces("o200k", "HELLO world"), (V{"HELLO", " world"}));
  EXPECT_EQ(pieces("o200k", "they're"), (V{"they're"}));                      // contraction joins the word
  EXPECT_EQ(pieces("o200k", "a//b"), (V{"a", "//", "b"}));
  EXPECT_EQ(pieces("o200k", "x);\n/"), (V{"x", ");\n/"}));                    // [\r\n/]* after punctuation
  EXPECT_EQ(pieces("o200k", "1234"), (V{"123", "4"}));
}

TEST(Pretokenizer, DigitsSplitsEveryDigit) {
  EXPECT_EQ(pieces("digits", "abc 2024!"), (V{"abc", " ", "2", "0", "2", "4", "!"}));
  EXPECT_EQ(pieces("digits", "x  1"), (V{"x", "  ", "1"}));  // the regex sees "x  " alone: trailing run
}

TEST(Pretokenizer, UnicodeClassesFromIcu) {
  // U+00E9 (é, Ll) is a letter; U+0663 (Arabic-Indic three, Nd) a number; U+3000 a space.
  EXPECT_EQ(pieces("gpt2", "caf\xC3\xA9 \xD9\xA3"), (V{"caf\xC3\xA9", " \xD9\xA3"}));
  EXPECT_EQ(pieces("cl100k", "a\xE3\x80\x80" "b"), (V{"a", "\xE3\x80\x80" "b"}));
}

TEST(Pretokenizer, InvalidUtf8IsOtherAndLossless) {
  const std::string text = "ab\xFF\xC3(cd \xE2\x82";
  for (const char* p : {"gpt2", "cl100k", "o200k", "digits"}) {
    std::string joined;
    for (const auto& s : pieces(p, text)) joined += s;
    EXPECT_EQ(joined, text) << p;
  }
  EXPECT_EQ(pieces("gpt2", "ab\xFF\xC3(cd"), (V{"ab", "\xFF\xC3(", "cd"}));
}

TEST(Pretokenizer, UnknownNameIsAnError) {
  EXPECT_THROW(parse_pattern("gpt5"), sllm::Error);
  EXPECT_EQ(parse_pattern("r50k_base"), Pattern::Gpt2);
  EXPECT_EQ(parse_pattern("llama3"), Pattern::Cl100k);
}

}  // namespace
}  // namespace sllm::tokenizer
