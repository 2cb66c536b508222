// Supervised fine-tuning as an objective (objective.h): the mean next-token cross-entropy
// over the assistant's tokens only (sft_dataset.h renders the labels; every other target is
// kIgnoreIndex and skipped by nn::Transformer::loss), on right-padded (B, T) batches from a
// seeded SftLoader (sft_loader.h). The dataset is split once by split_sft(seed); training
// batches follow seed + 1 (as pretraining's loader does), validation reads its examples in
// file order.
//
// Validation loss is the true mean per label token over the whole validation set: each
// batch's mean is weighted by its label-token count, and the rows of the last batch that
// wrap around to the set's start are masked out, so no example counts twice.
//
// A step's loss is the mean over all the label tokens of the step: begin_step reads the
// step's grad_accum batches ahead and counts their labels, L_step, and each micro-batch
// weighs its mean by its share, L_micro / L_step (MicroBatchLoss::weight). So accumulating
// K batches of B gives the loss (and the gradient) of one batch of K·B, as Hugging Face's
// Trainer does with num_items_in_batch since transformers 4.46, not the mean of K means.
//
// Built for N ranks (a data-parallel run, train/data_parallel.h), the loaders read batches
// of N·B examples, as one process with --batch N·B would; rank r trains on rows
// r·B ... (r+1)·B-1, weighed by its own label tokens over the step's (counted on every rank,
// which reads the whole batch), so the ranks' losses sum to that of the N·B batch.
// Validation sums the ranks' label-weighted losses and label counts.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/sft_dataset.h"
#include "data/sft_loader.h"
#include "dist/comm.h"
#include "nn/config.h"
#include "train/objective.h"

namespace sllm::train {

class SftObjective final : public Objective {
 public:
  // Splits `data` (which must outlive the objective) with split_sft(validation, seed); T is
  // the dataset's seq_len. Raises sllm::Error with a hint for batch <= 0 or when the split
  // leaves no validation example (the loop evaluates at step 1 and at the end).
  // batch is the rank's; comm (when not null) the ranks it shares each batch with.
  SftObjective(const data::SftDataset& data, int64_t batch, uint64_t seed, const data::SftValidation& validation,
               int32_t pad_id, dist::Comm* comm = nullptr);

  // Raises sllm::Error with a hint when the model cannot take these batches: an id at or
  // beyond its vocab_size, or seq beyond its context.
  void check_model(const nn::ModelConfig& config) const;

  // Lets the caller switch model state per micro-batch without the loop knowing about it:
  // called with (true, i) before training micro-batch i (counted from the run's start and
  // kept in data_state(), so a resumed run continues the count; with N ranks, rank r's slice
  // of micro-batch k is number k·N + r, as the N·k + r-th batch of one process running
  // --batch B --grad-accum N) and with (false, i) before an evaluation. LoRA passes set_training(training) + set_dropout_step(i), so dropout
  // masks differ per micro-batch, repeat bit-exactly on resume, and are off in evaluation.
  std::function<void(bool training, uint64_t micro_batch)> mode_hook;

  // tokens = the batch's non-padding input positions: the data actually trained on, so
  // tokens/s falls when padding wastes compute (B * T would hide that) and stays comparable
  // with runs on other padding; label tokens are in metrics ("label_tokens"), with "epoch"
  // (epochs completed, fractional) for --epochs. With N ranks these count the whole N·B
  // batch, the same on every rank. Without begin_step, next() reads a step of one batch.
  void begin_step(int64_t micro_batches) override;
  MicroBatchLoss next(nn::Transformer& model) override;
  Evaluation evaluate(nn::Transformer& model) override;
  // {"loader": the training SftLoader's state, "micro_batches": micro-batches served}.
  nlohmann::json data_state() const override;
  void restore_data_state(const nlohmann::json& state) override;
  uint64_t data_fingerprint() const override;

  const data::SftSplit& split() const { return split_; }
  int64_t train_examples() const { return static_cast<int64_t>(split_.train.size()); }
  int64_t val_examples() const { return static_cast<int64_t>(split_.val.size()); }

 private:
  const data::SftDataset* data_;
  int64_t batch_, seq_;
  data::SftSplit split_;
  data::SftLoader train_loader_, val_loader_;
  int32_t max_id_ = 0;      // the largest input id in the data, for check_model
  uint64_t micro_batches_ = 0;  // micro-batch slices served (N per micro-batch with N ranks)
  Tensor inputs_, targets_;  // (B, T) i32 on the host: the ops validate the ids there and upload them
  // The step read ahead by begin_step: its batches of ranks·B rows, one after the other.
  struct StepBatch {
    int64_t tokens = 0, label_tokens = 0;  // of the whole ranks·B batch
    int64_t rank_label_tokens = 0;         // of this rank's rows
    double epoch = 0;                      // epochs completed after reading it
  };
  std::vector<int32_t> step_inputs_, step_targets_;  // (K, ranks·B, T)
  std::vector<StepBatch> step_batches_;
  int64_t step_label_tokens_ = 0, next_in_step_ = 0;
};

}  // namespace sllm::train
