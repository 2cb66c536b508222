// Story QA: a small instruction set drawn from the synthetic story world (story_lexicon.h),
// whose answers are checkable as strings (`sllm data story-qa`, data/README.md).
//
// Each example is a three-sentence story about two children and one question about it:
//
//   Story: One morning, Lily and Tom played in the park. Tom found a red kite.
//          Lily had seven shells.
//   Question: What color was the kite?          ->  red
//
// The first sentence sets the place; two more facts follow, each one of
//   find   "{X} found a {color} {toy}."     questions: who (X), color
//   count  "{X} had {n} {things}."          question:  count (the number word)
//   feel   "{X} felt {feeling}."            question:  feeling
// so the question types are where, who, color, count and feeling. Every answer is a span of
// the story, and the second child and the second fact are distractors: to answer, a model
// must bind the question's name or object to the right sentence, not just copy a word.
//
// Same seed and sizes, same bytes. Stories are unique across the whole set, so no test
// story (or any question about it) is seen in training. The test split is drawn first, then
// validation, then train: a given --seed and --test always give the same test set, whatever
// the train size.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/rng.h"

namespace sllm::data {

struct StoryQa {
  std::string story, question, answer;
  std::string type;  // "where" | "who" | "color" | "count" | "feeling"
};

// The question types, in the order above.
const std::vector<std::string>& story_qa_types();

// One example; deterministic for a given Rng state, advances it.
StoryQa generate_story_qa(Rng& rng);

// The user turn: "Story: <story>\nQuestion: <question>". The answer is the assistant turn.
std::string story_qa_user_text(const StoryQa& ex);

// One JSONL line (no newline) in SFT chat format (sft_dataset.h):
//   {"messages":[{"role":"user","content":...},{"role":"assistant","content":...}],"type":...}
// "type" is extra: the SFT reader ignores it, `sllm eval` reports accuracy per type with it.
std::string story_qa_jsonl_line(const StoryQa& ex);

struct StoryQaSplits {
  std::vector<StoryQa> train, val, test;
};

// Draws test, then val, then train examples, skipping any story already drawn. sllm::Error
// when a size is negative or the world runs out of distinct stories.
StoryQaSplits make_story_qa(int64_t train, int64_t val, int64_t test, uint64_t seed);

// Writes DIR/{train,val,test}.jsonl and DIR/README (the command that rebuilds them); the
// directory appears complete or not at all (AtomicDirectory), replacing an existing one.
void write_story_qa(const std::string& dir, const StoryQaSplits& splits, uint64_t seed);

}  // namespace sllm::data
