// KL(π ‖ π_ref) per token, from tokens sampled from π, and the KL penalty's coefficient.
//
// Estimators (Schulman 2020, "Approximating KL Divergence", http://joschu.net/blog/kl-approx.html),
// with log r = log π_ref(x) − log π(x) for x ~ π:
//   k1 = −log r           unbiased, but single samples can be negative (PPO's per-token penalty,
//                         as Ziegler et al. 2019 and TRL's PPO: reward − β·k1)
//   k3 = (r − 1) − log r  unbiased and ≥ 0 for every sample, lower variance (GRPO's loss term,
//                         Shao et al. 2024, eq. 4)
#pragma once
#include <cstdint>

#include <nlohmann/json.hpp>

namespace sllm::rl {

inline double kl_k1(double logp, double logp_ref) { return logp - logp_ref; }
double kl_k3(double logp, double logp_ref);

// The KL coefficient β of PPO's reward: fixed, or adaptive as in Ziegler et al. 2019
// ("Fine-Tuning Language Models from Human Preferences", section 2.2): after each batch,
//   e = clip(KL / target − 1, −0.2, 0.2);  β ← β · (1 + e · n_steps / horizon)
// where KL is the batch's mean KL per sequence and n_steps the batch's sequence count (as in
// TRL's AdaptiveKLController). target <= 0 keeps β fixed.
class KLController {
 public:
  KLController(double init_beta, double target, double horizon);
  double beta() const { return beta_; }
  bool adaptive() const { return target_ > 0; }
  void update(double kl, int64_t n_steps);
  // {"beta", "target", "horizon"}: saved in checkpoints, so a resumed run continues with the
  // coefficient it had.
  nlohmann::json state() const;
  void restore(const nlohmann::json& state);

 private:
  double beta_, target_, horizon_;
};

}  // namespace sllm::rl
