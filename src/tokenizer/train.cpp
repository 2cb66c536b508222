// Byte-level BPE training (Sennrich et al. 2016, "Neural Machine Translation of Rare Words
// with Subword Units"; the byte-level variant of GPT-2; the loop of Karpathy's minbpe).
//
// minbpe recounts every pair of the whole corpus after each merge: O(merges * corpus). Here
// the corpus is first reduced to its distinct pieces with counts (the pre-tokenizer never
// lets a token cross a piece boundary), pair counts are updated only around the merge sites in the pieces
// that contain the merged pair (an index pair -> pieces), and the next pair comes from a max-heap
// with lazy deletion (an entry is current when its count equals the live count). This is
// the scheme of Hugging Face's BpeTrainer and SentencePiece's BPE trainer.
//
// Ties between equal counts go to the smaller (left id, right id): deterministic, and
// independent of hash-map iteration order.
#include <algorithm>
#include <queue>
#include <unordered_map>
#include <unordered_set>

#include "core/error.h"
#include "tokenizer/formats.h"

namespace sllm::tokenizer {

static uint64_t pair_key(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

std::shared_ptr<Model> train_bpe(const std::vector<std::string>& texts, int64_t vocab_size, Pattern pattern,
                                 const std::vector<std::string>& specials) {
  const int64_t base = 256 + static_cast<int64_t>(specials.size());
  SLLM_CHECK(vocab_size >= base && vocab_size <= (int64_t{1} << 24),
             str("vocab size ", vocab_size, " cannot hold the 256 byte tokens and ", specials.size(), " special tokens"),
             str("use a vocab size of at least ", base, " (and at most 16M)"));
  std::unordered_set<std::string> seen;
  for (const auto& s : specials)
    SLLM_CHECK(!s.empty() && seen.insert(s).second, str("special token '", s, "' is empty or repeated"), "give each special token once");

  // 1. Distinct pieces and their counts.
  std::unordered_map<std::string_view, int64_t> piece_count;
  for (const auto& text : texts) split_pieces(pattern, text, [&](std::string_view piece) { ++piece_count[piece]; });
  std::vector<std::vector<int32_t>> words;  // each distinct piece as token ids
  std::vector<int64_t> freq;
  words.reserve(piece_count.size());
  for (const auto& [piece, count] : piece_count) {
    if (piece.size() < 2) continue;  // no pair inside
    words.emplace_back(piece.begin(), piece.end());
    for (auto& id : words.back()) id = static_cast<unsigned char>(id);
    freq.push_back(count);
  }
  // Sort for a result independent of the hash map's iteration order.
  {
    std::vector<size_t> order(words.size());
    for (size_t k = 0; k < order.size(); ++k) order[k] = k;
    std::sort(order.begin(), order.end(), [&](size_t x, size_t y) { return words[x] < words[y]; });
    std::vector<std::vector<int32_t>> w2;
    std::vector<int64_t> f2;
    for (size_t k : order) w2.push_back(std::move(words[k])), f2.push_back(freq[k]);
    words.swap(w2);
    freq.swap(f2);
  }

  // 2. Pair counts and where each pair occurs.
  std::unordered_map<uint64_t, int64_t> count;
  std::unordered_map<uint64_t, std::vector<int32_t>> where;
  for (size_t w = 0; w < words.size(); ++w)
    for (size_t k = 0; k + 1 < words[w].size(); ++k) {
      const uint64_t p = pair_key(words[w][k], words[w][k + 1]);
      count[p] += freq[w];
      auto& list = where[p];
      if (list.empty() || list.back() != static_cast<int32_t>(w)) list.push_back(static_cast<int32_t>(w));
    }
  struct Entry {
    int64_t count;
    uint64_t pair;
    bool operator<(const Entry& o) const { return count != o.count ? count < o.count : pair > o.pair; }
  };
  std::priority_queue<Entry> heap;
  for (const auto& [p, c] : count) heap.push({c, p});

  auto m = std::make_shared<Model>();
  m->pattern = pattern;
  for (int b = 0; b < 256; ++b) m->tokens.emplace_back(1, static_cast<char>(b));

  // 3. Merge loop.
  const int64_t want_merges = vocab_size - base;
  std::vector<int32_t> last_visit(words.size(), -1);
  std::vector<uint64_t> touched;
  auto bump = [&](int32_t x, int32_t y, int64_t delta) {
    const uint64_t p = pair_key(x, y);
    count[p] += delta;
    touched.push_back(p);
  };
  while (static_cast<int64_t>(m->merges.size()) < want_merges && !heap.empty()) {
    const Entry top = heap.top();
    heap.pop();
    auto live = count.find(top.pair);
    if (live == count.end() || live->second != top.count || top.count <= 0) continue;  // stale entry
    const auto a = static_cast<int32_t>(top.pair >> 32), b = static_cast<int32_t>(top.pair & 0xFFFFFFFFu);
    const auto id = static_cast<int32_t>(m->tokens.size());
    m->tokens.push_back(m->tokens[static_cast<size_t>(a)] + m->tokens[static_cast<size_t>(b)]);
    m->merges.emplace_back(a, b);
    touched.clear();
    const std::vector<int32_t> list = std::move(where[top.pair]);
    where.erase(top.pair);
    for (int32_t w : list) {
      if (last_visit[static_cast<size_t>(w)] == id) continue;
      last_visit[static_cast<size_t>(w)] = id;
      // Merge left to right, updating only the pairs around each merge site:
      //   ... x a b y ...  ->  ... x N y ...   (x, a) -> (x, N) and (b, y) -> (N, y).
      // When x is an N made just before (a b a b), that merge's right side already turned
      // (b, a) into (N, a), and word[out - 1] == N here, so (N, a) becomes (N, N).
      auto& word = words[static_cast<size_t>(w)];
      const int64_t f = freq[static_cast<size_t>(w)];
      size_t out = 0;
      for (size_t k = 0; k < word.size();) {
        if (k + 1 < word.size() && word[k] == a && word[k + 1] == b) {
          if (out > 0) {
            bump(word[out - 1], a, -f);
            bump(word[out - 1], id, +f);
          }
          if (k + 2 < word.size()) {
            bump(b, word[k + 2], -f);
            bump(id, word[k + 2], +f);
          }
          word[out++] = id;
          k += 2;
        } else {
          word[out++] = word[k++];
        }
      }
      word.resize(out);
      for (size_t k = 0; k + 1 < word.size(); ++k)  // index the pairs that the new token created
        if (word[k] == id || word[k + 1] == id) {
          auto& l = where[pair_key(word[k], word[k + 1])];
          if (l.empty() || l.back() != w) l.push_back(w);
        }
    }
    count.erase(top.pair);
    std::sort(touched.begin(), touched.end());
    touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
    for (uint64_t p : touched) {
      auto it = count.find(p);
      if (it == count.end()) continue;
      if (it->second <= 0) {
        count.erase(it);
        continue;
      }
      heap.push({it->second, p});
    }
  }
  for (const auto& s : specials) {
    m->specials.emplace_back(s, static_cast<int32_t>(m->tokens.size()));
    m->tokens.push_back(s);
  }
  m->finalize("trained tokenizer");
  return m;
}

}  // namespace sllm::tokenizer
