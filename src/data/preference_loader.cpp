#include "data/preference_loader.h"

#include "core/error.h"

namespace sllm::data {

namespace {

// Salted apart from sft_loader.cpp's split, so one seed does not pick "the same" rows of two
// unrelated files.
constexpr uint64_t kSplitSalt = 0x9A1B5EEDC0FFEEull;

constexpr IndexOrderNames kNames{
    "preference validation split",
    "preference loader",
    "pairs",
    "e.g. --val-fraction 0.1, or --val-count 100",
    "lower --val-fraction or --val-count, or add pairs",
    "resume with the same --data, --template, --seq, --truncate, validation split and --seed as the run that saved "
    "the checkpoint"};

// The constructor's checks, run before its IndexOrder is built from the indices.
std::vector<int64_t> checked(std::vector<int64_t> indices, const PreferenceDataset& data, int64_t B, int64_t T) {
  SLLM_CHECK(B > 0 && T > 0, str("preference loader: batch size and sequence length must be positive, got B=", B,
                                 " T=", T),
             "pass positive --batch and --seq values");
  SLLM_CHECK(T >= data.options().seq_len,
             str("preference loader: sequence length ", T, " is shorter than the ", data.options().seq_len,
                 " the data was loaded for"),
             "load the data with the same --seq as the loader");
  SLLM_CHECK(!indices.empty(), str("preference loader: no pairs selected from '", data.name(), "'"),
             "check the validation split leaves pairs on this side");
  for (int64_t i : indices) SLLM_ASSERT(i >= 0 && i < data.size());
  return indices;
}

}  // namespace

SftSplit split_preferences(const PreferenceDataset& data, const SftValidation& validation, uint64_t seed) {
  return split_indices(data.size(), validation, seed, kSplitSalt, data.name(), kNames);
}

PreferenceLoader::PreferenceLoader(const PreferenceDataset& data, std::vector<int64_t> indices, int64_t B, int64_t T,
                                   uint64_t seed, int32_t pad_id, bool shuffle)
    : data_(&data),
      B_(B),
      T_(T),
      pad_id_(pad_id),
      order_(checked(std::move(indices), data, B, T), seed, shuffle, T, data.fingerprint(), kNames) {}

std::vector<const PreferencePair*> PreferenceLoader::next_pairs() {
  std::vector<const PreferencePair*> pairs;
  for (int64_t b = 0; b < B_; ++b) pairs.push_back(&data_->pairs()[static_cast<size_t>(order_.next())]);
  return pairs;
}

PreferenceBatch PreferenceLoader::next() { return make_preference_batch(next_pairs(), T_, pad_id_); }

}  // namespace sllm::data
