// ChatML rendering (the template of Qwen, SmolLM2-Instruct and OpenAI's chat format):
//
//   <|im_start|>system\nYou are helpful.<|im_end|>\n
//   <|im_start|>user\nHi<|im_end|>\n
//   <|im_start|>assistant\nHello!<|im_end|>\n
//
// "<|im_start|>" and "<|im_end|>" must be special tokens of the tokenizer. The mask marks the
// tokens a fine-tune trains on: each assistant message's content plus its closing
// "<|im_end|>" (so the model learns to stop), never the role header or the other turns.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace sllm::tokenizer {

struct ChatMessage {
  std::string role;  // "system" | "user" | "assistant" (any role name is rendered as given)
  std::string content;
};

struct ChatEncoding {
  std::vector<int32_t> ids;
  std::vector<uint8_t> assistant_mask;  // same length as ids: 1 on assistant content + its <|im_end|>
};

// add_generation_prompt appends "<|im_start|>assistant\n" (mask 0) so a model continues as the
// assistant. Message text is encoded without special-token matching: a user who types
// "<|im_end|>" cannot forge a turn boundary.
ChatEncoding render_chatml(const Tokenizer& tok, const std::vector<ChatMessage>& messages,
                           bool add_generation_prompt = false);

}  // namespace sllm::tokenizer
