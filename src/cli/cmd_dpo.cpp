// `sllm dpo`: Direct Preference Optimization on preference pairs (src/rl/dpo_run.h).
#include <cstdio>

#include "cli/command.h"
#include "cli/finetune_flags.h"
#include "cli/loop_flags.h"
#include "core/args.h"
#include "core/error.h"
#include "dist/comm.h"
#include "infer/model_path.h"
#include "rl/dpo_run.h"

namespace sllm::cli {
namespace {

int run_dpo(const std::vector<std::string>& argv) {
  Args args("dpo", argv,
            {{"--model", FlagSpec::Value, "the policy's start and the reference: model directory or run directory, usually an SFT model (required)"},
             {"--data", FlagSpec::Value, "JSONL preference pairs: {\"prompt\", \"chosen\", \"rejected\"} (text or chat messages) (required)"},
             {"--out", FlagSpec::Value, "run directory (required)"},
             {"--method", FlagSpec::Value, "lora (an adapter trains; the reference is the model without it) or full (every weight trains; the reference is a frozen copy) [lora]"},
             {"--beta", FlagSpec::Value, "beta: how far the policy may move from the reference (smaller = further) [0.1]"},
             {"--loss-type", FlagSpec::Value, "sigmoid (DPO, Rafailov et al. 2023) or ipo (Azar et al. 2023, on per-token average log-probs) [sigmoid]"},
             {"--lora-r", FlagSpec::Value, "LoRA rank [16]"},
             {"--lora-alpha", FlagSpec::Value, "LoRA alpha: the update is scaled by alpha / r [32]"},
             {"--lora-dropout", FlagSpec::Value, "dropout on the adapter's input while training [0]"},
             {"--lora-targets", FlagSpec::Value, "comma list of module names (q_proj,v_proj) or all-linear [all-linear]"},
             {"--rslora", FlagSpec::Switch, "scale by alpha / sqrt(r) (rank-stabilized LoRA)"},
             {"--template", FlagSpec::Value, "chatml or none (plain prompt + response text) [chatml]"},
             {"--truncate", FlagSpec::Switch, "cut responses of pairs longer than --seq (counted) instead of failing"},
             {"--val-fraction", FlagSpec::Value, "fraction of pairs held out for validation [0.1, at least 1]"},
             {"--val-count", FlagSpec::Value, "number of pairs held out for validation (instead of --val-fraction)"},
             {"--epochs", FlagSpec::Value, "passes over the training pairs: steps = ceil(E * train / (batch * grad-accum)) [1]"},
             {"--steps", FlagSpec::Value, "total optimizer steps (instead of --epochs)"},
             {"--batch", FlagSpec::Value, "pairs per micro-batch (each is a chosen and a rejected row) [8]"},
             {"--seq", FlagSpec::Value, "tokens per row: prompt + response must fit [256]"},
             {"--grad-accum", FlagSpec::Value, "micro-batches per step [1]"},
             {"--lr", FlagSpec::Value, "peak learning rate [5e-5]"},
             {"--warmup", FlagSpec::Value, "warmup steps [5% of the steps]"},
             {"--weight-decay", FlagSpec::Value, "AdamW decoupled weight decay [0]"},
             {"--grad-clip", FlagSpec::Value, "global gradient-norm clip, 0 = off [1.0]"},
             {"--seed", FlagSpec::Value, "seed of the validation split, data order and LoRA init [1337]"},
             {"--eval-every", FlagSpec::Value, "evaluate on the validation pairs every K steps, 0 = only at the end [100]"},
             {"--save-every", FlagSpec::Value, "checkpoint every K steps, 0 = only at the end [0]"},
             {"--stop-at", FlagSpec::Value, "stop after step K as if interrupted [0 = off]"},
             {"--threads", FlagSpec::Value, "CPU threads [all cores]"},
             {"--device", FlagSpec::Value, "cpu or cuda: where the model trains [cpu]"},
             {"--precision", FlagSpec::Value, "auto, fp32, tf32 or bf16 (tf32, bf16: CUDA only) [auto]"},
             {"--deterministic-reduce", FlagSpec::Switch, "under mpirun: sum gradients in rank order (bit-identical to one process accumulating the ranks' slices)"},
             {"--zero", FlagSpec::Value, "under mpirun: 1 shards the optimizer state over the ranks (ZeRO-1) [0]"},
             {"--resume", FlagSpec::Switch, "continue the run in --out from its latest checkpoint"},
             {"--quiet", FlagSpec::Switch, "no progress bar"}});
  rl::DpoRunOptions o;
  o.method = args.get("--method", o.method);
  SLLM_CHECK(o.method == "full" || o.method == "lora", str("sllm dpo: unknown --method '", o.method, "'"),
             "pass --method lora or full");
  read_lora_flags(args, o, "sllm dpo", "lora");
  o.beta = args.get_double("--beta", o.beta);
  o.loss_type = args.get("--loss-type", o.loss_type);
  read_data_flags(args, o, "sllm dpo", "pairs");
  o.model_dir = infer::resolve_model_dir(o.model_dir);
  read_loop_flags(args, o);
  read_data_parallel_flags(args, o);
  const rl::DpoRunResult r = rl::dpo(o);
  if (!dist::world().is_root()) return 0;  // rank 0 reports for the run
  std::fprintf(stderr, "done: step %ld of %ld, loss %.4f", static_cast<long>(r.last_step),
               static_cast<long>(r.total_steps), r.last_loss);
  if (r.last_val_loss >= 0) std::fprintf(stderr, ", val_loss %.4f (first %.4f)", r.last_val_loss, r.first_val_loss);
  std::fprintf(stderr, "\n");
  return 0;
}

CommandRegistrar reg("dpo", "align a model to preference pairs with DPO (or IPO), no reward model", run_dpo);

}  // namespace
}  // namespace sllm::cli
