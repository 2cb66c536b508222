#include "tokenizer/tokenizer.h"

#include <filesystem>
#include <unordered_map>

#include "core/atomic_file.h"
#include "core/error.h"
#include "tokenizer/formats.h"
#include "tokenizer/gguf_tokenizer.h"
#include "tokenizer/utf8.h"

namespace sllm::tokenizer {

namespace fs = std::filesystem;

Tokenizer::Tokenizer(std::shared_ptr<const Model> model) : model_(std::move(model)) { SLLM_ASSERT(model_ != nullptr); }

static bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

Tokenizer Tokenizer::load(const std::string& path, const std::string& pattern) {
  const std::string kHint =
      "give a directory with tokenizer.json or vocab.json + merges.txt, a tokenizer.json file, a .gguf file, or a .tiktoken file with --pattern";
  std::error_code ec;
  SLLM_CHECK(fs::exists(path, ec), str("tokenizer path '", path, "' does not exist"), kHint);
  auto gpt2_pattern = [&] { return pattern.empty() ? Pattern::Gpt2 : parse_pattern(pattern); };
  if (fs::is_directory(path, ec)) {
    const fs::path dir(path);
    if (fs::exists(dir / "tokenizer.json", ec)) return Tokenizer(load_hf_json((dir / "tokenizer.json").string(), pattern));
    if (fs::exists(dir / "vocab.json", ec) && fs::exists(dir / "merges.txt", ec))
      return Tokenizer(load_gpt2_files((dir / "vocab.json").string(), (dir / "merges.txt").string(), gpt2_pattern()));
    fail(str("directory '", path, "' holds neither tokenizer.json nor vocab.json + merges.txt"), kHint);
  }
  if (ends_with(path, ".gguf")) return load_gguf_tokenizer(path, pattern).tokenizer;  // gguf_tokenizer.h
  if (ends_with(path, ".tiktoken")) {
    SLLM_CHECK(!pattern.empty(), str("'", path, "' is a tiktoken rank file, which does not name its split pattern"),
               "pass --pattern gpt2|cl100k|o200k (cl100k_base.tiktoken: cl100k)");
    return Tokenizer(load_tiktoken(path, parse_pattern(pattern)));
  }
  if (fs::path(path).filename() == "vocab.json") {
    const fs::path merges = fs::path(path).parent_path() / "merges.txt";
    SLLM_CHECK(fs::exists(merges, ec), str("'", path, "' needs merges.txt beside it"), kHint);
    return Tokenizer(load_gpt2_files(path, merges.string(), gpt2_pattern()));
  }
  if (ends_with(path, ".json")) return Tokenizer(load_hf_json(path, pattern));
  fail(str("cannot tell the tokenizer format of '", path, "'"), kHint);
}

Tokenizer Tokenizer::train(const std::vector<std::string>& texts, int64_t vocab_size, const std::string& pattern,
                           const std::vector<std::string>& specials) {
  return Tokenizer(train_bpe(texts, vocab_size, parse_pattern(pattern), specials));
}

// ---------------------------------------------------------------------------------------
// Encoding.

// Per-thread cache of piece -> ids for pieces that take more than one lookup. Natural text
// repeats its words (Zipf), so most pieces hit; the cache belongs to one model (by uid) and
// is dropped when full, which keeps memory bounded without bookkeeping.
namespace {
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
};
struct PieceCache {
  static constexpr size_t kMaxEntries = 1 << 16;
  static constexpr size_t kMaxPieceBytes = 32;
  uint64_t owner = 0;
  std::unordered_map<std::string, std::pair<uint32_t, uint32_t>, StringHash, std::equal_to<>> index;  // piece -> (offset, count) in ids
  std::vector<int32_t> ids;
};
}  // namespace

static PieceCache& cache_for(uint64_t uid) {
  thread_local PieceCache cache;
  if (cache.owner != uid || cache.index.size() >= PieceCache::kMaxEntries) {
    cache.index.clear();
    cache.ids.clear();
    cache.owner = uid;
  }
  return cache;
}

void Tokenizer::encode_ordinary_into(std::string_view text, std::vector<int32_t>& out) const {
  const Model& m = *model_;
  PieceCache& cache = cache_for(m.uid);
  const bool whole_piece_lookup = m.tiktoken_ranks || m.ignore_merges;
  split_pieces(m.pattern, text, [&](std::string_view piece) {
    if (piece.size() == 1) {
      const int32_t id = m.byte_id[static_cast<unsigned char>(piece[0])];
      if (id >= 0) out.push_back(id);  // -1: a byte the vocabulary lacks (Model::drop_missing_bytes)
      return;
    }
    if (whole_piece_lookup) {
      auto it = m.by_bytes.find(piece);
      if (it != m.by_bytes.end()) {
        out.push_back(it->second);
        return;
      }
    }
    if (piece.size() > PieceCache::kMaxPieceBytes) {
      bpe_merge(m, piece, out);
      return;
    }
    auto hit = cache.index.find(piece);
    if (hit != cache.index.end()) {
      const auto [off, count] = hit->second;
      out.insert(out.end(), cache.ids.begin() + off, cache.ids.begin() + off + count);
      return;
    }
    const size_t before = out.size();
    bpe_merge(m, piece, out);
    const auto off = static_cast<uint32_t>(cache.ids.size());
    cache.ids.insert(cache.ids.end(), out.begin() + static_cast<std::ptrdiff_t>(before), out.end());
    cache.index.emplace(std::string(piece), std::make_pair(off, static_cast<uint32_t>(out.size() - before)));
  });
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool allow_special) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 1);
  const auto& specials = model_->specials;
  if (!allow_special || specials.empty()) {
    encode_ordinary_into(text, out);
    return out;
  }
  // Split at registered special tokens: the earliest occurrence wins, the longest on ties.
  std::vector<size_t> next_at(specials.size(), 0);  // next occurrence of each special at or after pos
  size_t pos = 0;
  for (size_t k = 0; k < specials.size(); ++k) next_at[k] = text.find(specials[k].first);
  while (pos < text.size()) {
    size_t best = specials.size();
    for (size_t k = 0; k < specials.size(); ++k) {
      if (next_at[k] != std::string_view::npos && next_at[k] < pos) next_at[k] = text.find(specials[k].first, pos);
      if (next_at[k] == std::string_view::npos) continue;
      if (best == specials.size() || next_at[k] < next_at[best] ||
          (next_at[k] == next_at[best] && specials[k].first.size() > specials[best].first.size()))
        best = k;
    }
    if (best == specials.size()) {
      encode_ordinary_into(text.substr(pos), out);
      break;
    }
    encode_ordinary_into(text.substr(pos, next_at[best] - pos), out);
    out.push_back(specials[best].second);
    pos = next_at[best] + specials[best].first.size();
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Decoding and queries.

std::string Tokenizer::decode_bytes(const std::vector<int32_t>& ids) const {
  const Model& m = *model_;
  std::string out;
  for (size_t k = 0; k < ids.size(); ++k) {
    const int32_t id = ids[k];
    SLLM_CHECK(id >= 0 && id < m.vocab_size() && !m.tokens[static_cast<size_t>(id)].empty(),
               str("cannot decode token id ", id, " (position ", k, "): not in the vocabulary"),
               str("ids must name tokens of this tokenizer (vocab size ", m.vocab_size(), ")"));
    out += m.tokens[static_cast<size_t>(id)];
  }
  return out;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const { return utf8_sanitize(decode_bytes(ids)); }

int64_t Tokenizer::vocab_size() const { return model_->vocab_size(); }

std::optional<int32_t> Tokenizer::special_id(const std::string& name) const {
  for (const auto& [text, id] : model_->specials)
    if (text == name) return id;
  return std::nullopt;
}

void Tokenizer::save(const std::string& dir) const {
  std::error_code ec;
  fs::create_directories(dir, ec);
  SLLM_CHECK(!ec, str("cannot create directory '", dir, "': ", ec.message()), "check the path and its permissions");
  write_file_atomic((fs::path(dir) / "tokenizer.json").string(), to_hf_json());
}

std::string Tokenizer::to_hf_json() const { return hf_json_text(*model_); }
const std::string& Tokenizer::pattern_name() const { return tokenizer::pattern_name(model_->pattern); }

std::string Tokenizer::token_bytes(int32_t id) const { return decode_bytes({id}); }

int64_t Tokenizer::num_merges() const {
  if (!model_->tiktoken_ranks) return static_cast<int64_t>(model_->merges.size());
  int64_t n = 0;  // with ranks, every multi-byte token is one merge
  for (size_t id = 0; id < model_->tokens.size(); ++id) n += !model_->is_special[id] && model_->tokens[id].size() >= 2;
  return n;
}

std::vector<std::pair<std::string, int32_t>> Tokenizer::special_tokens() const { return model_->specials; }

}  // namespace sllm::tokenizer
