// Reward modelling as a training objective (train/objective.h), so the shared loop does the
// batching of steps, accumulation, clipping, AdamW, checkpoints and resume.
//
// The Bradley–Terry model of a preference (Bradley & Terry 1952; as the reward-model loss in
// Stiennon et al. 2020, eq. 1, and Ouyang et al. 2022, eq. 1):
//   P(chosen ≻ rejected) = σ(r_c − r_r),   loss = mean over pairs of −log σ(r_c − r_r).
// −log σ(d) = log(1 + e^−d) is exactly the cross-entropy of the two logits [r_c, r_r] with
// target 0 (−log softmax([r_c, r_r])[0] = log(1 + e^(r_r − r_c))), so the loss runs through
// ops::cross_entropy, whose log-sum-exp keeps it finite for any margin (no exp overflow, no
// log(0)). Its gradient: ∂loss/∂r_c = −σ(r_r − r_c)/N = −∂loss/∂r_r.
//
// Metrics per micro-batch (and val_ on the validation pairs): "accuracy" (the fraction with
// r_c > r_r strictly; a tie counts as wrong), "margin" (mean r_c − r_r), "chosen_reward" and
// "rejected_reward" (means), as TRL's RewardTrainer and DPOTrainer log them.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "data/preference_dataset.h"
#include "data/preference_loader.h"
#include "dist/comm.h"
#include "rl/reward_model.h"
#include "train/objective.h"

namespace sllm::rl {

// mean(−log σ(chosen − rejected)) for chosen, rejected (N) f32 with autograd → scalar (1).
Tensor bradley_terry_loss(const Tensor& chosen, const Tensor& rejected);

// accuracy, margin, chosen_reward and rejected_reward over the pairs of two score lists.
std::map<std::string, double> preference_metrics(const std::vector<float>& chosen, const std::vector<float>& rejected);

class RewardObjective final : public train::Objective {
 public:
  // Splits `data` (which must outlive the objective) with split_preferences(validation,
  // seed); training batches follow seed + 1, validation reads its pairs in file order.
  // Raises sllm::Error with a hint for batch <= 0 or an empty validation side.
  // batch is the rank's; comm (when not null) the ranks it shares each batch with: rank r
  // trains on pairs r·B ... (r+1)·B-1 of each batch of N·B (train/data_parallel.h), its
  // metrics are averaged over the ranks, and validation gathers every rank's share.
  RewardObjective(RewardModel& model, const data::PreferenceDataset& data, int64_t batch, uint64_t seed,
                  const data::SftValidation& validation, dist::Comm* comm = nullptr);

  // sllm::Error with a hint when the reward model cannot read these batches (a token id
  // beyond its vocabulary, seq beyond its context).
  void check_model() const;

  // Called with (true, i) before training micro-batch i and (false, i) before evaluation
  // (LoRA: training mode and dropout step), as SftObjective::mode_hook.
  std::function<void(bool training, uint64_t micro_batch)> mode_hook;

  // `trunk` is the loop's model: the reward model's own trunk.
  train::MicroBatchLoss next(nn::Transformer& trunk) override;
  // val loss = the mean over every validation pair; metrics likewise (a last short batch
  // holds only the pairs left, so none counts twice).
  train::Evaluation evaluate(nn::Transformer& trunk) override;
  // {"loader": the training loader's state, "micro_batches": micro-batches served}.
  nlohmann::json data_state() const override;
  void restore_data_state(const nlohmann::json& state) override;

  uint64_t data_fingerprint() const override;

  int64_t train_pairs() const { return static_cast<int64_t>(split_.train.size()); }
  int64_t val_pairs() const { return static_cast<int64_t>(split_.val.size()); }

 private:
  RewardModel* model_;
  const data::PreferenceDataset* data_;
  int64_t batch_, seq_;
  data::SftSplit split_;
  data::PreferenceLoader train_loader_;
  uint64_t micro_batches_ = 0;
};

}  // namespace sllm::rl
