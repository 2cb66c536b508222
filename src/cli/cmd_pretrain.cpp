// `sllm pretrain`: train a model from scratch on token shards (see src/train/trainer.h).
#include <omp.h>

#include <cstdio>

#include "cli/command.h"
#include "core/args.h"
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
             {"--resume", FlagSpec::Switch, "continue the run in --out from its latest checkpoint"},
             {"--quiet", FlagSpec::Switch, "no progress bar"}});
  train::PretrainOptions o;
  o.config = args.get("--config", o.config);
  o.data_dir = args.required("--data");
  o.out_dir = args.required("--out");
  o.tokenizer = args.get("--tokenizer", "");
  o.steps = args.get_int("--steps", o.steps);
  o.batch = args.get_int("--batch", o.batch);
  o.seq = args.get_int("--seq", o.seq);
  o.grad_accum = args.get_int("--grad-accum", o.grad_accum);
  o.lr = args.get_double("--lr", o.lr);
  o.warmup = args.get_int("--warmup", o.warmup);
  o.weight_decay = args.get_double("--weight-decay", o.weight_decay);
  o.grad_clip = args.get_double("--grad-clip", o.grad_clip);
  o.seed = static_cast<uint64_t>(args.get_int("--seed", static_cast<int64_t>(o.seed)));
  o.eval_every = args.get_int("--eval-every", o.eval_every);
  o.eval_batches = args.get_int("--eval-batches", o.eval_batches);
  o.save_every = args.get_int("--save-every", o.save_every);
  o.stop_at = args.get_int("--stop-at", o.stop_at);
  o.resume = args.has("--resume");
  o.quiet = args.has("--quiet");
  o.device = args.get("--device", o.device);
  o.precision = args.get("--precision", o.precision);
  const int64_t threads = args.get_int("--threads", 0);
  if (threads > 0) omp_set_num_threads(static_cast<int>(threads));
  const train::PretrainResult r = train::pretrain(o);
  std::fprintf(stderr, "done: step %ld, loss %.4f", static_cast<long>(r.last_step), r.last_loss);
  if (r.last_val_loss >= 0) std::fprintf(stderr, ", val_loss %.4f (first %.4f)", r.last_val_loss, r.first_val_loss);
  std::fprintf(stderr, "\n");
  return 0;
}

CommandRegistrar reg("pretrain", "train a model from scratch on token shards", run_pretrain);

}  // namespace
}  // namespace sllm::cli
