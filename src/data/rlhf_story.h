// The demo's verifiable preference (`sllm data rlhf-story`, data/README.md): prompts that a
// rule can grade and preference pairs that the rule labelled, for `make demo-rlhf` (issue 11).
//
// The demo policy is the `make demo-sft` model, which answers story-QA questions with one word
// and stops (it writes no stories: its continuations end after a word). So the property to
// verify lives in that one word: each prompt is a story-QA story (story_qa.h) in which the
// child felt something, asked how the child was feeling in words the SFT data never used:
//
//   Story: One morning, Lily played in the park. Lily found a red kite. Lily felt nervous.
//   Question: How was Lily feeling?
//   Answer:                                   -> passes when the answer uses "nervous"
//
// graded by the uses-word verifier (src/rl/verifier.h) with word = the story's feeling. The
// SFT model copies the feeling word when asked "How did Lily feel?", its training wording,
// but on these wordings it mostly answers a word of another kind (a place, a colour, a
// number), so its pass rate starts low, and RL only has to carry a skill the model already
// has over to new wordings. Measured pass rates are in data/README.md.
//
// Pairs: chosen = " <the feeling>" (passes), rejected = a word that fails, made from the same
// lexicon and shaped like the SFT model's own answers: half the time another feeling (so a
// reward model must compare the answer with the story, not just spot a feeling word), else a
// word of another kind (a place phrase, a colour, a number word or a name: the model's
// typical wrong answers). Both start with a space and hold one answer, as the model's do.
//
// Splits: stories are unique across the whole set; the test prompts are drawn first, then the
// validation pairs, then the training stories (each gives one training prompt and one training
// pair), so held-out prompts and pairs never share a story with training. Same seed and sizes,
// same bytes.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/rng.h"

namespace sllm::data {

struct RlhfPrompt {
  std::string prompt;  // "Story: ...\nQuestion: ...\nAnswer:"
  std::string name;    // the child the story is about
  std::string word;    // the feeling the story gives: what the answer must use
};

struct RlhfPair {
  std::string prompt, chosen, rejected;
  std::string rejected_kind;  // "feeling" (another feeling) or "other" (a word of another kind)
};

// The question wordings, "{N}" standing for the child's name.
const std::vector<std::string>& rlhf_story_questions();

// One prompt; deterministic for a given Rng state, advances it.
RlhfPrompt generate_rlhf_prompt(Rng& rng);

// A pair for `p` whose chosen passes and rejected fails uses-word with p.word.
RlhfPair make_rlhf_pair(const RlhfPrompt& p, Rng& rng);

// {"name":...,"prompt":...,"verifier":"uses-word","word":...} (no newline).
std::string rlhf_prompt_line(const RlhfPrompt& p);
// {"chosen":...,"prompt":...,"rejected":...,"rejected_kind":...} (no newline).
std::string rlhf_pair_line(const RlhfPair& p);

struct RlhfStorySplits {
  std::vector<RlhfPrompt> train_prompts, test_prompts;
  std::vector<RlhfPair> train_pairs, val_pairs;
};

// `train` training stories (one prompt and one pair each), `val` validation pairs and `test`
// test prompts, all from distinct stories. sllm::Error when a size is negative or the world
// runs out of distinct stories.
RlhfStorySplits make_rlhf_story(int64_t train, int64_t val, int64_t test, uint64_t seed);

// Writes DIR/prompts.train.jsonl, prompts.test.jsonl, pairs.train.jsonl, pairs.val.jsonl and
// README (the command that rebuilds them); the directory appears complete or not at all.
void write_rlhf_story(const std::string& dir, const RlhfStorySplits& splits, uint64_t seed);

}  // namespace sllm::data
