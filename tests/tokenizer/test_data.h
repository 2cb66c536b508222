// Where the tokenizer tests find the third-party vocabularies (../shared, not in the repo),
// and the tokenizers loaded from them once per test binary.
#pragma once
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "tokenizer/tokenizer.h"

namespace sllm::tokenizer::testing {

inline std::string shared_dir() { return std::string(SLLM_SOURCE_DIR) + "/../shared/data/tokenizers"; }
inline bool have_shared() { return std::filesystem::exists(shared_dir() + "/golden.jsonl"); }

// name: gpt2 | cl100k_base | o200k_base
inline const Tokenizer& reference(const std::string& name) {
  static const Tokenizer gpt2 = Tokenizer::load(shared_dir() + "/gpt2");
  static const Tokenizer cl100k = Tokenizer::load(shared_dir() + "/cl100k_base.tiktoken", "cl100k");
  static const Tokenizer o200k = Tokenizer::load(shared_dir() + "/o200k_base.tiktoken", "o200k");
  return name == "gpt2" ? gpt2 : name == "cl100k_base" ? cl100k : o200k;
}

}  // namespace sllm::tokenizer::testing

#define SLLM_REQUIRE_SHARED_TOKENIZERS()                                                                   \
  do {                                                                                                      \
    if (!::sllm::tokenizer::testing::have_shared())                                                         \
      GTEST_SKIP() << "reference vocabularies not found at " << ::sllm::tokenizer::testing::shared_dir() \
                   << " (they live outside the repository, in ../shared)";                                \
  } while (0)
