// Preference data: the three line layouts rendered by both templates (expected ids built
// from the tokenizer's own encoding of each piece), the (2B, T) batch layout, every bad input
// of issue 11 item 8, and the loader's split and bit-exact resume.
#include "data/preference_dataset.h"

#include <algorithm>
#include <set>

#include <gtest/gtest.h>

#include "core/error.h"
#include "data/preference_loader.h"
#include "test_sft_common.h"

namespace sllm::data {
namespace {

using nlohmann::json;
using testing::chat_tokenizer;
using testing::join_lines;

std::vector<int32_t> cat(std::initializer_list<std::vector<int32_t>> parts) {
  std::vector<int32_t> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

std::string pair_line(const std::string& prompt, const std::string& chosen, const std::string& rejected) {
  return json{{"prompt", prompt}, {"chosen", chosen}, {"rejected", rejected}}.dump();
}

json messages(std::initializer_list<std::pair<const char*, const char*>> turns) {
  json out = json::array();
  for (const auto& [role, content] : turns) out.push_back({{"role", role}, {"content", content}});
  return out;
}

PreferenceOptions options(int64_t seq, SftTemplate t = SftTemplate::chatml, bool truncate = false) {
  PreferenceOptions o;
  o.chat_template = t;
  o.seq_len = seq;
  o.truncate = truncate;
  return o;
}

// The error text of `f`, or "" when it does not throw.
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return std::string(e.what());
  }
  return "";
}

TEST(PreferenceDataset, TemplateNoneIsPromptThenResponseThenEndOfText) {
  const auto& tok = chat_tokenizer();
  const int32_t eot = *tok.special_id("<|endoftext|>");
  const auto data = PreferenceDataset::parse(pair_line("What is two plus two?", " Four.", " The cat."), "m.jsonl", tok,
                                             options(64, SftTemplate::none));
  ASSERT_EQ(data.size(), 1);
  const PreferencePair& p = data.pairs()[0];
  EXPECT_EQ(p.prompt, tok.encode("What is two plus two?"));
  EXPECT_EQ(p.chosen, cat({tok.encode(" Four."), {eot}}));
  EXPECT_EQ(p.rejected, cat({tok.encode(" The cat."), {eot}}));
  EXPECT_EQ(data.lines(), std::vector<int64_t>{1});
}

TEST(PreferenceDataset, ChatmlPromptEndsWithTheAssistantHeaderAndResponsesWithImEnd) {
  const auto& tok = chat_tokenizer();
  const int32_t start = *tok.special_id("<|im_start|>"), end = *tok.special_id("<|im_end|>");
  const auto data = PreferenceDataset::parse(pair_line("How are you?", "Hello there!", "Be brief."), "m.jsonl", tok,
                                             options(64));
  const PreferencePair& p = data.pairs()[0];
  EXPECT_EQ(p.prompt, cat({{start}, tok.encode("user\n"), tok.encode("How are you?"), {end}, tok.encode("\n"), {start},
                           tok.encode("assistant\n")}));
  EXPECT_EQ(p.chosen, cat({tok.encode("Hello there!"), {end}}));
  EXPECT_EQ(p.rejected, cat({tok.encode("Be brief."), {end}}));
}

TEST(PreferenceDataset, ConversationalAndImplicitPromptFormsRenderLikeTheStandardOne) {
  const auto& tok = chat_tokenizer();
  const std::string standard = pair_line("How are you?", "Hello there!", "Be brief.");
  const std::string conversational = json{{"prompt", messages({{"user", "How are you?"}})},
                                          {"chosen", messages({{"assistant", "Hello there!"}})},
                                          {"rejected", messages({{"assistant", "Be brief."}})}}
                                         .dump();
  const std::string implicit = json{{"chosen", messages({{"user", "How are you?"}, {"assistant", "Hello there!"}})},
                                    {"rejected", messages({{"user", "How are you?"}, {"assistant", "Be brief."}})}}
                                   .dump();
  const auto data = PreferenceDataset::parse(join_lines({standard, conversational, implicit}), "m.jsonl", tok, options(64));
  ASSERT_EQ(data.size(), 3);
  for (int i = 1; i < 3; ++i) {
    EXPECT_EQ(data.pairs()[i].prompt, data.pairs()[0].prompt) << i;
    EXPECT_EQ(data.pairs()[i].chosen, data.pairs()[0].chosen) << i;
    EXPECT_EQ(data.pairs()[i].rejected, data.pairs()[0].rejected) << i;
  }
  // A system turn in the prompt lands in the prompt, not in either response.
  const std::string with_system = json{{"prompt", messages({{"system", "Be brief."}, {"user", "How are you?"}})},
                                       {"chosen", messages({{"assistant", "Four."}})},
                                       {"rejected", messages({{"assistant", "The cat."}})}}
                                      .dump();
  const auto sys = PreferenceDataset::parse(with_system, "m.jsonl", tok, options(64));
  EXPECT_EQ(sys.pairs()[0].chosen, cat({tok.encode("Four."), {*tok.special_id("<|im_end|>")}}));
}

TEST(PreferenceDataset, BatchRowsLabelsAndLastPositions) {
  const PreferencePair a{{1, 2}, {3, 4, 9}, {5, 9}};
  const PreferencePair b{{6}, {7, 9}, {8, 8, 8, 9}};
  const PreferenceBatch batch = make_preference_batch({&a, &b}, 6, /*pad_id=*/0);
  ASSERT_EQ(batch.ids.shape(), Shape({4, 6}));
  const std::vector<int32_t> ids(batch.ids.i32(), batch.ids.i32() + 24), labels(batch.labels.i32(), batch.labels.i32() + 24);
  constexpr int32_t X = kIgnoreIndex;
  // Rows: a+chosen, b+chosen, a+rejected, b+rejected.
  EXPECT_EQ(ids, (std::vector<int32_t>{1, 2, 3, 4, 9, 0, /**/ 6, 7, 9, 0, 0, 0, /**/ 1, 2, 5, 9, 0, 0, /**/ 6, 8, 8, 8, 9, 0}));
  EXPECT_EQ(labels, (std::vector<int32_t>{X, 3, 4, 9, X, X, /**/ 7, 9, X, X, X, X, /**/ X, 5, 9, X, X, X, /**/ 8, 8, 8, 9, X, X}));
  EXPECT_EQ(batch.last, (std::vector<int64_t>{4, 2, 3, 4}));
  EXPECT_EQ(batch.pairs, 2);
  EXPECT_EQ(batch.tokens, 5 + 3 + 4 + 5);
  EXPECT_NE(error_of([&] { make_preference_batch({&a}, 4, 0); }).find("does not fit T = 4"), std::string::npos);
}

TEST(PreferenceDataset, EqualResponsesAreSkippedAndCounted) {
  const auto& tok = chat_tokenizer();
  const auto data = PreferenceDataset::parse(
      join_lines({pair_line("Hi", "Four.", "Four."), pair_line("Hi", "Four.", "Five."), pair_line("Hi", "a", "a")}),
      "m.jsonl", tok, options(64));
  EXPECT_EQ(data.size(), 1);
  EXPECT_EQ(data.lines(), std::vector<int64_t>{2});
  EXPECT_EQ(data.summary().equal, 2);
  EXPECT_NE(describe(data.summary()).find("WARNING: skipped 2 pair(s)"), std::string::npos);
  // A file of nothing but equal pairs has nothing to train on: an error, not an empty run.
  EXPECT_NE(error_of([&] { PreferenceDataset::parse(pair_line("Hi", "a", "a"), "m.jsonl", tok, options(64)); })
                .find("no usable pair"),
            std::string::npos);
}

TEST(PreferenceDataset, EmptyPromptsAreErrorsNamingTheLine) {
  const auto& tok = chat_tokenizer();
  const std::string good = pair_line("Hi", "a", "b");
  for (const std::string& bad :
       {pair_line("", "a", "b"),
        json{{"prompt", json::array()}, {"chosen", messages({{"assistant", "a"}})}, {"rejected", messages({{"assistant", "b"}})}}.dump(),
        json{{"chosen", messages({{"user", "x"}, {"assistant", "a"}})}, {"rejected", messages({{"user", "y"}, {"assistant", "b"}})}}.dump()}) {
    const std::string e = error_of([&] { PreferenceDataset::parse(join_lines({good, bad}), "p.jsonl", tok, options(64)); });
    EXPECT_NE(e.find("p.jsonl:2"), std::string::npos) << e;
    EXPECT_NE(e.find("empty"), std::string::npos) << e;
    EXPECT_NE(e.find("HINT"), std::string::npos) << e;
  }
}

TEST(PreferenceDataset, OverlongPairsFailOrAreCutAndCounted) {
  const auto& tok = chat_tokenizer();
  const std::string long_answer = "The cat sat on the mat. The cat sat on the mat. The cat sat on the mat.";
  const std::string text = join_lines({pair_line("Hi", "a", "b"), pair_line("Hi", long_answer, "Four."),
                                       pair_line("Hi", long_answer, long_answer + " Four.")});
  const auto whole = PreferenceDataset::parse(text, "p.jsonl", tok, options(256));
  ASSERT_EQ(whole.size(), 3);
  const int64_t P = static_cast<int64_t>(whole.pairs()[1].prompt.size());
  const int64_t T = P + 4;  // room for 4 response tokens: both long pairs are too long
  const std::string e = error_of([&] { PreferenceDataset::parse(text, "p.jsonl", tok, options(T)); });
  EXPECT_NE(e.find("p.jsonl:2"), std::string::npos) << e;
  EXPECT_NE(e.find("2 pair(s)"), std::string::npos) << e;
  EXPECT_NE(e.find("--truncate"), std::string::npos) << e;

  const auto cut = PreferenceDataset::parse(text, "p.jsonl", tok, options(T, SftTemplate::chatml, true));
  // Line 2 is cut to 4 response tokens on the long side; line 3's two responses start alike,
  // so cutting them makes them equal: dropped, not kept as a pair with no preference.
  ASSERT_EQ(cut.size(), 2);
  EXPECT_EQ(cut.summary().truncated, 1);
  EXPECT_EQ(cut.summary().dropped, 1);
  const PreferencePair& p = cut.pairs()[1];
  EXPECT_EQ(p.chosen, std::vector<int32_t>(whole.pairs()[1].chosen.begin(), whole.pairs()[1].chosen.begin() + 4));
  EXPECT_EQ(p.rejected, whole.pairs()[1].rejected);  // short enough already
  EXPECT_LE(static_cast<int64_t>(p.prompt.size() + p.chosen.size()), T);
}

TEST(PreferenceDataset, MalformedLinesAreErrorsWithFileAndLine) {
  const auto& tok = chat_tokenizer();
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{\"prompt\": \"Hi\", \"chosen\": ", "not valid JSON"},
      {"[1, 2]", "not an object"},
      {json{{"prompt", "Hi"}, {"chosen", "a"}}.dump(), "no \"rejected\""},
      {json{{"prompt", "Hi"}, {"chosen", "a"}, {"rejected", messages({{"assistant", "b"}})}}.dump(), "both be strings"},
      {json{{"chosen", "a"}, {"rejected", "b"}}.dump(), "no \"prompt\""},
      {json{{"prompt", messages({{"user", "Hi"}})}, {"chosen", messages({{"user", "a"}})}, {"rejected", messages({{"assistant", "b"}})}}.dump(),
       "responses are assistant turns"},
      {json{{"prompt", messages({{"robot", "Hi"}})}, {"chosen", messages({{"assistant", "a"}})}, {"rejected", messages({{"assistant", "b"}})}}.dump(),
       "unknown role"},
  };
  for (const auto& [line, expected] : cases) {
    const std::string e =
        error_of([&] { PreferenceDataset::parse(join_lines({pair_line("Hi", "a", "b"), line}), "p.jsonl", tok, options(64)); });
    EXPECT_NE(e.find("p.jsonl:2"), std::string::npos) << line << " -> " << e;
    EXPECT_NE(e.find(expected), std::string::npos) << line << " -> " << e;
  }
  const std::string chat = json{{"prompt", messages({{"user", "Hi"}})}, {"chosen", messages({{"assistant", "a"}})},
                                {"rejected", messages({{"assistant", "b"}})}}
                               .dump();
  EXPECT_NE(error_of([&] { PreferenceDataset::parse(chat, "p.jsonl", tok, options(64, SftTemplate::none)); })
                .find("template none"),
            std::string::npos);
  EXPECT_NE(error_of([&] { PreferenceDataset::parse("\n  \n", "p.jsonl", tok, options(64)); }).find("no pairs"),
            std::string::npos);
}

PreferenceDataset numbered_pairs(int n) {
  std::vector<std::string> lines;
  for (int i = 0; i < n; ++i) lines.push_back(pair_line("Hi " + std::to_string(i), "Four.", "The cat " + std::to_string(i)));
  return PreferenceDataset::parse(join_lines(lines), "n.jsonl", chat_tokenizer(), options(64));
}

TEST(PreferenceLoader, SplitIsSeededDisjointAndCoversEveryPair) {
  const auto data = numbered_pairs(20);
  const SftSplit a = split_preferences(data, {0.25, 0}, 7), b = split_preferences(data, {0.25, 0}, 7),
                 c = split_preferences(data, {0.25, 0}, 8);
  EXPECT_EQ(a.val, b.val);
  EXPECT_NE(a.val, c.val);  // 5 of 20 drawn alike by two seeds: C(20,5) = 15504 to 1
  ASSERT_EQ(a.val.size(), 5u);
  std::set<int64_t> all(a.val.begin(), a.val.end());
  all.insert(a.train.begin(), a.train.end());
  EXPECT_EQ(all.size(), 20u);
  EXPECT_NE(error_of([&] { split_preferences(data, {0, 20}, 1); }).find("leaving none to train on"), std::string::npos);
}

TEST(PreferenceLoader, EveryEpochVisitsEachPairOnceAndResumeIsBitExact) {
  const auto data = numbered_pairs(7);
  std::vector<int64_t> all(7);
  for (int i = 0; i < 7; ++i) all[i] = i;
  PreferenceLoader loader(data, all, 3, 64, 42, 0);
  std::multiset<const PreferencePair*> seen;
  for (int i = 0; i < 7; ++i) {  // 21 pairs = 3 epochs
    for (const auto* p : loader.next_pairs()) seen.insert(p);
  }
  for (const auto& p : data.pairs()) EXPECT_EQ(seen.count(&p), 3u);

  PreferenceLoader straight(data, all, 3, 64, 42, 0), first(data, all, 3, 64, 42, 0);
  for (int i = 0; i < 4; ++i) straight.next(), first.next();
  const json state = json::parse(first.state().dump());  // through text, as a checkpoint stores it
  PreferenceLoader resumed(data, all, 3, 64, 42, 0);
  resumed.restore(state);
  for (int i = 0; i < 5; ++i) {
    const PreferenceBatch x = straight.next(), y = resumed.next();
    EXPECT_TRUE(std::equal(x.ids.i32(), x.ids.i32() + x.ids.numel(), y.ids.i32())) << i;
  }
  // A state saved on other data, or with another seed, is refused.
  const auto other = numbered_pairs(8);
  std::vector<int64_t> seven(all);
  PreferenceLoader on_other(other, seven, 3, 64, 42, 0);
  EXPECT_NE(error_of([&] { on_other.restore(state); }).find("other data"), std::string::npos);
  PreferenceLoader other_seed(data, all, 3, 64, 43, 0);
  EXPECT_NE(error_of([&] { other_seed.restore(state); }).find("seed"), std::string::npos);
}

}  // namespace
}  // namespace sllm::data
