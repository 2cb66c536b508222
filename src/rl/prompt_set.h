// The prompts of on-policy training (PPO, GRPO): a JSONL file, one prompt per line,
//   {"prompt": "Write a story about Lily.", "name": "Lily", "verifier": "mentions-name"}
//   {"prompt": [{"role": "user", "content": "..."}], ...}      (chat messages)
// Fields besides "prompt" are kept with the line: a verifier reads them (rl/verifier.h).
// A string prompt is encoded as is (template none) or as one user turn followed by the
// assistant header (chatml), as `sllm sft` renders its prompts; messages need chatml.
//
// PromptLoader hands out the prompts in a seeded order, epoch after epoch: epoch e's order
// is a shuffle drawn from Rng(seed + e). Its state is {epoch, position}, saved in checkpoints.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/sft_dataset.h"
#include "tokenizer/tokenizer.h"

namespace sllm::rl {

struct RlPrompt {
  nlohmann::json example;    // the whole line
  std::vector<int32_t> ids;  // the rendered prompt
  std::string where;         // "file:line", for messages
};

struct PromptSetOptions {
  data::SftTemplate chat_template = data::SftTemplate::chatml;
  int64_t n_ctx = 0;           // the policy's context: a prompt must leave room for a response
  int64_t max_new_tokens = 0;  // prompts longer than n_ctx - max_new_tokens are counted (responses get cut)
};

struct PromptSet {
  std::vector<RlPrompt> prompts;
  int64_t cut_short = 0;  // prompts whose responses the context will cut before max_new_tokens
};

// sllm::Error with file:line and a hint for a missing file, bad JSON, a line without "prompt",
// an empty prompt, messages without chatml, or a prompt that fills the context.
PromptSet load_prompts(const std::string& path, const tokenizer::Tokenizer& tok, const PromptSetOptions& options);

class PromptLoader {
 public:
  PromptLoader(int64_t size, uint64_t seed);
  std::vector<int64_t> next(int64_t count);  // indices into the prompt set
  nlohmann::json state() const { return {{"epoch", epoch_}, {"position", position_}}; }
  void restore(const nlohmann::json& state);

 private:
  void shuffle();
  int64_t size_;
  uint64_t seed_;
  int64_t epoch_ = 0, position_ = 0;
  std::vector<int64_t> order_;
};

}  // namespace sllm::rl
