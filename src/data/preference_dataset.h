// Preference data (reward modelling, DPO): JSONL pairs of a better and a worse answer to one
// prompt, tokenized once, and their (2B, T) batches.
//
// Each non-blank line is one JSON object in one of three layouts (TRL's preference formats):
//   {"prompt": "...", "chosen": "...", "rejected": "..."}                       (standard)
//   {"prompt": [messages], "chosen": [messages], "rejected": [messages]}        (conversational)
//   {"chosen": [messages], "rejected": [messages]}     (implicit prompt: the messages both
//                                                       conversations share from the start)
// Messages are {"role": "system"|"user"|"assistant", "content": "..."}; the response messages
// (chosen, rejected, after the shared prompt) must be assistant turns. Other keys are ignored.
//
// Rendering reuses the SFT templates (sft_dataset.h), split at the response's first trained
// token: with chatml, prompt = the turns plus "<|im_start|>assistant\n" and response = the
// assistant content plus <|im_end|>; with none, prompt = encode(prompt) and response =
// encode(answer) plus <|endoftext|> (when the tokenizer has it). Either way the response ends
// with the end-of-turn token, as a policy's sampled response does when it stops, so a reward
// model reads its score at the same kind of token in training and in PPO.
//
// Bad input (issue 11, item 8), each naming file:line with a hint: malformed JSON, a missing
// or mistyped key, an empty prompt, a non-assistant response turn, and (without truncate) a
// pair whose prompt + response is longer than seq_len. A pair whose chosen and rejected
// responses tokenize the same is skipped with a counted warning (it carries no preference
// and would train nothing but noise); so, with truncate, is a pair that cutting to seq_len
// left with no response token or with equal responses. The summary counts both.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/sft_dataset.h"
#include "tensor/tensor.h"
#include "tokenizer/tokenizer.h"

namespace sllm::data {

struct PreferencePair {
  std::vector<int32_t> prompt, chosen, rejected;  // response ids end with the end-of-turn token (unless cut)
};

// One micro-batch of B pairs as 2B right-padded rows: rows [0, B) = prompt + chosen, rows
// [B, 2B) = prompt + rejected, each from column 0, then pad_id.
struct PreferenceBatch {
  Tensor ids;                 // (2B, T) i32
  Tensor labels;              // (2B, T) i32: ids[r][t + 1] where t + 1 is a response token, else kIgnoreIndex
  std::vector<int64_t> last;  // (2B) index of each row's last real token (where a reward model reads)
  int64_t pairs = 0;          // B
  int64_t tokens = 0;         // real (non-pad) tokens over the 2B rows
};
// sllm::Error with a hint when a row is longer than T or a pair has an empty response.
PreferenceBatch make_preference_batch(const std::vector<const PreferencePair*>& pairs, int64_t T, int32_t pad_id);

struct PreferenceOptions {
  SftTemplate chat_template = SftTemplate::chatml;
  int64_t seq_len = 0;    // T: prompt + response must fit in T tokens (the reward model reads all of them)
  bool truncate = false;  // longer pairs: false = error, true = responses cut to fit (counted)
};

struct PreferenceSummary {
  int64_t pairs = 0;      // pairs kept
  int64_t equal = 0;      // skipped: chosen and rejected tokenize the same
  int64_t truncated = 0;  // kept after cutting responses to seq_len (included in pairs)
  int64_t dropped = 0;    // cut to no response token, or to equal responses: not kept
  int64_t tokens = 0;     // prompt + chosen + prompt + rejected over kept pairs
};
std::string describe(const PreferenceSummary& s);  // one line for logs, warnings spelled out

class PreferenceDataset {
 public:
  // Reads and tokenizes the whole file; the errors above (file:line and a hint), an empty
  // file, a file left with no pair, and template chatml with a tokenizer that lacks
  // <|im_start|>/<|im_end|>.
  static PreferenceDataset load(const std::string& path, const tokenizer::Tokenizer& tok,
                                const PreferenceOptions& options);
  // The same from text in memory; `name` stands for the file in messages.
  static PreferenceDataset parse(const std::string& text, const std::string& name, const tokenizer::Tokenizer& tok,
                                 const PreferenceOptions& options);

  const std::vector<PreferencePair>& pairs() const { return pairs_; }
  const std::vector<int64_t>& lines() const { return lines_; }  // 1-based file line of each pair
  int64_t size() const { return static_cast<int64_t>(pairs_.size()); }
  const PreferenceSummary& summary() const { return summary_; }
  const PreferenceOptions& options() const { return options_; }
  const std::string& name() const { return name_; }
  int32_t max_id() const { return max_id_; }  // the largest token id, for a model's vocab check
  // FNV-1a over every pair's ids: a loader state saved on other data is caught on restore.
  uint64_t fingerprint() const { return fingerprint_; }

 private:
  std::vector<PreferencePair> pairs_;
  std::vector<int64_t> lines_;
  PreferenceSummary summary_;
  PreferenceOptions options_;
  std::string name_;
  int32_t max_id_ = 0;
  uint64_t fingerprint_ = 0;
};

// One line tokenized (before any length check); raises sllm::Error starting with `where`.
PreferencePair render_preference_line(const std::string& json_text, const std::string& where,
                                      const tokenizer::Tokenizer& tok, SftTemplate chat_template);

}  // namespace sllm::data
