#include "tokenizer/chat_template.h"

#include "core/error.h"

namespace sllm::tokenizer {

// Each part is encoded on its own, so a turn boundary is always a token boundary and the
// mask is exact. (Tokenizing the whole rendered string instead can fuse the "\n" after the
// role with leading whitespace of the content into one token.) The same split is what a
// model sees at inference time, where generation starts right after "assistant\n".
ChatEncoding render_chatml(const Tokenizer& tok, const std::vector<ChatMessage>& messages, bool add_generation_prompt) {
  const auto start = tok.special_id("<|im_start|>");
  const auto end = tok.special_id("<|im_end|>");
  SLLM_CHECK(start && end, "the tokenizer has no <|im_start|> / <|im_end|> special tokens, which ChatML needs",
             "use a chat tokenizer (e.g. one trained by `sllm tokenizer train`, which registers them)");
  ChatEncoding enc;
  auto append = [&](const std::vector<int32_t>& ids, uint8_t mask) {
    enc.ids.insert(enc.ids.end(), ids.begin(), ids.end());
    enc.assistant_mask.insert(enc.assistant_mask.end(), ids.size(), mask);
  };
  const std::vector<int32_t> newline = tok.encode("\n");
  for (const auto& msg : messages) {
    SLLM_CHECK(!msg.role.empty(), "a chat message has an empty role", "roles are system, user or assistant");
    const uint8_t train_on = msg.role == "assistant" ? 1 : 0;
    append({*start}, 0);
    append(tok.encode(msg.role + "\n"), 0);
    append(tok.encode(msg.content), train_on);
    append({*end}, train_on);
    append(newline, 0);
  }
  if (add_generation_prompt) {
    append({*start}, 0);
    append(tok.encode("assistant\n"), 0);
  }
  return enc;
}

}  // namespace sllm::tokenizer
