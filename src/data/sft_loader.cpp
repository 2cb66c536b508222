#include "data/sft_loader.h"

#include <algorithm>
#include <cstdio>
#include <numeric>

#include "core/error.h"
#include "core/rng.h"

namespace sllm::data {

namespace {

// A fixed salt keeps the split's permutation apart from epoch 0's shuffle of the same seed.
constexpr uint64_t kSplitSalt = 0x5F7A11D5EEDull;

void shuffle_in_place(std::vector<int64_t>& v, uint64_t seed) {
  Rng rng(seed);
  for (int64_t i = static_cast<int64_t>(v.size()) - 1; i > 0; --i) {
    const auto j = static_cast<int64_t>(rng.below(static_cast<uint64_t>(i + 1)));
    std::swap(v[i], v[j]);
  }
}

std::string hex(uint64_t x) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(x));
  return buf;
}

}  // namespace

SftSplit split_sft(const SftDataset& data, const SftValidation& validation, uint64_t seed) {
  const int64_t n = data.size();
  SLLM_CHECK(validation.fraction == 0 || validation.count == 0,
             "SFT validation split: give a fraction or a count, not both", "pass only one of the two");
  SLLM_CHECK(validation.fraction >= 0 && validation.fraction < 1 && validation.count >= 0,
             str("SFT validation split: the fraction must be in [0, 1) and the count >= 0, got fraction ",
                 validation.fraction, ", count ", validation.count),
             "e.g. a fraction of 0.1, or a count of 100");
  int64_t k = validation.count;
  if (validation.fraction > 0) k = std::max<int64_t>(1, static_cast<int64_t>(validation.fraction * n));
  SLLM_CHECK(k < n,
             str("SFT validation split takes ", k, " of the ", n, " examples of '", data.name(),
                 "', leaving none to train on"),
             "lower the validation fraction or count, or add examples");
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

int32_t default_pad_id(const tokenizer::Tokenizer& tok) {
  const auto eot = tok.special_id("<|endoftext|>");
  return eot ? *eot : 0;
}

SftLoader::SftLoader(const SftDataset& data, std::vector<int64_t> indices, int64_t B, int64_t T, uint64_t seed,
                     int32_t pad_id, bool shuffle)
    : data_(&data), indices_(std::move(indices)), B_(B), T_(T), seed_(seed), pad_id_(pad_id), shuffle_(shuffle) {
  SLLM_CHECK(B > 0 && T > 0, str("SFT loader: batch size and sequence length must be positive, got B=", B, " T=", T),
             "pass positive --batch and --seq values");
  SLLM_CHECK(T >= data.options().seq_len,
             str("SFT loader: sequence length ", T, " is shorter than the ", data.options().seq_len,
                 " the data was rendered for"),
             "load the data with the same --seq as the loader");
  SLLM_CHECK(!indices_.empty(), str("SFT loader: no examples selected from '", data.name(), "'"),
             "check the validation split leaves examples on this side");
  for (int64_t i : indices_) SLLM_ASSERT(i >= 0 && i < data.size());
  start_epoch(0);
}

// Epoch e's order is a Fisher-Yates shuffle seeded from (seed, e) alone, so any epoch can be
// rebuilt on restore without replaying the earlier ones (as in batch_loader.cpp).
void SftLoader::start_epoch(int64_t epoch) {
  epoch_ = epoch;
  position_ = 0;
  order_.resize(indices_.size());
  std::iota(order_.begin(), order_.end(), int64_t{0});
  if (!shuffle_) return;
  uint64_t mix = static_cast<uint64_t>(epoch);
  shuffle_in_place(order_, seed_ ^ splitmix64(mix));
}

SftBatchCounts SftLoader::next(int32_t* inputs, int32_t* targets) {
  SftBatchCounts counts;
  for (int64_t b = 0; b < B_; ++b) {
    if (position_ == examples_per_epoch()) start_epoch(epoch_ + 1);
    const SftExample& ex = data_->examples()[indices_[order_[position_++]]];
    const auto n = static_cast<int64_t>(ex.inputs.size());
    int32_t* in_row = inputs + b * T_;       // (T)
    int32_t* target_row = targets + b * T_;  // (T)
    std::copy(ex.inputs.begin(), ex.inputs.end(), in_row);
    std::copy(ex.targets.begin(), ex.targets.end(), target_row);
    std::fill(in_row + n, in_row + T_, pad_id_);
    std::fill(target_row + n, target_row + T_, kIgnoreIndex);
    counts.tokens += n;
    counts.label_tokens +=
        std::count_if(ex.targets.begin(), ex.targets.end(), [](int32_t t) { return t != kIgnoreIndex; });
  }
  return counts;
}

uint64_t SftLoader::fingerprint() const {
  uint64_t h = data_->fingerprint();
  for (int64_t i : indices_) {
    uint64_t x = h ^ static_cast<uint64_t>(i);
    h = splitmix64(x);
  }
  return h;
}

nlohmann::json SftLoader::state() const {
  return {{"epoch", epoch_},
          {"position", position_},
          {"seed", seed_},
          {"seq_len", T_},
          {"examples", examples_per_epoch()},
          {"shuffle", shuffle_},
          {"fingerprint", hex(fingerprint())}};
}

void SftLoader::restore(const nlohmann::json& state) {
  const std::string hint =
      "resume with the same --data, --template, --seq, validation split and --seed as the run "
      "that saved the checkpoint";
  SLLM_CHECK(state.is_object(), "SFT loader state must be a JSON object", hint);
  auto field = [&](const char* key, bool integer) -> const nlohmann::json& {
    SLLM_CHECK(state.contains(key) && (integer ? state[key].is_number_integer() : true),
               str("SFT loader state: missing or malformed \"", key, "\" in ", state.dump()), hint);
    return state[key];
  };
  const auto seed = field("seed", true).get<uint64_t>();
  const auto epoch = field("epoch", true).get<int64_t>();
  const auto position = field("position", true).get<int64_t>();
  SLLM_CHECK(seed == seed_, str("SFT loader state was saved with seed ", seed, ", this loader has seed ", seed_), hint);
  SLLM_CHECK(field("seq_len", true).get<int64_t>() == T_,
             str("SFT loader state was saved with sequence length ", state["seq_len"].dump(), ", this loader has ", T_),
             hint);
  SLLM_CHECK(field("examples", true).get<int64_t>() == examples_per_epoch(),
             str("SFT loader state was saved for ", state["examples"].dump(), " examples per epoch, this loader has ",
                 examples_per_epoch()),
             hint);
  const auto& shuffle = field("shuffle", false);
  SLLM_CHECK(shuffle.is_boolean() && shuffle.get<bool>() == shuffle_,
             str("SFT loader state has shuffle=", shuffle.dump(), ", this loader has shuffle=", shuffle_), hint);
  const auto& print = field("fingerprint", false);
  SLLM_CHECK(print.is_string() && print.get<std::string>() == hex(fingerprint()),
             str("SFT loader state was saved on other data (fingerprint ", print.dump(), ", this loader's is \"",
                 hex(fingerprint()), "\")"),
             "the data file, template, tokenizer or split changed since the checkpoint; " + hint);
  SLLM_CHECK(epoch >= 0 && position >= 0 && position <= examples_per_epoch(),
             str("SFT loader state is out of range: epoch ", epoch, ", position ", position, " of ",
                 examples_per_epoch(), " examples"),
             hint);
  start_epoch(epoch);
  position_ = position;
}

void SftLoader::reset() { start_epoch(0); }

}  // namespace sllm::data
