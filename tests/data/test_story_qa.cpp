// The story-QA instruction set: reproducible, every answer right by the story's own words,
// no story shared between splits, and every line valid SFT chat data.
#include "data/story_qa.h"

#include <map>
#include <set>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/error.h"
#include "data/sft_dataset.h"
#include "test_dir.h"
#include "tokenizer/tokenizer.h"

namespace sllm::data {
namespace {

bool same(const StoryQa& a, const StoryQa& b) {
  return a.story == b.story && a.question == b.question && a.answer == b.answer && a.type == b.type;
}

// The text between `prefix` and `suffix` in s ("" when absent).
std::string between(const std::string& s, const std::string& prefix, const std::string& suffix) {
  const size_t a = s.find(prefix);
  if (a == std::string::npos) return "";
  const size_t b = s.find(suffix, a + prefix.size());
  return b == std::string::npos ? "" : s.substr(a + prefix.size(), b - a - prefix.size());
}

// Re-derives the answer from the story by reading the sentence the question is about: an
// independent check of the generator's bookkeeping (a swapped subject or colour fails).
std::string answer_from_story(const StoryQa& ex) {
  const std::string story = " " + ex.story;
  if (ex.type == "where") {
    std::string names = between(ex.question, "Where were ", "?");  // "A and B"
    if (names.empty()) names = between(ex.question, "Where was ", "?");
    for (const char* lead : {" played ", " spent the morning ", " spent the afternoon ", " spent the evening ", " spent the day "}) {
      const std::string at = between(story, names + lead, ".");
      if (!at.empty()) return at;
    }
    return "";
  }
  if (ex.type == "who" || ex.type == "color") {
    const std::string toy = between(ex.question, ex.type == "who" ? "Who found the " : "What color was the ", "?");
    // Sentences look like "X found a(n) COLOR TOY."
    std::istringstream sentences(ex.story);
    std::string sentence;
    while (std::getline(sentences, sentence, '.')) {
      const size_t found = sentence.find(" found a");
      if (found == std::string::npos || sentence.size() < toy.size() ||
          sentence.compare(sentence.size() - toy.size(), toy.size(), toy) != 0)
        continue;
      const size_t start = sentence.find_first_not_of(' ');
      if (ex.type == "who") return sentence.substr(start, found - start);
      const size_t color_at = sentence.find(' ', found + 7) + 1;  // after "found a" / "found an"
      return sentence.substr(color_at, sentence.size() - toy.size() - 1 - color_at);
    }
    return "";
  }
  if (ex.type == "count") {
    const std::string things = between(ex.question, "How many ", " did ");
    const std::string x = between(ex.question, " did ", " have?");
    return between(story, " " + x + " had ", " " + things + ".");
  }
  if (ex.type == "feeling") {
    const std::string x = between(ex.question, "How did ", " feel?");
    return between(story, " " + x + " felt ", ".");
  }
  return "";
}

TEST(StoryQa, SameSeedSameSetDifferentSeedDifferentSet) {
  const StoryQaSplits a = make_story_qa(60, 10, 30, 7), b = make_story_qa(60, 10, 30, 7), c = make_story_qa(60, 10, 30, 8);
  ASSERT_EQ(a.train.size(), 60u);
  ASSERT_EQ(a.val.size(), 10u);
  ASSERT_EQ(a.test.size(), 30u);
  for (size_t i = 0; i < a.train.size(); ++i) EXPECT_TRUE(same(a.train[i], b.train[i])) << i;
  for (size_t i = 0; i < a.test.size(); ++i) EXPECT_TRUE(same(a.test[i], b.test[i])) << i;
  int differ = 0;
  for (size_t i = 0; i < a.test.size(); ++i) differ += !same(a.test[i], c.test[i]);
  EXPECT_GT(differ, 20);
}

TEST(StoryQa, TestSplitDoesNotDependOnTrainSize) {
  const StoryQaSplits small = make_story_qa(5, 3, 40, 11), large = make_story_qa(500, 3, 40, 11);
  for (size_t i = 0; i < small.test.size(); ++i) EXPECT_TRUE(same(small.test[i], large.test[i])) << i;
}

TEST(StoryQa, NoStoryIsSharedBetweenOrWithinSplits) {
  const StoryQaSplits s = make_story_qa(3000, 200, 300, 1337);
  std::set<std::string> stories;
  for (const auto* split : {&s.train, &s.val, &s.test})
    for (const StoryQa& ex : *split) EXPECT_TRUE(stories.insert(ex.story).second) << "repeated story: " << ex.story;
  EXPECT_EQ(stories.size(), 3500u);
}

TEST(StoryQa, EveryAnswerIsTheOneTheStoryGives) {
  for (int children : {1, 2}) {
    const StoryQaSplits s = make_story_qa(2000, 0, 1, 3, children);
    for (const StoryQa& ex : s.train) {
      ASSERT_FALSE(ex.answer.empty()) << ex.story;
      EXPECT_NE(ex.story.find(ex.answer), std::string::npos) << ex.story << " | " << ex.question;
      EXPECT_EQ(answer_from_story(ex), ex.answer) << ex.type << ": " << ex.story << " | " << ex.question;
    }
  }
}

size_t occurrences(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}

TEST(StoryQa, OneChildStoriesHoldOneFactOfEachKind) {
  int two_names = 0;
  for (const StoryQa& ex : make_story_qa(1000, 0, 1, 4, 1).train) {
    EXPECT_LE(occurrences(ex.story, " found a"), 1u) << ex.story;
    EXPECT_LE(occurrences(ex.story, " had "), 1u) << ex.story;
    EXPECT_LE(occurrences(ex.story, " felt "), 1u) << ex.story;
    EXPECT_EQ(ex.story.find(" and "), std::string::npos) << ex.story;
  }
  for (const StoryQa& ex : make_story_qa(200, 0, 1, 4, 2).train) two_names += ex.story.find(" and ") != std::string::npos;
  EXPECT_EQ(two_names, 200);
  EXPECT_THROW(make_story_qa(1, 0, 1, 4, 3), Error);
}

TEST(StoryQa, QuestionTypesAreMixedEvenly) {
  std::map<std::string, int> counts;
  for (const StoryQa& ex : make_story_qa(2000, 0, 1, 5).train) ++counts[ex.type];
  ASSERT_EQ(counts.size(), story_qa_types().size());
  for (const std::string& t : story_qa_types()) {
    EXPECT_GT(counts[t], 300) << t;  // 400 expected of each
    EXPECT_LT(counts[t], 500) << t;
  }
}

TEST(StoryQa, StoriesAreShortAndQuestionsAnswerable) {
  // Three sentences of a few words each: the story, question and answer fit a 256-token
  // context with room for three shots.
  for (const StoryQa& ex : make_story_qa(500, 0, 1, 9).train) {
    EXPECT_LT(ex.story.size(), 200u) << ex.story;
    int sentences = 0;
    for (char c : ex.story) sentences += c == '.';
    EXPECT_EQ(sentences, 3) << ex.story;
    EXPECT_EQ(ex.question.back(), '?');
  }
}

TEST(StoryQa, WrittenFilesAreValidSftData) {
  testing::TempDir dir;
  const StoryQaSplits s = make_story_qa(40, 5, 12, 21);
  write_story_qa(dir.path + "/qa", s, 21);
  const tokenizer::Tokenizer tok = tokenizer::Tokenizer::train(
      {"Story: Lily found a red ball. Question: Who found the ball? Lily"}, 300, "gpt2",
      {"<|endoftext|>", "<|im_start|>", "<|im_end|>"});
  SftOptions opts;
  opts.seq_len = 256;
  const SftDataset train = SftDataset::load(dir.path + "/qa/train.jsonl", tok, opts);
  EXPECT_EQ(train.size(), 40);
  EXPECT_EQ(SftDataset::load(dir.path + "/qa/test.jsonl", tok, opts).size(), 12);
  // Line i of test.jsonl is test example i: user turn, assistant answer and type.
  std::istringstream lines(read_file(dir.path + "/qa/test.jsonl"));
  std::string line;
  for (size_t i = 0; std::getline(lines, line); ++i) {
    const nlohmann::json j = nlohmann::json::parse(line);
    EXPECT_EQ(j["messages"][0]["role"], "user");
    EXPECT_EQ(j["messages"][0]["content"], story_qa_user_text(s.test[i]));
    EXPECT_EQ(j["messages"][1]["role"], "assistant");
    EXPECT_EQ(j["messages"][1]["content"], s.test[i].answer);
    EXPECT_EQ(j["type"], s.test[i].type);
  }
  // The completion files: the same examples line for line, valid under --template none.
  SftOptions plain = opts;
  plain.chat_template = SftTemplate::none;
  EXPECT_EQ(SftDataset::load(dir.path + "/qa/train.completion.jsonl", tok, plain).size(), 40);
  std::istringstream completions(read_file(dir.path + "/qa/test.completion.jsonl"));
  for (size_t i = 0; std::getline(completions, line); ++i) {
    const nlohmann::json j = nlohmann::json::parse(line);
    EXPECT_EQ(j["prompt"], story_qa_user_text(s.test[i]) + "\nAnswer:");
    EXPECT_EQ(j["completion"], " " + s.test[i].answer);
    EXPECT_EQ(j["type"], s.test[i].type);
  }
  EXPECT_NE(read_file(dir.path + "/qa/README").find("--train 40 --val 5 --test 12 --seed 21 --children 1"), std::string::npos);
}

TEST(StoryQa, NegativeSizesAreAnError) { EXPECT_THROW(make_story_qa(-1, 0, 1, 1), Error); }

}  // namespace
}  // namespace sllm::data
