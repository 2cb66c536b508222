// `sllm chat`: a multi-turn conversation with a model on the chat template it was fine-tuned
// with. Each turn renders the whole conversation exactly as `sllm sft` rendered its training
// data (tokenizer::render_chatml, the function SftDataset uses) plus the assistant header
// "<|im_start|>assistant\n", generates until the end-of-turn token <|im_end|> (or
// <|endoftext|>, or max_new_tokens, or the context), and keeps the reply in the history, so
// the next turn sees it as an assistant message, again as training did.
//
// Context: when the rendered conversation plus room for the reply exceeds n_ctx, the oldest
// user/assistant exchanges are dropped (the system message stays) and the turn says how many.
//
// Template none (SFT's prompt/completion rendering: prompt ids, then the completion up to
// <|endoftext|>) has no turns: every message is a prompt of its own and nothing is kept.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/sft_dataset.h"
#include "infer/sampling.h"
#include "infer/text_session.h"
#include "tokenizer/chat_template.h"

namespace sllm::infer {

struct ChatOptions {
  data::SftTemplate chat_template = data::SftTemplate::chatml;
  std::string system;  // the system message; "" = none
  int64_t max_new_tokens = 200;
  SamplingConfig sampling;  // turn k (0-based, counted since construction) draws from seed + k
};

struct ChatTurn {
  std::string reply;           // the assistant's text, as streamed
  TextGeneration generation;   // prompt ids (the rendered conversation) and new ids
  int64_t dropped_turns = 0;   // oldest exchanges dropped this turn to fit the context
};

class ChatSession {
 public:
  // sllm::Error with a hint when the tokenizer lacks ChatML's special tokens under template
  // chatml (pointing to --template none, as SFT does), or a system message is given under none.
  ChatSession(InferenceModel& m, ChatOptions options);

  // One turn: the user's message in, the reply streamed through on_text (as generate_text).
  // sllm::Error with a hint, history unchanged, when the message cannot fit the context even
  // with every earlier exchange dropped.
  ChatTurn send(const std::string& user, const std::function<void(const std::string&)>& on_text);

  // Forgets every exchange; the system message stays.
  void reset() { history_.clear(); }
  // The user/assistant messages so far, oldest first (without the system message).
  const std::vector<tokenizer::ChatMessage>& history() const { return history_; }
  // The ids the model continues: the system message, `conversation` and the assistant
  // header under chatml; the last message's text alone under none.
  std::vector<int32_t> render(const std::vector<tokenizer::ChatMessage>& conversation) const;
  // Tokens kept free for the reply when the conversation is trimmed: max_new_tokens, at most
  // half the context, at least one.
  int64_t reply_reserve() const;

 private:
  InferenceModel& m_;
  ChatOptions options_;
  std::vector<int32_t> stop_ids_;  // <|im_end|> under chatml (<|endoftext|> is always a stop)
  std::vector<tokenizer::ChatMessage> history_;
  uint64_t turns_ = 0;
};

}  // namespace sllm::infer
