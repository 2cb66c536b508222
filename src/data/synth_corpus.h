// The built-in synthetic corpus: stories from story_grammar.h, each followed by the document
// separator on its own line, written as DIR/train.txt (plus DIR/README saying how to rebuild
// it). `sllm prepare` then splits on the separator and maps it to the tokenizer's special token.
#pragma once
#include <cstdint>
#include <string>

namespace sllm::data {

inline constexpr const char* kDocumentSeparator = "<|endoftext|>";

// Stories are generated until the text holds at least `target_bytes` bytes; the last story is
// never cut. Each story is followed by "\n<|endoftext|>\n". Same seed, same bytes.
std::string synth_corpus(int64_t target_bytes, uint64_t seed);

struct SynthSummary {
  int64_t bytes = 0, stories = 0;
};

// Writes DIR/train.txt and DIR/README atomically (creating DIR), streaming so that large
// corpora never sit in memory whole.
SynthSummary write_synth_corpus(const std::string& dir, int64_t target_bytes, uint64_t seed);

}  // namespace sllm::data
