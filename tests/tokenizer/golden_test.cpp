// Exact id parity with js-tiktoken on every row of ../shared/data/tokenizers/golden.jsonl.
#include <fstream>

#include <nlohmann/json.hpp>

#include "tests/tokenizer/test_data.h"

namespace sllm::tokenizer {
namespace {

using testing::reference;
using testing::shared_dir;

void check_golden(const std::string& encoding) {
  std::ifstream in(shared_dir() + "/golden.jsonl");
  ASSERT_TRUE(in.good());
  const Tokenizer& tok = reference(encoding);
  std::string line;
  int rows = 0;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const auto row = nlohmann::json::parse(line);
    const std::string text = row["text"].get<std::string>();
    const auto want = row[encoding].get<std::vector<int32_t>>();
    EXPECT_EQ(tok.encode(text), want) << encoding << " row " << rows << ": " << text;
    EXPECT_EQ(tok.decode_bytes(want), text) << encoding << " row " << rows;
    ++rows;
  }
  EXPECT_GT(rows, 0);
}

TEST(TokenizerGolden, Gpt2MatchesTiktoken) {
  SLLM_REQUIRE_SHARED_TOKENIZERS();
  check_golden("gpt2");
}
TEST(TokenizerGolden, Cl100kMatchesTiktoken) {
  SLLM_REQUIRE_SHARED_TOKENIZERS();
  check_golden("cl100k_base");
}
TEST(TokenizerGolden, O200kMatchesTiktoken) {
  SLLM_REQUIRE_SHARED_TOKENIZERS();
  check_golden("o200k_base");
}

TEST(TokenizerGolden, VocabSizesAndSpecials) {
  SLLM_REQUIRE_SHARED_TOKENIZERS();
  EXPECT_EQ(reference("gpt2").vocab_size(), 50257);
  EXPECT_EQ(reference("gpt2").special_id("<|endoftext|>"), 50256);
  EXPECT_EQ(reference("gpt2").num_merges(), 50000);
  EXPECT_EQ(reference("cl100k_base").special_id("<|endoftext|>"), 100257);
  EXPECT_EQ(reference("cl100k_base").vocab_size(), 100277);  // <|endofprompt|> = 100276 is the largest id
  EXPECT_EQ(reference("o200k_base").special_id("<|endoftext|>"), 199999);
  EXPECT_FALSE(reference("o200k_base").special_id("<|im_start|>").has_value());
}

TEST(TokenizerGolden, SpecialTokensArePlainTextUnlessAllowed) {
  SLLM_REQUIRE_SHARED_TOKENIZERS();
  const Tokenizer& tok = reference("gpt2");
  const std::string text = "a<|endoftext|>b";
  const auto plain = tok.encode(text);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 50256), 0);
  EXPECT_EQ(tok.decode(plain), text);
  const auto allowed = tok.encode(text, true);
  // "a", <|endoftext|>, "b": GPT-2 ids of "a" and "b" are 64 and 65 (byte order of printable ASCII).
  EXPECT_EQ(allowed, (std::vector<int32_t>{64, 50256, 65}));
  EXPECT_EQ(tok.decode(allowed), text);
}

}  // namespace
}  // namespace sllm::tokenizer
