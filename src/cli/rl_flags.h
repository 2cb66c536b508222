// The flags `sllm ppo` and `sllm grpo` share (src/rl/policy_optimization.h), declared and read
// in one place. Hyper-parameters carry TRL's names where TRL has one (PPOConfig: kl_coef,
// cliprange, cliprange_value, vf_coef, gamma, lam, num_ppo_epochs, mini_batch_size;
// GRPOConfig: num_generations, beta, epsilon), the loop's own (--lr, --steps, --batch,
// --seed, --save-every, --stop-at, --resume) as the other training commands spell them.
#pragma once
#include <omp.h>

#include <string>
#include <vector>

#include "cli/command.h"
#include "core/args.h"
#include "core/error.h"
#include "rl/policy_optimization.h"
#include <cstdio>

namespace sllm::cli {

inline std::vector<FlagSpec> rl_flags(const rl::RlOptions& d, bool ppo) {
  std::vector<FlagSpec> f = {
      {"--model", FlagSpec::Value, "the SFT model: model directory or run directory (required)"},
      {"--prompts", FlagSpec::Value, "JSONL prompts, one {\"prompt\": ..., <verifier fields>} per line (required)"},
      {"--reward", FlagSpec::Value,
       ppo ? "rm:DIR (a reward model or `sllm reward train` run), verifier:NAME, or verifier (each line's own) (required)"
           : "verifier:NAME, verifier (each line's own field), or rm:DIR (required)"},
      {"--out", FlagSpec::Value, "run directory (required)"},
      {"--method", FlagSpec::Value, "lora (adapter over the frozen SFT model; reference = adapter disabled) or full [lora]"},
      {"--lora-r", FlagSpec::Value, str("LoRA rank [", d.lora_r, "]")},
      {"--lora-alpha", FlagSpec::Value, str("LoRA alpha [", d.lora_alpha, "]")},
      {"--lora-targets", FlagSpec::Value, "comma list of module names, or all-linear [all-linear]"},
      {"--template", FlagSpec::Value, "how string prompts are rendered: chatml or none [chatml]"},
      {"--steps", FlagSpec::Value, str("iterations (rollout + update) [", d.steps, "]")},
      {"--batch", FlagSpec::Value, str("prompts per iteration [", d.batch, "]")},
      {"--mini-batch-size", FlagSpec::Value, str("rollouts per optimizer step [", d.mini_batch_size, "]")},
      {"--max-new-tokens", FlagSpec::Value, str("response length at most [", d.max_new_tokens, "]")},
      {"--temperature", FlagSpec::Value, str("sampling temperature of the rollouts [", d.temperature, "]")},
      {"--top-k", FlagSpec::Value, "rollouts sample among the K most likely tokens, 0 = all [0]"},
      {"--top-p", FlagSpec::Value, "nucleus sampling of the rollouts, in (0, 1] [1.0]"},
      {"--stop", FlagSpec::Value, "a stop string: a response ends once its text contains it (kept)"},
      {"--lr", FlagSpec::Value, str("AdamW learning rate, constant [", d.lr, "]")},
      {"--weight-decay", FlagSpec::Value, str("AdamW weight decay [", d.weight_decay, "]")},
      {"--max-grad-norm", FlagSpec::Value, str("gradient clipping, 0 = off [", d.max_grad_norm, "]")},
      {"--cliprange", FlagSpec::Value, str("ε of the clipped probability ratio [", d.cliprange, "]")},
      {"--seed", FlagSpec::Value, str("seed of the prompt order, rollouts and LoRA init [", d.seed, "]")},
      {"--save-every", FlagSpec::Value, "checkpoint every N iterations, 0 = only at the end [0]"},
      {"--stop-at", FlagSpec::Value, "stop after this iteration as if interrupted (0 = run to --steps)"},
      {"--resume", FlagSpec::Switch, "continue the run in --out from its latest checkpoint"},
      {"--quiet", FlagSpec::Switch, "no progress bar"},
      {"--threads", FlagSpec::Value, "CPU threads [all cores]"},
      {"--device", FlagSpec::Value, "cpu or cuda [cpu]"},
  };
  if (ppo) {
    f.insert(f.end(),
             {{"--num-ppo-epochs", FlagSpec::Value, str("passes over each iteration's rollouts [", d.epochs, "]")},
              {"--value-model", FlagSpec::Value, "policy (value head on the policy's trunk) or rm (critic from --reward rm:DIR) [policy]"},
              {"--kl-coef", FlagSpec::Value, str("β of the per-token KL penalty (initial β when adaptive) [", d.kl_coef, "]")},
              {"--target-kl", FlagSpec::Value, "adaptive KL (Ziegler et al. 2019): target KL per sequence, 0 = fixed β [0]"},
              {"--kl-horizon", FlagSpec::Value, str("adaptive KL's horizon [", d.kl_horizon, "]")},
              {"--gamma", FlagSpec::Value, str("GAE discount [", d.gamma, "]")},
              {"--lam", FlagSpec::Value, str("GAE λ [", d.lam, "]")},
              {"--cliprange-value", FlagSpec::Value, str("clip range of the value loss [", d.cliprange_value, "]")},
              {"--vf-coef", FlagSpec::Value, str("value loss coefficient [", d.vf_coef, "]")}});
  } else {
    f.insert(f.end(), {{"--num-generations", FlagSpec::Value, str("completions per prompt, G [", d.num_generations, "]")},
                       {"--num-iterations", FlagSpec::Value, str("passes over each iteration's rollouts [", d.epochs, "]")},
                       {"--beta", FlagSpec::Value, str("coefficient of the k3 KL term in the loss [", d.beta, "]")},
                       {"--epsilon", FlagSpec::Value, "TRL's name for --cliprange"}});
  }
  return f;
}

inline rl::RlOptions read_rl_flags(const Args& args, rl::RlOptions o) {
  o.model_dir = args.required("--model");
  o.prompts_path = args.required("--prompts");
  o.reward = args.required("--reward");
  o.out_dir = args.required("--out");
  o.method = args.get("--method", o.method);
  o.lora_r = args.get_int("--lora-r", o.lora_r);
  o.lora_alpha = args.get_double("--lora-alpha", o.lora_alpha);
  o.lora_targets = args.get("--lora-targets", o.lora_targets);
  o.chat_template = args.get("--template", o.chat_template);
  o.steps = args.get_int("--steps", o.steps);
  o.batch = args.get_int("--batch", o.batch);
  o.mini_batch_size = args.get_int("--mini-batch-size", o.mini_batch_size);
  o.max_new_tokens = args.get_int("--max-new-tokens", o.max_new_tokens);
  o.temperature = args.get_double("--temperature", o.temperature);
  o.top_k = args.get_int("--top-k", o.top_k);
  o.top_p = args.get_double("--top-p", o.top_p);
  o.stop = args.get("--stop", o.stop);
  o.lr = args.get_double("--lr", o.lr);
  o.weight_decay = args.get_double("--weight-decay", o.weight_decay);
  o.max_grad_norm = args.get_double("--max-grad-norm", o.max_grad_norm);
  o.cliprange = args.get_double("--cliprange", o.cliprange);
  const int64_t seed = args.get_int("--seed", static_cast<int64_t>(o.seed));
  SLLM_CHECK(seed >= 0, str("--seed must be >= 0, got ", seed), args.usage());
  o.seed = static_cast<uint64_t>(seed);
  o.save_every = args.get_int("--save-every", o.save_every);
  o.stop_at = args.get_int("--stop-at", o.stop_at);
  o.resume = args.has("--resume");
  o.quiet = args.has("--quiet");
  o.device = args.get("--device", o.device);
  const int64_t threads = args.get_int("--threads", 0);
  SLLM_CHECK(threads >= 0, str("--threads must be >= 0, got ", threads), args.usage());
  if (threads > 0) omp_set_num_threads(static_cast<int>(threads));
  if (o.algorithm == "ppo") {
    o.epochs = args.get_int("--num-ppo-epochs", o.epochs);
    o.value_model = args.get("--value-model", o.value_model);
    o.kl_coef = args.get_double("--kl-coef", o.kl_coef);
    o.target_kl = args.get_double("--target-kl", o.target_kl);
    o.kl_horizon = args.get_double("--kl-horizon", o.kl_horizon);
    o.gamma = args.get_double("--gamma", o.gamma);
    o.lam = args.get_double("--lam", o.lam);
    o.cliprange_value = args.get_double("--cliprange-value", o.cliprange_value);
    o.vf_coef = args.get_double("--vf-coef", o.vf_coef);
  } else {
    o.num_generations = args.get_int("--num-generations", o.num_generations);
    o.epochs = args.get_int("--num-iterations", o.epochs);
    o.beta = args.get_double("--beta", o.beta);
    o.cliprange = args.get_double("--epsilon", o.cliprange);
  }
  return o;
}

// The run's summary line, printed when it ends.
inline void print_rl_result(const rl::RlOptions& o, const rl::RlResult& r) {
  std::printf("%s: %lld iterations, mean reward %.4f -> %.4f; metrics in %s/metrics.jsonl\n", o.algorithm.c_str(),
              static_cast<long long>(r.last_step), r.first_reward, r.last_reward, o.out_dir.c_str());
}

}  // namespace sllm::cli
