// The tables behind a Tokenizer, shared by the file readers, the trainer and the encoder.
// Internal to src/tokenizer (other layers use tokenizer.h).
//
// Dimension legend: V vocabulary size (max id + 1), M merges, n bytes of one piece.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tokenizer/pretokenizer.h"

namespace sllm::tokenizer {

// Open-addressing hash table (linear probing, load <= 1/2) from a pair of token ids to the
// merge it makes: the hot lookup of BPE, so it is one multiply-shift hash and one probe on
// average, with no pointer chasing.
class PairTable {
 public:
  struct Merge {
    int32_t rank;    // lower merges first
    int32_t merged;  // the id the pair becomes
  };
  void reserve(size_t n);
  // Inserts or overwrites (as Hugging Face does when a merges list repeats a pair).
  void set(int32_t left, int32_t right, Merge m);
  const Merge* find(int32_t left, int32_t right) const {
    if (slots_.empty()) return nullptr;
    const uint64_t key = pack(left, right);
    for (uint64_t h = hash(key);; h = (h + 1) & mask_) {
      const Slot& s = slots_[h];
      if (s.key == key) return &s.merge;
      if (s.key == kEmpty) return nullptr;
    }
  }
  size_t size() const { return used_; }

 private:
  struct Slot {
    uint64_t key;
    Merge merge;
  };
  static constexpr uint64_t kEmpty = ~0ull;
  static uint64_t pack(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  uint64_t hash(uint64_t key) const { return (key * 0x9E3779B97F4A7C15ull) >> shift_; }
  std::vector<Slot> slots_;
  uint64_t mask_ = 0;
  int shift_ = 64;
  size_t used_ = 0;
};

struct Model {
  Pattern pattern = Pattern::Gpt2;
  // Merge semantics. false (GPT-2 merges.txt, tokenizer.json, trained): a pair merges by its
  // rank in the merges list (Sennrich et al. 2016; HF tokenizers). true (tiktoken rank
  // files): any two adjacent parts whose concatenation is a token merge, lowest token rank
  // first, and a piece that is itself a token is that token (tiktoken's byte_pair_merge).
  bool tiktoken_ranks = false;
  bool ignore_merges = false;  // HF BPE option (Llama-3): a piece found in the vocab is one token
  // A byte with no one-byte token is dropped before merging instead of refused, as HF BPE
  // without an unk_token and llama.cpp do (SmolLM2's vocabulary lacks 21 of the 256 bytes).
  bool drop_missing_bytes = false;

  std::vector<std::string> tokens;  // (V) id -> bytes; specials hold their text; "" = unused id
  std::vector<uint8_t> is_special;  // (V)
  std::vector<std::pair<std::string, int32_t>> specials;  // (text, id), sorted by id
  std::vector<std::pair<int32_t, int32_t>> merges;        // (M) rank order; empty for tiktoken ranks

  // Built by finalize():
  std::array<int32_t, 256> byte_id{};                     // the one-byte token of each byte; -1: none (dropped)
  PairTable pairs;                                        // (left, right) -> (rank, merged)
  std::unordered_map<std::string_view, int32_t> by_bytes;  // non-special token bytes -> id
  uint64_t uid = 0;                                       // identifies this model to per-thread caches

  // Checks the tables (every byte has a token, merges name known tokens, ...) and builds
  // the lookups. `where` names the source file in errors.
  void finalize(const std::string& where);
  int64_t vocab_size() const { return static_cast<int64_t>(tokens.size()); }
  // The merges list a tokenizer.json needs; for tiktoken ranks it is derived (see .cpp).
  std::vector<std::pair<int32_t, int32_t>> merges_for_export() const;
};

// Appends the BPE encoding of one piece's bytes to out. use_heap selects the O(n log n)
// algorithm that long pieces take (exposed so tests can check both agree).
void bpe_merge(const Model& m, std::string_view piece, std::vector<int32_t>& out, int32_t max_rank,
               bool use_heap);
void bpe_merge(const Model& m, std::string_view piece, std::vector<int32_t>& out);

// GPT-2's reversible byte <-> printable-unicode mapping (encoder.py bytes_to_unicode): the
// text form of token bytes inside vocab.json, merges.txt and tokenizer.json.
std::string bytes_to_unicode(std::string_view bytes);
// Inverse; returns false when a character is outside the 256-character alphabet.
bool unicode_to_bytes(std::string_view text, std::string& out);

}  // namespace sllm::tokenizer
