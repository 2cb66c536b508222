// Story QA: a small instruction set drawn from the synthetic story world (story_lexicon.h),
// whose answers are checkable as strings (`sllm data story-qa`, data/README.md).
//
// Each example is a three-sentence story about one child (or two) and one question about it:
//
//   Story: One morning, Lily played in the park. Lily found a red kite. Lily had seven shells.
//   Question: What color was the kite?          ->  red
//
// The first sentence sets the place; two more facts follow, each one of
//   find   "{X} found a {color} {toy}."     questions: who (X), color
//   count  "{X} had {n} {things}."          question:  count (the number word)
//   feel   "{X} felt {feeling}."            question:  feeling
// so the question types are where, who, color, count and feeling. Every answer is a span of
// the story. With one child (the default) the two facts are of different kinds, so the answer
// is the story's only word of the kind asked for: a lookup that a small model learns in a few
// hundred steps. With two children (--children 2) the second child and fact are distractors
// (both may have found a toy, or counted things): the model must bind the question's name or
// object to the right sentence, a harder task.
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

// One example with `children` (1 or 2) children; deterministic for a given Rng state, advances it.
StoryQa generate_story_qa(Rng& rng, int children = 1);

// The user turn: "Story: <story>\nQuestion: <question>". The answer is the assistant turn.
std::string story_qa_user_text(const StoryQa& ex);

// One JSONL line (no newline) in SFT chat format (sft_dataset.h):
//   {"messages":[{"role":"user","content":...},{"role":"assistant","content":...}],"type":...}
// "type" is extra: the SFT reader ignores it, `sllm eval` reports accuracy per type with it.
std::string story_qa_jsonl_line(const StoryQa& ex);

// The same example as plain-text prompt/completion, for `sllm sft --template none` (no chat
// tokens: the completion ends with <|endoftext|>, a token pretraining already taught):
//   {"prompt":"Story: ...\nQuestion: ...\nAnswer:","completion":" <answer>","type":...}
// The prompt is the user text followed by "\nAnswer:", as in `sllm eval --format plain`.
std::string story_qa_completion_line(const StoryQa& ex);

struct StoryQaSplits {
  std::vector<StoryQa> train, val, test;
};

// Draws test, then val, then train examples, skipping any story already drawn. sllm::Error
// when a size is negative or the world runs out of distinct stories.
StoryQaSplits make_story_qa(int64_t train, int64_t val, int64_t test, uint64_t seed, int children = 1);

// Writes DIR/{train,val,test}.jsonl (chat), DIR/{train,val,test}.completion.jsonl (the same
// examples, line for line, as prompt/completion) and DIR/README (the command that rebuilds
// them); the directory appears complete or not at all (AtomicDirectory), replacing an existing one.
void write_story_qa(const std::string& dir, const StoryQaSplits& splits, uint64_t seed, int children = 1);

}  // namespace sllm::data
