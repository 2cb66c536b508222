// On-policy RL for language models: PPO (`sllm ppo`) and GRPO (`sllm grpo`), one loop with
// two variants (src/rl/README.md walks from the papers to the lines). Per iteration:
//   1. rollout    `batch` prompts (GRPO: each num_generations times) sampled by the policy
//                 through infer::generate_batch (ragged KV cache), ending at EOS or a stop string
//   2. reward     a reward model's score of prompt + response (rm:DIR) or a verifier's (verifier:NAME)
//   3. reference  log π_ref of every response token: the policy's base with the LoRA adapter
//                 disabled (no second copy of the weights), or a frozen copy for full fine-tuning
//   4. value      log π_old and (PPO) V_old of every response token, without gradients
//   5. advantages PPO: per-token reward −β·k1 plus the score on the last token, GAE, whitened;
//                 GRPO: the score normalized within its prompt's group
//   6. update     `epochs` passes over shuffled minibatches: PPO's clipped surrogate + vf_coef ·
//                 clipped value loss; GRPO's clipped surrogate + β · k3 (policy_loss.h)
// metrics.jsonl gets one line per iteration (reward, KL, clip fraction, losses, entropy,
// lengths, throughput, the time of each phase); checkpoints hold the adapter (or model), the
// value head (or critic), the optimizer, the prompt order and the KL controller, so a resumed
// run repeats an uninterrupted one bit for bit (rollout seeds derive from seed and iteration).
#pragma once
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace sllm::rl {

struct RlOptions {
  std::string algorithm = "ppo";       // "ppo" | "grpo"
  std::string model_dir;               // the SFT model (model or run directory)
  std::string prompts_path;            // prompt_set.h
  std::string reward;                  // "rm:DIR" | "verifier:NAME" | "verifier" (each line's own)
  std::string out_dir;
  std::string method = "lora";         // "lora" | "full"
  int64_t lora_r = 16;
  double lora_alpha = 32;
  std::string lora_targets = "all-linear";
  std::string chat_template = "chatml";
  std::string value_model = "policy";  // PPO: "policy" (a head on the policy's trunk) | "rm" (a critic from the reward model)
  int64_t steps = 100;                 // iterations
  int64_t batch = 16;                  // prompts per iteration
  int64_t num_generations = 4;         // GRPO: completions per prompt (G)
  int64_t mini_batch_size = 8;         // rollouts per optimizer step
  int64_t epochs = 4;                  // PPO: num_ppo_epochs; GRPO: num_iterations
  int64_t max_new_tokens = 32;
  double temperature = 1.0, top_p = 1.0;
  int64_t top_k = 0;
  std::string stop;                    // a stop string ending a response (kept in it), or ""
  double lr = 1e-4, weight_decay = 0.0, max_grad_norm = 1.0;
  double gamma = 1.0, lam = 0.95;      // GAE
  double cliprange = 0.2;              // ε of the policy ratio (GRPO: TRL's epsilon)
  double cliprange_value = 0.2, vf_coef = 0.1;
  double kl_coef = 0.05;               // PPO: β of the per-token k1 penalty (initial β when adaptive)
  double target_kl = 0, kl_horizon = 10000;  // PPO: adaptive β when target_kl > 0 (Ziegler et al. 2019)
  double beta = 0.04;                  // GRPO: coefficient of the k3 term
  uint64_t seed = 1337;
  int64_t save_every = 0, stop_at = 0;
  bool resume = false, quiet = false;
  std::string device = "cpu";
};

// The options that change the math, as saved in every checkpoint (a resumed run takes them
// from there, whatever its command line says, as the training loop does).
nlohmann::json math_options(const RlOptions& o);

struct RlResult {
  int64_t last_step = 0;
  double first_reward = 0, last_reward = 0;  // mean score of the first and last iteration's rollouts
};

// sllm::Error with a hint for bad options, files, prompts, rewards (a NaN or infinite reward
// stops the run; the last checkpoint stays the last good one), or a tokenizer mismatch
// between the policy and the reward model.
RlResult train_policy(const RlOptions& options);

}  // namespace sllm::rl
