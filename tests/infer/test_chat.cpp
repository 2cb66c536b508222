// `sllm chat`'s session: the conversation is rendered exactly as SFT rendered its training
// data, replies stop at <|im_end|> and stay in the history, old exchanges make room when the
// context fills (the system message stays), and template none mirrors SFT's none.
#include <algorithm>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/error.h"
#include "data/sft_dataset.h"
#include "infer/chat_session.h"
#include "tests/infer/infer_test_support.h"
#include "tokenizer/chat_template.h"

namespace sllm::infer {
namespace {

using testing::randomize;
using tokenizer::ChatMessage;
using tokenizer::Tokenizer;

const Tokenizer& chat_tokenizer() {
  static const Tokenizer tok = Tokenizer::train(
      {"Hello there! How are you? The cat sat on the mat. Be brief. What is two plus two? Four."}, 256 + 40, "gpt2",
      {"<|endoftext|>", "<|im_start|>", "<|im_end|>"});
  return tok;
}

// GPT-2 "tiny" (n_ctx 64) with large random weights and the chat tokenizer.
InferenceModel chat_model(const Tokenizer& tok = chat_tokenizer()) {
  InferenceModel m;
  m.model = std::make_unique<nn::Transformer>(testing::gpt2_config());
  randomize(*m.model, 21);
  m.tokenizer = tok;
  return m;
}

ChatOptions greedy(int64_t max_new_tokens, const std::string& system = "") {
  ChatOptions o;
  o.system = system;
  o.max_new_tokens = max_new_tokens;
  o.sampling.temperature = 0.0f;
  return o;
}

std::vector<int32_t> chatml(const std::vector<ChatMessage>& messages) {
  return tokenizer::render_chatml(chat_tokenizer(), messages, /*add_generation_prompt=*/true).ids;
}

const auto ignore = [](const std::string&) {};

TEST(ChatSession, PromptIsTheSftRenderingUpToTheAssistantsReply) {
  InferenceModel m = chat_model();
  ChatSession chat(m, greedy(4, "Be brief."));
  const std::vector<int32_t> prompt = chat.render({{"user", "How are you?"}});
  EXPECT_EQ(prompt, chatml({{"system", "Be brief."}, {"user", "How are you?"}}));
  // Byte-identical to what `sllm sft` trained on: the training example's ids start with the
  // prompt, and its labels start right after it (the reply and its <|im_end|>).
  const data::SftRendered trained = data::render_sft_line(
      R"({"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "How are you?"},)"
      R"( {"role": "assistant", "content": "Four."}]})",
      "test:1", chat_tokenizer(), data::SftTemplate::chatml);
  ASSERT_GT(trained.ids.size(), prompt.size());
  EXPECT_TRUE(std::equal(prompt.begin(), prompt.end(), trained.ids.begin()));
  EXPECT_EQ(trained.labels[prompt.size() - 1], data::kIgnoreIndex);
  EXPECT_NE(trained.labels[prompt.size()], data::kIgnoreIndex);
}

TEST(ChatSession, RepliesGoIntoTheHistoryAndTheNextTurnSeesThem) {
  InferenceModel m = chat_model();
  ChatSession chat(m, greedy(5));
  std::string streamed;
  const ChatTurn first = chat.send("Hello there!", [&](const std::string& t) { streamed += t; });
  EXPECT_EQ(first.generation.prompt_ids, chatml({{"user", "Hello there!"}}));
  EXPECT_EQ(first.reply, streamed);
  EXPECT_EQ(first.reply, chat_tokenizer().decode(first.generation.new_ids));
  // Greedy over the tokenizer's ids, stopping at <|im_end|>: the slow reference agrees.
  const int32_t im_end = *chat_tokenizer().special_id("<|im_end|>");
  EXPECT_EQ(first.generation.new_ids,
            testing::greedy_reference(*m.model, first.generation.prompt_ids, 5, chat_tokenizer().vocab_size(), im_end));
  ASSERT_EQ(chat.history().size(), 2u);
  EXPECT_EQ(chat.history()[1].role, "assistant");
  EXPECT_EQ(chat.history()[1].content, first.reply);

  const ChatTurn second = chat.send("The cat?", ignore);
  EXPECT_EQ(second.generation.prompt_ids,
            chatml({{"user", "Hello there!"}, {"assistant", first.reply}, {"user", "The cat?"}}));
  EXPECT_EQ(chat.history().size(), 4u);
  EXPECT_EQ(second.dropped_turns, 0);

  chat.reset();
  EXPECT_TRUE(chat.history().empty());
  EXPECT_EQ(chat.send("The cat?", ignore).generation.prompt_ids, chatml({{"user", "The cat?"}}));
}

TEST(ChatSession, StopsAtTheEndOfTurnToken) {
  // ln_f outputs the constant e0 (weight 0, bias e0) and <|im_end|>'s tied embedding row is
  // 50·e0, so <|im_end|> wins every greedy step: the reply ends at once, by the stop token.
  InferenceModel m = chat_model();
  const int32_t im_end = *chat_tokenizer().special_id("<|im_end|>");
  const int64_t C = m.model->config().n_embd;
  for (auto& p : m.model->parameters()) {
    float* w = p.value.mutable_f32();
    if (p.name.find("ln_f.weight") != std::string::npos) std::fill(w, w + C, 0.0f);
    if (p.name.find("ln_f.bias") != std::string::npos) std::fill(w, w + C, 0.0f), w[0] = 1.0f;
    if (p.name.find("wte.weight") != std::string::npos) std::fill(w + im_end * C, w + (im_end + 1) * C, 0.0f), w[im_end * C] = 50.0f;
  }
  ChatSession chat(m, greedy(10));
  const ChatTurn turn = chat.send("Hello there!", ignore);
  EXPECT_EQ(turn.generation.reason, StopReason::StopToken);
  EXPECT_TRUE(turn.generation.new_ids.empty());
  EXPECT_EQ(turn.reply, "");
  EXPECT_EQ(chat.history().size(), 2u);
}

TEST(ChatSession, DropsTheOldestExchangesToFitTheContextAndKeepsTheSystemMessage) {
  InferenceModel m = chat_model();
  const int64_t n_ctx = m.model->config().n_ctx;  // 64
  ChatSession chat(m, greedy(6, "Be brief."));
  EXPECT_EQ(chat.reply_reserve(), 6);
  const std::vector<std::string> messages = {"How are you?", "The cat sat on the mat.", "What is two plus two?",
                                             "Hello there!", "Be brief."};
  int64_t dropped = 0;
  std::vector<ChatMessage> expected_history;
  for (const std::string& text : messages) {
    const ChatTurn turn = chat.send(text, ignore);
    dropped += turn.dropped_turns;
    for (int64_t k = 0; k < turn.dropped_turns; ++k) expected_history.erase(expected_history.begin(), expected_history.begin() + 2);
    expected_history.push_back({"user", text});
    std::vector<ChatMessage> rendered = {{"system", "Be brief."}};
    rendered.insert(rendered.end(), expected_history.begin(), expected_history.end());
    EXPECT_EQ(turn.generation.prompt_ids, chatml(rendered)) << text;
    EXPECT_LE(static_cast<int64_t>(turn.generation.prompt_ids.size()) + 6, n_ctx) << text;
    expected_history.push_back({"assistant", turn.reply});
  }
  EXPECT_GT(dropped, 0) << "five exchanges should not fit 64 tokens";
  ASSERT_EQ(chat.history().size(), expected_history.size());
  EXPECT_EQ(chat.history().back().content, expected_history.back().content);
  EXPECT_EQ(chat.history().front().role, "user");

  // A message that cannot fit even alone: an error, and the history stays as it was.
  std::string huge;
  for (int i = 0; i < 40; ++i) huge += "cat ";
  const size_t before = chat.history().size();
  try {
    chat.send(huge, ignore);
    FAIL() << "a message over the context was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("does not fit"), std::string::npos) << e.what();
    EXPECT_FALSE(e.hint().empty());
  }
  EXPECT_EQ(chat.history().size(), before);
}

TEST(ChatSession, TemplateNoneIsABarePromptWithoutHistory) {
  InferenceModel m = chat_model();
  ChatOptions o = greedy(4);
  o.chat_template = data::SftTemplate::none;
  ChatSession chat(m, o);
  const ChatTurn turn = chat.send("The cat", ignore);
  EXPECT_EQ(turn.generation.prompt_ids, chat_tokenizer().encode("The cat"));  // SFT's none: prompt as plain text
  EXPECT_TRUE(chat.history().empty());
  EXPECT_EQ(chat.send("The cat", ignore).generation.prompt_ids, chat_tokenizer().encode("The cat"));
  EXPECT_THROW(chat.send("", ignore), Error);
  o.system = "Be brief.";
  EXPECT_THROW(ChatSession rejected(m, o), Error);
}

TEST(ChatSession, ChatmlWithoutItsSpecialTokensPointsToTemplateNone) {
  const Tokenizer plain = Tokenizer::train({"the cat sat on the mat"}, 256 + 10, "gpt2", {"<|endoftext|>"});
  InferenceModel m = chat_model(plain);
  try {
    ChatSession chat(m, greedy(4));
    FAIL() << "chatml accepted a tokenizer without <|im_start|>";
  } catch (const Error& e) {
    EXPECT_NE(e.message().find("<|im_start|>"), std::string::npos) << e.what();
    EXPECT_NE(e.hint().find("--template none"), std::string::npos) << e.what();
  }
  ChatOptions none = greedy(4);
  none.chat_template = data::SftTemplate::none;
  EXPECT_NO_THROW(ChatSession(m, none).send("the cat", ignore));
}

}  // namespace
}  // namespace sllm::infer
