// UTF-8 decoding by the rules of The Unicode Standard, Table 3-7 (well-formed byte
// sequences), and "substitution of maximal subparts" (Unicode 15, section 3.9, U+FFFD
// substitution): an ill-formed sequence is replaced by one U+FFFD per maximal subpart, the
// same result as Python's bytes.decode("utf-8", "replace") and the WHATWG decoder.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace sllm::tokenizer {

struct Utf8Char {
  int32_t cp;   // the code point, or -1 when the bytes are ill-formed
  int32_t len;  // bytes taken: the character, or the maximal subpart of an ill-formed sequence (>= 1)
};

// Decodes the character that starts at s[i] (i < s.size()).
inline Utf8Char utf8_next(std::string_view s, size_t i) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data()) + i;
  const size_t left = s.size() - i;
  const unsigned c0 = p[0];
  if (c0 < 0x80) return {static_cast<int32_t>(c0), 1};
  int need;
  unsigned lo = 0x80, hi = 0xBF;  // allowed range of the second byte (Table 3-7)
  int32_t cp;
  if (c0 >= 0xC2 && c0 <= 0xDF) {
    need = 1, cp = c0 & 0x1F;
  } else if (c0 >= 0xE0 && c0 <= 0xEF) {
    need = 2, cp = c0 & 0x0F;
    if (c0 == 0xE0) lo = 0xA0;
    if (c0 == 0xED) hi = 0x9F;  // excludes the surrogates D800..DFFF
  } else if (c0 >= 0xF0 && c0 <= 0xF4) {
    need = 3, cp = c0 & 0x07;
    if (c0 == 0xF0) lo = 0x90;
    if (c0 == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
  } else {
    return {-1, 1};
  }
  for (int k = 1; k <= need; ++k) {
    if (static_cast<size_t>(k) >= left) return {-1, k};
    const unsigned c = p[k];
    const unsigned l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
    if (c < l || c > h) return {-1, k};  // the bytes before c are the maximal subpart
    cp = (cp << 6) | static_cast<int32_t>(c & 0x3F);
  }
  return {cp, need + 1};
}

// Appends the UTF-8 encoding of a valid code point.
void utf8_append(std::string& out, int32_t cp);

// Replaces every ill-formed sequence of `bytes` by U+FFFD (maximal subparts).
std::string utf8_sanitize(std::string_view bytes);

}  // namespace sllm::tokenizer
