// Readers and writers of tokenizer files, and the trainer: each builds a Model
// (tokenizer_model.h). Internal to src/tokenizer; tokenizer.h is the public face.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "tokenizer/tokenizer_model.h"

namespace sllm::tokenizer {

// Calls fn(line, line_no) for each line of a text file's contents ('\n'-separated; a
// trailing '\r' is dropped; line numbers start at 1, for error messages).
void for_each_line(std::string_view text, const std::function<void(std::string_view line, int64_t line_no)>& fn);


// Reads and parses a JSON file; bad JSON raises sllm::Error naming the file, with `hint`.
nlohmann::json parse_json_file(const std::string& path, const std::string& hint);

// GPT-2 vocab.json + merges.txt (Radford et al. 2019, openai/gpt-2 encoder.py layout).
std::shared_ptr<Model> load_gpt2_files(const std::string& vocab_path, const std::string& merges_path, Pattern pattern);

// Hugging Face tokenizer.json with a byte-level BPE model. pattern: "" = detect from the
// pre_tokenizer section, else override it.
std::shared_ptr<Model> load_hf_json(const std::string& path, const std::string& pattern);
std::string hf_json_text(const Model& m);

// tiktoken rank file: "<base64 of the token bytes> <rank>" per line. Special tokens come
// from a sibling "<name>.meta.json" ({"special_tokens": {text: id}}) when there is one.
std::shared_ptr<Model> load_tiktoken(const std::string& path, Pattern pattern);

// Byte-level BPE training (train.cpp).
std::shared_ptr<Model> train_bpe(const std::vector<std::string>& texts, int64_t vocab_size, Pattern pattern,
                                 const std::vector<std::string>& specials);

}  // namespace sllm::tokenizer
