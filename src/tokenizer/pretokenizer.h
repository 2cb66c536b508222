// Pre-tokenizers: the regex splits of the GPT-2 family, written as hand scanners.
//
// Why not std::regex: it is slow, and it has no Unicode classes (\p{L}, \p{N}). Each scanner
// below implements one regex's leftmost-first alternation with the regex engine's
// backtracking spelled out, so the pieces are exactly those of the reference regex engines
// (tiktoken's fancy-regex, Hugging Face's Oniguruma) on every input.
//
// Unicode classes come from ICU (u_charType for the general category, u_isUWhiteSpace for
// \s = the White_Space property, as in Rust's regex and Oniguruma). Bytes that are not
// well-formed UTF-8 count as one "other" character per maximal subpart (utf8.h), so any
// byte string splits and round-trips.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace sllm::tokenizer {

enum class Pattern {
  Gpt2,    // GPT-2, r50k_base, p50k_base
  Cl100k,  // cl100k_base, Llama-3
  O200k,   // o200k_base (GPT-4o)
  Digits,  // SmolLM: every \p{N} character is its own piece, then the GPT-2 split
};

// "gpt2" | "r50k" | "p50k" | "cl100k" | "llama3" | "o200k" | "digits" | "smollm" (also with
// a "_base" suffix). Anything else raises sllm::Error listing the names.
Pattern parse_pattern(const std::string& name);
const std::string& pattern_name(Pattern p);
// The regex text (Oniguruma/fancy-regex syntax) the scanner implements, as written into
// tokenizer.json. Digits has none (it is a Digits + ByteLevel sequence); returns "".
const std::string& pattern_regex(Pattern p);

// Returns the end of the piece that starts at text[pos] (pos < text.size()).
size_t next_piece(Pattern p, std::string_view text, size_t pos);

// Calls fn(piece) for each piece of text, in order; the pieces concatenate to text.
template <typename Fn>
void split_pieces(Pattern p, std::string_view text, Fn&& fn) {
  for (size_t pos = 0; pos < text.size();) {
    const size_t end = next_piece(p, text, pos);
    fn(text.substr(pos, end - pos));
    pos = end;
  }
}

}  // namespace sllm::tokenizer
