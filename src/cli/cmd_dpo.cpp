// `sllm dpo`: Direct Preference Optimization on preference pairs (src/rl/dpo_run.h).
#include <cstdio>

#include "cli/command.h"
#include "cli/loop_flags.h"
#include "core/args.h"
#include "core/error.h"
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
             {"--resume", FlagSpec::Switch, "continue the run in --out from its latest checkpoint"},
             {"--quiet", FlagSpec::Switch, "no progress bar"}});
  rl::DpoRunOptions o;
  o.method = args.get("--method", o.method);
  SLLM_CHECK(o.method == "full" || o.method == "lora", str("sllm dpo: unknown --method '", o.method, "'"),
             "pass --method lora or full");
  for (const char* flag : {"--lora-r", "--lora-alpha", "--lora-dropout", "--lora-targets", "--rslora"})
    SLLM_CHECK(o.method != "full" || !args.has(flag), str("sllm dpo: ", flag, " needs --method lora"),
               "drop the LoRA flags, or use --method lora");
  SLLM_CHECK(!(args.has("--epochs") && args.has("--steps")), "sllm dpo: --epochs and --steps both given",
             "pass one of them: --steps N (optimizer steps) or --epochs E (passes over the training pairs)");
  SLLM_CHECK(!(args.has("--val-fraction") && args.has("--val-count")), "sllm dpo: --val-fraction and --val-count both given",
             "pass one of them");
  o.beta = args.get_double("--beta", o.beta);
  o.loss_type = args.get("--loss-type", o.loss_type);
  o.lora_r = args.get_int("--lora-r", o.lora_r);
  o.lora_alpha = args.get_double("--lora-alpha", o.lora_alpha);
  o.lora_dropout = args.get_double("--lora-dropout", o.lora_dropout);
  o.lora_targets = args.get("--lora-targets", o.lora_targets);
  o.rslora = args.has("--rslora");
  o.model_dir = infer::resolve_model_dir(args.required("--model"));
  o.data_path = args.required("--data");
  o.out_dir = args.required("--out");
  o.chat_template = args.get("--template", o.chat_template);
  o.truncate = args.has("--truncate");
  o.val_fraction = args.get_double("--val-fraction", o.val_fraction);
  o.val_count = args.get_int("--val-count", o.val_count);
  o.epochs = args.get_double("--epochs", 0);
  o.steps = args.get_int("--steps", 0);
  SLLM_CHECK(!args.has("--epochs") || o.epochs > 0, str("sllm dpo: --epochs must be > 0, got ", o.epochs),
             "pass a positive number of epochs");
  SLLM_CHECK(!args.has("--steps") || o.steps > 0, str("sllm dpo: --steps must be > 0, got ", o.steps),
             "pass a positive integer");
  read_loop_flags(args, o);
  const rl::DpoRunResult r = rl::dpo(o);
  std::fprintf(stderr, "done: step %ld of %ld, loss %.4f", static_cast<long>(r.last_step),
               static_cast<long>(r.total_steps), r.last_loss);
  if (r.last_val_loss >= 0) std::fprintf(stderr, ", val_loss %.4f (first %.4f)", r.last_val_loss, r.first_val_loss);
  std::fprintf(stderr, "\n");
  return 0;
}

CommandRegistrar reg("dpo", "align a model to preference pairs with DPO (or IPO), no reward model", run_dpo);

}  // namespace
}  // namespace sllm::cli
