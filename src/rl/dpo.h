// Direct Preference Optimization (Rafailov et al. 2023, "Direct Preference Optimization: Your
// Language Model is Secretly a Reward Model") and IPO (Azar et al. 2023, "A General
// Theoretical Paradigm to Understand Learning from Human Preferences"): the loss on the
// log-probabilities of a chosen and a rejected response under the policy π and the frozen
// reference, and the sequence log-probabilities it needs.
//
// With  h = (log π(y_c|x) − log π(y_r|x)) − (log π_ref(y_c|x) − log π_ref(y_r|x)),
//   sigmoid (DPO, eq. 7):  loss = −log σ(β·h)
//   ipo     (IPO, eq. 17): loss = (h − 1/(2β))²        (β is the paper's τ)
// each averaged over the pairs. h is computed in TRL's order (trl/trainer/dpo_trainer.py,
// dpo_loss: logratios = chosen − rejected, ref_logratios likewise, logits = logratios −
// ref_logratios), so when policy and reference agree h is exactly 0 and the sigmoid loss is
// exactly ln 2.
//
// Which log-probabilities: DPO's are summed over the response tokens (the sequence's
// log-likelihood, as in the paper). For IPO TRL divides them by the number of response tokens
// (concatenated_forward: `if self.loss_type == "ipo": all_logps = all_logps / loss_mask.sum(-1)`),
// and so does sllm (DpoObjective, per_token_average): IPO pulls h to the fixed target 1/(2β)
// (≈ 5 at β = 0.1), and a summed log-ratio grows with the response's length, so the same
// target would mean a much weaker preference on long responses than on short ones; per-token
// averages put every pair on one scale. The rewards below then use the averaged values too,
// as TRL's do.
//
// Metrics, with TRL's meanings (dpo_trainer.py, get_batch_loss_metrics) under sllm's names:
//   chosen_reward   = mean β·(log π(y_c) − log π_ref(y_c))       (TRL "rewards/chosen")
//   rejected_reward = mean β·(log π(y_r) − log π_ref(y_r))       (TRL "rewards/rejected")
//   accuracy        = fraction of pairs with chosen > rejected reward (TRL "rewards/accuracies")
//   margin          = mean (chosen − rejected reward)             (TRL "rewards/margins")
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace sllm::rl {

enum class DpoLossType { Sigmoid, Ipo };

// "sigmoid" | "ipo"; anything else raises sllm::Error with a hint.
DpoLossType parse_dpo_loss_type(const std::string& name);
const char* dpo_loss_type_name(DpoLossType type);

// The label value that marks a position outside the response (data::kIgnoreIndex).
constexpr int32_t kIgnoreLabel = -100;

// Per row r: Σ_t log p(labels[r][t] | logits[r][t]) over the positions whose label is not
// kIgnoreLabel, i.e. log π(response | prompt) when the labels mark the response's next-token
// targets. logits (R, T, V) f32 (or bf16 on CUDA), labels (R, T) i32 on the host → (R) f32 on
// the logits' device, differentiable with respect to the logits. Composed of existing ops:
// cross_entropy_per_token gives −log p per position (0 where ignored), and a matmul with a
// (T, 1) column of ones sums each row.
Tensor sequence_logprobs(const Tensor& logits, const Tensor& labels);

// Per row: how many labels are not kIgnoreLabel (the response's length in tokens).
std::vector<int64_t> response_lengths(const Tensor& labels);

struct DpoLossResult {
  Tensor loss;  // (1) f32, differentiable with respect to the four log-probability tensors
  // The metrics above, as means over the pairs (plain numbers, no autograd).
  double chosen_reward = 0, rejected_reward = 0, accuracy = 0, margin = 0;
};

// The loss over P pairs from four (P) f32 tensors on one device: the policy's and the
// reference's log-probabilities of the chosen and of the rejected responses (summed, or
// per-token averages for IPO: see above; this function takes them as given). β > 0.
DpoLossResult dpo_loss(const Tensor& policy_chosen, const Tensor& policy_rejected, const Tensor& ref_chosen,
                       const Tensor& ref_rejected, double beta, DpoLossType type);

}  // namespace sllm::rl
