// `sllm ppo`: RLHF's PPO over an SFT model (src/rl/policy_optimization.h, src/rl/README.md).
//   sllm ppo --model runs/demo-sft/full --prompts data/rlhf/prompts.train.jsonl --reward rm:runs/rlhf/rm --out runs/rlhf/ppo
#include "cli/command.h"
#include "cli/rl_flags.h"

namespace sllm::cli {
namespace {

int run(const std::vector<std::string>& argv) {
  rl::RlOptions d;
  d.algorithm = "ppo";
  Args args("ppo", argv, rl_flags(d, true));
  const rl::RlOptions o = read_rl_flags(args, d);
  print_rl_result(o, rl::train_policy(o));
  return 0;
}

CommandRegistrar registrar("ppo", "RLHF with PPO: rollouts, reward model or verifier, KL to the reference, GAE", run);

}  // namespace
}  // namespace sllm::cli
