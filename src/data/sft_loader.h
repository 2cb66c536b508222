// Batches of SFT examples (sft_dataset.h): a validation split, and (B, T) right-padded batches.
//
// Padding: row b holds one example's inputs and targets from column 0, then pad_id inputs
// and kIgnoreIndex targets up to T. Under causal attention position t sees only positions
// <= t, so padding after the example never changes its logits, and its targets add nothing
// to the loss. (Packing several examples per row needs attention masks; not done here.)
//
// Order: each epoch visits every example of the split once, in an order drawn from a
// permutation that depends only on (seed, epoch) (index_order.h), so the loader's whole
// position is {epoch, position}; state() saves it and restore() reinstates it bit-exactly. A
// batch may straddle two epochs when B does not divide the split's size. shuffle=false keeps
// file order (validation).
#pragma once
#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/index_order.h"
#include "data/sft_dataset.h"

namespace sllm::data {

// Example indices (into SftDataset::examples()) of each side, each in file order
// (SftValidation and SftSplit: index_order.h).
// The val examples are the first k of a seeded permutation, so the same (data, seed) always
// gives the same split. Leaving no training example raises sllm::Error.
SftSplit split_sft(const SftDataset& data, const SftValidation& validation, uint64_t seed);

// Filled by next(): what the batch holds besides padding.
struct SftBatchCounts {
  int64_t tokens = 0;        // real (non-padding) input positions
  int64_t label_tokens = 0;  // targets != kIgnoreIndex
};

class SftLoader {
 public:
  // `data` must outlive the loader; `indices` picks the examples (a side of split_sft).
  // Throws sllm::Error for B <= 0, T smaller than the dataset's seq_len, or no indices.
  SftLoader(const SftDataset& data, std::vector<int64_t> indices, int64_t B, int64_t T, uint64_t seed, int32_t pad_id,
            bool shuffle = true);

  // Fills inputs and targets, each (B, T) row-major. Deterministic.
  SftBatchCounts next(int32_t* inputs /* (B, T) */, int32_t* targets /* (B, T) */);

  int64_t examples_per_epoch() const { return order_.items_per_epoch(); }
  int64_t epoch() const { return order_.epoch(); }
  int64_t position() const { return order_.position(); }  // examples already taken in this epoch
  int64_t batch_size() const { return B_; }
  int64_t seq_len() const { return T_; }

  // {"epoch", "position", "seed", "seq_len", "examples", "shuffle", "fingerprint"}: the
  // fingerprint (of the data and the selected indices) catches a restore against other data.
  nlohmann::json state() const { return order_.state(); }
  // Reinstates a state() result; a malformed state or one saved with other data, seed,
  // seq_len or shuffle raises sllm::Error saying which.
  void restore(const nlohmann::json& state) { order_.restore(state); }
  void reset() { order_.reset(); }  // back to epoch 0, position 0

 private:
  const SftDataset* data_;
  int64_t B_, T_;
  int32_t pad_id_;
  IndexOrder order_;
};

// The id padding uses: <|endoftext|> when the tokenizer has it, else 0. Any id would do, as
// padding's targets are ignored and causal attention keeps it away from real tokens; a real
// special token just keeps decoded batches readable.
int32_t default_pad_id(const tokenizer::Tokenizer& tok);

}  // namespace sllm::data
