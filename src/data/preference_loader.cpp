#include "data/preference_loader.h"

#include <algorithm>
#include <cstdio>
#include <numeric>

#include "core/error.h"
#include "core/rng.h"

namespace sllm::data {

namespace {

// Salted apart from sft_loader.cpp's split, so one seed does not pick "the same" rows of two
// unrelated files.
constexpr uint64_t kSplitSalt = 0x9A1B5EEDC0FFEEull;

void shuffle_in_place(std::vector<int64_t>& v, uint64_t seed) {  // Fisher-Yates
  Rng rng(seed);
  for (int64_t i = static_cast<int64_t>(v.size()) - 1; i > 0; --i)
    std::swap(v[static_cast<size_t>(i)], v[rng.below(static_cast<uint64_t>(i + 1))]);
}

std::string hex(uint64_t x) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(x));
  return buf;
}

}  // namespace

SftSplit split_preferences(const PreferenceDataset& data, const SftValidation& validation, uint64_t seed) {
  const int64_t n = data.size();
  SLLM_CHECK(validation.fraction == 0 || validation.count == 0,
             "preference validation split: give a fraction or a count, not both", "pass only one of the two");
  SLLM_CHECK(validation.fraction >= 0 && validation.fraction < 1 && validation.count >= 0,
             str("preference validation split: the fraction must be in [0, 1) and the count >= 0, got fraction ",
                 validation.fraction, ", count ", validation.count),
             "e.g. --val-fraction 0.1, or --val-count 100");
  int64_t k = validation.count;
  if (validation.fraction > 0) k = std::max<int64_t>(1, static_cast<int64_t>(validation.fraction * static_cast<double>(n)));
  SLLM_CHECK(k < n,
             str("preference validation split takes ", k, " of the ", n, " pairs of '", data.name(),
                 "', leaving none to train on"),
             "lower --val-fraction or --val-count, or add pairs");
  std::vector<int64_t> perm(static_cast<size_t>(n));
  std::iota(perm.begin(), perm.end(), int64_t{0});
  uint64_t mix = seed ^ kSplitSalt;
  shuffle_in_place(perm, splitmix64(mix));
  SftSplit split;
  split.val.assign(perm.begin(), perm.begin() + k);
  split.train.assign(perm.begin() + k, perm.end());
  std::sort(split.val.begin(), split.val.end());
  std::sort(split.train.begin(), split.train.end());
  return split;
}

PreferenceLoader::PreferenceLoader(const PreferenceDataset& data, std::vector<int64_t> indices, int64_t B, int64_t T,
                                   uint64_t seed, int32_t pad_id, bool shuffle)
    : data_(&data), indices_(std::move(indices)), B_(B), T_(T), seed_(seed), pad_id_(pad_id), shuffle_(shuffle) {
  SLLM_CHECK(B > 0 && T > 0, str("preference loader: batch size and sequence length must be positive, got B=", B,
                                 " T=", T),
             "pass positive --batch and --seq values");
  SLLM_CHECK(T >= data.options().seq_len,
             str("preference loader: sequence length ", T, " is shorter than the ", data.options().seq_len,
                 " the data was loaded for"),
             "load the data with the same --seq as the loader");
  SLLM_CHECK(!indices_.empty(), str("preference loader: no pairs selected from '", data.name(), "'"),
             "check the validation split leaves pairs on this side");
  for (int64_t i : indices_) SLLM_ASSERT(i >= 0 && i < data.size());
  start_epoch(0);
}

// Epoch e's order depends on (seed, e) only, so restore() rebuilds any epoch directly.
void PreferenceLoader::start_epoch(int64_t epoch) {
  epoch_ = epoch;
  position_ = 0;
  order_.resize(indices_.size());
  std::iota(order_.begin(), order_.end(), int64_t{0});
  if (!shuffle_) return;
  uint64_t mix = static_cast<uint64_t>(epoch);
  shuffle_in_place(order_, seed_ ^ splitmix64(mix));
}

std::vector<const PreferencePair*> PreferenceLoader::next_pairs() {
  std::vector<const PreferencePair*> pairs;
  for (int64_t b = 0; b < B_; ++b) {
    if (position_ == pairs_per_epoch()) start_epoch(epoch_ + 1);
    pairs.push_back(&data_->pairs()[static_cast<size_t>(indices_[static_cast<size_t>(order_[static_cast<size_t>(position_++)])])]);
  }
  return pairs;
}

PreferenceBatch PreferenceLoader::next() { return make_preference_batch(next_pairs(), T_, pad_id_); }

uint64_t PreferenceLoader::fingerprint() const {
  uint64_t h = data_->fingerprint();
  for (int64_t i : indices_) {
    uint64_t x = h ^ static_cast<uint64_t>(i);
    h = splitmix64(x);
  }
  return h;
}

nlohmann::json PreferenceLoader::state() const {
  return {{"epoch", epoch_},          {"position", position_}, {"seed", seed_},
          {"seq_len", T_},            {"pairs", pairs_per_epoch()}, {"shuffle", shuffle_},
          {"fingerprint", hex(fingerprint())}};
}

void PreferenceLoader::restore(const nlohmann::json& state) {
  const std::string hint =
      "resume with the same --data, --template, --seq, --truncate, validation split and --seed as the run that saved "
      "the checkpoint";
  SLLM_CHECK(state.is_object(), "preference loader state must be a JSON object", hint);
  auto integer = [&](const char* key) {
    SLLM_CHECK(state.contains(key) && state[key].is_number_integer(),
               str("preference loader state: missing or malformed \"", key, "\" in ", state.dump()), hint);
    return state[key].get<int64_t>();
  };
  const auto epoch = integer("epoch"), position = integer("position");
  SLLM_CHECK(static_cast<uint64_t>(integer("seed")) == seed_,
             str("preference loader state was saved with seed ", state["seed"].dump(), ", this loader has ", seed_), hint);
  SLLM_CHECK(integer("seq_len") == T_,
             str("preference loader state was saved with sequence length ", state["seq_len"].dump(), ", this loader has ",
                 T_),
             hint);
  SLLM_CHECK(integer("pairs") == pairs_per_epoch(),
             str("preference loader state was saved for ", state["pairs"].dump(), " pairs per epoch, this loader has ",
                 pairs_per_epoch()),
             hint);
  SLLM_CHECK(state.contains("shuffle") && state["shuffle"].is_boolean() && state["shuffle"].get<bool>() == shuffle_,
             str("preference loader state has shuffle=", state.value("shuffle", nlohmann::json()).dump(),
                 ", this loader has shuffle=", shuffle_),
             hint);
  SLLM_CHECK(state.contains("fingerprint") && state["fingerprint"] == hex(fingerprint()),
             str("preference loader state was saved on other data (fingerprint ",
                 state.value("fingerprint", nlohmann::json()).dump(), ", this loader's is \"", hex(fingerprint()), "\")"),
             "the data file, template, tokenizer or split changed since the checkpoint; " + hint);
  SLLM_CHECK(epoch >= 0 && position >= 0 && position <= pairs_per_epoch(),
             str("preference loader state is out of range: epoch ", epoch, ", position ", position, " of ",
                 pairs_per_epoch(), " pairs"),
             hint);
  start_epoch(epoch);
  position_ = position;
}

void PreferenceLoader::reset() { start_epoch(0); }

}  // namespace sllm::data
