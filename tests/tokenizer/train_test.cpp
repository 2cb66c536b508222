#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "core/error.h"
#include "tests/tokenizer/test_data.h"
#include "tokenizer/chat_template.h"

namespace sllm::tokenizer {
namespace {

namespace fs = std::filesystem;

std::string temp_dir(const std::string& name) {
  const fs::path p = fs::temp_directory_path() / ("sllm_tok_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  return p.string();
}

TEST(TokenizerTrain, WikipediaExample) {
  // https://en.wikipedia.org/wiki/Byte_pair_encoding: "aaabdaaabac", 3 merges ->
  // aa=256, then ab / 256a tie (count 2) and 256+ab or 256a+b = "aaab" = 258: X d X a c.
  const Tokenizer tok = Tokenizer::train({"aaabdaaabac"}, 256 + 3 + 1, "gpt2");
  EXPECT_EQ(tok.num_merges(), 3);
  EXPECT_EQ(tok.encode("aaabdaaabac"), (std::vector<int32_t>{258, 100, 258, 97, 99}));
  EXPECT_EQ(tok.token_bytes(256), "aa");
  EXPECT_EQ(tok.token_bytes(258), "aaab");
  EXPECT_EQ(tok.special_id("<|endoftext|>"), 259);
  EXPECT_EQ(tok.vocab_size(), 260);
}

TEST(TokenizerTrain, CountsRespectPieceBoundaries) {
  // "ab" appears 3 times inside words but "b a" spans a space: with the gpt2 split the pair
  // (b, ' ') never forms, so the first merge is ('a','b') and the next ' ' + 'ab'.
  const Tokenizer tok = Tokenizer::train({"ab ab ab"}, 256 + 2 + 1, "gpt2");
  EXPECT_EQ(tok.token_bytes(256), "ab");
  EXPECT_EQ(tok.token_bytes(257), " ab");
  EXPECT_EQ(tok.encode("ab ab"), (std::vector<int32_t>{256, 257}));
}

TEST(TokenizerTrain, SaveReloadEncodesIdentically) {
  std::vector<std::string> texts;
  for (int k = 0; k < 40; ++k)
    texts.push_back("The year " + std::to_string(1900 + k) + " saw " + std::to_string(k * 37) +
                    " people say \"it's fine\"; code: for (i = 0; i < n; ++i) {}\n  \xE4\xBD\xA0\xE5\xA5\xBD \xF0\x9F\x98\x80!\n");
  for (const char* p : {"gpt2", "cl100k", "o200k", "digits"}) {
    const Tokenizer tok = Tokenizer::train(texts, 400, p);
    const std::string dir = temp_dir(std::string("save_") + p);
    tok.save(dir);
    const Tokenizer back = Tokenizer::load(dir);
    EXPECT_EQ(back.pattern_name(), tok.pattern_name());
    EXPECT_EQ(back.vocab_size(), tok.vocab_size());
    EXPECT_EQ(back.special_id("<|endoftext|>"), tok.special_id("<|endoftext|>"));
    for (const auto& t : texts) EXPECT_EQ(back.encode(t), tok.encode(t)) << p;
    const std::string probe = "Unseen text 12345 with <|endoftext|> and tabs\t\there.";
    EXPECT_EQ(back.encode(probe, true), tok.encode(probe, true)) << p;
    EXPECT_EQ(back.to_hf_json(), tok.to_hf_json()) << p;
    fs::remove_all(dir);
  }
}

TEST(TokenizerTrain, ReferenceSavesAsTokenizerJson) {
  SLLM_REQUIRE_SHARED_TOKENIZERS();
  const Tokenizer& gpt2 = testing::reference("gpt2");
  const std::string dir = temp_dir("gpt2_json");
  gpt2.save(dir);
  const Tokenizer back = Tokenizer::load(dir + "/tokenizer.json");
  const std::string text = "Hello world! We've 12345 tokens\n\n  here.";
  EXPECT_EQ(back.encode(text), gpt2.encode(text));
  EXPECT_EQ(back.special_id("<|endoftext|>"), 50256);
  fs::remove_all(dir);
}

TEST(TokenizerTrain, BadArgumentsAreErrors) {
  EXPECT_THROW(Tokenizer::train({"abc"}, 100, "gpt2"), sllm::Error);       // below 256 + specials
  EXPECT_THROW(Tokenizer::train({"abc"}, 300, "gpt9"), sllm::Error);       // unknown pattern
  EXPECT_THROW(Tokenizer::train({"abc"}, 300, "gpt2", {"<|a|>", "<|a|>"}), sllm::Error);
  // Asking for more merges than the text has pairs stops early: still a valid tokenizer.
  const Tokenizer tok = Tokenizer::train({"abc"}, 1000, "gpt2");
  EXPECT_EQ(tok.num_merges(), 2);
  EXPECT_EQ(tok.decode(tok.encode("abcabc")), "abcabc");
}

TEST(ChatTemplate, RendersChatMlWithAssistantMask) {
  const Tokenizer tok = Tokenizer::train({"hello there user assistant system"}, 300, "gpt2",
                                         {"<|endoftext|>", "<|im_start|>", "<|im_end|>"});
  const int32_t start = *tok.special_id("<|im_start|>"), end = *tok.special_id("<|im_end|>");
  const std::vector<ChatMessage> msgs = {{"user", "hi"}, {"assistant", "hello <|im_end|>"}};
  const ChatEncoding enc = render_chatml(tok, msgs);
  ASSERT_EQ(enc.ids.size(), enc.assistant_mask.size());
  EXPECT_EQ(tok.decode(enc.ids),
            "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nhello <|im_end|><|im_end|>\n");
  // The text under the mask is exactly the assistant content plus its closing <|im_end|>.
  std::vector<int32_t> masked;
  for (size_t k = 0; k < enc.ids.size(); ++k)
    if (enc.assistant_mask[k]) masked.push_back(enc.ids[k]);
  EXPECT_EQ(tok.decode(masked), "hello <|im_end|><|im_end|>");
  EXPECT_EQ(std::count(enc.ids.begin(), enc.ids.end(), start), 2);
  EXPECT_EQ(std::count(enc.ids.begin(), enc.ids.end(), end), 2);  // the typed one stays plain text
  const ChatEncoding gen = render_chatml(tok, {{"user", "hi"}}, true);
  EXPECT_EQ(tok.decode(gen.ids), "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(std::count(gen.assistant_mask.begin(), gen.assistant_mask.end(), 1), 0);
}

TEST(ChatTemplate, NeedsChatSpecialTokens) {
  const Tokenizer tok = Tokenizer::train({"abc"}, 300, "gpt2");
  EXPECT_THROW(render_chatml(tok, {{"user", "hi"}}), sllm::Error);
}

}  // namespace
}  // namespace sllm::tokenizer
