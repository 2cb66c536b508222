#include "data/index_order.h"

#include <algorithm>
#include <cstdio>
#include <numeric>

#include "core/error.h"
#include "core/rng.h"

namespace sllm::data {

namespace {

void shuffle_in_place(std::vector<int64_t>& v, uint64_t seed) {  // Fisher-Yates
  Rng rng(seed);
  for (int64_t i = static_cast<int64_t>(v.size()) - 1; i > 0; --i) {
    const auto j = static_cast<int64_t>(rng.below(static_cast<uint64_t>(i + 1)));
    std::swap(v[static_cast<size_t>(i)], v[static_cast<size_t>(j)]);
  }
}

}  // namespace

SftSplit split_indices(int64_t n, const SftValidation& validation, uint64_t seed, uint64_t salt,
                       const std::string& data_name, const IndexOrderNames& names) {
  SLLM_CHECK(validation.fraction == 0 || validation.count == 0,
             str(names.split, ": give a fraction or a count, not both"), "pass only one of the two");
  SLLM_CHECK(validation.fraction >= 0 && validation.fraction < 1 && validation.count >= 0,
             str(names.split, ": the fraction must be in [0, 1) and the count >= 0, got fraction ", validation.fraction,
                 ", count ", validation.count),
             names.range_hint);
  int64_t k = validation.count;
  if (validation.fraction > 0)
    k = std::max<int64_t>(1, static_cast<int64_t>(validation.fraction * static_cast<double>(n)));
  SLLM_CHECK(k < n,
             str(names.split, " takes ", k, " of the ", n, " ", names.items, " of '", data_name,
                 "', leaving none to train on"),
             names.empty_hint);
  std::vector<int64_t> perm(static_cast<size_t>(n));
  std::iota(perm.begin(), perm.end(), int64_t{0});
  uint64_t mix = seed ^ salt;
  shuffle_in_place(perm, splitmix64(mix));
  SftSplit split;
  split.val.assign(perm.begin(), perm.begin() + k);
  split.train.assign(perm.begin() + k, perm.end());
  std::sort(split.val.begin(), split.val.end());
  std::sort(split.train.begin(), split.train.end());
  return split;
}

IndexOrder::IndexOrder(std::vector<int64_t> indices, uint64_t seed, bool shuffle, int64_t seq_len,
                       uint64_t data_fingerprint, const IndexOrderNames& names)
    : indices_(std::move(indices)), seed_(seed), shuffle_(shuffle), seq_len_(seq_len), names_(&names) {
  // The fingerprint chains the selected indices onto the data's, so the same file with
  // another split (another seed or fraction) is "other data" too.
  fingerprint_ = data_fingerprint;
  for (int64_t i : indices_) {
    uint64_t x = fingerprint_ ^ static_cast<uint64_t>(i);
    fingerprint_ = splitmix64(x);
  }
  start_epoch(0);
}

void IndexOrder::start_epoch(int64_t epoch) {
  epoch_ = epoch;
  position_ = 0;
  order_.resize(indices_.size());
  std::iota(order_.begin(), order_.end(), int64_t{0});
  if (!shuffle_) return;
  uint64_t mix = static_cast<uint64_t>(epoch);
  shuffle_in_place(order_, seed_ ^ splitmix64(mix));
}

int64_t IndexOrder::next() {
  if (position_ == items_per_epoch()) start_epoch(epoch_ + 1);
  return indices_[static_cast<size_t>(order_[static_cast<size_t>(position_++)])];
}

std::string IndexOrder::fingerprint_hex() const {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(fingerprint_));
  return buf;
}

nlohmann::json IndexOrder::state() const {
  return {{"epoch", epoch_},   {"position", position_}, {"seed", seed_},
          {"seq_len", seq_len_}, {names_->items, items_per_epoch()}, {"shuffle", shuffle_},
          {"fingerprint", fingerprint_hex()}};
}

void IndexOrder::restore(const nlohmann::json& state) {
  const char* loader = names_->loader;
  const char* items = names_->items;
  const std::string hint = names_->resume_hint;
  SLLM_CHECK(state.is_object(), str(loader, " state must be a JSON object"), hint);
  auto field = [&](const char* key, bool integer) -> const nlohmann::json& {
    SLLM_CHECK(state.contains(key) && (integer ? state[key].is_number_integer() : true),
               str(loader, " state: missing or malformed \"", key, "\" in ", state.dump()), hint);
    return state[key];
  };
  const auto seed = field("seed", true).get<uint64_t>();
  const auto epoch = field("epoch", true).get<int64_t>();
  const auto position = field("position", true).get<int64_t>();
  SLLM_CHECK(seed == seed_, str(loader, " state was saved with seed ", seed, ", this loader has seed ", seed_), hint);
  SLLM_CHECK(field("seq_len", true).get<int64_t>() == seq_len_,
             str(loader, " state was saved with sequence length ", state["seq_len"].dump(), ", this loader has ",
                 seq_len_),
             hint);
  SLLM_CHECK(field(items, true).get<int64_t>() == items_per_epoch(),
             str(loader, " state was saved for ", state[items].dump(), " ", items, " per epoch, this loader has ",
                 items_per_epoch()),
             hint);
  const auto& shuffle = field("shuffle", false);
  SLLM_CHECK(shuffle.is_boolean() && shuffle.get<bool>() == shuffle_,
             str(loader, " state has shuffle=", shuffle.dump(), ", this loader has shuffle=", shuffle_), hint);
  const auto& print = field("fingerprint", false);
  SLLM_CHECK(print.is_string() && print.get<std::string>() == fingerprint_hex(),
             str(loader, " state was saved on other data (fingerprint ", print.dump(), ", this loader's is \"",
                 fingerprint_hex(), "\")"),
             "the data file, template, tokenizer or split changed since the checkpoint; " + hint);
  SLLM_CHECK(epoch >= 0 && position >= 0 && position <= items_per_epoch(),
             str(loader, " state is out of range: epoch ", epoch, ", position ", position, " of ", items_per_epoch(),
                 " ", items),
             hint);
  start_epoch(epoch);
  position_ = position;
}

}  // namespace sllm::data
