#include "rl/prompt_set.h"

#include <fstream>
#include <numeric>

#include "core/error.h"
#include "core/rng.h"
#include "tokenizer/chat_template.h"

namespace sllm::rl {

namespace {

std::vector<int32_t> render_prompt(const nlohmann::json& prompt, const std::string& where, const tokenizer::Tokenizer& tok,
                                   data::SftTemplate tmpl) {
  std::vector<tokenizer::ChatMessage> messages;
  if (prompt.is_string()) {
    const std::string text = prompt.get<std::string>();
    SLLM_CHECK(!text.empty(), str(where, ": empty prompt"), "every line needs a non-empty \"prompt\"");
    if (tmpl == data::SftTemplate::none) return tok.encode(text);
    messages.push_back({"user", text});
  } else {
    SLLM_CHECK(prompt.is_array() && !prompt.empty(), str(where, ": \"prompt\" is neither a string nor a list of messages"),
               "use \"prompt\": \"text\" or \"prompt\": [{\"role\": \"user\", \"content\": \"...\"}]");
    SLLM_CHECK(tmpl == data::SftTemplate::chatml, str(where, ": chat messages need the chatml template"),
               "pass --template chatml, or give the prompt as a string");
    for (const nlohmann::json& m : prompt) {
      SLLM_CHECK(m.is_object() && m.contains("role") && m["role"].is_string() && m.contains("content") &&
                     m["content"].is_string(),
                 str(where, ": a message needs string \"role\" and \"content\""), "e.g. {\"role\": \"user\", \"content\": \"...\"}");
      messages.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
    }
  }
  return tokenizer::render_chatml(tok, messages, /*add_generation_prompt=*/true).ids;
}

}  // namespace

PromptSet load_prompts(const std::string& path, const tokenizer::Tokenizer& tok, const PromptSetOptions& options) {
  std::ifstream in(path);
  SLLM_CHECK(in.good(), str("cannot open prompts file ", path), "pass a JSONL file with one {\"prompt\": ...} per line");
  PromptSet set;
  std::string line;
  for (int64_t number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = str(path, ":", number);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const std::exception& e) {
      fail(str(where, ": not valid JSON (", e.what(), ")"), "one JSON object per line");
    }
    SLLM_CHECK(j.is_object() && j.contains("prompt"), str(where, ": no \"prompt\""),
               "each line is {\"prompt\": ..., plus the fields its verifier reads}");
    RlPrompt p{j, render_prompt(j["prompt"], where, tok, options.chat_template), where};
    SLLM_CHECK(!p.ids.empty(), str(where, ": the prompt encodes to no token"), "give a non-empty prompt");
    const int64_t P = static_cast<int64_t>(p.ids.size());
    SLLM_CHECK(P < options.n_ctx, str(where, ": the prompt is ", P, " tokens, the model's context ", options.n_ctx),
               "shorten the prompt: a response needs at least one position after it");
    if (P + options.max_new_tokens > options.n_ctx) ++set.cut_short;
    set.prompts.push_back(std::move(p));
  }
  SLLM_CHECK(!set.prompts.empty(), str(path, ": no prompts"), "the file needs at least one {\"prompt\": ...} line");
  return set;
}

PromptLoader::PromptLoader(int64_t size, uint64_t seed) : size_(size), seed_(seed) {
  SLLM_CHECK(size > 0, "PromptLoader: no prompts", "load at least one prompt");
  shuffle();
}

void PromptLoader::shuffle() {
  order_.resize(static_cast<size_t>(size_));
  std::iota(order_.begin(), order_.end(), int64_t(0));
  Rng rng(seed_ + static_cast<uint64_t>(epoch_));
  for (int64_t i = size_ - 1; i > 0; --i)  // Fisher–Yates
    std::swap(order_[size_t(i)], order_[size_t(rng.below(static_cast<uint64_t>(i + 1)))]);
}

std::vector<int64_t> PromptLoader::next(int64_t count) {
  std::vector<int64_t> out;
  while (static_cast<int64_t>(out.size()) < count) {
    if (position_ == size_) {
      ++epoch_;
      position_ = 0;
      shuffle();
    }
    out.push_back(order_[size_t(position_++)]);
  }
  return out;
}

void PromptLoader::restore(const nlohmann::json& state) {
  const int64_t epoch = state.at("epoch").get<int64_t>(), position = state.at("position").get<int64_t>();
  SLLM_CHECK(epoch >= 0 && position >= 0 && position <= size_,
             str("prompt loader state (epoch ", epoch, ", position ", position, ") does not fit ", size_, " prompts"),
             "resume with the prompts file the run started with");
  epoch_ = epoch;
  position_ = position;
  shuffle();
}

}  // namespace sllm::rl
