#include "data/sft_loader.h"

#include <algorithm>

#include "core/error.h"

namespace sllm::data {

namespace {

// A fixed salt keeps the split's permutation apart from epoch 0's shuffle of the same seed.
constexpr uint64_t kSplitSalt = 0x5F7A11D5EEDull;

constexpr IndexOrderNames kNames{
    "SFT validation split",
    "SFT loader",
    "examples",
    "e.g. a fraction of 0.1, or a count of 100",
    "lower the validation fraction or count, or add examples",
    "resume with the same --data, --template, --seq, validation split and --seed as the run that saved the "
    "checkpoint"};

// The constructor's checks, run before its IndexOrder is built from the indices.
std::vector<int64_t> checked(std::vector<int64_t> indices, const SftDataset& data, int64_t B, int64_t T) {
  SLLM_CHECK(B > 0 && T > 0, str("SFT loader: batch size and sequence length must be positive, got B=", B, " T=", T),
             "pass positive --batch and --seq values");
  SLLM_CHECK(T >= data.options().seq_len,
             str("SFT loader: sequence length ", T, " is shorter than the ", data.options().seq_len,
                 " the data was rendered for"),
             "load the data with the same --seq as the loader");
  SLLM_CHECK(!indices.empty(), str("SFT loader: no examples selected from '", data.name(), "'"),
             "check the validation split leaves examples on this side");
  for (int64_t i : indices) SLLM_ASSERT(i >= 0 && i < data.size());
  return indices;
}

}  // namespace

SftSplit split_sft(const SftDataset& data, const SftValidation& validation, uint64_t seed) {
  return split_indices(data.size(), validation, seed, kSplitSalt, data.name(), kNames);
}

int32_t default_pad_id(const tokenizer::Tokenizer& tok) {
  const auto eot = tok.special_id("<|endoftext|>");
  return eot ? *eot : 0;
}

SftLoader::SftLoader(const SftDataset& data, std::vector<int64_t> indices, int64_t B, int64_t T, uint64_t seed,
                     int32_t pad_id, bool shuffle)
    : data_(&data),
      B_(B),
      T_(T),
      pad_id_(pad_id),
      order_(checked(std::move(indices), data, B, T), seed, shuffle, T, data.fingerprint(), kNames) {}

SftBatchCounts SftLoader::next(int32_t* inputs, int32_t* targets) {
  SftBatchCounts counts;
  for (int64_t b = 0; b < B_; ++b) {
    const SftExample& ex = data_->examples()[static_cast<size_t>(order_.next())];
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

}  // namespace sllm::data
