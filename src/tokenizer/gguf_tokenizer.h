// The tokenizer stored in a GGUF file's metadata (llama.cpp's keys, ggml docs/gguf.md
// "Tokenizer"): a byte-level BPE vocabulary (tokenizer.ggml.model = "gpt2") with its merges,
// token types, special ids, add_bos/add_eos flags, the pre-tokenizer's name and the chat
// template (a Jinja string, kept as text).
//
//   tokenizer.ggml.tokens      [string]  id -> token, in GPT-2's byte<->unicode spelling
//                                        (control tokens as plain text, e.g. "<|im_end|>")
//   tokenizer.ggml.merges      [string]  "left right" in rank order, same spelling
//   tokenizer.ggml.token_type  [i32]     1 normal, 2 unknown, 3 control, 4 user-defined,
//                                        5 unused, 6 byte (llama.h, enum llama_token_type)
//   tokenizer.ggml.pre         string    which split regexes (llama.cpp llama-vocab.cpp)
//   tokenizer.ggml.{bos,eos,unknown,padding}_token_id   u32, optional
//   tokenizer.ggml.add_bos_token, add_eos_token         bool, optional
//   tokenizer.chat_template    string    optional
//
// Control and user-defined tokens become special tokens: matched in text only when the caller
// allows special tokens (Tokenizer::encode's allow_special), like added_tokens of a
// tokenizer.json. (llama.cpp and transformers always match user-defined ones; no file we read
// has any, and treating them as special keeps user text from forging them.)
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "tokenizer/pretokenizer.h"
#include "tokenizer/tokenizer.h"

namespace sllm::io {
class GgufFile;
}

namespace sllm::tokenizer {

struct GgufTokenizer {
  explicit GgufTokenizer(Tokenizer t) : tokenizer(std::move(t)) {}
  Tokenizer tokenizer;
  std::string pre;  // tokenizer.ggml.pre as written ("smollm", "llama-bpe", ...)
  std::optional<int32_t> bos_id, eos_id, unk_id, pad_id;
  bool add_bos = false, add_eos = false;
  std::string chat_template;  // "" when the file has none
};

// The pre-tokenizer llama.cpp uses for a tokenizer.ggml.pre name, when sllm has a scanner for
// its regexes (llama.cpp src/llama-vocab.cpp, llm_tokenizer_bpe's constructor):
//   gpt2, mpt, olmo, jais ..................... gpt2's regex                         -> gpt2
//   llama-bpe, llama3, llama-v3, falcon3,
//   dbrx, smaug-bpe .......................... Llama-3's regex (= cl100k's)         -> cl100k
//   gpt-4o ................................... o200k's regex                        -> o200k
//   smollm, starcoder, refact, codeshell ..... "\p{N}" (each digit alone), then gpt2's
//                                              regex: HF's Digits(individual_digits) +
//                                              ByteLevel, SmolLM's tokenizer.json   -> digits
// sllm::Error naming any other name (qwen2's regex, \p{N} singly inside Llama-3's, has no
// scanner here yet).
Pattern pattern_for_gguf_pre(const std::string& pre);

// Reads the tokenizer of an open file. sllm::Error naming the file and key on a missing key,
// a model other than "gpt2", an unknown pre-tokenizer, token_type of another length, a token
// outside the byte-level alphabet, a merge naming an unknown token, or an id out of range.
// pattern: "" = from tokenizer.ggml.pre, else this pattern name overrides it.
GgufTokenizer load_gguf_tokenizer(const io::GgufFile& file, const std::string& pattern = "");
GgufTokenizer load_gguf_tokenizer(const std::string& path, const std::string& pattern = "");

}  // namespace sllm::tokenizer
