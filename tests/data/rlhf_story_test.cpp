// The RLHF demo's prompts and pairs: same seed same bytes, the requested word is the story's
// own feeling (read back from the text, not from the generator), chosen answers hold it and
// rejected ones do not (checked here with std::regex's \b; tests/rl/test_verifier.cpp runs the
// uses-word verifier itself over the same files), and held-out prompts and pairs share no
// story with training.
#include "data/rlhf_story.h"

#include <filesystem>
#include <regex>
#include <set>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/error.h"
#include "test_dir.h"

namespace sllm::data {
namespace {

using nlohmann::json;

std::vector<json> read_jsonl(const std::string& path) {
  std::vector<json> out;
  std::istringstream in(read_file(path));
  for (std::string line; std::getline(in, line);) out.push_back(json::parse(line));
  return out;
}

std::string story_of(const std::string& prompt) {
  EXPECT_EQ(prompt.rfind("Story: ", 0), 0u) << prompt;
  return prompt.substr(0, prompt.find("\nQuestion:"));
}

// The feeling read back from the story's "X felt F." sentence: an independent check that the
// requested word is in the story (and that there is exactly one such sentence).
std::string felt_in(const std::string& prompt, const std::string& name) {
  const std::string story = story_of(prompt), lead = " " + name + " felt ";
  const size_t at = story.find(lead);
  EXPECT_NE(at, std::string::npos) << story;
  EXPECT_EQ(story.find(" felt ", at + lead.size()), std::string::npos) << "two feelings: " << story;
  if (at == std::string::npos) return "";
  const size_t start = at + lead.size();
  return story.substr(start, story.find('.', start) - start);
}

TEST(RlhfStory, SameSeedSameBytesOtherSeedOtherBytes) {
  testing::TempDir dir;
  const std::string out = dir.path + "/rlhf";
  const char* files[] = {"prompts.train.jsonl", "prompts.test.jsonl", "pairs.train.jsonl", "pairs.val.jsonl", "README"};
  auto write_and_read = [&](uint64_t seed) {
    write_rlhf_story(out, make_rlhf_story(40, 10, 12, seed), seed);  // replaces the previous directory
    std::vector<std::string> bytes;
    for (const char* f : files) bytes.push_back(read_file(out + "/" + f));
    return bytes;
  };
  const std::vector<std::string> first = write_and_read(5), again = write_and_read(5), other = write_and_read(6);
  for (size_t i = 0; i < std::size(files); ++i) {
    EXPECT_EQ(first[i], again[i]) << files[i];
    EXPECT_NE(first[i], other[i]) << files[i];
  }
  EXPECT_NE(first[4].find("--train 40 --val 10 --test 12 --seed 5"), std::string::npos) << first[4];
}

TEST(RlhfStory, ChosenPassesRejectedFailsAndTheWordIsTheStorys) {
  testing::TempDir dir;
  write_rlhf_story(dir.path + "/d", make_rlhf_story(300, 60, 60, 1337), 1337);
  const std::vector<json> prompts_train = read_jsonl(dir.path + "/d/prompts.train.jsonl");
  const std::vector<json> prompts_test = read_jsonl(dir.path + "/d/prompts.test.jsonl");
  const std::vector<json> pairs_train = read_jsonl(dir.path + "/d/pairs.train.jsonl");
  const std::vector<json> pairs_val = read_jsonl(dir.path + "/d/pairs.val.jsonl");
  ASSERT_EQ(prompts_train.size(), 300u);
  ASSERT_EQ(prompts_test.size(), 60u);
  ASSERT_EQ(pairs_train.size(), 300u);
  ASSERT_EQ(pairs_val.size(), 60u);

  std::set<std::string> questions;
  for (const auto* lines : {&prompts_train, &prompts_test}) {
    for (const json& p : *lines) {
      const std::string prompt = p.at("prompt"), name = p.at("name"), word = p.at("word");
      EXPECT_EQ(felt_in(prompt, name), word) << prompt;
      EXPECT_TRUE(prompt.ends_with("\nAnswer:")) << prompt;
      const std::string question = prompt.substr(prompt.find("\nQuestion: ") + 11);
      EXPECT_NE(question.find(name), std::string::npos) << prompt;  // asks about the story's child
      questions.insert(question.substr(0, question.find(name)));
      EXPECT_EQ(p.at("verifier"), "uses-word");
    }
  }
  EXPECT_GE(questions.size(), 3u) << "the wordings should vary";

  int64_t other_kind = 0;
  for (const auto* lines : {&pairs_train, &pairs_val}) {
    for (const json& pair : *lines) {
      const std::string prompt = pair.at("prompt"), chosen = pair.at("chosen"), rejected = pair.at("rejected");
      const std::regex word("\\b" + chosen.substr(1) + "\\b", std::regex::icase);
      EXPECT_TRUE(std::regex_search(chosen, word)) << chosen;
      EXPECT_FALSE(std::regex_search(rejected, word)) << rejected << " vs " << chosen;
      EXPECT_EQ(chosen[0], ' ');  // as the model's answers after "Answer:"
      EXPECT_EQ(rejected[0], ' ');
      EXPECT_NE(prompt.find(" felt" + chosen + "."), std::string::npos) << "chosen is the story's feeling: " << prompt;
      other_kind += pair.at("rejected_kind") == "other";
    }
  }
  // About half the rejected answers are another feeling, half a word of another kind.
  EXPECT_GT(other_kind, 120);
  EXPECT_LT(other_kind, 240);
}

TEST(RlhfStory, HeldOutSharesNoStoryWithTraining) {
  const RlhfStorySplits s = make_rlhf_story(400, 80, 80, 3);
  std::set<std::string> train;
  for (const RlhfPrompt& p : s.train_prompts) train.insert(story_of(p.prompt));
  for (const RlhfPair& p : s.train_pairs) EXPECT_TRUE(train.count(story_of(p.prompt)));  // same stories as the prompts
  std::set<std::string> held_out;
  for (const RlhfPrompt& p : s.test_prompts) held_out.insert(story_of(p.prompt));
  for (const RlhfPair& p : s.val_pairs) held_out.insert(story_of(p.prompt));
  EXPECT_EQ(held_out.size(), 160u) << "test prompts and val pairs should be distinct stories";
  for (const std::string& story : held_out) EXPECT_FALSE(train.count(story)) << story;
  EXPECT_EQ(train.size(), 400u);
}

TEST(RlhfStory, TestSplitDoesNotDependOnTrainSize) {
  const RlhfStorySplits small = make_rlhf_story(10, 5, 30, 9), large = make_rlhf_story(500, 5, 30, 9);
  ASSERT_EQ(small.test_prompts.size(), large.test_prompts.size());
  for (size_t i = 0; i < small.test_prompts.size(); ++i) EXPECT_EQ(small.test_prompts[i].prompt, large.test_prompts[i].prompt);
}

TEST(RlhfStory, BadSizesFailAndLeaveNothing) {
  EXPECT_THROW(make_rlhf_story(-1, 0, 1, 1), Error);
  EXPECT_THROW(make_rlhf_story(1, -2, 1, 1), Error);
}

}  // namespace
}  // namespace sllm::data
