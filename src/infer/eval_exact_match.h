// Exact-match evaluation of a model on question/answer JSONL (`sllm eval`): greedy decoding
// with the KV cache (generate.h), the answer cut where the turn ends, scored by string
// equality after trimming whitespace. Zero-shot and few-shot prompting use the same path,
// so prompt engineering and fine-tuning are measured on one ruler.
//
// Data: the SFT formats (sft_dataset.h). A chat line's last message must be the assistant's
// (the expected answer); every message before it is the prompt. A prompt/completion line is
// one user turn and its answer. An optional string "type" groups the accuracy (story_qa.h).
//
// Prompt formats (K shots drawn from a shot pool, e.g. train.jsonl; never from the test set):
//   chat   ChatML (chat_template.h): the shots as earlier user/assistant turns, then the
//          question's turns and "<|im_start|>assistant\n". The answer ends at <|im_end|> or
//          <|endoftext|>. For models fine-tuned with the chatml template.
//   plain  text a base model can continue, each turn's user text then "Answer:":
//            <shot user text>\nAnswer: <shot answer>\n\n   (K times)
//            <user text>\nAnswer:
//          A prompt/completion line's prompt is taken as it is (it carries its own cue, as
//          in `sllm data story-qa`'s *.completion.jsonl: "...\nAnswer:"), its shots as
//          "<prompt> <answer>\n\n"; so a model fine-tuned with `sllm sft --template none`
//          on such lines is asked exactly what it was trained on.
//          The answer is the generated text up to the first newline (or <|endoftext|>).
//          For a pretrained model that never saw ChatML's special tokens: it can only learn
//          the pattern in context, from plain text like its pretraining data.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "nn/transformer.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace sllm::infer {

struct QaItem {
  std::vector<tokenizer::ChatMessage> prompt;  // every turn before the answer
  std::string answer;                          // the expected answer (untrimmed, as in the file)
  std::string type;                            // "" when the line has none
  bool completion = false;                     // a prompt/completion line (its prompt holds the cue)
  int64_t line = 0;                            // 1-based line in its file
};

// Parses JSONL text (blank lines skipped); `name` stands for the file in messages. sllm::Error
// "name:line: ..." with a hint on bad JSON, neither format, a last message that is not the
// assistant's, a non-string field, or no item at all.
std::vector<QaItem> parse_qa_jsonl(const std::string& text, const std::string& name);
std::vector<QaItem> load_qa_jsonl(const std::string& path);

enum class PromptFormat { chat, plain };
PromptFormat parse_prompt_format(const std::string& name);  // "chat" | "plain", else sllm::Error
const char* prompt_format_name(PromptFormat f);

// Whitespace (space, \t, \n, \r, \f, \v) removed at both ends.
std::string trim_whitespace(const std::string& s);

// The plain-format prompt text (see the top of this file). A chat line's user text is the
// contents of its prompt messages joined by "\n" (system and user alike).
std::string plain_prompt(const std::vector<const QaItem*>& shots, const QaItem& item);

// The prompt's token ids in `format`. Chat needs <|im_start|>/<|im_end|> in the tokenizer.
std::vector<int32_t> prompt_ids(const tokenizer::Tokenizer& tok, PromptFormat format,
                                const std::vector<const QaItem*>& shots, const QaItem& item);

// The answer inside generated text: plain format cuts at the first '\n'; both trim whitespace.
std::string extract_answer(const std::string& generated, PromptFormat format);

// Token ids that end generation: <|endoftext|> (and <|im_end|> in chat format) when the
// tokenizer has them; in plain format also every token whose bytes are whitespace holding a
// '\n' (a byte-level BPE never merges a newline into a word, so these are the line breaks).
std::vector<int32_t> answer_stop_ids(const tokenizer::Tokenizer& tok, PromptFormat format);

// The shots of item `index`: K distinct items of the pool drawn with Rng(seed + index)
// (each question gets its own few-shot prompt, so no single unlucky prompt decides the
// score). K > pool size raises sllm::Error.
std::vector<const QaItem*> pick_shots(const std::vector<QaItem>& pool, int64_t k, uint64_t seed, int64_t index);

struct EvalOptions {
  PromptFormat format = PromptFormat::chat;
  int64_t shots = 0;            // K
  int64_t max_new_tokens = 16;
  int64_t limit = 0;            // evaluate only the first N items (0: all)
  uint64_t seed = 1337;         // of the shot draws
};

struct EvalRecord {
  int64_t line = 0;
  std::string type, prompt_tail, expected, got;  // expected and got trimmed
  bool correct = false;
};

struct TypeScore {
  int64_t count = 0, correct = 0;
};

struct EvalReport {
  int64_t count = 0, correct = 0;
  double accuracy = 0;  // correct / count, in [0, 1]
  std::map<std::string, TypeScore> per_type;  // by QaItem::type (items without a type: none)
  std::vector<EvalRecord> records;            // one per evaluated item, in file order
  int64_t prompt_tokens = 0, generated_tokens = 0;
};

// Evaluates `items` (the first opts.limit of them). Every prompt is built and checked to fit
// the model's context (with room for one new token) before any generation starts: sllm::Error
// with a hint (fewer shots) otherwise. on_item (may be empty) sees each record as it is scored.
EvalReport evaluate_exact_match(nn::Transformer& model, const tokenizer::Tokenizer& tok, const std::vector<QaItem>& items,
                                const std::vector<QaItem>& shot_pool, const EvalOptions& opts,
                                const std::function<void(const EvalRecord&)>& on_item = {});

}  // namespace sllm::infer
