// Batches of preference pairs (preference_dataset.h): a seeded validation split and
// shuffled micro-batches with a resumable position, as SftLoader (sft_loader.h) does for SFT
// examples, through the same IndexOrder (index_order.h). Each epoch visits every pair of its
// side once, in an order drawn from (seed, epoch) alone, so the whole position is {epoch,
// position}; state() saves it and restore() reinstates it bit-exactly. A batch may straddle
// two epochs. shuffle=false keeps file order.
#pragma once
#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/index_order.h"
#include "data/preference_dataset.h"
#include "data/sft_loader.h"

namespace sllm::data {

// Pair indices of each side, in file order: the val pairs are the first k of a seeded
// permutation (k from SftValidation's fraction or count, as split_sft). Leaving no training
// pair raises sllm::Error.
SftSplit split_preferences(const PreferenceDataset& data, const SftValidation& validation, uint64_t seed);

class PreferenceLoader {
 public:
  // `data` must outlive the loader; `indices` picks the pairs. Throws sllm::Error for B <= 0,
  // T shorter than the dataset's seq_len, or no indices.
  PreferenceLoader(const PreferenceDataset& data, std::vector<int64_t> indices, int64_t B, int64_t T, uint64_t seed,
                   int32_t pad_id, bool shuffle = true);

  // The next B pairs as 2B rows (make_preference_batch). Deterministic.
  PreferenceBatch next();
  // The next B pairs themselves (for callers that batch them their own way).
  std::vector<const PreferencePair*> next_pairs();

  int64_t pairs_per_epoch() const { return order_.items_per_epoch(); }
  int64_t epoch() const { return order_.epoch(); }
  int64_t position() const { return order_.position(); }

  // {"epoch", "position", "seed", "seq_len", "pairs", "shuffle", "fingerprint"}.
  nlohmann::json state() const { return order_.state(); }
  // A malformed state, or one saved with other data, seed, seq_len or shuffle, raises
  // sllm::Error saying which.
  void restore(const nlohmann::json& state) { order_.restore(state); }
  void reset() { order_.reset(); }

 private:
  const PreferenceDataset* data_;
  int64_t B_, T_;
  int32_t pad_id_;
  IndexOrder order_;
};

}  // namespace sllm::data
