#include "data/batch_loader.h"

#include <numeric>

#include "core/error.h"
#include "core/rng.h"

namespace sllm::data {

BatchLoader::BatchLoader(const TokenShard& shard, int64_t B, int64_t T, uint64_t seed, bool shuffle)
    : shard_(&shard), B_(B), T_(T), windows_(0), seed_(seed), shuffle_(shuffle) {
  SLLM_CHECK(B > 0 && T > 0, str("batch loader: batch size and sequence length must be positive, got B=", B, " T=", T),
             "pass positive --batch and --seq values");
  SLLM_CHECK(shard.size() >= T + 1,
             str("token shard '", shard.path(), "' holds ", shard.size(), " tokens, fewer than the ", T + 1,
                 " needed for one window of sequence length ", T),
             shard.size() >= 2
                 ? str("lower --seq (at most ", shard.size() - 1, " for this shard) or add data (a bigger corpus, or a "
                       "higher --val-fraction in `sllm prepare` if this is the validation shard)")
                 : std::string("the shard is empty: add data, or give `sllm prepare` more than one document so "
                               "--val-fraction can fill val.bin"));
  windows_ = (shard.size() - 1) / T;
  window_.resize(static_cast<size_t>(T + 1));
  start_epoch(0);
}

// The order of epoch e is a Fisher-Yates shuffle driven by an Rng seeded from (seed, e) alone,
// so any epoch's order can be rebuilt on restore without replaying earlier epochs.
void BatchLoader::start_epoch(int64_t epoch) {
  epoch_ = epoch;
  position_ = 0;
  order_.resize(static_cast<size_t>(windows_));
  std::iota(order_.begin(), order_.end(), int64_t{0});
  if (!shuffle_) return;
  uint64_t mix = static_cast<uint64_t>(epoch);
  Rng rng(seed_ ^ splitmix64(mix));
  for (int64_t i = windows_ - 1; i > 0; --i) {
    const auto j = static_cast<int64_t>(rng.below(static_cast<uint64_t>(i + 1)));
    std::swap(order_[i], order_[j]);
  }
}

void BatchLoader::next(int32_t* inputs, int32_t* targets) {
  for (int64_t b = 0; b < B_; ++b) {
    if (position_ == windows_) start_epoch(epoch_ + 1);
    const int64_t w = order_[position_++];
    shard_->read(w * T_, T_ + 1, window_.data());
    std::copy(window_.begin(), window_.end() - 1, inputs + b * T_);
    std::copy(window_.begin() + 1, window_.end(), targets + b * T_);
  }
}

nlohmann::json BatchLoader::state() const {
  return {{"epoch", epoch_},     {"position", position_},          {"seed", seed_},
          {"seq_len", T_},       {"windows_per_epoch", windows_},  {"shuffle", shuffle_}};
}

void BatchLoader::restore(const nlohmann::json& state) {
  const std::string hint = "resume with the same data, --seq and --seed as the run that saved the checkpoint";
  SLLM_CHECK(state.is_object(), "batch loader state must be a JSON object", hint);
  auto integer = [&](const char* key) -> const nlohmann::json& {
    SLLM_CHECK(state.contains(key) && state[key].is_number_integer(),
               str("batch loader state: missing or non-integer \"", key, "\" in ", state.dump()), hint);
    return state[key];
  };
  const auto seed = integer("seed").get<uint64_t>();
  const auto epoch = integer("epoch").get<int64_t>();
  const auto position = integer("position").get<int64_t>();
  SLLM_CHECK(seed == seed_, str("batch loader state was saved with seed ", seed, ", this loader has seed ", seed_), hint);
  if (state.contains("seq_len"))
    SLLM_CHECK(integer("seq_len").get<int64_t>() == T_,
               str("batch loader state was saved with sequence length ", state["seq_len"].dump(), ", this loader has ", T_), hint);
  if (state.contains("windows_per_epoch"))
    SLLM_CHECK(integer("windows_per_epoch").get<int64_t>() == windows_,
               str("batch loader state was saved for a shard with ", state["windows_per_epoch"].dump(),
                   " windows per epoch; '", shard_->path(), "' has ", windows_),
               "the token shard changed since the checkpoint; " + hint);
  if (state.contains("shuffle"))
    SLLM_CHECK(state["shuffle"].is_boolean() && state["shuffle"].get<bool>() == shuffle_,
               str("batch loader state has shuffle=", state["shuffle"].dump(), ", this loader has shuffle=", shuffle_), hint);
  SLLM_CHECK(epoch >= 0 && position >= 0 && position <= windows_,
             str("batch loader state is out of range: epoch ", epoch, ", position ", position, " of ", windows_,
                 " windows"),
             hint);
  start_epoch(epoch);
  position_ = position;
}

void BatchLoader::reset() { start_epoch(0); }

}  // namespace sllm::data
