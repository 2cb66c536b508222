// `sllm pretrain`: train a model from scratch on token shards (see src/train/trainer.h).
#include <cstdio>

#include "cli/command.h"
#include "cli/loop_flags.h"
#include "core/args.h"
#include "dist/comm.h"
#include "train/trainer.h"

namespace sllm::cli {
namespace {

int run_pretrain(const std::vector<std::string>& argv) {
  Args args("pretrain", argv,
            {{"--config", FlagSpec::Value, "preset (tiny, small, small-llama, gpt2-124m, smollm2-135m) or config.json [small]"},
             {"--data", FlagSpec::Value, "directory with train.bin/val.bin from `sllm prepare` (required)"},
             {"--out", FlagSpec::Value, "run directory (required)"},
             {"--tokenizer", FlagSpec::Value, "tokenizer copied into checkpoints [the data's meta.json tokenizer]"},
             {"--steps", FlagSpec::Value, "total optimizer steps of the run [1000]"},
             {"--batch", FlagSpec::Value, "sequences per micro-batch [8]"},
             {"--seq", FlagSpec::Value, "tokens per sequence [256]"},
             {"--grad-accum", FlagSpec::Value, "micro-batches per step [1]"},
             {"--lr", FlagSpec::Value, "peak learning rate [1e-3]"},
             {"--warmup", FlagSpec::Value, "warmup steps [5% of --steps]"},
             {"--weight-decay", FlagSpec::Value, "AdamW decoupled weight decay [0.1]"},
             {"--grad-clip", FlagSpec::Value, "global gradient-norm clip, 0 = off [1.0]"},
             {"--seed", FlagSpec::Value, "seed of init and data order [1337]"},
             {"--eval-every", FlagSpec::Value, "evaluate val loss every K steps, 0 = only at the end [100]"},
             {"--eval-batches", FlagSpec::Value, "val batches per evaluation [8]"},
             {"--save-every", FlagSpec::Value, "checkpoint every K steps, 0 = only at the end [0]"},
             {"--stop-at", FlagSpec::Value, "stop after step K as if interrupted [0 = off]"},
             {"--threads", FlagSpec::Value, "CPU threads [all cores]"},
             {"--device", FlagSpec::Value, "cpu or cuda: where the model trains [cpu]"},
             {"--precision", FlagSpec::Value, "auto, fp32, tf32 or bf16 (tf32, bf16: CUDA only) [auto: bf16 on cuda, fp32 on cpu]"},
             {"--deterministic-reduce", FlagSpec::Switch, "under mpirun: sum gradients in rank order (bit-identical to one process accumulating the ranks' slices)"},
             {"--zero", FlagSpec::Value, "under mpirun: 1 shards the optimizer state over the ranks (ZeRO-1) [0]"},
             {"--resume", FlagSpec::Switch, "continue the run in --out from its latest checkpoint"},
             {"--quiet", FlagSpec::Switch, "no progress bar"}});
  train::PretrainOptions o;
  o.config = args.get("--config", o.config);
  o.data_dir = args.required("--data");
  o.out_dir = args.required("--out");
  o.tokenizer = args.get("--tokenizer", "");
  o.steps = args.get_int("--steps", o.steps);
  read_loop_flags(args, o);
  read_data_parallel_flags(args, o);
  o.eval_batches = args.get_int("--eval-batches", o.eval_batches);
  const train::PretrainResult r = train::pretrain(o);
  if (!dist::world().is_root()) return 0;  // rank 0 reports for the run
  std::fprintf(stderr, "done: step %ld, loss %.4f", static_cast<long>(r.last_step), r.last_loss);
  if (r.last_val_loss >= 0) std::fprintf(stderr, ", val_loss %.4f (first %.4f)", r.last_val_loss, r.first_val_loss);
  std::fprintf(stderr, "\n");
  return 0;
}

CommandRegistrar reg("pretrain", "train a model from scratch on token shards", run_pretrain);

}  // namespace
}  // namespace sllm::cli
