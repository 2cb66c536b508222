// Supervised fine-tuning (SFT) data: JSONL conversations rendered to token ids and labels.
//
// Each non-blank line of the file is one JSON object in one of two formats:
//   {"messages": [{"role": "system"|"user"|"assistant", "content": "..."}, ...]}   (chat)
//   {"prompt": "...", "completion": "..."}                                         (completion)
// rendered by a template:
//   chatml: tokenizer/chat_template.h. A prompt/completion line becomes one user turn and one
//           assistant turn (as TRL does for conversational prompt-completion data).
//   none:   prompt/completion only: prompt ids, then completion ids, then <|endoftext|> when
//           the tokenizer has it. The end-of-text token plays ChatML's <|im_end|> role: it is
//           labelled, so the model learns where a completion stops (TRL appends EOS likewise).
//           Prompt and completion are encoded apart, so their boundary is a token boundary.
//
// Labels: label[i] = ids[i] on the assistant's tokens (content plus the end-of-turn token)
// and kIgnoreIndex everywhere else, so only the assistant's tokens enter the loss.
//
// The shift for next-token prediction is done here, once: for an example of n ids,
//   inputs[t]  = ids[t]          t = 0 .. n-2
//   targets[t] = label[t + 1]    (the token inputs[t] must predict, or kIgnoreIndex)
// so an example fits a sequence of length T when n <= T + 1.
//
// Longer examples are an error (naming every overlong line's count and the first line) or,
// with truncate, cut to their first T + 1 ids; a truncated example left with no labelled
// target is dropped. Both are counted in SftSummary.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace sllm::data {

// The target value that ops::cross_entropy skips.
inline constexpr int32_t kIgnoreIndex = -100;

enum class SftTemplate { chatml, none };
// "chatml" | "none"; anything else raises sllm::Error listing the choices.
SftTemplate parse_sft_template(const std::string& name);
const char* sft_template_name(SftTemplate t);

struct SftOptions {
  SftTemplate chat_template = SftTemplate::chatml;
  int64_t seq_len = 0;    // T: an example uses at most T + 1 ids (see the shift above)
  bool truncate = false;  // overlong examples: false = error, true = cut to T + 1 ids
};

// One rendered example, already shifted: inputs.size() == targets.size() <= T.
struct SftExample {
  std::vector<int32_t> inputs;
  std::vector<int32_t> targets;  // next token on assistant positions, kIgnoreIndex elsewhere
  int64_t line = 0;              // 1-based line of the JSONL file it came from
};

struct SftSummary {
  int64_t examples = 0;      // examples kept
  int64_t truncated = 0;     // kept after truncation (included in examples)
  int64_t dropped = 0;       // truncated to no labelled target, not kept
  int64_t tokens = 0;        // input positions over kept examples (sum of inputs.size())
  int64_t label_tokens = 0;  // targets != kIgnoreIndex over kept examples
};
std::string describe(const SftSummary& s);  // one line for logs: "examples 10, truncated 1, ..."

// One rendered line before the shift: ids and labels of equal length.
struct SftRendered {
  std::vector<int32_t> ids;
  std::vector<int32_t> labels;  // ids[i] or kIgnoreIndex
};

class SftDataset {
 public:
  // Reads and renders the whole file. A JSONL syntax error, a line in neither format, an
  // unknown role, a conversation without an assistant turn, an empty file or an overlong
  // example (without truncate) raises sllm::Error naming the file and line, with a hint; so
  // does template chatml with a tokenizer that lacks <|im_start|>/<|im_end|> (naming the file).
  static SftDataset load(const std::string& path, const tokenizer::Tokenizer& tok, const SftOptions& options);
  // The same from text already in memory; `name` stands for the file in messages.
  static SftDataset parse(const std::string& text, const std::string& name, const tokenizer::Tokenizer& tok,
                          const SftOptions& options);

  const std::vector<SftExample>& examples() const { return examples_; }
  int64_t size() const { return static_cast<int64_t>(examples_.size()); }
  const SftSummary& summary() const { return summary_; }
  const SftOptions& options() const { return options_; }
  const std::string& name() const { return name_; }
  // FNV-1a over every example's inputs and targets: a loader state saved on other data
  // (another file, template, tokenizer or seq_len) is caught on restore.
  uint64_t fingerprint() const { return fingerprint_; }

 private:
  std::vector<SftExample> examples_;
  SftSummary summary_;
  SftOptions options_;
  std::string name_;
  uint64_t fingerprint_ = 0;
};

// The whole of a data file, for SftDataset::load and PreferenceDataset::load; `kind` names
// the data in the errors ("cannot open SFT data file '...'").
std::string read_data_file(const std::string& path, const char* kind);

// Renders one line of the file (see the formats above). Bad content raises sllm::Error whose
// message starts with `where` ("file:line").
SftRendered render_sft_line(const std::string& json_text, const std::string& where, const tokenizer::Tokenizer& tok,
                            SftTemplate chat_template);

}  // namespace sllm::data
