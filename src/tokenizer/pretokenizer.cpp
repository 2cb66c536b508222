#include "tokenizer/pretokenizer.h"

#include <unicode/uchar.h>

#include <array>
#include <cstdint>
#include <vector>

#include "core/error.h"
#include "tokenizer/utf8.h"

namespace sllm::tokenizer {

// ---------------------------------------------------------------------------------------
// Character classes. One byte of flags per character; "other" is the absence of L, N, S.
enum : uint8_t {
  kL = 1,    // \p{L}: Lu Ll Lt Lm Lo
  kN = 2,    // \p{N}: Nd Nl No
  kS = 4,    // \s: White_Space
  kNL = 8,   // \r or \n
  kUp = 16,  // o200k's [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]
  kLo = 32,  // o200k's [\p{Ll}\p{Lm}\p{Lo}\p{M}]
  kEnd = 64, // past the end of the text (or, for Digits, at a digit: see scan_gpt2)
};

static uint8_t classify_icu(int32_t cp) {
  uint8_t f = 0;
  switch (u_charType(cp)) {
    case U_UPPERCASE_LETTER: case U_TITLECASE_LETTER: f = kL | kUp; break;
    case U_LOWERCASE_LETTER: f = kL | kLo; break;
    case U_MODIFIER_LETTER: case U_OTHER_LETTER: f = kL | kUp | kLo; break;
    case U_NON_SPACING_MARK: case U_ENCLOSING_MARK: case U_COMBINING_SPACING_MARK: f = kUp | kLo; break;
    case U_DECIMAL_DIGIT_NUMBER: case U_LETTER_NUMBER: case U_OTHER_NUMBER: f = kN; break;
    default: break;
  }
  if (u_isUWhiteSpace(cp)) f |= kS;
  if (cp == '\r' || cp == '\n') f |= kNL;
  return f;
}

// The Basic Multilingual Plane is looked up in a table built once (64 KiB); ICU is asked
// directly for the rare supplementary characters (emoji, rare CJK).
static const std::vector<uint8_t>& bmp_table() {
  static const std::vector<uint8_t> table = [] {
    std::vector<uint8_t> t(0x10000);
    for (int32_t cp = 0; cp < 0x10000; ++cp) t[static_cast<size_t>(cp)] = classify_icu(cp);
    return t;
  }();
  return table;
}

struct Char {
  uint8_t flags;
  uint8_t len;  // bytes
};

class Scanner {
 public:
  Scanner(std::string_view t, bool digits_end) : t_(t), digits_end_(digits_end), bmp_(bmp_table().data()) {}

  Char at(size_t i) const {
    if (i >= t_.size()) return {kEnd, 0};
    const auto c0 = static_cast<unsigned char>(t_[i]);
    Char c;
    if (c0 < 0x80) {
      c = {bmp_[c0], 1};
    } else {
      const Utf8Char u = utf8_next(t_, i);
      const uint8_t f = u.cp < 0 ? 0 : u.cp < 0x10000 ? bmp_[u.cp] : classify_icu(u.cp);
      c = {f, static_cast<uint8_t>(u.len)};
    }
    if (digits_end_ && (c.flags & kN)) return {kEnd, 0};
    return c;
  }
  char byte(size_t i) const { return i < t_.size() ? t_[i] : '\0'; }
  // Advances over characters whose flags intersect `mask`.
  size_t run(size_t i, uint8_t mask) const {
    for (Char c = at(i); c.flags & mask && !(c.flags & kEnd); c = at(i)) i += c.len;
    return i;
  }
  size_t run_other(size_t i) const {  // [^\s\p{L}\p{N}]+
    for (Char c = at(i); is_other(c); c = at(i)) i += c.len;
    return i;
  }
  static bool is_other(Char c) { return !(c.flags & (kL | kN | kS | kEnd)); }

  // 's 't 're 've 'm 'll 'd at i; returns the end or 0. ASCII case folding only when asked.
  size_t contraction(size_t i, bool any_case) const {
    if (byte(i) != '\'') return 0;
    auto low = [&](size_t k) {
      char ch = byte(k);
      return any_case && ch >= 'A' && ch <= 'Z' ? static_cast<char>(ch - 'A' + 'a') : ch;
    };
    const char a = low(i + 1), b = low(i + 2);
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return i + 3;
    return 0;
  }

  // The whitespace tail shared by all patterns, at a whitespace character i:
  //   with_newline_rule: \s*[\r\n]+  -> up to and including the run's last \r or \n
  //   \s+(?!\S)                      -> the run, minus its last character when a non-space follows
  //   \s+                            -> the run (only reached when the run is one character)
  size_t whitespace(size_t i, bool with_newline_rule) const {
    size_t j = i, last_start = i, after_newline = 0;
    int chars = 0;
    for (Char c = at(j); (c.flags & kS) && !(c.flags & kEnd); c = at(j)) {
      last_start = j;
      j += c.len;
      ++chars;
      if (c.flags & kNL) after_newline = j;
    }
    if (with_newline_rule && after_newline) return after_newline;
    if (at(j).flags & kEnd) return j;  // (?!\S) holds at the end
    return chars >= 2 ? last_start : j;
  }

 private:
  std::string_view t_;
  bool digits_end_;
  const uint8_t* bmp_;
};

// GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// (Radford et al. 2019, encoder.py). For Digits, digits read as the end of the text, since
// HF applies the regex to each piece between the isolated digits.
static size_t scan_gpt2(const Scanner& s, size_t i) {
  if (size_t e = s.contraction(i, false)) return e;
  Char c = s.at(i);
  size_t j = i;
  if (s.byte(i) == ' ') {
    const Char n = s.at(i + 1);
    if (n.flags & (kL | kN) || Scanner::is_other(n)) j = i + 1, c = n;
  }
  if (c.flags & kL) return s.run(j, kL);
  if (c.flags & kN) return s.run(j, kN);
  if (Scanner::is_other(c)) return s.run_other(j);
  return s.whitespace(i, false);
}

// cl100k_base and Llama-3:
// (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
static size_t scan_cl100k(const Scanner& s, size_t i) {
  if (size_t e = s.contraction(i, true)) return e;
  const Char c = s.at(i);
  if (c.flags & kL) return s.run(i, kL);
  if (!(c.flags & (kNL | kN)) && (s.at(i + c.len).flags & kL)) return s.run(i + c.len, kL);
  if (c.flags & kN) {
    size_t j = i;
    for (int k = 0; k < 3 && (s.at(j).flags & kN); ++k) j += s.at(j).len;
    return j;
  }
  size_t j = 0;
  if (s.byte(i) == ' ' && Scanner::is_other(s.at(i + 1))) j = s.run_other(i + 1);
  else if (Scanner::is_other(c)) j = s.run_other(i);
  if (j) {
    while (s.byte(j) == '\r' || s.byte(j) == '\n') ++j;
    return j;
  }
  return s.whitespace(i, true);
}

// o200k_base:
// [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?
// |[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?
// |\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+
// Up = [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}], Lo = [\p{Ll}\p{Lm}\p{Lo}\p{M}]; the two overlap.
static size_t o200k_word1(const Scanner& s, size_t b) {  // Up*Lo+ from b; 0 if no match
  // Up* is greedy: it takes the whole Up run [b, k), then Lo+ must start at k. If it cannot,
  // the engine gives back Up characters one at a time until one is also a Lo; that one
  // character (the last Up∩Lo of the run) then ends the match.
  size_t k = b, last_both_end = 0;
  for (Char c = s.at(k); (c.flags & kUp) && !(c.flags & kEnd); c = s.at(k)) {
    k += c.len;
    if (c.flags & kLo) last_both_end = k;
  }
  if ((s.at(k).flags & kLo) && !(s.at(k).flags & kEnd)) return s.run(k, kLo);
  return last_both_end;
}
static size_t o200k_word2(const Scanner& s, size_t b) {  // Up+Lo* from b; 0 if no match
  const size_t k = s.run(b, kUp);
  return k == b ? 0 : s.run(k, kLo);
}

static size_t scan_o200k(const Scanner& s, size_t i) {
  const Char c = s.at(i);
  const bool prefix = !(c.flags & (kNL | kL | kN));
  for (auto word : {o200k_word1, o200k_word2}) {
    size_t e = prefix ? word(s, i + c.len) : 0;
    if (!e) e = word(s, i);
    if (e) {
      if (size_t ce = s.contraction(e, true)) return ce;
      return e;
    }
  }
  if (c.flags & kN) {
    size_t j = i;
    for (int k = 0; k < 3 && (s.at(j).flags & kN); ++k) j += s.at(j).len;
    return j;
  }
  size_t j = 0;
  if (s.byte(i) == ' ' && Scanner::is_other(s.at(i + 1))) j = s.run_other(i + 1);
  else if (Scanner::is_other(c)) j = s.run_other(i);
  if (j) {
    while (s.byte(j) == '\r' || s.byte(j) == '\n' || s.byte(j) == '/') ++j;
    return j;
  }
  return s.whitespace(i, true);
}

size_t next_piece(Pattern p, std::string_view text, size_t pos) {
  switch (p) {
    case Pattern::Gpt2: return scan_gpt2(Scanner(text, false), pos);
    case Pattern::Cl100k: return scan_cl100k(Scanner(text, false), pos);
    case Pattern::O200k: return scan_o200k(Scanner(text, false), pos);
    case Pattern::Digits: {
      const Char c = Scanner(text, false).at(pos);
      if (c.flags & kN) return pos + c.len;  // HF Digits(individual_digits=true): char::is_numeric
      return scan_gpt2(Scanner(text, true), pos);
    }
  }
  SLLM_ASSERT(false);
  return text.size();
}

// ---------------------------------------------------------------------------------------
struct PatternInfo {
  Pattern p;
  std::string name, regex;
};

static const std::array<PatternInfo, 4>& patterns() {
  static const std::array<PatternInfo, 4> table = {{
      {Pattern::Gpt2, "gpt2",
       R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)"},
      {Pattern::Cl100k, "cl100k",
       R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"},
      {Pattern::O200k, "o200k",
       R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)"},
      {Pattern::Digits, "digits", ""},
  }};
  return table;
}

Pattern parse_pattern(const std::string& name) {
  std::string n = name;
  if (n.size() > 5 && n.compare(n.size() - 5, 5, "_base") == 0) n.resize(n.size() - 5);
  if (n == "r50k" || n == "p50k") n = "gpt2";
  if (n == "llama3") n = "cl100k";
  if (n == "smollm") n = "digits";
  for (const auto& info : patterns())
    if (info.name == n) return info.p;
  fail(str("unknown pre-tokenizer pattern '", name, "'"),
       "use one of: gpt2 (= r50k, p50k), cl100k (= llama3), o200k, digits (= smollm)");
}

const std::string& pattern_name(Pattern p) { return patterns()[static_cast<size_t>(p)].name; }
const std::string& pattern_regex(Pattern p) { return patterns()[static_cast<size_t>(p)].regex; }

}  // namespace sllm::tokenizer
