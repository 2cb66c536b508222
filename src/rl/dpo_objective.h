// DPO as an objective of the shared training loop (train/objective.h): preference pairs
// (data/preference_dataset.h) in (2B, T) batches from a seeded PreferenceLoader, the policy's
// sequence log-probabilities from one forward over the chosen and rejected rows, and the
// sigmoid or IPO loss of rl/dpo.h against reference log-probabilities computed once.
//
// The reference. DPO's loss needs log π_ref(y|x) of every pair, and the reference never
// changes, so compute_reference() runs it once over every train and val pair before training
// (under no-grad) and keeps two floats per pair (indexed by the pair's position in the
// dataset); next() and evaluate() then never run the reference. For LoRA the caller runs it
// with the adapter disabled (the base model, no second copy of the weights); for full
// fine-tuning on a frozen copy loaded from the starting model, which can be freed afterwards.
// They are a pure function of (reference weights, data, batch), so a resumed run recomputes
// them and gets the same floats.
//
// Bit-for-bit at step 0. compute_reference() batches the pairs exactly as training does:
// B pairs per forward (the last batch filled up with repeats whose results are dropped) over
// the same T, so the reference's GEMMs have the shapes of the policy's. When the policy equals
// the reference (LoRA with B = 0) every log-ratio is then exactly 0 and the first loss is
// exactly ln 2 (tests/rl/test_dpo_objective.cpp checks it).
//
// Splits: data::split_preferences(validation, seed); training batches follow seed + 1 (as
// SFT's do), validation reads its pairs in file order. Per micro-batch the loss is the mean
// over its B pairs; validation's is the mean over every val pair (each counted once).
//
// Built for N ranks (a data-parallel run, train/data_parallel.h), the loader reads N·B pairs
// per micro-batch, as one process with --batch N·B would, and rank r trains on pairs
// r·B ... (r+1)·B-1; its metrics are averaged over the ranks (equal slices: the batch's
// means), and validation sums every rank's share. The reference pass is split too: rank r
// runs the batches j with j mod N = r and broadcasts their log-probabilities.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/preference_dataset.h"
#include "data/preference_loader.h"
#include "data/sft_loader.h"
#include "dist/comm.h"
#include "nn/config.h"
#include "rl/dpo.h"
#include "train/objective.h"

namespace sllm::rl {

struct DpoSettings {
  double beta = 0.1;  // β: Rafailov et al. use 0.1 (and TRL's default is 0.1)
  DpoLossType loss_type = DpoLossType::Sigmoid;
};

class DpoObjective final : public train::Objective {
 public:
  // Splits `data` (which must outlive the objective); T is the dataset's seq_len. Raises
  // sllm::Error with a hint for batch <= 0, β <= 0, or a split with no validation pair.
  // batch is the rank's; comm (when not null) the ranks it shares each batch with.
  DpoObjective(const data::PreferenceDataset& data, int64_t batch, uint64_t seed, const data::SftValidation& validation,
               int32_t pad_id, const DpoSettings& settings, dist::Comm* comm = nullptr);

  // Raises sllm::Error with a hint when the model cannot take these batches (an id beyond its
  // vocabulary, T beyond its context).
  void check_model(const nn::ModelConfig& config) const;

  // Runs `reference` over every pair (no gradients) and keeps its log-probabilities. Must be
  // called before next() or evaluate(). For LoRA call it inside LoraModel::disabled().
  void compute_reference(nn::Transformer& reference);
  bool has_reference() const { return !ref_chosen_.empty(); }
  // The reference's log-probability of pair i's chosen / rejected response (per-token
  // averages with IPO: rl/dpo.h).
  float ref_chosen(int64_t pair) const { return ref_chosen_.at(static_cast<size_t>(pair)); }
  float ref_rejected(int64_t pair) const { return ref_rejected_.at(static_cast<size_t>(pair)); }

  // As SftObjective's: called with (true, i) before training micro-batch i (counted from the
  // run's start, kept in data_state()) and with (false, i) before an evaluation or the
  // reference pass. LoRA sets its training mode and dropout step here.
  std::function<void(bool training, uint64_t micro_batch)> mode_hook;

  // tokens = real tokens over the 2B rows; metrics chosen_reward, rejected_reward, accuracy,
  // margin (rl/dpo.h) and epoch (fractional).
  train::MicroBatchLoss next(nn::Transformer& model) override;
  train::Evaluation evaluate(nn::Transformer& model) override;
  // {"loader": the training PreferenceLoader's state, "micro_batches": micro-batches served}.
  nlohmann::json data_state() const override;
  void restore_data_state(const nlohmann::json& state) override;

  uint64_t data_fingerprint() const override;

  int64_t train_pairs() const { return static_cast<int64_t>(split_.train.size()); }
  int64_t val_pairs() const { return static_cast<int64_t>(split_.val.size()); }

 private:
  struct PairLogprobs {
    Tensor chosen, rejected;  // (B) each
  };
  // The model's log-probabilities of the pairs' responses (per-token averages for IPO).
  PairLogprobs policy_logprobs(nn::Transformer& model, const std::vector<const data::PreferencePair*>& pairs) const;
  // The stored reference values of the pairs, as two (B) tensors on `device`.
  PairLogprobs reference_logprobs(const std::vector<const data::PreferencePair*>& pairs, Device device) const;
  int64_t index_of(const data::PreferencePair* pair) const;

  const data::PreferenceDataset* data_;
  int64_t batch_, seq_;
  int32_t pad_id_;
  DpoSettings settings_;
  data::SftSplit split_;
  data::PreferenceLoader train_loader_;
  uint64_t micro_batches_ = 0;  // micro-batch slices served (N per micro-batch with N ranks)
  std::vector<float> ref_chosen_, ref_rejected_;  // (pairs in the dataset)
};

}  // namespace sllm::rl
