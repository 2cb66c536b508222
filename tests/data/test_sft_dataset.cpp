// SFT rendering: ids and labels of both templates (expected tokens built from the tokenizer's
// own encoding of each piece), the shift, masking, truncation counts and every bad input.
#include "data/sft_dataset.h"

#include <algorithm>

#include <gtest/gtest.h>

#include "core/error.h"
#include "core/rng.h"
#include "test_dir.h"
#include "test_sft_common.h"

namespace sllm::data {
namespace {

using testing::chat_line;
using testing::chat_tokenizer;
using testing::completion_line;
using testing::join_lines;
using testing::options;

constexpr int32_t X = kIgnoreIndex;

// Appends `piece` to ids, and to labels either itself (trained) or X.
void add(std::vector<int32_t>& ids, std::vector<int32_t>& labels, const std::vector<int32_t>& piece, bool trained) {
  ids.insert(ids.end(), piece.begin(), piece.end());
  for (int32_t id : piece) labels.push_back(trained ? id : X);
}

TEST(SftDataset, ChatmlRendersTurnsAndLabelsOnlyTheAssistant) {
  const auto& tok = chat_tokenizer();
  const int32_t start = *tok.special_id("<|im_start|>"), end = *tok.special_id("<|im_end|>");
  std::vector<int32_t> ids, labels;
  const std::vector<std::pair<std::string, std::string>> turns = {{"system", "Be brief."},
                                                                  {"user", "How are you?"},
                                                                  {"assistant", "Hello there!"},
                                                                  {"user", "Two plus two?"},
                                                                  {"assistant", "Four."}};
  for (const auto& [role, content] : turns) {
    const bool trained = role == "assistant";
    add(ids, labels, {start}, false);
    add(ids, labels, tok.encode(role + "\n"), false);
    add(ids, labels, tok.encode(content), trained);
    add(ids, labels, {end}, trained);
    add(ids, labels, tok.encode("\n"), false);
  }
  const auto data = SftDataset::parse(join_lines({chat_line(turns)}), "mem.jsonl", tok, options(256));
  ASSERT_EQ(data.size(), 1);
  const SftExample& ex = data.examples()[0];
  EXPECT_EQ(ex.line, 1);
  // The shift: inputs[t] = ids[t], targets[t] = labels[t + 1].
  EXPECT_EQ(ex.inputs, std::vector<int32_t>(ids.begin(), ids.end() - 1));
  EXPECT_EQ(ex.targets, std::vector<int32_t>(labels.begin() + 1, labels.end()));
  EXPECT_EQ(tok.decode(ids),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHow are you?<|im_end|>\n"
            "<|im_start|>assistant\nHello there!<|im_end|>\n<|im_start|>user\nTwo plus two?<|im_end|>\n"
            "<|im_start|>assistant\nFour.<|im_end|>\n");
  std::vector<int32_t> trained;
  for (int32_t t : ex.targets)
    if (t != X) trained.push_back(t);
  EXPECT_EQ(tok.decode(trained), "Hello there!<|im_end|>Four.<|im_end|>");
  const auto& s = data.summary();
  EXPECT_EQ(s.examples, 1);
  EXPECT_EQ(s.tokens, static_cast<int64_t>(ids.size()) - 1);
  EXPECT_EQ(s.label_tokens, static_cast<int64_t>(trained.size()));
  EXPECT_EQ(s.truncated, 0);
  EXPECT_EQ(s.dropped, 0);
}

TEST(SftDataset, ChatmlRendersPromptCompletionAsUserThenAssistant) {
  const auto& tok = chat_tokenizer();
  const auto a = SftDataset::parse(completion_line("How are you?", "Hello there!"), "a", tok, options(64));
  const auto b =
      SftDataset::parse(chat_line({{"user", "How are you?"}, {"assistant", "Hello there!"}}), "b", tok, options(64));
  EXPECT_EQ(a.examples()[0].inputs, b.examples()[0].inputs);
  EXPECT_EQ(a.examples()[0].targets, b.examples()[0].targets);
}

TEST(SftDataset, TemplateNoneIsPromptThenCompletionThenEndOfText) {
  const auto& tok = chat_tokenizer();
  const int32_t eot = *tok.special_id("<|endoftext|>");
  std::vector<int32_t> ids, labels;
  add(ids, labels, tok.encode("What is two plus two?"), false);
  add(ids, labels, tok.encode(" Four."), true);
  add(ids, labels, {eot}, true);
  const auto data = SftDataset::parse(completion_line("What is two plus two?", " Four."), "p.jsonl", tok,
                                      options(64, SftTemplate::none));
  const SftExample& ex = data.examples()[0];
  EXPECT_EQ(ex.inputs, std::vector<int32_t>(ids.begin(), ids.end() - 1));
  EXPECT_EQ(ex.targets, std::vector<int32_t>(labels.begin() + 1, labels.end()));
  EXPECT_EQ(data.summary().label_tokens, static_cast<int64_t>(tok.encode(" Four.").size()) + 1);
}

TEST(SftDataset, TemplateNoneWithoutEndOfTextTokenEndsAtTheCompletion) {
  const auto tok = tokenizer::Tokenizer::train({"What is two plus two? Four."}, 256 + 10, "gpt2", {});
  std::vector<int32_t> ids, labels;
  add(ids, labels, tok.encode("two plus two?"), false);
  add(ids, labels, tok.encode(" Four."), true);
  const auto data =
      SftDataset::parse(completion_line("two plus two?", " Four."), "p", tok, options(64, SftTemplate::none));
  EXPECT_EQ(data.examples()[0].inputs, std::vector<int32_t>(ids.begin(), ids.end() - 1));
  EXPECT_EQ(data.examples()[0].targets, std::vector<int32_t>(labels.begin() + 1, labels.end()));
}

// Masking: a different system or user message (of the same token length, so positions line
// up) changes the inputs but leaves every target as it was.
TEST(SftDataset, ChangingANonAssistantTokenLeavesEveryLabelUnchanged) {
  const auto& tok = chat_tokenizer();
  ASSERT_EQ(tok.encode("q").size(), 1u);
  ASSERT_EQ(tok.encode("z").size(), 1u);
  auto render = [&](const std::string& system, const std::string& user) {
    return SftDataset::parse(chat_line({{"system", system}, {"user", user}, {"assistant", "Four."}}), "m", tok,
                             options(64))
        .examples()[0];
  };
  const SftExample base = render("q", "q"), other_user = render("q", "z"), other_system = render("z", "q");
  EXPECT_NE(base.inputs, other_user.inputs);
  EXPECT_NE(base.inputs, other_system.inputs);
  EXPECT_EQ(base.targets, other_user.targets);
  EXPECT_EQ(base.targets, other_system.targets);
}

TEST(SftDataset, BlankLinesAreSkippedAndLinesKeepTheirNumbers) {
  const auto& tok = chat_tokenizer();
  const std::string text = "\n" + completion_line("a", "b") + "\r\n  \n" + completion_line("c", "d") + "\n";
  const auto data = SftDataset::parse(text, "m", tok, options(64));
  ASSERT_EQ(data.size(), 2);
  EXPECT_EQ(data.examples()[0].line, 2);
  EXPECT_EQ(data.examples()[1].line, 4);
}

// Example lengths in ids: a short one, one over T + 1 whose assistant survives the cut, and
// one whose whole assistant turn lies past T + 1 (dropped).
TEST(SftDataset, TruncationCutsToSeqPlusOneAndCountsTruncatedAndDropped) {
  const auto& tok = chat_tokenizer();
  const std::string long_text = "The cat sat on the mat. The cat sat on the mat. The cat sat on the mat.";
  const std::string text = join_lines({
      completion_line("Hi", "Four."),                                              // short
      chat_line({{"user", "Hi"}, {"assistant", long_text}}),                       // truncated, kept
      chat_line({{"system", long_text}, {"user", "Hi"}, {"assistant", "Four."}}),  // dropped
  });
  // T leaves the short example room to spare; the long text alone is longer than T + 1.
  const auto short_one = SftDataset::parse(completion_line("Hi", "Four."), "m", tok, options(256));
  const int64_t T = static_cast<int64_t>(short_one.examples()[0].inputs.size()) + 2;
  ASSERT_GT(static_cast<int64_t>(tok.encode(long_text).size()), T + 1);
  const auto data = SftDataset::parse(text, "t.jsonl", tok, options(T, SftTemplate::chatml, /*truncate=*/true));
  const auto& s = data.summary();
  EXPECT_EQ(s.examples, 2);
  EXPECT_EQ(s.truncated, 1);
  EXPECT_EQ(s.dropped, 1);
  ASSERT_EQ(data.size(), 2);
  EXPECT_EQ(data.examples()[1].line, 2);
  EXPECT_EQ(static_cast<int64_t>(data.examples()[1].inputs.size()), T);
  int64_t tokens = 0, labels = 0;
  for (const auto& ex : data.examples()) {
    tokens += static_cast<int64_t>(ex.inputs.size());
    labels += std::count_if(ex.targets.begin(), ex.targets.end(), [](int32_t t) { return t != X; });
  }
  EXPECT_EQ(s.tokens, tokens);
  EXPECT_EQ(s.label_tokens, labels);
  EXPECT_EQ(describe(s), "examples 2, truncated 1, dropped 1, tokens " + std::to_string(tokens) + ", label tokens " +
                             std::to_string(labels));

  // Without truncate: an error at the first overlong line, counting both.
  try {
    SftDataset::parse(text, "t.jsonl", tok, options(T));
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("t.jsonl:2:"), std::string::npos) << what;
    EXPECT_NE(what.find("2 example(s)"), std::string::npos) << what;
    EXPECT_NE(what.find("---> HINT"), std::string::npos) << what;
    EXPECT_NE(what.find("--truncate"), std::string::npos) << what;
  }
}

TEST(SftDataset, AnExampleOfExactlySeqPlusOneIdsFits) {
  const auto& tok = chat_tokenizer();
  const std::string line = completion_line("How are you?", "Hello there!");
  const auto n = static_cast<int64_t>(SftDataset::parse(line, "m", tok, options(256)).examples()[0].inputs.size()) + 1;
  const auto exact = SftDataset::parse(line, "m", tok, options(n - 1));
  EXPECT_EQ(exact.summary().truncated, 0);
  EXPECT_THROW(SftDataset::parse(line, "m", tok, options(n - 2)), Error);
}

TEST(SftDataset, TemplateNames) {
  EXPECT_EQ(parse_sft_template("chatml"), SftTemplate::chatml);
  EXPECT_EQ(parse_sft_template("none"), SftTemplate::none);
  EXPECT_STREQ(sft_template_name(SftTemplate::none), "none");
  EXPECT_THROW(parse_sft_template("llama3"), Error);
}

// ---- bad input: each error names the file and line, with a hint, and load reads only.

std::string load_error(const std::string& body, SftTemplate t = SftTemplate::chatml) {
  testing::TempDir dir;
  const std::string path = dir.path + "/bad.jsonl";
  testing::write_text(path, body);
  try {
    SftDataset::load(path, chat_tokenizer(), options(64, t));
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("---> HINT: "), std::string::npos) << e.what();
    std::string what = e.what();
    const auto at = what.find(path);
    EXPECT_NE(at, std::string::npos) << what;
    if (at != std::string::npos) what.replace(at, path.size(), "bad.jsonl");
    return what;
  }
  ADD_FAILURE() << "no error for:\n" << body;
  return "";
}

const std::string kGood = completion_line("Hi", "Hello there!");

void expect_error_at_line_3(const std::string& bad_line, const std::string& words,
                            SftTemplate t = SftTemplate::chatml) {
  const std::string what = load_error(join_lines({kGood, kGood, bad_line, kGood}), t);
  EXPECT_EQ(what.rfind("bad.jsonl:3: ", 0), 0u) << what;
  EXPECT_NE(what.find(words), std::string::npos) << what;
}

TEST(SftDatasetBadInput, JsonSyntaxError) { expect_error_at_line_3("{\"prompt\": \"a\",", "not valid JSON"); }

TEST(SftDatasetBadInput, LineInNeitherFormat) {
  expect_error_at_line_3("{\"text\": \"a story\"}", "neither \"messages\" nor");
  expect_error_at_line_3("[1, 2]", "not an object");
  expect_error_at_line_3("{\"prompt\": \"a\"}", "no string \"completion\"");
  expect_error_at_line_3("{\"prompt\": 1, \"completion\": \"b\"}", "no string \"prompt\"");
  expect_error_at_line_3(R"({"messages": [], "prompt": "a"})", "both");
  expect_error_at_line_3(R"({"messages": []})", "non-empty array");
  expect_error_at_line_3(R"({"messages": [{"role": "user"}]})", "no string \"content\"");
  expect_error_at_line_3(R"({"messages": ["hi"]})", "message 0 is not a JSON object");
}

TEST(SftDatasetBadInput, UnknownRole) {
  expect_error_at_line_3(chat_line({{"user", "Hi"}, {"bot", "Hello"}}), "message 1 has unknown role \"bot\"");
}

TEST(SftDatasetBadInput, ConversationWithoutAssistantTurn) {
  expect_error_at_line_3(chat_line({{"system", "Be brief."}, {"user", "Hi"}}), "no assistant turn");
}

TEST(SftDatasetBadInput, ChatLineUnderTemplateNone) {
  expect_error_at_line_3(chat_line({{"user", "Hi"}, {"assistant", "Hello"}}), "template none", SftTemplate::none);
}

TEST(SftDatasetBadInput, NothingToTrainOn) {
  const auto tok = tokenizer::Tokenizer::train({"abc"}, 256 + 1, "gpt2", {});  // no <|endoftext|>
  try {
    SftDataset::parse(join_lines({completion_line("a", "b"), completion_line("a", "")}), "m.jsonl", tok,
                      options(8, SftTemplate::none));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("m.jsonl:2: ", 0), 0u) << e.what();
  }
}

TEST(SftDatasetBadInput, EmptyFile) {
  EXPECT_NE(load_error("").find("bad.jsonl' has no examples"), std::string::npos);
  EXPECT_NE(load_error("\n  \n\n").find("has no examples"), std::string::npos);
}

TEST(SftDatasetBadInput, MissingFile) {
  EXPECT_THROW(SftDataset::load("/nonexistent/sft.jsonl", chat_tokenizer(), options(64)), Error);
}

TEST(SftDatasetBadInput, ChatmlNeedsItsSpecialTokens) {
  const auto tok = tokenizer::Tokenizer::train({"abc"}, 256 + 1, "gpt2");
  try {
    SftDataset::parse(kGood, "m.jsonl", tok, options(64));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'m.jsonl': template chatml needs"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("--template none"), std::string::npos) << e.what();
  }
  EXPECT_EQ(SftDataset::parse(kGood, "m.jsonl", tok, options(64, SftTemplate::none)).size(), 1);
}

// A poor man's fuzz run, always on: random byte edits of a valid file either parse or raise
// sllm::Error; any other exception (or a crash) fails.
TEST(SftDatasetBadInput, RandomEditsGiveAnErrorOrAParseNeverACrash) {
  const std::string valid = join_lines({chat_line({{"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Four."}}),
                                        completion_line("How are you?", "Hello there!")});
  const char alphabet[] = "{}[]\":,\\ \n\x80\xff" "abu0";
  Rng rng(1234);
  int errors = 0, parsed = 0;
  for (int trial = 0; trial < 400; ++trial) {
    std::string text = valid;
    const int edits = 1 + static_cast<int>(rng.below(3));
    for (int e = 0; e < edits; ++e) {
      const auto at = static_cast<size_t>(rng.below(text.size()));
      const char c = alphabet[rng.below(sizeof alphabet - 1)];
      switch (rng.below(3)) {
        case 0: text[at] = c; break;
        case 1: text.insert(at, 1, c); break;
        default: text.erase(at, 1); break;
      }
    }
    for (auto t : {SftTemplate::chatml, SftTemplate::none}) {
      try {
        SftDataset::parse(text, "f.jsonl", chat_tokenizer(), options(trial % 2 ? 12 : 64, t, /*truncate=*/true));
        ++parsed;
      } catch (const Error&) {
        ++errors;
      }
    }
  }
  EXPECT_GT(errors, 0);
  EXPECT_GT(parsed, 0);
}

}  // namespace
}  // namespace sllm::data
