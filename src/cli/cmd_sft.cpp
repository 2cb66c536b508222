// `sllm sft`: supervised fine-tuning of a trained model on a JSONL file (src/train/sft_run.h).
#include <cstdio>

#include "cli/command.h"
#include "cli/finetune_flags.h"
#include "cli/loop_flags.h"
#include "core/args.h"
#include "dist/comm.h"
#include "core/error.h"
#include "infer/model_path.h"
#include "train/sft_run.h"

namespace sllm::cli {
namespace {

int run_sft(const std::vector<std::string>& argv) {
  Args args("sft", argv,
            {{"--model", FlagSpec::Value, "model directory (config.json, model.safetensors, tokenizer.json), .gguf file or run directory (required)"},
             {"--data", FlagSpec::Value, "JSONL file: {\"messages\": [...]} or {\"prompt\", \"completion\"} lines (required)"},
             {"--out", FlagSpec::Value, "run directory (required)"},
             {"--method", FlagSpec::Value, "full (every weight trains), lora (only an adapter trains; checkpoints hold it alone) or qlora (lora over a 4-bit NF4 base) [full]"},
             {"--quant-type", FlagSpec::Value, "qlora: the base's 4-bit type, nf4 or fp4 [nf4]"},
             {"--quant-blocksize", FlagSpec::Value, "qlora: weights per absmax, a power of two in [32, 4096] [64]"},
             {"--no-double-quant", FlagSpec::Switch, "qlora: keep the absmax values in fp32 (no 8-bit double quantization)"},
             {"--lora-r", FlagSpec::Value, "LoRA rank [16]"},
             {"--lora-alpha", FlagSpec::Value, "LoRA alpha: the update is scaled by alpha / r [32]"},
             {"--lora-dropout", FlagSpec::Value, "dropout on the adapter's input while training [0.05]"},
             {"--lora-targets", FlagSpec::Value, "comma list of module names (q_proj,v_proj) or all-linear [all-linear]"},
             {"--rslora", FlagSpec::Switch, "scale by alpha / sqrt(r) (rank-stabilized LoRA)"},
             {"--grad-checkpoint", FlagSpec::Switch, "recompute each block in backward instead of keeping its activations (same results, less memory, ~1/3 more compute)"},
             {"--template", FlagSpec::Value, "chatml or none (prompt/completion only) [chatml]"},
             {"--truncate", FlagSpec::Switch, "cut examples longer than --seq (counted) instead of failing"},
             {"--val-fraction", FlagSpec::Value, "fraction of examples held out for validation [0.1, at least 1]"},
             {"--val-count", FlagSpec::Value, "number of examples held out for validation (instead of --val-fraction)"},
             {"--epochs", FlagSpec::Value, "passes over the training examples: steps = ceil(E * train / (batch * grad-accum)) [1]"},
             {"--steps", FlagSpec::Value, "total optimizer steps (instead of --epochs)"},
             {"--batch", FlagSpec::Value, "examples per micro-batch [8]"},
             {"--seq", FlagSpec::Value, "tokens per sequence; longer examples fail or are cut (--truncate) [256]"},
             {"--grad-accum", FlagSpec::Value, "micro-batches per step [1]"},
             {"--lr", FlagSpec::Value, "peak learning rate [1e-4]"},
             {"--warmup", FlagSpec::Value, "warmup steps [5% of the steps]"},
             {"--weight-decay", FlagSpec::Value, "AdamW decoupled weight decay [0]"},
             {"--grad-clip", FlagSpec::Value, "global gradient-norm clip, 0 = off [1.0]"},
             {"--seed", FlagSpec::Value, "seed of the validation split and data order [1337]"},
             {"--eval-every", FlagSpec::Value, "evaluate val loss every K steps, 0 = only at the end [100]"},
             {"--save-every", FlagSpec::Value, "checkpoint every K steps, 0 = only at the end [0]"},
             {"--stop-at", FlagSpec::Value, "stop after step K as if interrupted [0 = off]"},
             {"--threads", FlagSpec::Value, "CPU threads [all cores]"},
             {"--device", FlagSpec::Value, "cpu or cuda: where the model trains [cpu]"},
             {"--precision", FlagSpec::Value, "auto, fp32, tf32 or bf16 (tf32, bf16: CUDA only) [auto]"},
             {"--deterministic-reduce", FlagSpec::Switch, "under mpirun: sum gradients in rank order (bit-identical to one process accumulating the ranks' slices)"},
             {"--zero", FlagSpec::Value, "under mpirun: 1 shards the optimizer state over the ranks (ZeRO-1) [0]"},
             {"--resume", FlagSpec::Switch, "continue the run in --out from its latest checkpoint"},
             {"--quiet", FlagSpec::Switch, "no progress bar"}});
  const std::string method = args.get("--method", "full");
  SLLM_CHECK(method == "full" || method == "lora" || method == "qlora", str("sllm sft: unknown --method '", method, "'"),
             "pass --method full, lora or qlora");
  for (const char* flag : {"--quant-type", "--quant-blocksize", "--no-double-quant"})
    SLLM_CHECK(method == "qlora" || !args.has(flag), str("sllm sft: ", flag, " needs --method qlora"),
               "add --method qlora, or drop the quantization flags");
  train::SftRunOptions o;
  o.method = method;
  read_lora_flags(args, o, "sllm sft", "lora or qlora");
  o.quant_type = args.get("--quant-type", o.quant_type);
  o.quant_blocksize = args.get_int("--quant-blocksize", o.quant_blocksize);
  o.double_quant = !args.has("--no-double-quant");
  o.grad_checkpoint = args.has("--grad-checkpoint");
  read_data_flags(args, o, "sllm sft", "examples");
  o.model_dir = infer::resolve_model_dir(o.model_dir);
  read_loop_flags(args, o);
  read_data_parallel_flags(args, o);
  const train::SftRunResult r = train::sft(o);
  if (!dist::world().is_root()) return 0;  // rank 0 reports for the run
  std::fprintf(stderr, "done: step %ld of %ld, loss %.4f", static_cast<long>(r.last_step), static_cast<long>(r.total_steps),
               r.last_loss);
  if (r.last_val_loss >= 0) std::fprintf(stderr, ", val_loss %.4f (first %.4f)", r.last_val_loss, r.first_val_loss);
  std::fprintf(stderr, "\n");
  return 0;
}

CommandRegistrar reg("sft", "fine-tune a trained model on chat or prompt/completion JSONL", run_sft);

}  // namespace
}  // namespace sllm::cli
