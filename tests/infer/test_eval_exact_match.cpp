// Exact-match evaluation: the data reader, the two prompt formats, answer extraction and
// stop tokens, the shot draws, and the whole loop on a small random model checked against an
// independent greedy decoder.
#include "infer/eval_exact_match.h"

#include <algorithm>
#include <set>

#include <gtest/gtest.h>

#include "core/error.h"
#include "infer_test_support.h"
#include "tokenizer/tokenizer.h"

namespace sllm::infer {
namespace {

using tokenizer::Tokenizer;

Tokenizer qa_tokenizer() {
  return Tokenizer::train({"Story: Lily found a red ball.\nQuestion: Who found the ball?\nAnswer: Lily\n\n"
                           "Story: Tom had two cats.\nQuestion: How many cats did Tom have?\nAnswer: two\n"},
                          256 + 40 + 3, "gpt2", {"<|endoftext|>", "<|im_start|>", "<|im_end|>"});
}

std::string chat_line(const std::string& user, const std::string& answer, const std::string& type = "") {
  std::string line = R"({"messages":[{"role":"user","content":")" + user + R"("},{"role":"assistant","content":")" + answer +
                     R"("}])";
  if (!type.empty()) line += R"(,"type":")" + type + "\"";
  return line + "}";
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(EvalExactMatch, ReadsChatAndCompletionLines) {
  const std::string text = chat_line("Q1", " A1 ", "who") + "\n\n" + R"({"prompt":"Q2","completion":"A2"})" + "\n" +
                           R"({"messages":[{"role":"system","content":"S"},{"role":"user","content":"Q3"},{"role":"assistant","content":"A3"}]})";
  const std::vector<QaItem> items = parse_qa_jsonl(text, "qa.jsonl");
  ASSERT_EQ(items.size(), 3u);
  EXPECT_EQ(items[0].prompt.size(), 1u);
  EXPECT_EQ(items[0].prompt[0].content, "Q1");
  EXPECT_EQ(items[0].answer, " A1 ");
  EXPECT_EQ(items[0].type, "who");
  EXPECT_EQ(items[0].line, 1);
  EXPECT_EQ(items[1].prompt[0].role, "user");
  EXPECT_EQ(items[1].answer, "A2");
  EXPECT_EQ(items[1].line, 3);  // the blank line counts
  EXPECT_EQ(items[2].prompt.size(), 2u);
  EXPECT_EQ(items[2].answer, "A3");
}

TEST(EvalExactMatch, BadLinesNameTheFileAndLine) {
  const std::string ok = chat_line("Q", "A") + "\n";
  EXPECT_NE(error_of([&] { parse_qa_jsonl(ok + "{not json\n", "f.jsonl"); }).find("f.jsonl:2"), std::string::npos);
  EXPECT_NE(error_of([&] { parse_qa_jsonl(ok + R"({"text":"x"})", "f.jsonl"); }).find("neither"), std::string::npos);
  EXPECT_NE(error_of([&] {
              parse_qa_jsonl(R"({"messages":[{"role":"assistant","content":"A"},{"role":"user","content":"Q"}]})", "f.jsonl");
            }).find("not the assistant"),
            std::string::npos);
  EXPECT_NE(error_of([&] { parse_qa_jsonl(R"({"prompt":"Q"})", "f.jsonl"); }).find("completion"), std::string::npos);
  EXPECT_NE(error_of([&] { parse_qa_jsonl("\n\n", "f.jsonl"); }).find("no question"), std::string::npos);
  EXPECT_NE(error_of([&] { parse_qa_jsonl(chat_line("Q", "A").substr(0, 30) + R"("type":3})", "f.jsonl"); }), "");
  EXPECT_THROW(load_qa_jsonl("/nonexistent/qa.jsonl"), Error);
  EXPECT_THROW(parse_prompt_format("json"), Error);
}

TEST(EvalExactMatch, PlainPromptLaysShotsOutAsAnsweredQuestions) {
  const std::vector<QaItem> items = parse_qa_jsonl(chat_line("Story: a.\\nQuestion: b?", " x ") + "\n" +
                                                       chat_line("Story: c.\\nQuestion: d?", "y") + "\n" +
                                                       chat_line("Story: e.\\nQuestion: f?", "z"),
                                                   "t");
  EXPECT_EQ(plain_prompt({}, items[2]), "Story: e.\nQuestion: f?\nAnswer:");
  EXPECT_EQ(plain_prompt({&items[0], &items[1]}, items[2]),
            "Story: a.\nQuestion: b?\nAnswer: x\n\nStory: c.\nQuestion: d?\nAnswer: y\n\nStory: e.\nQuestion: f?\nAnswer:");
  // A prompt/completion line carries its cue: the same text, whichever format the file has.
  const std::vector<QaItem> completions = parse_qa_jsonl(
      R"({"prompt":"Story: a.\nQuestion: b?\nAnswer:","completion":" x"})" "\n"
      R"({"prompt":"Story: e.\nQuestion: f?\nAnswer:","completion":" z"})",
      "t");
  EXPECT_TRUE(completions[0].completion);
  EXPECT_FALSE(items[0].completion);
  EXPECT_EQ(plain_prompt({&completions[0]}, completions[1]), plain_prompt({&items[0]}, items[2]));
}

TEST(EvalExactMatch, ChatPromptHasShotsAsEarlierTurnsAndEndsAtTheAssistantHeader) {
  const Tokenizer tok = qa_tokenizer();
  const std::vector<QaItem> items = parse_qa_jsonl(chat_line("Q1", "A1") + "\n" + chat_line("Q2", "A2"), "t");
  const std::vector<int32_t> ids = prompt_ids(tok, PromptFormat::chat, {&items[0]}, items[1]);
  EXPECT_EQ(tok.decode(ids),
            "<|im_start|>user\nQ1<|im_end|>\n<|im_start|>assistant\nA1<|im_end|>\n<|im_start|>user\nQ2<|im_end|>\n"
            "<|im_start|>assistant\n");
  // Plain text never turns into special tokens, whatever the user wrote.
  const std::vector<QaItem> sneaky = parse_qa_jsonl(chat_line("<|im_end|>", "A"), "t");
  const std::vector<int32_t> plain = prompt_ids(tok, PromptFormat::plain, {}, sneaky[0]);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), *tok.special_id("<|im_end|>")), 0);
}

TEST(EvalExactMatch, AnswerExtractionAndStopTokens) {
  EXPECT_EQ(extract_answer("  Lily \nStory: more", PromptFormat::plain), "Lily");
  EXPECT_EQ(extract_answer("\nLily", PromptFormat::plain), "");
  EXPECT_EQ(extract_answer(" in the park\n", PromptFormat::chat), "in the park");
  EXPECT_EQ(trim_whitespace("\t a b \r\n"), "a b");

  const Tokenizer tok = qa_tokenizer();
  const auto plain = answer_stop_ids(tok, PromptFormat::plain), chat = answer_stop_ids(tok, PromptFormat::chat);
  const std::set<int32_t> p(plain.begin(), plain.end()), c(chat.begin(), chat.end());
  const int32_t eot = *tok.special_id("<|endoftext|>"), im_end = *tok.special_id("<|im_end|>");
  EXPECT_TRUE(p.count(eot) && !p.count(im_end));
  EXPECT_TRUE(c.count(eot) && c.count(im_end));
  EXPECT_EQ(c.size(), 2u);
  const std::vector<int32_t> nl = tok.encode("\n"), nn = tok.encode("\n\n");
  ASSERT_EQ(nl.size(), 1u);
  EXPECT_TRUE(p.count(nl[0]));
  for (int32_t id : nn) EXPECT_TRUE(p.count(id));
  for (int32_t id : tok.encode("Lily found a ball")) EXPECT_FALSE(p.count(id)) << id;
}

TEST(EvalExactMatch, ShotsAreDistinctSeededAndBounded) {
  std::string text;
  for (int i = 0; i < 10; ++i) text += chat_line(std::string("Q").append(std::to_string(i)), "A") + "\n";
  const std::vector<QaItem> pool = parse_qa_jsonl(text, "pool");
  const auto a = pick_shots(pool, 4, 5, 2), b = pick_shots(pool, 4, 5, 2);
  EXPECT_EQ(a, b);
  EXPECT_EQ(std::set<const QaItem*>(a.begin(), a.end()).size(), 4u);
  bool differs = false;
  for (int64_t index = 0; index < 8; ++index) differs = differs || pick_shots(pool, 4, 5, index) != a;
  EXPECT_TRUE(differs);
  EXPECT_EQ(pick_shots(pool, 10, 1, 0).size(), 10u);
  EXPECT_TRUE(pick_shots({}, 0, 1, 0).empty());
  EXPECT_NE(error_of([&] { pick_shots(pool, 11, 1, 0); }).find("holds only 10"), std::string::npos);
}

// The loop on a small random model: each answer is the independent greedy decoder's output
// up to the first stop token; relabelling every item with what the model said scores 100%,
// and the counts add up per type.
TEST(EvalExactMatch, ScoresGreedyAnswersAgainstAnIndependentDecoder) {
  const Tokenizer tok = qa_tokenizer();
  nn::Transformer model(testing::gpt2_config());
  testing::randomize(model, 7);
  std::string text;
  const char* types[] = {"who", "color"};
  for (int i = 0; i < 6; ++i) text += chat_line("Lily ball.\\nWho " + std::to_string(i) + "?", "Lily", types[i % 2]) + "\n";
  const std::vector<QaItem> items = parse_qa_jsonl(text, "t");
  for (PromptFormat format : {PromptFormat::plain, PromptFormat::chat}) {
    EvalOptions opts;
    opts.format = format;
    opts.shots = format == PromptFormat::plain ? 1 : 0;  // ChatML's headers fill the 64-token context sooner
    opts.max_new_tokens = 5;
    opts.limit = 5;
    const EvalReport report = evaluate_exact_match(model, tok, items, items, opts);
    ASSERT_EQ(report.count, 5);
    ASSERT_EQ(report.records.size(), 5u);
    EXPECT_EQ(report.per_type.at("who").count + report.per_type.at("color").count, 5);

    const std::vector<int32_t> stops = answer_stop_ids(tok, format);
    std::vector<QaItem> relabelled(items.begin(), items.begin() + 5);
    for (size_t i = 0; i < 5; ++i) {
      const auto ids = prompt_ids(tok, format, pick_shots(items, opts.shots, opts.seed, static_cast<int64_t>(i)), items[i]);
      std::vector<int32_t> out = testing::greedy_reference(model, ids, opts.max_new_tokens, tok.vocab_size());
      const auto stop = std::find_if(out.begin(), out.end(),
                                     [&](int32_t id) { return std::find(stops.begin(), stops.end(), id) != stops.end(); });
      out.erase(stop, out.end());
      EXPECT_EQ(report.records[i].got, extract_answer(tok.decode(out), format)) << prompt_format_name(format) << " " << i;
      EXPECT_EQ(report.records[i].expected, "Lily");
      EXPECT_EQ(report.records[i].correct, report.records[i].got == "Lily");
      relabelled[i].answer = " " + report.records[i].got + " ";  // trimmed before comparing
    }
    const EvalReport again = evaluate_exact_match(model, tok, relabelled, items, opts);
    EXPECT_EQ(again.correct, 5);
    EXPECT_DOUBLE_EQ(again.accuracy, 1.0);
  }
}

TEST(EvalExactMatch, APromptOverTheContextFailsBeforeGenerating) {
  const Tokenizer tok = qa_tokenizer();
  nn::Transformer model(testing::gpt2_config());  // n_ctx 64
  std::string text;
  for (int i = 0; i < 8; ++i) text += chat_line("Story: Lily found a red ball and Tom had two cats.\\nQuestion: Who?", "Lily") + "\n";
  const std::vector<QaItem> items = parse_qa_jsonl(text, "t");
  EvalOptions opts;
  opts.format = PromptFormat::plain;
  opts.shots = 6;
  int seen = 0;
  const std::string what = error_of([&] { evaluate_exact_match(model, tok, items, items, opts, [&](const EvalRecord&) { ++seen; }); });
  EXPECT_NE(what.find("fewer --shots"), std::string::npos) << what;
  EXPECT_EQ(seen, 0);
  opts.max_new_tokens = 0;
  opts.shots = 0;
  EXPECT_THROW(evaluate_exact_match(model, tok, items, items, opts), Error);
}

}  // namespace
}  // namespace sllm::infer
