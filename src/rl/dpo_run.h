// `sllm dpo`: Direct Preference Optimization of a trained (usually SFT) model on preference
// pairs. It is the shared training loop (train/train_loop.h: the run directory, metrics.jsonl,
// ckpt-<step>/, latest, bit-exact resume) with the DPO objective (rl/dpo_objective.h), as
// `sllm sft` is with the SFT one, and takes the same loop flags.
//
// --method lora: a LoRA adapter (src/lora) on the frozen model trains alone; the reference is
// the same model with the adapter disabled (no second copy of the weights); checkpoints hold
// the adapter in PEFT's files. --method full: every weight trains; the reference is a copy of
// --model loaded once to compute the reference log-probabilities and then freed; checkpoints
// are model directories. Either way the reference runs once, before the first step (and again
// on --resume, giving the same numbers).
//
// Length of the run: --steps, or --epochs E (steps = ceil(E * train_pairs / (batch *
// grad_accum)), train::sft_steps_for_epochs); neither: 1 epoch, or the run's own total on
// --resume.
#pragma once
#include <cstdint>
#include <string>

#include "data/preference_dataset.h"
#include "train/data_parallel.h"
#include "train/train_loop.h"

namespace sllm::rl {

struct DpoRunOptions {
  std::string model_dir;  // the starting policy and the reference: a model directory or run directory
  std::string data_path;  // preference JSONL (data/preference_dataset.h)
  std::string out_dir;    // the run directory
  std::string method = "lora";  // "lora" | "full"
  double beta = 0.1;
  std::string loss_type = "sigmoid";  // "sigmoid" | "ipo"
  int64_t lora_r = 16;
  double lora_alpha = 32, lora_dropout = 0.0;  // no dropout by default: a dropped-out policy is not the reference at step 0
  std::string lora_targets = "all-linear";
  bool rslora = false;
  std::string chat_template = "chatml";  // "chatml" | "none"
  bool truncate = false;
  double val_fraction = 0.1;
  int64_t val_count = 0;
  int64_t steps = 0;
  double epochs = 0;
  int64_t batch = 8, seq = 256, grad_accum = 1;  // batch: pairs per micro-batch (2 * batch rows)
  double lr = 5e-5, min_lr_ratio = 0.1, weight_decay = 0.0, grad_clip = 1.0;
  int64_t warmup = -1;
  uint64_t seed = 1337;
  int64_t eval_every = 100, save_every = 0;
  int64_t stop_at = 0;
  bool resume = false;
  bool quiet = false;
  std::string device = "cpu";
  train::DataParallelOptions data_parallel;  // under mpirun: --deterministic-reduce, --zero (train/data_parallel.h)
  std::string precision = "auto";
};

struct DpoRunResult : train::TrainResult {
  data::PreferenceSummary summary;
  int64_t train_pairs = 0, val_pairs = 0, total_steps = 0, trainable_params = 0;
  double reference_seconds = 0;  // the one pass of the reference over every pair
};

// Raises sllm::Error with a hint for bad options, a missing model or tokenizer, bad data or a
// damaged run, before anything is written to out_dir.
DpoRunResult dpo(const DpoRunOptions& options);

}  // namespace sllm::rl
