// Batches for pretraining: (B, T) windows cut from a token shard.
//
// The shard is split into windows of T+1 consecutive ids starting at multiples of T (window w
// covers ids [w*T, w*T + T], so neighbours share one id): inputs = window[0..T),
// targets = window[1..T]. That gives floor((N - 1) / T) windows for N ids, and every id
// except the last is a prediction target exactly once per epoch.
//
// Each epoch visits every window once, in an order drawn from a permutation that depends only
// on (seed, epoch); so the loader's whole position is {epoch, position, seed}, which a
// checkpoint saves and restore() reinstates exactly. A batch may straddle two epochs when
// B does not divide windows_per_epoch(). shuffle=false keeps windows in file order (validation).
#pragma once
#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/token_shard.h"

namespace sllm::data {

class BatchLoader {
 public:
  // `shard` must outlive the loader. Throws sllm::Error if the shard holds fewer than T+1 ids.
  BatchLoader(const TokenShard& shard, int64_t B, int64_t T, uint64_t seed, bool shuffle = true);

  // Fills inputs and targets, each (B, T) row-major. Deterministic.
  void next(int32_t* inputs /* (B, T) */, int32_t* targets /* (B, T) */);

  int64_t windows_per_epoch() const { return windows_; }
  int64_t epoch() const { return epoch_; }
  int64_t position() const { return position_; }  // windows already taken in this epoch
  int64_t batch_size() const { return B_; }
  int64_t seq_len() const { return T_; }

  // {"epoch", "position", "seed"} plus "seq_len", "windows_per_epoch" and "shuffle" so that
  // restoring against a different shard or sequence length is caught.
  nlohmann::json state() const;
  // Reinstates a state() result; a malformed state, or one saved with another seed, seq_len,
  // shard size or shuffle setting, raises sllm::Error saying which.
  void restore(const nlohmann::json& state);
  // Back to epoch 0, position 0.
  void reset();

 private:
  void start_epoch(int64_t epoch);

  const TokenShard* shard_;
  int64_t B_, T_, windows_;
  uint64_t seed_;
  bool shuffle_;
  int64_t epoch_ = 0, position_ = 0;
  std::vector<int64_t> order_;  // (windows_) window indices for the current epoch
  std::vector<int32_t> window_;  // (T + 1) scratch
};

}  // namespace sllm::data
