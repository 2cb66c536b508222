// The training loop every objective shares (DESIGN.md, "one loop for every objective"):
// per step, grad_accum micro-batches from the objective → backward → clip → AdamW at the
// step's scheduled LR; then metrics, periodic evaluation and atomic checkpoints, with
// bit-exact resume. What is trained on, and how a loss comes out of it, is the objective's
// (objective.h); pretraining is one (pretrain_objective.h, driven by trainer.h).
//
// Only trainable parameters (requires_grad) are optimized: frozen ones get no optimizer
// state, take no part in gradient clipping and are never written to optimizer.safetensors.
//
// Data-parallel (train/data_parallel.h): with N ranks, every rank runs this loop on its slice
// of each micro-batch (the objective was built for N ranks); gradients, the logged loss and
// the evaluation are summed over ranks, and rank 0 alone writes the run directory and the
// progress bar. A checkpoint records the number of ranks; --resume needs the same number.
//
// A run directory holds:
//   metrics.jsonl         one JSON object per step: step, loss, lr, tokens_per_s, grad_norm,
//                         peak_mem_bytes and the objective's metrics (+ val_loss and val_<metric>
//                         on evaluation steps; + ranks, rank_peak_mem_bytes, every rank's peak,
//                         and comm_s, rank 0's seconds exchanging gradients, with several ranks)
//   ckpt-<step>/          config.json, model.safetensors, tokenizer.json (when known),
//                         optimizer.safetensors, trainer_state.json (step, total_steps, options,
//                         config, loader: the objective's data state, threads)
//   latest                the name of the newest checkpoint directory
// (With LoopOptions::write_model set, the caller's files replace config.json + model.safetensors:
// LoRA writes adapter_config.json + adapter_model.safetensors.)
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "nn/transformer.h"
#include "tokenizer/tokenizer.h"
#include "train/checkpoint.h"
#include "train/data_parallel.h"
#include "train/objective.h"

namespace sllm::train {

struct LoopOptions {
  std::string command = "sllm train";  // names the command in error messages ("sllm pretrain")
  std::string out_dir;                 // the run directory
  int64_t steps = 1000;                // the run's total (the LR schedule's end)
  int64_t grad_accum = 1;              // micro-batches per optimizer step
  double lr = 1e-3, min_lr_ratio = 0.1, weight_decay = 0.1, grad_clip = 1.0;  // grad_clip 0: off
  int64_t warmup = -1;                 // -1: 5% of steps
  int64_t eval_every = 100;            // 0: evaluate only at steps 1 and `steps`
  int64_t save_every = 0;              // 0: save only at the end
  int64_t stop_at = 0;                 // stop after this step as if interrupted (0: run to steps)
  bool quiet = false;                  // no progress bar
  std::string device = "cpu";          // where the model, gradients and optimizer state live
  std::string precision = "auto";      // ops::parse_precision
  // Under `mpirun -np N` (train/data_parallel.h): how gradients are summed and whether the
  // optimizer state is sharded. The number of ranks is the launcher's (dist::world()).
  DataParallelOptions data_parallel;
  // The NCCL communicator of a multi-rank --device cuda run, when the caller opened it before
  // putting anything on a GPU (open_gpu_transport); unset, train() opens it.
  std::shared_ptr<dist::NcclComm> gpu_transport;
  // Saved in each checkpoint's trainer_state.json: the caller's own options that change the
  // math (batch, seq, seed), stored with the loop's under "options", and where the model's
  // config came from ("config").
  nlohmann::json caller_options = nlohmann::json::object();
  std::string config;
  const tokenizer::Tokenizer* tokenizer = nullptr;  // copied into each checkpoint when set
  // Hooks for a model whose trainable part lives outside it (LoRA, src/lora): when set,
  // `trainable` gives the parameters to optimize instead of the model's requires_grad ones,
  // and `write_model(dir)` writes a checkpoint's model files into dir instead of config.json +
  // model.safetensors (LoRA: only the adapter). Unset, the loop behaves as it always did.
  std::function<std::vector<nn::Parameter>()> trainable;
  std::function<void(const std::string& dir)> write_model;
};

// The loop's settings from a command's options (PretrainOptions, SftRunOptions: the same
// member names), so each command does not copy them field by field.
template <class CommandOptions>
LoopOptions loop_options_from(const CommandOptions& o, std::string command, std::string config) {
  LoopOptions loop;
  loop.command = std::move(command);
  loop.out_dir = o.out_dir;
  loop.steps = o.steps;
  loop.grad_accum = o.grad_accum;
  loop.lr = o.lr;
  loop.min_lr_ratio = o.min_lr_ratio;
  loop.weight_decay = o.weight_decay;
  loop.grad_clip = o.grad_clip;
  loop.warmup = o.warmup;
  loop.eval_every = o.eval_every;
  loop.save_every = o.save_every;
  loop.stop_at = o.stop_at;
  loop.quiet = o.quiet;
  loop.device = o.device;
  loop.precision = o.precision;
  loop.config = std::move(config);
  return loop;
}

struct TrainResult {
  int64_t last_step = 0;
  double last_loss = 0, first_val_loss = -1, last_val_loss = -1;
};

// Raises sllm::Error (with the flag and a hint) for options no run can use.
void check_loop_options(const LoopOptions& options);

// Trains `model` on `objective` from step 1, or, with a resume point, from the step after it:
// the loop's options that change the math (grad_accum, lr, min_lr_ratio, weight_decay,
// grad_clip, warmup) are then the checkpoint's, whatever `options` says, and the optimizer
// and the objective's data position continue where they were. The caller has loaded the
// model from resume->dir (with the same parameters frozen) and built the objective with
// the checkpoint's caller_options. Moves the model to options.device.
TrainResult train(nn::Transformer& model, Objective& objective, const LoopOptions& options, const ResumePoint* resume);

}  // namespace sllm::train
