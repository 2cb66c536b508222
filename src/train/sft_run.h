// `sllm sft`: supervised fine-tuning of a trained model on a JSONL chat/completion file. It is
// the training loop (train_loop.h, where the run directory's files are described) with the
// SFT objective (sft_objective.h), as pretrain (trainer.h) is with the pretraining one; the
// run directory works the same way (metrics.jsonl, ckpt-<step>/, latest, bit-exact resume).
//
// Length of the run: --steps, or --epochs E converted with
//   steps = ceil(E * train_examples / (batch * grad_accum))
// (one epoch = every training example once; the loader's batches may straddle epochs). On
// --resume without either, the run keeps its total; without either on a new run, 1 epoch.
//
// --method lora (and qlora, over a 4-bit base: src/quant): a LoraModel (src/lora) on the loaded model; only its A and B train (the loop's
// `trainable` hook), SftObjective's mode_hook sets its training mode and dropout step per
// micro-batch, and each checkpoint holds the adapter in PEFT's files (the loop's
// `write_model` hook) instead of config.json + model.safetensors. --resume loads the base
// from --model again and the adapter from the checkpoint.
#pragma once
#include <cstdint>
#include <string>

#include "data/sft_dataset.h"
#include "data/sft_loader.h"
#include "train/data_parallel.h"
#include "train/train_loop.h"

namespace sllm::train {

struct SftRunOptions {
  std::string model_dir;          // a model directory: config.json, model.safetensors, tokenizer.json
  // "full": every weight trains; checkpoints are model directories. "lora": a LoRA adapter
  // (src/lora) on the frozen base trains alone; checkpoints hold only the adapter (PEFT's
  // adapter_config.json + adapter_model.safetensors) beside optimizer and trainer state, and
  // --resume rebuilds base (model_dir) + adapter. Dropout masks follow (seed, micro-batch).
  // "qlora" (Dettmers et al. 2023): "lora" over a 4-bit base: every trunk Linear of the model
  // is quantized on load (or read already quantized from a bitsandbytes-style directory),
  // the adapter trains in fp32 (CPU) or bf16 mixed precision (CUDA); its files are the
  // same PEFT adapter, usable on the unquantized base too.
  std::string method = "full";
  std::string quant_type = "nf4";  // qlora: nf4 or fp4
  int64_t quant_blocksize = 64;    // qlora: elements per absmax
  bool double_quant = true;        // qlora: 8-bit absmax (QLoRA's double quantization)
  bool grad_checkpoint = false;    // recompute each block in backward (same results, less memory)
  int64_t lora_r = 16;
  double lora_alpha = 32, lora_dropout = 0.05;
  std::string lora_targets = "all-linear";  // comma list of HF module names, or all-linear
  bool rslora = false;
  std::string data_path;          // the JSONL file (sft_dataset.h)
  std::string out_dir;            // the run directory
  std::string chat_template = "chatml";  // "chatml" | "none"
  bool truncate = false;          // overlong examples: error (false) or cut and counted (true)
  double val_fraction = 0.1;      // validation split (sft_loader.h SftValidation); val_count wins when > 0
  int64_t val_count = 0;
  int64_t steps = 0;              // 0: from epochs (see above)
  double epochs = 0;              // 0: steps (or 1 epoch when both are 0 on a new run)
  int64_t batch = 8, seq = 256, grad_accum = 1;
  double lr = 1e-4, min_lr_ratio = 0.1, weight_decay = 0.0, grad_clip = 1.0;
  int64_t warmup = -1;            // -1: 5% of steps
  uint64_t seed = 1337;
  int64_t eval_every = 100, save_every = 0;  // 0: save only at the end
  int64_t stop_at = 0;
  bool resume = false;
  bool quiet = false;
  std::string device = "cpu";
  DataParallelOptions data_parallel;  // under mpirun: --deterministic-reduce, --zero (train/data_parallel.h)
  std::string precision = "auto";
};

struct SftRunResult : TrainResult {
  data::SftSummary summary;
  int64_t train_examples = 0, val_examples = 0, total_steps = 0;
  int64_t trainable_params = 0;
};

// Raises sllm::Error with a hint for bad options, a missing model or tokenizer, bad data
// (the dataset's file:line errors) or a damaged run, before anything is written to out_dir.
SftRunResult sft(const SftRunOptions& options);

// The --epochs rule above; raises sllm::Error when it gives no step.
int64_t sft_steps_for_epochs(double epochs, int64_t train_examples, int64_t batch, int64_t grad_accum);

}  // namespace sllm::train
