#include "infer/chat_session.h"

#include <algorithm>

#include "core/error.h"

namespace sllm::infer {

ChatSession::ChatSession(InferenceModel& m, ChatOptions options) : m_(m), options_(std::move(options)) {
  SLLM_ASSERT(m_.model && m_.tokenizer);
  SLLM_CHECK(options_.max_new_tokens >= 0, str("--max-new-tokens must be >= 0, got ", options_.max_new_tokens),
             "pass a non-negative count");
  validate(options_.sampling);
  const tokenizer::Tokenizer& tok = *m_.tokenizer;
  if (options_.chat_template == data::SftTemplate::chatml) {
    // The same check, and the same way out, as SftDataset::parse: a model fine-tuned with
    // --template none on such a tokenizer is chatted with under none.
    const auto end = tok.special_id("<|im_end|>");
    SLLM_CHECK(tok.special_id("<|im_start|>") && end,
               "chat template chatml needs the special tokens <|im_start|> and <|im_end|>, which the tokenizer does not have",
               "use a chat tokenizer (`sllm tokenizer train` registers them), or --template none for a model "
               "fine-tuned on prompt/completion data with --template none");
    stop_ids_ = {*end};
  } else {
    SLLM_CHECK(options_.system.empty(), "--system needs a chat template, but the template is none",
               "template none renders a bare prompt (as `sllm sft --template none`): drop --system or use chatml");
  }
}

std::vector<int32_t> ChatSession::render(const std::vector<tokenizer::ChatMessage>& conversation) const {
  const tokenizer::Tokenizer& tok = *m_.tokenizer;
  if (options_.chat_template == data::SftTemplate::none) {
    // SftDataset's render_plain: the prompt encoded as plain text, the completion follows.
    return conversation.empty() ? std::vector<int32_t>{} : tok.encode(conversation.back().content);
  }
  std::vector<tokenizer::ChatMessage> messages;
  if (!options_.system.empty()) messages.push_back({"system", options_.system});
  messages.insert(messages.end(), conversation.begin(), conversation.end());
  return tokenizer::render_chatml(tok, messages, /*add_generation_prompt=*/true).ids;
}

int64_t ChatSession::reply_reserve() const {
  return std::max<int64_t>(1, std::min(options_.max_new_tokens, m_.model->config().n_ctx / 2));
}

ChatTurn ChatSession::send(const std::string& user, const std::function<void(const std::string&)>& on_text) {
  const int64_t n_ctx = m_.model->config().n_ctx, reserve = reply_reserve();
  const bool keeps_history = options_.chat_template == data::SftTemplate::chatml;
  std::vector<tokenizer::ChatMessage> conversation = keeps_history ? history_ : std::vector<tokenizer::ChatMessage>{};
  conversation.push_back({"user", user});
  ChatTurn turn;
  std::vector<int32_t> ids = render(conversation);
  SLLM_CHECK(!ids.empty(), "the message is empty", "type some text (template none has no header to start from)");
  // Drop whole exchanges (a user message and the reply after it), oldest first.
  while (static_cast<int64_t>(ids.size()) + reserve > n_ctx && conversation.size() > 1) {
    conversation.erase(conversation.begin(), conversation.begin() + std::min<size_t>(2, conversation.size() - 1));
    ++turn.dropped_turns;
    ids = render(conversation);
  }
  SLLM_CHECK(static_cast<int64_t>(ids.size()) + reserve <= n_ctx,
             str("the message does not fit: rendered it is ", ids.size(), " tokens", options_.system.empty() ? "" : " with the system message",
                 ", and the model's context of ", n_ctx, " tokens must keep ", reserve, " for the reply"),
             "write a shorter message (or --system), or lower --max-new-tokens");

  SamplingConfig sampling = options_.sampling;
  sampling.seed += turns_++;  // a fresh draw each turn, the same for the same session
  turn.generation = generate_text(
      m_, ids, options_.max_new_tokens, sampling,
      [&](const std::string& text) {
        turn.reply += text;
        on_text(text);
      },
      stop_ids_);
  if (keeps_history) {
    conversation.push_back({"assistant", turn.reply});
    history_ = std::move(conversation);
  }
  return turn;
}

}  // namespace sllm::infer
