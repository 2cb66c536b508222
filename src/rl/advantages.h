// Advantages for the policy-gradient methods (src/rl/README.md walks the equations):
//   PPO:  generalized advantage estimation over a response's tokens, then whitening over the
//         batch's response tokens.
//   GRPO: a group's rewards, normalized within the group (no value model).
// Legend: n a response's token count; G completions per prompt.
#pragma once
#include <cstdint>
#include <vector>

namespace sllm::rl {

// GAE (Schulman et al. 2016, "High-Dimensional Continuous Control Using Generalized Advantage
// Estimation", eq. 16), for one response of n tokens, backwards from the last one:
//   δ_t = r_t + γ V_{t+1} − V_t   (V_n = 0: the episode ends with the response)
//   A_t = δ_t + γ λ A_{t+1}       (A_n = 0)
//   R_t = A_t + V_t               (the value target, "returns")
// Sums in double. rewards, values, advantages, returns: n entries each.
void gae(const float* rewards, const float* values, int64_t n, double gamma, double lam, float* advantages,
         float* returns);

// Whitening of a batch's advantages (as TRL's masked_whiten): (x − mean) / sqrt(var + 1e-8)
// with the unbiased variance (Bessel's correction) over every entry. One entry: x − mean = 0.
void whiten(std::vector<float>& x);

// GRPO's advantages (Shao et al. 2024, "DeepSeekMath", section 4.1.2, outcome supervision):
// rewards hold G consecutive completions per prompt; each becomes (r − mean_g) / (std_g + eps)
// with its group's mean and unbiased standard deviation (torch.std, as TRL's GRPOTrainer).
// A group whose rewards are all equal gets 0 advantages: it carries no preference.
std::vector<float> group_advantages(const std::vector<float>& rewards, int64_t group_size, double eps = 1e-4);

}  // namespace sllm::rl
