// `sllm reward train`: a reward model trained on preference pairs. It is the shared training
// loop (train/train_loop.h: the run directory, metrics.jsonl, ckpt-<step>/, latest, bit-exact
// resume) with the Bradley–Terry objective (reward_objective.h) on a RewardModel
// (reward_model.h) started from --model: an LM directory (its trunk, a new score head) or a
// reward model (trained further).
//
// Every checkpoint is a reward-model directory (config.json, model.safetensors with
// score.weight, tokenizer.json), whatever the method, so RewardModel::load(RUN) and
// `sllm reward score --model RUN` read the latest one alike.
//   --method full: every trunk weight and the score head train.
//   --method lora: LoRA (src/lora) on the frozen trunk plus the score head, trainable as
//     PEFT's modules_to_save=["score"] for task_type SEQ_CLS. The checkpoint's model files
//     hold the merged weights W + s·B·A (computed aside; the live weights stay unmerged),
//     and ckpt-<step>/adapter/ the PEFT adapter itself (adapter_config.json with task_type
//     SEQ_CLS and modules_to_save ["score"]; adapter_model.safetensors with the A/B
//     matrices and "base_model.model.score.weight", PEFT's name for a saved module), which
//     --resume reloads on the base from --model.
// Length: --steps, or --epochs E with steps = ceil(E * train_pairs / (batch * grad_accum)),
// 1 epoch when neither is given (sllm sft's rule, train/sft_run.h).
#pragma once
#include <cstdint>
#include <string>

#include "data/preference_dataset.h"
#include "train/data_parallel.h"
#include "train/train_loop.h"

namespace sllm::rl {

struct RewardRunOptions {
  std::string model_dir;  // LM or reward-model directory (or run directory)
  std::string method = "full";  // "full" | "lora"
  int64_t lora_r = 16;
  double lora_alpha = 32, lora_dropout = 0.05;
  std::string lora_targets = "all-linear";
  bool rslora = false;
  std::string data_path, out_dir;
  std::string chat_template = "chatml";  // "chatml" | "none"
  bool truncate = false;
  double val_fraction = 0.1;  // held-out pairs; val_count wins when > 0
  int64_t val_count = 0;
  int64_t steps = 0;
  double epochs = 0;
  int64_t batch = 8, seq = 256, grad_accum = 1;  // batch = pairs per micro-batch (2 x batch rows)
  double lr = 1e-4, min_lr_ratio = 0.1, weight_decay = 0.0, grad_clip = 1.0;
  int64_t warmup = -1;
  uint64_t seed = 1337;  // validation split, data order, score-head init, LoRA init and dropout
  int64_t eval_every = 100, save_every = 0, stop_at = 0;
  bool resume = false, quiet = false;
  std::string device = "cpu", precision = "auto";
  train::DataParallelOptions data_parallel;  // under mpirun: --deterministic-reduce, --zero (train/data_parallel.h)
};

struct RewardRunResult : train::TrainResult {
  data::PreferenceSummary summary;
  int64_t train_pairs = 0, val_pairs = 0, total_steps = 0, trainable_params = 0;
  double last_val_accuracy = -1;  // from the run's last evaluation
};

// Raises sllm::Error with a hint for bad options, a missing model or tokenizer, bad data
// (file:line errors) or a damaged run, before anything is written to out_dir.
RewardRunResult reward_train(const RewardRunOptions& options);

}  // namespace sllm::rl
