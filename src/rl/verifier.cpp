#include "rl/verifier.h"

#include <algorithm>
#include <functional>
#include <map>

#include "core/error.h"

namespace sllm::rl {

using nlohmann::json;

namespace {

bool is_word_byte(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}
bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool is_lower(char c) { return c >= 'a' && c <= 'z'; }
bool is_end_mark(char c) { return c == '.' || c == '!' || c == '?'; }
bool is_closer(char c) { return c == '"' || c == '\'' || c == ')' || c == ']' || c == '}'; }
char fold(char c, bool ignore_case) { return ignore_case && c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

// An example line written for another verifier, or by hand, fails here with the field to add.
const json& field(const json& example, const char* verifier, const char* key, const char* want, const char* sample) {
  SLLM_CHECK(example.is_object(), str(verifier, ": the example is not a JSON object"),
             str("each prompt line is an object such as ", sample));
  SLLM_CHECK(example.contains(key), str(verifier, ": the example has no \"", key, "\" field (", want, ")"),
             str("add it to each prompt line, e.g. ", sample, "; or choose another verifier with --verifier"));
  return example[key];
}

const std::string& string_field(const json& example, const char* verifier, const char* key, const char* want,
                                const char* sample) {
  const json& v = field(example, verifier, key, want, sample);
  SLLM_CHECK(v.is_string() && !v.get_ref<const std::string&>().empty(),
             str(verifier, ": the example's \"", key, "\" must be a non-empty string, got ", v.dump()), str("e.g. ", sample));
  return v.get_ref<const std::string&>();
}

class MentionsName final : public Verifier {
 public:
  static constexpr const char* kSample = R"({"prompt": "...", "name": "Lily", "verifier": "mentions-name"})";
  double reward(const json& example, const std::string& response) const override {
    const std::string& who = string_field(example, name(), "name", "the character to mention", kSample);
    return contains_whole_word(response, who, /*ignore_case=*/false) ? 1.0 : 0.0;
  }
  const char* name() const override { return "mentions-name"; }
  std::vector<std::string> fields() const override { return {"name"}; }
};

class UsesWord final : public Verifier {
 public:
  static constexpr const char* kSample = R"({"prompt": "...", "word": "nervous", "verifier": "uses-word"})";
  double reward(const json& example, const std::string& response) const override {
    const std::string& word = string_field(example, name(), "word", "the word to use", kSample);
    return contains_whole_word(response, word, /*ignore_case=*/true) ? 1.0 : 0.0;
  }
  const char* name() const override { return "uses-word"; }
  std::vector<std::string> fields() const override { return {"word"}; }
};

class SentenceCount final : public Verifier {
 public:
  static constexpr const char* kSample = R"({"prompt": "...", "sentences": 3, "verifier": "sentence-count"})";
  double reward(const json& example, const std::string& response) const override {
    const json& v = field(example, name(), "sentences", "how many sentences the response must have", kSample);
    SLLM_CHECK(v.is_number_integer() && v.get<int64_t>() >= 0,
               str(name(), ": the example's \"sentences\" must be an integer >= 0, got ", v.dump()), str("e.g. ", kSample));
    return count_sentences(response) == v.get<int64_t>() ? 1.0 : 0.0;
  }
  const char* name() const override { return "sentence-count"; }
  std::vector<std::string> fields() const override { return {"sentences"}; }
};

// The registry: one line per verifier; std::map keeps verifier_names() sorted.
const std::map<std::string, std::function<std::unique_ptr<Verifier>()>>& registry() {
  static const std::map<std::string, std::function<std::unique_ptr<Verifier>()>> table = {
      {"mentions-name", [] { return std::make_unique<MentionsName>(); }},
      {"sentence-count", [] { return std::make_unique<SentenceCount>(); }},
      {"uses-word", [] { return std::make_unique<UsesWord>(); }},
  };
  return table;
}

std::string joined_names() {
  std::string out;
  for (const std::string& n : verifier_names()) out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace

std::unique_ptr<Verifier> make_verifier(const std::string& name) {
  const auto it = registry().find(name);
  SLLM_CHECK(it != registry().end(), str("unknown verifier '", name, "'"), str("known verifiers: ", joined_names()));
  return it->second();
}

std::vector<std::string> verifier_names() {
  std::vector<std::string> names;
  for (const auto& entry : registry()) names.push_back(entry.first);
  return names;
}

std::string verifier_name_for(const json& example, const std::string& override_name) {
  if (!override_name.empty()) return override_name;
  SLLM_CHECK(example.is_object() && example.contains("verifier") && example["verifier"].is_string(),
             "the prompt line has no string \"verifier\" field and no verifier was given",
             str("add \"verifier\": \"<name>\" to each line or pass --verifier NAME; known verifiers: ", joined_names()));
  return example["verifier"].get<std::string>();
}

bool contains_whole_word(const std::string& text, const std::string& needle, bool ignore_case) {
  if (needle.empty() || needle.size() > text.size()) return false;
  const size_t n = needle.size();
  for (size_t at = 0; at + n <= text.size(); ++at) {
    bool same = true;
    for (size_t k = 0; k < n && same; ++k) same = fold(text[at + k], ignore_case) == fold(needle[k], ignore_case);
    if (!same) continue;
    // Boundaries are judged on the text around the match, whatever the needle's own ends are.
    const bool open = at == 0 || !is_word_byte(static_cast<unsigned char>(text[at - 1]));
    const bool close = at + n == text.size() || !is_word_byte(static_cast<unsigned char>(text[at + n]));
    if (open && close) return true;
  }
  return false;
}

int64_t count_sentences(const std::string& text) {
  int64_t count = 0;
  bool content = false;  // the current sentence holds a letter or digit so far
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    if (!is_end_mark(text[i])) {
      content = content || is_word_byte(static_cast<unsigned char>(text[i]));
      ++i;
      continue;
    }
    size_t j = i;
    while (j < n && is_end_mark(text[j])) ++j;  // "?!", "..."
    while (j < n && is_closer(text[j])) ++j;    // `."`, `?)`
    size_t next = j;
    while (next < n && is_space(text[next])) ++next;
    // An end needs the text to stop, or a space and then no lower-case letter ("said Tom").
    const bool ends = j == n || (next > j && (next == n || !is_lower(text[next])));
    if (ends) {
      count += content ? 1 : 0;
      content = false;
    }
    i = j;
  }
  return count + (content ? 1 : 0);
}

}  // namespace sllm::rl
