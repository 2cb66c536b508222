// Hugging Face tokenizers' tokenizer.json (huggingface/tokenizers, tokenizers/src/tokenizer/
// serialization.rs), restricted to what byte-level BPE needs: model {type BPE, vocab, merges,
// ignore_merges}, added_tokens, and a pre_tokenizer that is one of our patterns.
#include <algorithm>
#include <unordered_map>

#include "core/error.h"
#include "tokenizer/formats.h"

namespace sllm::tokenizer {

using nlohmann::json;
using ojson = nlohmann::ordered_json;

static constexpr int64_t kMaxVocab = int64_t{1} << 24;
static const char* kHint = "expected a byte-level BPE tokenizer.json as written by Hugging Face tokenizers or `sllm tokenizer train`";

// Regexes we recognise in a Split pre-tokenizer: ours (pretokenizer.cpp) and the spelled-out
// case variants that js-tiktoken and some converters write instead of (?i:...).
static std::optional<Pattern> pattern_of_regex(const std::string& r) {
  static const std::string contractions = "'s|'S|'t|'T|'re|'rE|'Re|'RE|'ve|'vE|'Ve|'VE|'m|'M|'ll|'lL|'Ll|'LL|'d|'D";
  static const std::string cl100k_spelled =
      "(" + contractions + R"()|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  static const std::string o200k_spelled =
      R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+()" + contractions +
      R"()?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*()" + contractions +
      R"()?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  for (Pattern p : {Pattern::Gpt2, Pattern::Cl100k, Pattern::O200k})
    if (r == pattern_regex(p)) return p;
  if (r == cl100k_spelled) return Pattern::Cl100k;
  if (r == o200k_spelled) return Pattern::O200k;
  return std::nullopt;
}

static bool is_byte_level(const json& j, bool use_regex) {
  return j.is_object() && j.value("type", "") == "ByteLevel" && j.value("use_regex", true) == use_regex &&
         !j.value("add_prefix_space", false);
}

static Pattern detect_pattern(const json& pre, const std::string& path) {
  const std::string hint = "supported pre_tokenizers: ByteLevel (gpt2), Split(cl100k/o200k regex)+ByteLevel, Digits+ByteLevel; "
                           "or pass --pattern to override";
  if (is_byte_level(pre, true)) return Pattern::Gpt2;
  if (pre.is_object() && pre.value("type", "") == "Sequence" && pre.contains("pretokenizers") && pre["pretokenizers"].is_array() &&
      pre["pretokenizers"].size() == 2) {
    const json& first = pre["pretokenizers"][0];
    const json& second = pre["pretokenizers"][1];
    if (first.is_object() && first.value("type", "") == "Digits" && first.value("individual_digits", false) && is_byte_level(second, true))
      return Pattern::Digits;
    if (first.is_object() && first.value("type", "") == "Split" && first.contains("pattern") && first["pattern"].is_object() &&
        first["pattern"].contains("Regex") && first["pattern"]["Regex"].is_string() && is_byte_level(second, false)) {
      if (auto p = pattern_of_regex(first["pattern"]["Regex"].get<std::string>())) return *p;
      fail(str(path, ": the Split regex is not one of ours"), hint);
    }
  }
  fail(str(path, ": unsupported pre_tokenizer ", pre.dump().substr(0, 200)), hint);
}

static std::shared_ptr<Model> load_hf_json_checked(const std::string& path, const std::string& pattern) {
  const json j = parse_json_file(path, kHint);
  SLLM_CHECK(j.is_object() && j.contains("model") && j["model"].is_object(), str(path, ": no \"model\" object"), kHint);
  const json& model = j["model"];
  SLLM_CHECK(model.value("type", "BPE") == "BPE", str(path, ": model type '", model.value("type", ""), "' is not BPE"), kHint);
  SLLM_CHECK(!model.value("byte_fallback", false), str(path, ": byte_fallback BPE (SentencePiece style) is not supported"), kHint);
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"})
    SLLM_CHECK(!model.contains(key) || model[key].is_null() || model[key] == "", str(path, ": model.", key, " is not supported"), kHint);
  SLLM_CHECK(!j.contains("normalizer") || j["normalizer"].is_null(), str(path, ": normalizers are not supported"), kHint);
  SLLM_CHECK(model.contains("vocab") && model["vocab"].is_object(), str(path, ": model.vocab must be an object"), kHint);
  SLLM_CHECK(model.contains("merges") && model["merges"].is_array(), str(path, ": model.merges must be an array"), kHint);

  auto m = std::make_shared<Model>();
  m->ignore_merges = model.value("ignore_merges", false);
  // Without an unk_token, HF's BPE drops a character with no token (SmolLM2's vocabulary
  // lacks 21 bytes); with one it would emit unk, which we do not model: refused in finalize.
  m->drop_missing_bytes = !model.contains("unk_token") || model["unk_token"].is_null();
  if (!pattern.empty()) {
    m->pattern = parse_pattern(pattern);
  } else {
    SLLM_CHECK(j.contains("pre_tokenizer"), str(path, ": no pre_tokenizer"), "pass --pattern");
    m->pattern = detect_pattern(j["pre_tokenizer"], path);
  }

  auto check_id = [&](const json& v, const std::string& what) {
    SLLM_CHECK(v.is_number_integer() && v.get<int64_t>() >= 0 && v.get<int64_t>() < kMaxVocab,
               str(path, ": ", what, " has id ", v.dump(), ", not a non-negative integer"), kHint);
    const auto id = v.get<int32_t>();
    if (static_cast<int32_t>(m->tokens.size()) <= id) m->tokens.resize(static_cast<size_t>(id) + 1);
    return id;
  };
  // Added tokens are our special tokens: matched only when the caller allows them.
  std::unordered_map<std::string, int32_t> added;
  if (j.contains("added_tokens") && !j["added_tokens"].is_null()) {
    SLLM_CHECK(j["added_tokens"].is_array(), str(path, ": added_tokens must be an array"), kHint);
    for (const json& t : j["added_tokens"]) {
      SLLM_CHECK(t.is_object() && t.contains("content") && t["content"].is_string() && !t["content"].get<std::string>().empty() && t.contains("id"),
                 str(path, ": every added token needs a non-empty \"content\" and an \"id\""), kHint);
      const std::string content = t["content"].get<std::string>();
      const int32_t id = check_id(t["id"], "added token '" + content + "'");
      SLLM_CHECK(m->tokens[static_cast<size_t>(id)].empty(), str(path, ": added token id ", id, " is used twice"), kHint);
      m->tokens[static_cast<size_t>(id)] = content;
      m->specials.emplace_back(content, id);
      added[content] = id;
    }
  }
  std::unordered_map<std::string, int32_t> id_of;  // vocab key -> id
  std::string bytes;
  for (auto it = model["vocab"].begin(); it != model["vocab"].end(); ++it) {
    const int32_t id = check_id(it.value(), "token '" + it.key() + "'");
    id_of[it.key()] = id;
    auto a = added.find(it.key());
    if (a != added.end()) {
      SLLM_CHECK(a->second == id, str(path, ": '", it.key(), "' has id ", id, " in the vocab but ", a->second, " in added_tokens"), kHint);
      continue;
    }
    SLLM_CHECK(unicode_to_bytes(it.key(), bytes), str(path, ": token '", it.key(), "' is not written in the byte-level alphabet"), kHint);
    SLLM_CHECK(m->tokens[static_cast<size_t>(id)].empty(), str(path, ": id ", id, " is used twice"), kHint);
    m->tokens[static_cast<size_t>(id)] = bytes;
  }
  size_t rank = 0;
  for (const json& mg : model["merges"]) {
    std::string a, b;
    if (mg.is_string()) {  // "left right" (tokenizers < 0.20)
      const std::string s = mg.get<std::string>();
      const size_t space = s.find(' ');
      SLLM_CHECK(space != std::string::npos && s.find(' ', space + 1) == std::string::npos, str(path, ": merge ", rank, " '", s, "' is not 'left right'"), kHint);
      a = s.substr(0, space), b = s.substr(space + 1);
    } else {  // ["left", "right"] (tokenizers >= 0.20)
      SLLM_CHECK(mg.is_array() && mg.size() == 2 && mg[0].is_string() && mg[1].is_string(), str(path, ": merge ", rank, " is malformed"), kHint);
      a = mg[0].get<std::string>(), b = mg[1].get<std::string>();
    }
    auto ia = id_of.find(a), ib = id_of.find(b);
    SLLM_CHECK(ia != id_of.end() && ib != id_of.end(), str(path, ": merge ", rank, " names a token missing from the vocab"), kHint);
    m->merges.emplace_back(ia->second, ib->second);
    ++rank;
  }
  std::sort(m->specials.begin(), m->specials.end(), [](const auto& x, const auto& y) { return x.second < y.second; });
  m->finalize(path);
  return m;
}

std::shared_ptr<Model> load_hf_json(const std::string& path, const std::string& pattern) {
  try {
    return load_hf_json_checked(path, pattern);
  } catch (const nlohmann::json::exception& e) {  // a field of the wrong JSON type
    fail(str(path, ": malformed tokenizer.json (", e.what(), ")"), kHint);
  }
}

// ---------------------------------------------------------------------------------------

static ojson byte_level(bool use_regex) {
  return ojson{{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", use_regex}};
}

std::string hf_json_text(const Model& m) {
  ojson added = ojson::array();
  for (const auto& [text, id] : m.specials)
    added.push_back({{"id", id}, {"content", text}, {"single_word", false}, {"lstrip", false}, {"rstrip", false},
                     {"normalized", false}, {"special", true}});
  ojson pre;
  switch (m.pattern) {
    case Pattern::Gpt2: pre = byte_level(true); break;
    case Pattern::Cl100k:
    case Pattern::O200k:
      pre = {{"type", "Sequence"},
             {"pretokenizers",
              {{{"type", "Split"}, {"pattern", {{"Regex", pattern_regex(m.pattern)}}}, {"behavior", "Isolated"}, {"invert", false}},
               byte_level(false)}}};
      break;
    case Pattern::Digits:
      pre = {{"type", "Sequence"}, {"pretokenizers", {{{"type", "Digits"}, {"individual_digits", true}}, byte_level(true)}}};
      break;
  }
  ojson vocab = ojson::object();
  for (size_t id = 0; id < m.tokens.size(); ++id) {
    if (m.tokens[id].empty()) continue;
    vocab[m.is_special[id] ? m.tokens[id] : bytes_to_unicode(m.tokens[id])] = id;
  }
  ojson merges = ojson::array();
  for (const auto& [a, b] : m.merges_for_export())
    merges.push_back(bytes_to_unicode(m.tokens[static_cast<size_t>(a)]) + " " + bytes_to_unicode(m.tokens[static_cast<size_t>(b)]));
  ojson model = {{"type", "BPE"},         {"dropout", nullptr},
                 {"unk_token", nullptr},  {"continuing_subword_prefix", nullptr},
                 {"end_of_word_suffix", nullptr}, {"fuse_unk", false},
                 {"byte_fallback", false}, {"ignore_merges", m.tiktoken_ranks || m.ignore_merges},
                 {"vocab", vocab},        {"merges", merges}};
  ojson j = {{"version", "1.0"},        {"truncation", nullptr}, {"padding", nullptr},
             {"added_tokens", added},   {"normalizer", nullptr}, {"pre_tokenizer", pre},
             {"post_processor", nullptr}, {"decoder", byte_level(true)}, {"model", model}};
  return j.dump(1) + "\n";
}

}  // namespace sllm::tokenizer
