// The order in which a fine-tuning loader visits its side of a dataset, shared by SftLoader
// (sft_loader.h) and PreferenceLoader (preference_loader.h), and the seeded validation split
// both sides come from.
//
// Order: each epoch visits every selected index once, in a Fisher-Yates permutation seeded
// from (seed, epoch) alone, so the whole position is {epoch, position}: state() saves it and
// restore() rebuilds any epoch directly, without replaying the earlier ones (as
// batch_loader.cpp does for token shards). shuffle=false keeps file order (validation).
//
// The loaders keep their own wordings (what the data's items are called, their hints); this
// file takes them as an IndexOrderNames.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace sllm::data {

// How many items go to validation: a fraction of the file (rounded down, but at least one
// when the fraction is positive) or an exact count. Setting both is an error.
struct SftValidation {
  double fraction = 0;
  int64_t count = 0;
};

// Item indices (into the dataset's items) of each side, each in file order.
struct SftSplit {
  std::vector<int64_t> train, val;
};

// The words a loader's errors use, so each loader's messages stay its own.
struct IndexOrderNames {
  const char* split;        // "SFT validation split"
  const char* loader;       // "SFT loader"
  const char* items;        // "examples": in messages and as the state's count key
  const char* range_hint;   // the split's hint for a fraction or count out of range
  const char* empty_hint;   // the split's hint when no item is left to train on
  const char* resume_hint;  // restore()'s hint: which flags must match the saved run
};

// The val items are the first k of a permutation seeded by seed ^ salt (each dataset kind
// has its own salt, so one seed does not pick "the same" rows of two unrelated files), so the
// same (data, seed) always gives the same split. Leaving no training item raises sllm::Error;
// `data_name` names the file in that message.
SftSplit split_indices(int64_t n, const SftValidation& validation, uint64_t seed, uint64_t salt,
                       const std::string& data_name, const IndexOrderNames& names);

// The split a training objective holds (SftObjective, DpoObjective, RewardObjective): `split`
// (split_sft, split_preferences) of `data`, after checking the micro-batch size, and refusing
// an empty validation side, because the loop evaluates at step 1 and at the last step.
// `item` names one of the data's items in the messages ("example", "pair").
template <class Dataset>
SftSplit objective_split(const Dataset& data, int64_t batch, const SftValidation& validation, uint64_t seed,
                         SftSplit (*split)(const Dataset&, const SftValidation&, uint64_t), const char* item) {
  SLLM_CHECK(batch > 0, str("--batch must be > 0, got ", batch),
             str("pass a positive number of ", item, "s per micro-batch"));
  SftSplit s = split(data, validation, seed);
  SLLM_CHECK(!s.val.empty(), str(data.name(), ": the validation split is empty (", data.size(), " ", item, "s)"),
             str("set --val-fraction or --val-count so that at least one ", item, " is held out"));
  return s;
}

class IndexOrder {
 public:
  // `indices` picks the items (a side of split_indices); `seq_len` and `data_fingerprint` are
  // saved in state() so restore() catches another --seq or other data. `names` must outlive
  // the order (string literals do).
  IndexOrder(std::vector<int64_t> indices, uint64_t seed, bool shuffle, int64_t seq_len, uint64_t data_fingerprint,
             const IndexOrderNames& names);

  // The next item's index into the dataset; the first call after an epoch's last item starts
  // the next epoch, so a batch may straddle two epochs.
  int64_t next();

  int64_t items_per_epoch() const { return static_cast<int64_t>(indices_.size()); }
  int64_t epoch() const { return epoch_; }
  int64_t position() const { return position_; }  // items already taken in this epoch

  // {"epoch", "position", "seed", "seq_len", <names.items>, "shuffle", "fingerprint"}: the
  // fingerprint (of the data and the selected indices) catches a restore against other data.
  nlohmann::json state() const;
  // Reinstates a state() result; a malformed state or one saved with other data, seed,
  // seq_len or shuffle raises sllm::Error saying which.
  void restore(const nlohmann::json& state);
  void reset() { start_epoch(0); }  // back to epoch 0, position 0

 private:
  void start_epoch(int64_t epoch);
  std::string fingerprint_hex() const;

  std::vector<int64_t> indices_;
  uint64_t seed_;
  bool shuffle_;
  int64_t seq_len_;
  uint64_t fingerprint_;  // of the data and indices_
  const IndexOrderNames* names_;
  int64_t epoch_ = 0, position_ = 0;
  std::vector<int64_t> order_;  // (items_per_epoch) positions into indices_, this epoch
};

}  // namespace sllm::data
