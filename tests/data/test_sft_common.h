// Shared by the SFT data tests: a small chat tokenizer and JSONL helpers.
#pragma once
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/sft_dataset.h"
#include "tokenizer/tokenizer.h"

namespace sllm::data::testing {

// Trained once: BPE on a little English, with the specials ChatML and template none use.
inline const tokenizer::Tokenizer& chat_tokenizer() {
  static const tokenizer::Tokenizer tok = tokenizer::Tokenizer::train(
      {"Hello there! How are you? The cat sat on the mat. Be brief. What is two plus two? Four."}, 256 + 40, "gpt2",
      {"<|endoftext|>", "<|im_start|>", "<|im_end|>"});
  return tok;
}

inline std::string chat_line(const std::vector<std::pair<std::string, std::string>>& turns) {
  nlohmann::json messages = nlohmann::json::array();
  for (const auto& [role, content] : turns) messages.push_back({{"role", role}, {"content", content}});
  return nlohmann::json{{"messages", messages}}.dump();
}

inline std::string completion_line(const std::string& prompt, const std::string& completion) {
  return nlohmann::json{{"prompt", prompt}, {"completion", completion}}.dump();
}

inline std::string join_lines(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

inline void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

inline SftOptions options(int64_t seq_len, SftTemplate t = SftTemplate::chatml, bool truncate = false) {
  SftOptions o;
  o.chat_template = t;
  o.seq_len = seq_len;
  o.truncate = truncate;
  return o;
}

}  // namespace sllm::data::testing
