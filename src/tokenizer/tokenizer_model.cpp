#include "tokenizer/tokenizer_model.h"

#include <atomic>
#include <climits>
#include <queue>

#include "core/error.h"
#include "tokenizer/utf8.h"

namespace sllm::tokenizer {

// ---------------------------------------------------------------------------------------
// PairTable

void PairTable::reserve(size_t n) {
  size_t cap = 16;
  int bits = 4;
  while (cap < 2 * n) cap *= 2, ++bits;
  if (cap <= slots_.size()) return;
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(cap, Slot{kEmpty, {0, 0}});
  mask_ = cap - 1;
  shift_ = 64 - bits;
  used_ = 0;
  for (const Slot& s : old)
    if (s.key != kEmpty) set(static_cast<int32_t>(s.key >> 32), static_cast<int32_t>(s.key & 0xFFFFFFFFu), s.merge);
}

void PairTable::set(int32_t left, int32_t right, Merge m) {
  if (2 * (used_ + 1) > slots_.size()) reserve(used_ + 1 > 8 ? 2 * (used_ + 1) : 16);
  const uint64_t key = pack(left, right);
  for (uint64_t h = hash(key);; h = (h + 1) & mask_) {
    Slot& s = slots_[h];
    if (s.key == key) {
      s.merge = m;
      return;
    }
    if (s.key == kEmpty) {
      s = {key, m};
      ++used_;
      return;
    }
  }
}

// ---------------------------------------------------------------------------------------
// Model

void Model::finalize(const std::string& where) {
  const size_t V = tokens.size();
  is_special.assign(V, 0);
  for (const auto& [text, id] : specials) {
    SLLM_CHECK(id >= 0 && static_cast<size_t>(id) < V, str(where, ": special token '", text, "' has id ", id, " outside the vocabulary"),
               "special token ids must lie in [0, vocab size)");
    is_special[static_cast<size_t>(id)] = 1;
  }
  by_bytes.clear();
  by_bytes.reserve(V);
  for (size_t id = 0; id < V; ++id) {
    if (is_special[id] || tokens[id].empty()) continue;
    const bool fresh = by_bytes.emplace(std::string_view(tokens[id]), static_cast<int32_t>(id)).second;
    SLLM_CHECK(fresh, str(where, ": token ", id, " repeats the bytes of token ", by_bytes[tokens[id]]),
               "each token of a BPE vocabulary must have distinct bytes; the file is corrupt");
  }
  for (int b = 0; b < 256; ++b) {
    auto it = by_bytes.find(std::string_view(std::string(1, static_cast<char>(b))));
    SLLM_CHECK(it != by_bytes.end() || drop_missing_bytes, str(where, ": no token for the single byte 0x", std::hex, b),
               "a byte-level BPE vocabulary needs all 256 one-byte tokens (is this a byte-level tokenizer?)");
    byte_id[static_cast<size_t>(b)] = it != by_bytes.end() ? it->second : -1;
  }
  pairs = PairTable();
  if (tiktoken_ranks) {
    // Every split of a token into two tokens is a pair that merges into it, at the token's
    // rank: this reproduces tiktoken's "lowest rank of any adjacent concatenation".
    pairs.reserve(V * 2);
    for (size_t id = 0; id < V; ++id) {
      const std::string_view t = tokens[id];
      if (is_special[id] || t.size() < 2) continue;
      for (size_t k = 1; k < t.size(); ++k) {
        auto a = by_bytes.find(t.substr(0, k));
        if (a == by_bytes.end()) continue;
        auto b = by_bytes.find(t.substr(k));
        if (b == by_bytes.end()) continue;
        pairs.set(a->second, b->second, {static_cast<int32_t>(id), static_cast<int32_t>(id)});
      }
    }
  } else {
    pairs.reserve(merges.size());
    std::string joined;
    for (size_t r = 0; r < merges.size(); ++r) {
      const auto [a, b] = merges[r];
      auto valid = [&](int32_t id) { return id >= 0 && static_cast<size_t>(id) < V && !is_special[static_cast<size_t>(id)] && !tokens[static_cast<size_t>(id)].empty(); };
      SLLM_CHECK(valid(a) && valid(b), str(where, ": merge ", r, " names an unknown token"),
                 "every merge must join two tokens of the vocabulary");
      joined = tokens[static_cast<size_t>(a)] + tokens[static_cast<size_t>(b)];
      auto it = by_bytes.find(joined);
      SLLM_CHECK(it != by_bytes.end(), str(where, ": merge ", r, " makes '", bytes_to_unicode(joined), "', which is not in the vocabulary"),
                 "the vocabulary and the merges do not belong together");
      pairs.set(a, b, {static_cast<int32_t>(r), it->second});
    }
  }
  static std::atomic<uint64_t> next_uid{1};
  uid = next_uid++;
}

std::vector<std::pair<int32_t, int32_t>> Model::merges_for_export() const {
  if (!tiktoken_ranks) return merges;
  // Hugging Face's tiktoken converter recipe: the merge that makes token t is what BPE with
  // only the ranks below t leaves of t's bytes, which must be exactly two parts.
  std::vector<std::pair<int32_t, int32_t>> out;
  std::vector<int32_t> parts;
  for (size_t id = 0; id < tokens.size(); ++id) {
    if (is_special[id] || tokens[id].size() < 2) continue;
    parts.clear();
    bpe_merge(*this, tokens[id], parts, static_cast<int32_t>(id), false);
    SLLM_CHECK(parts.size() == 2, str("token ", id, " cannot be written as one merge of two lower-ranked tokens"),
               "this rank file cannot be expressed as a merges list");
    out.emplace_back(parts[0], parts[1]);
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// BPE on one piece. Both algorithms merge, at each step, the adjacent pair of lowest rank,
// the leftmost one on ties (HF tokenizers' Word::merge_all and tiktoken's byte_pair_merge).

static void bpe_linear(const Model& m, std::string_view piece, std::vector<int32_t>& out, int32_t max_rank) {
  // Short pieces: an array of parts and the rank of each adjacent pair; a merge rewrites
  // two ranks. O(n^2) moves, fastest for the usual piece of a few bytes.
  thread_local std::vector<int32_t> parts, ranks;  // (n), (n-1)
  parts.clear();
  ranks.clear();
  for (char ch : piece) parts.push_back(m.byte_id[static_cast<unsigned char>(ch)]);
  auto rank_of = [&](size_t k) {
    const PairTable::Merge* mg = m.pairs.find(parts[k], parts[k + 1]);
    return mg && mg->rank < max_rank ? mg->rank : INT_MAX;
  };
  for (size_t k = 0; k + 1 < parts.size(); ++k) ranks.push_back(rank_of(k));
  while (!ranks.empty()) {
    size_t best = 0;
    for (size_t k = 1; k < ranks.size(); ++k)
      if (ranks[k] < ranks[best]) best = k;
    if (ranks[best] == INT_MAX) break;
    parts[best] = m.pairs.find(parts[best], parts[best + 1])->merged;
    parts.erase(parts.begin() + static_cast<std::ptrdiff_t>(best) + 1);
    ranks.erase(ranks.begin() + static_cast<std::ptrdiff_t>(best));
    if (best > 0) ranks[best - 1] = rank_of(best - 1);
    if (best < ranks.size()) ranks[best] = rank_of(best);
  }
  out.insert(out.end(), parts.begin(), parts.end());
}

static void bpe_heap(const Model& m, std::string_view piece, std::vector<int32_t>& out, int32_t max_rank) {
  // Long pieces: a doubly linked list of parts and a min-heap of candidate merges keyed by
  // (rank, position). Stale heap entries are skipped: a node's token only ever grows, so an
  // entry is current exactly when both nodes still hold the ids it was made from.
  const int32_t n = static_cast<int32_t>(piece.size());
  std::vector<int32_t> id(static_cast<size_t>(n)), prev(static_cast<size_t>(n)), next(static_cast<size_t>(n));  // (n) each
  for (int32_t k = 0; k < n; ++k) {
    id[k] = m.byte_id[static_cast<unsigned char>(piece[static_cast<size_t>(k)])];
    prev[k] = k - 1;
    next[k] = k + 1 < n ? k + 1 : -1;
  }
  struct Cand {
    int32_t rank, pos, left, right;
    bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
  auto push = [&](int32_t pos) {
    if (pos < 0 || next[pos] < 0) return;
    const PairTable::Merge* mg = m.pairs.find(id[pos], id[next[pos]]);
    if (mg && mg->rank < max_rank) heap.push({mg->rank, pos, id[pos], id[next[pos]]});
  };
  for (int32_t k = 0; k + 1 < n; ++k) push(k);
  while (!heap.empty()) {
    const Cand c = heap.top();
    heap.pop();
    const int32_t right = next[c.pos];
    if (id[c.pos] != c.left || right < 0 || id[right] != c.right) continue;  // stale
    id[c.pos] = m.pairs.find(c.left, c.right)->merged;
    next[c.pos] = next[right];
    if (next[right] >= 0) prev[next[right]] = c.pos;
    id[right] = -1;
    push(prev[c.pos]);
    push(c.pos);
  }
  for (int32_t k = 0; k >= 0; k = next[k]) out.push_back(id[k]);
}

void bpe_merge(const Model& m, std::string_view piece, std::vector<int32_t>& out, int32_t max_rank, bool use_heap) {
  thread_local std::string kept;
  if (m.drop_missing_bytes) {  // bytes without a token leave the piece; their neighbours may merge
    kept.clear();
    for (char ch : piece)
      if (m.byte_id[static_cast<unsigned char>(ch)] >= 0) kept.push_back(ch);
    piece = kept;
  }
  if (piece.empty()) return;
  if (use_heap)
    bpe_heap(m, piece, out, max_rank);
  else
    bpe_linear(m, piece, out, max_rank);
}

void bpe_merge(const Model& m, std::string_view piece, std::vector<int32_t>& out) {
  constexpr size_t kHeapFrom = 64;  // bytes; below this the array version is faster
  bpe_merge(m, piece, out, INT_MAX, piece.size() >= kHeapFrom);
}

// ---------------------------------------------------------------------------------------
// GPT-2 bytes_to_unicode: printable Latin-1 bytes map to themselves, the other 68 bytes to
// U+0100.. in byte order, so every token is printable and whitespace-free in text files.

static const std::array<int32_t, 256>& byte_to_cp() {
  static const std::array<int32_t, 256> table = [] {
    std::array<int32_t, 256> t{};
    int32_t extra = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      t[static_cast<size_t>(b)] = printable ? b : 256 + extra++;
    }
    return t;
  }();
  return table;
}

std::string bytes_to_unicode(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char ch : bytes) utf8_append(out, byte_to_cp()[static_cast<unsigned char>(ch)]);
  return out;
}

bool unicode_to_bytes(std::string_view text, std::string& out) {
  static const std::array<int16_t, 324> inverse = [] {  // code points 0..323 -> byte or -1
    std::array<int16_t, 324> t;
    t.fill(-1);
    for (int b = 0; b < 256; ++b) t[static_cast<size_t>(byte_to_cp()[static_cast<size_t>(b)])] = static_cast<int16_t>(b);
    return t;
  }();
  out.clear();
  for (size_t i = 0; i < text.size();) {
    const Utf8Char c = utf8_next(text, i);
    if (c.cp < 0 || c.cp >= static_cast<int32_t>(inverse.size()) || inverse[static_cast<size_t>(c.cp)] < 0) return false;
    out += static_cast<char>(inverse[static_cast<size_t>(c.cp)]);
    i += static_cast<size_t>(c.len);
  }
  return true;
}

}  // namespace sllm::tokenizer
