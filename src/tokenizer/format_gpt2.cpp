// GPT-2's own files (openai/gpt-2 src/encoder.py): vocab.json maps each token, written in
// the byte<->unicode alphabet, to its id; merges.txt lists one merge "left right" per line
// in rank order after a "#version" header.
#include <unordered_map>

#include "core/atomic_file.h"
#include "core/error.h"
#include "tokenizer/formats.h"

namespace sllm::tokenizer {

static constexpr int64_t kMaxVocab = int64_t{1} << 24;

nlohmann::json parse_json_file(const std::string& path, const std::string& hint) {
  const std::string text = read_file(path);
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail(str(path, ": invalid JSON (", e.what(), ")"), hint);
  }
}

std::shared_ptr<Model> load_gpt2_files(const std::string& vocab_path, const std::string& merges_path, Pattern pattern) {
  const std::string kVocabHint = "vocab.json is one JSON object {\"token\": id, ...} in GPT-2's byte-level alphabet";
  const nlohmann::json vocab = parse_json_file(vocab_path, kVocabHint);
  SLLM_CHECK(vocab.is_object() && !vocab.empty(), str(vocab_path, ": expected a non-empty JSON object"), kVocabHint);
  auto m = std::make_shared<Model>();
  m->pattern = pattern;
  std::unordered_map<std::string, int32_t> id_of;  // vocab.json key -> id
  std::string bytes;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    const auto& v = it.value();
    SLLM_CHECK(v.is_number_integer() && v.get<int64_t>() >= 0 && v.get<int64_t>() < kMaxVocab,
               str(vocab_path, ": token '", it.key(), "' has id ", v.dump(), ", not a non-negative integer"), kVocabHint);
    const auto id = v.get<int32_t>();
    if (static_cast<int32_t>(m->tokens.size()) <= id) m->tokens.resize(static_cast<size_t>(id) + 1);
    const bool special = it.key() == "<|endoftext|>";
    SLLM_CHECK(special || unicode_to_bytes(it.key(), bytes),
               str(vocab_path, ": token '", it.key(), "' is not written in the byte-level alphabet"), kVocabHint);
    SLLM_CHECK(m->tokens[static_cast<size_t>(id)].empty(), str(vocab_path, ": id ", id, " is used twice"), kVocabHint);
    m->tokens[static_cast<size_t>(id)] = special ? it.key() : bytes;
    if (special) m->specials.emplace_back(it.key(), id);
    id_of[it.key()] = id;
  }

  const std::string kMergesHint = "merges.txt holds '#version: 0.2' then one 'left right' pair per line (tokens of vocab.json)";
  const std::string text = read_file(merges_path);
  for_each_line(text, [&](std::string_view line, int64_t line_no) {
    if (line.empty() || (line_no == 1 && line.rfind("#version", 0) == 0)) return;
    const size_t space = line.find(' ');
    SLLM_CHECK(space != std::string_view::npos && space > 0 && space + 1 < line.size() && line.find(' ', space + 1) == std::string_view::npos,
               str(merges_path, ":", line_no, ": expected 'left right', got '", std::string(line), "'"), kMergesHint);
    auto a = id_of.find(std::string(line.substr(0, space)));
    auto b = id_of.find(std::string(line.substr(space + 1)));
    SLLM_CHECK(a != id_of.end() && b != id_of.end(), str(merges_path, ":", line_no, ": merge '", std::string(line), "' names a token missing from vocab.json"),
               "vocab.json and merges.txt must come from the same tokenizer");
    m->merges.emplace_back(a->second, b->second);
  });
  m->finalize(merges_path);
  return m;
}

void for_each_line(std::string_view text, const std::function<void(std::string_view, int64_t)>& fn) {
  int64_t line_no = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    std::string_view line = text.substr(pos, eol - pos);
    pos = eol + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    fn(line, ++line_no);
  }
}

}  // namespace sllm::tokenizer
