#include "data/story_template.h"

#include <cctype>
#include <vector>

#include "core/error.h"

namespace sllm::data {

// Index of the ']' matching the '[' at `open`, honouring nesting.
static size_t matching_bracket(std::string_view t, size_t open) {
  int depth = 0;
  for (size_t i = open; i < t.size(); ++i) {
    if (t[i] == '[') ++depth;
    if (t[i] == ']' && --depth == 0) return i;
  }
  SLLM_ASSERT(false && "unbalanced '[' in a story template");
  return t.size();
}

// Splits the inside of "[...]" at its top-level '|'.
static std::vector<std::string_view> alternatives(std::string_view inside) {
  std::vector<std::string_view> out;
  int depth = 0;
  size_t start = 0;
  for (size_t i = 0; i < inside.size(); ++i) {
    if (inside[i] == '[') ++depth;
    if (inside[i] == ']') --depth;
    if (inside[i] == '|' && depth == 0) {
      out.push_back(inside.substr(start, i - start));
      start = i + 1;
    }
  }
  out.push_back(inside.substr(start));
  return out;
}

static void expand_into(std::string_view t, const Bindings& vars, Rng& rng, std::string& out) {
  for (size_t i = 0; i < t.size(); ++i) {
    if (t[i] == '{') {
      size_t close = t.find('}', i);
      SLLM_ASSERT(close != std::string_view::npos);
      auto it = vars.find(t.substr(i + 1, close - i - 1));
      if (it == vars.end()) internal_error(str("unbound story key {", t.substr(i + 1, close - i - 1), "}").c_str(), __FILE__, __LINE__);
      out += it->second;
      i = close;
    } else if (t[i] == '[') {
      size_t close = matching_bracket(t, i);
      auto alts = alternatives(t.substr(i + 1, close - i - 1));
      expand_into(alts[rng.below(alts.size())], vars, rng, out);
      i = close;
    } else {
      out += t[i];
    }
  }
}

std::string expand(std::string_view tmpl, const Bindings& vars, Rng& rng) {
  std::string out;
  out.reserve(tmpl.size() + 32);
  expand_into(tmpl, vars, rng, out);
  return out;
}

std::string capitalize_sentences(std::string text) {
  bool start = true;  // at the start of a sentence, waiting for its first letter
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (start) {
      if (std::islower(static_cast<unsigned char>(c))) text[i] = static_cast<char>(std::toupper(c));
      if (std::isalnum(static_cast<unsigned char>(c))) start = false;
      continue;
    }
    // A sentence ends at . ! ? followed by a space or newline; `"Stop!" said Tom` does not
    // end one, because the quote comes between the mark and the space.
    if ((c == '.' || c == '!' || c == '?') && i + 1 < text.size() && (text[i + 1] == ' ' || text[i + 1] == '\n'))
      start = true;
    if (c == '\n') start = true;
  }
  return text;
}

std::string fix_articles(const std::string& text) {
  std::string out;
  out.reserve(text.size() + 16);
  auto is_vowel = [](char c) { return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u'; };
  for (size_t i = 0; i < text.size(); ++i) {
    out += text[i];
    const bool word_start = i == 0 || !std::isalpha(static_cast<unsigned char>(text[i - 1]));
    if ((text[i] == 'a' || text[i] == 'A') && word_start && i + 2 < text.size() && text[i + 1] == ' ' && is_vowel(text[i + 2]))
      out += 'n';
  }
  return out;
}

}  // namespace sllm::data
