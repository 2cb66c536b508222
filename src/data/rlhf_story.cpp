#include "data/rlhf_story.h"

#include <filesystem>
#include <span>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/error.h"
#include "data/story_lexicon.h"
#include "data/story_qa.h"

namespace sllm::data {

namespace {

template <typename T>
const T& pick(std::span<const T> items, Rng& rng) {
  return items[rng.below(items.size())];
}

// The text between `prefix` and `suffix` in s; an internal error when absent (story_qa.h
// fixes the feeling question as "How did X feel?").
std::string between(const std::string& s, const std::string& prefix, const std::string& suffix) {
  const size_t a = s.find(prefix);
  SLLM_ASSERT(a != std::string::npos);
  const size_t b = s.find(suffix, a + prefix.size());
  SLLM_ASSERT(b != std::string::npos);
  return s.substr(a + prefix.size(), b - a - prefix.size());
}

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) text.replace(at, from.size(), to);
  return text;
}

// A feeling other than `word`, from both lists of the lexicon.
std::string other_feeling(const std::string& word, Rng& rng) {
  std::vector<std::string> all;
  for (auto list : {lexicon::good_feelings(), lexicon::bad_feelings()})
    for (const char* f : list)
      if (word != f) all.push_back(f);
  return all[rng.below(all.size())];
}

// A word of another kind, as the SFT model answers when it misreads the question.
std::string other_kind(Rng& rng) {
  switch (rng.below(4)) {
    case 0: return pick(lexicon::places(), rng).at;
    case 1: return pick(lexicon::colors(), rng);
    case 2: return lexicon::number_words()[2 + rng.below(11)];  // two .. twelve, as story-QA counts
    default: return pick(lexicon::child_names(), rng).name;
  }
}

}  // namespace

const std::vector<std::string>& rlhf_story_questions() {
  // Measured on the `make demo-sft` model (data/README.md): its pass rate at temperature 1 on
  // each wording is 3% to 50%; on its training wording "How did {N} feel?" it is about 60%.
  static const std::vector<std::string> questions = {"How was {N} feeling?", "What was {N}'s feeling?",
                                                     "What feeling did {N} have?", "Which feeling did {N} have?"};
  return questions;
}

RlhfPrompt generate_rlhf_prompt(Rng& rng) {
  // A story-QA example whose question is about the feeling: its story then holds exactly one
  // feeling ("X felt F."), which is the answer.
  StoryQa ex;
  do ex = generate_story_qa(rng, /*children=*/1);
  while (ex.type != "feeling");
  RlhfPrompt p;
  p.name = between(ex.question, "How did ", " feel?");
  p.word = ex.answer;
  const std::string& q = rlhf_story_questions()[rng.below(rlhf_story_questions().size())];
  p.prompt = str("Story: ", ex.story, "\nQuestion: ", replace_all(q, "{N}", p.name), "\nAnswer:");
  return p;
}

RlhfPair make_rlhf_pair(const RlhfPrompt& p, Rng& rng) {
  RlhfPair pair;
  pair.prompt = p.prompt;
  pair.chosen = " " + p.word;
  const bool feeling = rng.below(2) == 0;
  pair.rejected = " " + (feeling ? other_feeling(p.word, rng) : other_kind(rng));
  pair.rejected_kind = feeling ? "feeling" : "other";
  return pair;
}

std::string rlhf_prompt_line(const RlhfPrompt& p) {
  return nlohmann::json{{"prompt", p.prompt}, {"name", p.name}, {"word", p.word}, {"verifier", "uses-word"}}.dump();
}

std::string rlhf_pair_line(const RlhfPair& p) {
  return nlohmann::json{{"prompt", p.prompt}, {"chosen", p.chosen}, {"rejected", p.rejected}, {"rejected_kind", p.rejected_kind}}
      .dump();
}

RlhfStorySplits make_rlhf_story(int64_t train, int64_t val, int64_t test, uint64_t seed) {
  SLLM_CHECK(train >= 0 && val >= 0 && test >= 0,
             str("rlhf-story: split sizes must be non-negative, got train ", train, ", val ", val, ", test ", test),
             "e.g. --train 2000 --val 200 --test 200");
  Rng rng(seed);
  std::unordered_set<std::string> seen;
  // A prompt whose story was not drawn before. The world holds far more feeling stories than
  // any demo asks for (42 names x 20 places x 4 times x 16 feelings x ...); a run of misses
  // this long means it is exhausted.
  auto draw = [&](int64_t wanted) {
    for (int64_t misses = 0;; ++misses) {
      SLLM_CHECK(misses < 100000, str("rlhf-story: could not draw ", wanted, " distinct stories"), "ask for fewer examples");
      RlhfPrompt p = generate_rlhf_prompt(rng);
      const std::string story = p.prompt.substr(0, p.prompt.find("\nQuestion:"));
      if (seen.insert(story).second) return p;
    }
  };
  RlhfStorySplits s;
  for (int64_t i = 0; i < test; ++i) s.test_prompts.push_back(draw(test + val + train));
  for (int64_t i = 0; i < val; ++i) s.val_pairs.push_back(make_rlhf_pair(draw(test + val + train), rng));
  for (int64_t i = 0; i < train; ++i) {
    s.train_prompts.push_back(draw(test + val + train));
    s.train_pairs.push_back(make_rlhf_pair(s.train_prompts.back(), rng));
  }
  return s;
}

void write_rlhf_story(const std::string& dir, const RlhfStorySplits& splits, uint64_t seed) {
  AtomicDirectory out(dir);
  const std::filesystem::path tmp(out.temp_path());
  auto lines = [](const auto& items, auto line) {
    std::string text;
    for (const auto& item : items) text += line(item) + "\n";
    return text;
  };
  write_file_atomic((tmp / "prompts.train.jsonl").string(), lines(splits.train_prompts, rlhf_prompt_line));
  write_file_atomic((tmp / "prompts.test.jsonl").string(), lines(splits.test_prompts, rlhf_prompt_line));
  write_file_atomic((tmp / "pairs.train.jsonl").string(), lines(splits.train_pairs, rlhf_pair_line));
  write_file_atomic((tmp / "pairs.val.jsonl").string(), lines(splits.val_pairs, rlhf_pair_line));
  write_file_atomic((tmp / "README").string(),
                    str("RLHF story prompts and preference pairs (sllm, src/data/rlhf_story.h; see data/README.md). "
                        "Rebuild with:\n  sllm data rlhf-story --out ", dir, " --train ", splits.train_prompts.size(),
                        " --val ", splits.val_pairs.size(), " --test ", splits.test_prompts.size(), " --seed ", seed, "\n"));
  out.commit();
}

}  // namespace sllm::data
