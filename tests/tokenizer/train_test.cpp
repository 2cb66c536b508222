#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>

#include "core/error.h"
#include "tests/tokenizer/test_data.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/pretokenizer.h"

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

namespace sllm::tokenizer {
namespace {

// minbpe's loop, spelled out naively: recount every pair of every piece before each merge.
std::vector<std::pair<std::string, std::string>> naive_merges(const std::vector<std::string>& texts, int merges, const std::string& pattern) {
  std::vector<std::vector<std::string>> words;  // each piece as a list of token byte strings
  for (const auto& t : texts)
    split_pieces(parse_pattern(pattern), t, [&](std::string_view p) {
      std::vector<std::string> w;
      for (char c : p) w.emplace_back(1, c);
      words.push_back(w);
    });
  std::vector<std::pair<std::string, std::string>> out;
  for (int m = 0; m < merges; ++m) {
    std::map<std::pair<std::string, std::string>, int64_t> count;
    for (const auto& w : words)
      for (size_t k = 0; k + 1 < w.size(); ++k) ++count[{w[k], w[k + 1]}];
    if (count.empty()) break;
    // Highest count; ties to the pair made first... by id, which for byte tokens and earlier
    // merges is creation order: compare (id(left), id(right)).
    auto id_of = [&](const std::string& s) -> int64_t {
      if (s.size() == 1) return static_cast<unsigned char>(s[0]);
      for (size_t k = 0; k < out.size(); ++k)
        if (out[k].first + out[k].second == s) return 256 + static_cast<int64_t>(k);
      return -1;
    };
    std::pair<std::string, std::string> best;
    int64_t best_count = -1;
    for (const auto& [p, c] : count)
      if (c > best_count || (c == best_count && std::make_pair(id_of(p.first), id_of(p.second)) < std::make_pair(id_of(best.first), id_of(best.second))))
        best = p, best_count = c;
    out.push_back(best);
    for (auto& w : words) {
      std::vector<std::string> nw;
      for (size_t k = 0; k < w.size(); ++k) {
        if (k + 1 < w.size() && w[k] == best.first && w[k + 1] == best.second) nw.push_back(w[k] + w[k + 1]), ++k;
        else nw.push_back(w[k]);
      }
      w = nw;
    }
  }
  return out;
}

TEST(TokenizerTrain, IncrementalCountsMatchNaiveRecount) {
  // Repeated letters (aaaa, abab) stress the overlapping-merge bookkeeping.
  const std::vector<std::string> texts = {"aaaa abab ababab aaaaaaa banana bandana", "the cat sat on the mat, the end. aaa bbb",
                                          "abababab aabbaabb xyzzy xyzzy 1234 12 123", "abababab abababab abababab abababab abababab"};
  for (const char* p : {"gpt2", "cl100k"}) {
    const int merges = 40;
    const Tokenizer tok = Tokenizer::train(texts, 256 + merges + 1, p);
    const auto want = naive_merges(texts, merges, p);
    ASSERT_EQ(tok.num_merges(), static_cast<int64_t>(want.size())) << p;
    for (size_t k = 0; k < want.size(); ++k)
      EXPECT_EQ(tok.token_bytes(256 + static_cast<int32_t>(k)), want[k].first + want[k].second) << p << " merge " << k;
  }
}

}  // namespace
}  // namespace sllm::tokenizer
