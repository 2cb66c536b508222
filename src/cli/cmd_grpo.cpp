// `sllm grpo`: Group Relative Policy Optimization over an SFT model (Shao et al. 2024;
// src/rl/policy_optimization.h, src/rl/README.md): G completions per prompt, advantages
// normalized within each group, no value model, k3 KL to the reference in the loss.
//   sllm grpo --model runs/demo-sft/full --prompts data/rlhf/prompts.train.jsonl --reward verifier --out runs/rlhf/grpo
#include "cli/command.h"
#include "cli/rl_flags.h"

namespace sllm::cli {
namespace {

int run(const std::vector<std::string>& argv) {
  rl::RlOptions d;
  d.algorithm = "grpo";
  d.batch = 4;
  d.num_generations = 4;
  d.epochs = 1;
  Args args("grpo", argv, rl_flags(d, false));
  const rl::RlOptions o = read_rl_flags(args, d);
  print_rl_result(o, rl::train_policy(o));
  return 0;
}

CommandRegistrar registrar("grpo", "RL with GRPO: groups of completions per prompt, verifier rewards, no value model", run);

}  // namespace
}  // namespace sllm::cli
