// Byte-level BPE tokenizer (GPT-2 family): a pre-tokenizer splits text into pieces with a
// hand-written scanner (pretokenizer.h), each piece's bytes are merged pair by pair by rank,
// and special tokens ("<|endoftext|>", ...) are matched only when the caller allows them.
//
// Files read: GPT-2 vocab.json + merges.txt, Hugging Face tokenizer.json (BPE, byte-level),
// tiktoken rank files ("<base64 bytes> <rank>" per line). File written: tokenizer.json that
// Hugging Face `tokenizers` loads and encodes identically.
//
// A Tokenizer is an immutable value, cheap to copy (it shares its tables) and safe to use
// from several threads at once.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sllm::tokenizer {

struct Model;  // the tables (tokenizer_model.h); internal to this layer

class Tokenizer {
 public:
  // path: a directory holding tokenizer.json or vocab.json+merges.txt, a tokenizer.json file,
  // a .gguf file (its tokenizer.ggml.* metadata: gguf_tokenizer.h, which also gives its special
  // ids and chat template), or a .tiktoken rank file (pattern required then). A non-empty pattern overrides the one
  // a file names. Pattern names: gpt2 (= r50k, p50k), cl100k (= llama3), o200k, digits
  // (SmolLM: every digit its own piece, then the gpt2 split).
  static Tokenizer load(const std::string& path, const std::string& pattern = "");

  // Trains byte-level BPE on `texts` (each split by `pattern` first) until the vocabulary,
  // including `specials` appended after the merges, holds vocab_size tokens.
  static Tokenizer train(const std::vector<std::string>& texts, int64_t vocab_size, const std::string& pattern,
                         const std::vector<std::string>& specials = {"<|endoftext|>"});

  // allow_special=false: special-token text in `text` is encoded as plain text (safe for
  // user input). true: registered special tokens in the text become their ids.
  std::vector<int32_t> encode(std::string_view text, bool allow_special = false) const;
  std::string decode(const std::vector<int32_t>& ids) const;        // invalid UTF-8 replaced (U+FFFD) at the boundary
  std::string decode_bytes(const std::vector<int32_t>& ids) const;  // exact bytes
  int64_t vocab_size() const;                                       // including special tokens (max id + 1)
  std::optional<int32_t> special_id(const std::string& name) const;  // e.g. "<|endoftext|>"
  void save(const std::string& dir) const;  // writes dir/tokenizer.json (atomically: temp + rename)

  // Extras beyond the contract.
  std::string to_hf_json() const;                     // the text save() writes
  const std::string& pattern_name() const;           // gpt2 | cl100k | o200k | digits
  std::string token_bytes(int32_t id) const;           // one token's bytes (special: its text)
  int64_t num_merges() const;
  std::vector<std::pair<std::string, int32_t>> special_tokens() const;  // (text, id), by id
  // Encodes `text` with no special-token matching, appending to `out` (no allocation per call
  // once `out` has grown): the hot path for bulk data preparation.
  void encode_ordinary_into(std::string_view text, std::vector<int32_t>& out) const;

  explicit Tokenizer(std::shared_ptr<const Model> model);
  const Model& model() const { return *model_; }

 private:
  std::shared_ptr<const Model> model_;
};

}  // namespace sllm::tokenizer
