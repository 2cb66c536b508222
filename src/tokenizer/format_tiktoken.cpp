// tiktoken rank files (openai/tiktoken load.py: load_tiktoken_bpe): one line per token,
// "<base64 of the token's bytes> <rank>", where the rank is also the token id.
#include <algorithm>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/error.h"
#include "tokenizer/formats.h"

namespace sllm::tokenizer {

static constexpr int64_t kMaxVocab = int64_t{1} << 24;  // far above any real vocabulary; bounds memory on corrupt files

// Strict RFC 4648 base64 (standard alphabet, '=' padding). Returns false on any bad input.
static bool base64_decode(std::string_view in, std::string& out) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  out.clear();
  if (in.empty() || in.size() % 4 != 0) return false;
  for (size_t i = 0; i < in.size(); i += 4) {
    const bool last = i + 4 == in.size();
    int pad = 0;
    if (last && in[i + 3] == '=') pad = in[i + 2] == '=' ? 2 : 1;
    uint32_t acc = 0;
    for (int k = 0; k < 4; ++k) {
      int v = k >= 4 - pad ? 0 : value(in[i + static_cast<size_t>(k)]);
      if (v < 0) return false;
      acc = (acc << 6) | static_cast<uint32_t>(v);
    }
    out += static_cast<char>(acc >> 16);
    if (pad < 2) out += static_cast<char>((acc >> 8) & 0xFF);
    if (pad < 1) out += static_cast<char>(acc & 0xFF);
  }
  return true;
}

std::shared_ptr<Model> load_tiktoken(const std::string& path, Pattern pattern) {
  const std::string text = read_file(path);
  auto m = std::make_shared<Model>();
  m->pattern = pattern;
  m->tiktoken_ranks = true;
  const std::string kHint = "a tiktoken rank file has one '<base64 token bytes> <rank>' per line (e.g. cl100k_base.tiktoken)";
  std::string bytes;
  for_each_line(text, [&](std::string_view line, int64_t line_no) {
    if (line.empty()) return;
    const size_t space = line.find(' ');
    SLLM_CHECK(space != std::string_view::npos, str(path, ":", line_no, ": expected '<base64> <rank>'"), kHint);
    SLLM_CHECK(base64_decode(line.substr(0, space), bytes) && !bytes.empty(),
               str(path, ":", line_no, ": invalid base64 token '", std::string(line.substr(0, space)), "'"), kHint);
    const std::string_view rank_text = line.substr(space + 1);
    int64_t rank = 0;
    bool ok = !rank_text.empty() && rank_text.size() <= 9;  // at most 9 digits: no overflow below
    for (size_t i = 0; ok && i < rank_text.size(); ++i) {
      const char c = rank_text[i];
      ok = c >= '0' && c <= '9';
      rank = rank * 10 + (c - '0');
    }
    SLLM_CHECK(ok && rank < kMaxVocab, str(path, ":", line_no, ": invalid rank '", std::string(rank_text), "'"), kHint);
    if (static_cast<int64_t>(m->tokens.size()) <= rank) m->tokens.resize(static_cast<size_t>(rank) + 1);
    SLLM_CHECK(m->tokens[static_cast<size_t>(rank)].empty(), str(path, ":", line_no, ": rank ", rank, " appears twice"), kHint);
    m->tokens[static_cast<size_t>(rank)] = bytes;
  });
  SLLM_CHECK(!m->tokens.empty(), str(path, ": no tokens"), kHint);

  // Special tokens from the sibling meta file (our test data layout), when present.
  std::filesystem::path meta(path);
  meta.replace_extension(".meta.json");
  if (std::filesystem::exists(meta)) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(read_file(meta.string()));
    } catch (const nlohmann::json::exception& e) {
      fail(str(meta.string(), ": invalid JSON: ", e.what()), "the meta file holds {\"pat_str\": ..., \"special_tokens\": {text: id}}");
    }
    if (j.is_object() && j.contains("special_tokens")) {
      const auto& st = j["special_tokens"];
      SLLM_CHECK(st.is_object(), str(meta.string(), ": special_tokens must be an object"), "{\"special_tokens\": {\"<|endoftext|>\": 100257}}");
      for (auto it = st.begin(); it != st.end(); ++it) {
        SLLM_CHECK(it.value().is_number_integer() && it.value().get<int64_t>() >= 0 && it.value().get<int64_t>() < kMaxVocab,
                   str(meta.string(), ": special token '", it.key(), "' needs a non-negative integer id"), "ids are integers");
        const auto id = it.value().get<int32_t>();
        if (static_cast<int32_t>(m->tokens.size()) <= id) m->tokens.resize(static_cast<size_t>(id) + 1);
        SLLM_CHECK(m->tokens[static_cast<size_t>(id)].empty(), str(meta.string(), ": special token '", it.key(), "' reuses id ", id), "special ids must be free ranks");
        m->tokens[static_cast<size_t>(id)] = it.key();
        m->specials.emplace_back(it.key(), id);
      }
      std::sort(m->specials.begin(), m->specials.end(), [](const auto& a, const auto& b) { return a.second < b.second; });
    }
  }
  m->finalize(path);
  return m;
}

}  // namespace sllm::tokenizer
