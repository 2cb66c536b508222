// `sllm pretrain`: a model trained from scratch (or from its run's latest checkpoint) on
// token shards. It is the training loop (train_loop.h, where the run directory's files are
// described) with the pretraining objective (pretrain_objective.h).
#pragma once
#include <cstdint>
#include <string>

#include "train/data_parallel.h"
#include "train/train_loop.h"

namespace sllm::train {

struct PretrainOptions {
  std::string config = "small";  // preset or config.json
  std::string data_dir;          // with train.bin and val.bin (sllm prepare)
  std::string out_dir;           // the run directory
  std::string tokenizer;         // optional; else meta.json's tokenizer in data_dir
  int64_t steps = 1000;          // the run's total (the LR schedule's end)
  int64_t batch = 8, seq = 256, grad_accum = 1;
  double lr = 1e-3, min_lr_ratio = 0.1, weight_decay = 0.1, grad_clip = 1.0;
  int64_t warmup = -1;           // -1: 5% of steps
  uint64_t seed = 1337;
  int64_t eval_every = 100, eval_batches = 8, save_every = 0;  // 0: save only at the end
  int64_t stop_at = 0;           // stop after this step as if interrupted (0: run to steps)
  bool resume = false;
  bool quiet = false;            // no progress bar
  std::string device = "cpu";    // "cpu" or "cuda": where the model, gradients and optimizer state live
  DataParallelOptions data_parallel;  // under mpirun: --deterministic-reduce, --zero (train/data_parallel.h)
  std::string precision = "auto";  // "auto", "fp32", "tf32" or "bf16" (ops::parse_precision)
};

using PretrainResult = TrainResult;

PretrainResult pretrain(const PretrainOptions& options);

}  // namespace sllm::train
