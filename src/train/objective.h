// What a training objective is to the training loop (train_loop.h): the part of training
// that differs between pretraining, SFT, reward modelling and DPO. The loop owns everything
// else (accumulation, clipping, AdamW, the LR schedule, metrics, evaluation steps,
// checkpoints, resume); the objective owns its data and turns a model and its next
// micro-batch into a loss.
//
// An objective owns its data source and its position in it. The loop saves data_state() in
// every checkpoint ("loader" in trainer_state.json) and hands it back to
// restore_data_state() on resume, so a resumed run sees exactly the batches it would have.
#pragma once
#include <cstdint>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "dist/comm.h"
#include "nn/transformer.h"
#include "tensor/tensor.h"

namespace sllm::train {

// One micro-batch's contribution to a step.
struct MicroBatchLoss {
  // A scalar f32 with autograd history: the loss of this micro-batch (this rank's slice of
  // it, in a data-parallel run). What it averages over (every token, only the assistant's
  // tokens, pairs of answers) is the objective's choice, and so is its loss mask.
  Tensor loss;
  // Tokens the micro-batch trained on: the loop reports tokens/s. Pretraining counts every
  // position (B * T); SFT counts non-padding positions, so padding shows as lost throughput.
  int64_t tokens = 0;
  // Figures beside the loss (e.g. "accuracy" of a reward model, DPO's "reward_margin"). The
  // loop logs each one's mean over the step's micro-batches under its name, so every
  // micro-batch reports the same names.
  std::map<std::string, double> metrics;
  // Its share of the step's loss. The loop backpropagates loss · weight and logs the step's
  // loss as the sum over micro-batches (and ranks) of weight · loss, so the weights of a step
  // sum to 1. -1 (the default): equal shares, 1 / (grad_accum · ranks); the loop then logs
  // the plain mean of the micro-batch losses. An objective whose micro-batches hold different
  // amounts of what the loss averages over (SFT: label tokens) weighs each by its count.
  double weight = -1;
};

// A validation pass: logged as "val_loss" and "val_<name>" for each metric.
struct Evaluation {
  double loss = 0;
  std::map<std::string, double> metrics;
};

class Objective {
 public:
  virtual ~Objective() = default;

  // Called before the micro-batches of each step, with their number (grad_accum): an
  // objective that weighs micro-batches (MicroBatchLoss::weight) reads the step's data here.
  virtual void begin_step(int64_t micro_batches) { (void)micro_batches; }
  // The next training micro-batch's loss on `model` (gradients recorded).
  virtual MicroBatchLoss next(nn::Transformer& model) = 0;
  // The validation data's loss and metrics. The loop calls it under a NoGradGuard; it must
  // use the same batches every time, so evaluations along a run compare.
  virtual Evaluation evaluate(nn::Transformer& model) = 0;

  // The position in the training data, as JSON; restore_data_state(data_state()) must give
  // back the same sequence of batches. A state that does not fit this objective's data
  // raises sllm::Error saying what differs.
  virtual nlohmann::json data_state() const = 0;
  virtual void restore_data_state(const nlohmann::json& state) = 0;

  // Data-parallel runs (train/data_parallel.h): the number of ranks this objective slices
  // its batches for (it was built with the world's communicator), so rank r trains on rows
  // r·B ... (r+1)·B-1 of the batch one process would read with --batch ranks·B, and its
  // evaluate() reduces over the ranks. 1: a one-process objective; the loop refuses to run it
  // on several ranks.
  int ranks() const { return comm_ ? comm_->size() : 1; }
  // A hash of the training data, the same on every rank that reads the same data (the loop
  // checks it at the start of a multi-rank run). 0: not checked.
  virtual uint64_t data_fingerprint() const { return 0; }

 protected:
  // comm: the ranks the objective shares each batch with (null, or one rank: a one-process
  // objective).
  explicit Objective(dist::Comm* comm = nullptr) : comm_(comm && comm->size() > 1 ? comm : nullptr) {}
  int rank() const { return comm_ ? comm_->rank() : 0; }
  // data_fingerprint() of an objective whose loader state carries a fingerprint of its data.
  static uint64_t state_fingerprint(const nlohmann::json& loader_state) {
    const std::string state = loader_state.dump();
    return dist::hash_bytes(state.data(), state.size());
  }

  dist::Comm* comm_;  // null with one rank
};

}  // namespace sllm::train
