// The losses of the policy-gradient updates, as autograd ops on per-token tensors: the
// gradient is written out by hand (d loss / d input per token) and checked against finite
// differences in tests/rl/test_policy_loss.cpp. Every per-token vector is a (B, T) batch
// flattened row-major; mask is 1 on the response tokens that count and 0 elsewhere, and
// every mean is over the masked tokens of the whole minibatch (N = Σ mask).
#pragma once
#include <vector>

#include "tensor/tensor.h"

namespace sllm::rl {

struct PolicyLoss {
  Tensor loss;             // scalar, differentiable w.r.t. logp
  double clipfrac = 0;     // share of tokens whose clipped term won (their gradient is 0)
  double approx_kl = 0;    // ½ mean (logp − old_logp)², TRL's approxkl
  double ratio_mean = 0;   // mean ρ
  double kl = 0;           // mean k3(logp, ref_logp) when ref_logp is given (GRPO), else 0
};

// PPO's clipped surrogate (Schulman et al. 2017, "Proximal Policy Optimization Algorithms",
// eq. 7), as a loss to minimize, with ρ = exp(logp − old_logp):
//   L = mean_masked[ max(−A ρ, −A clip(ρ, 1 − ε, 1 + ε)) ] (+ β · mean_masked k3(logp, ref) with ref_logp)
// The optional KL term is GRPO's (Shao et al. 2024, eq. 3: the k3 estimator inside the loss,
// kl.h). logp: (B, T) f32 with autograd (the policy's log-probabilities of the taken tokens).
PolicyLoss clipped_policy_loss(const Tensor& logp, const std::vector<float>& old_logp,
                               const std::vector<float>& advantages, const std::vector<float>& mask, double clip_eps,
                               const std::vector<float>* ref_logp = nullptr, double kl_coef = 0.0);

struct ValueLoss {
  Tensor loss;          // scalar, differentiable w.r.t. values
  double clipfrac = 0;  // share of tokens whose clipped error was the larger one
};

// PPO's clipped value loss (as in OpenAI's baselines ppo2 and TRL):
//   L = ½ mean_masked[ max((V − R)², (clip(V, V_old − ε, V_old + ε) − R)²) ]
ValueLoss clipped_value_loss(const Tensor& values, const std::vector<float>& old_values, const std::vector<float>& returns,
                             const std::vector<float>& mask, double clip_eps);

}  // namespace sllm::rl
