// Pretraining as an objective (objective.h): the mean next-token cross-entropy over (B, T)
// windows cut from the token shards `sllm prepare` writes (data_dir/train.bin, val.bin and
// meta.json). Training windows come shuffled per epoch from a seeded loader whose position is
// the objective's data state; validation reads the first eval_batches batches of val.bin in
// file order, the same ones at every evaluation.
//
// Built for N ranks (a data-parallel run, train/data_parallel.h), the loaders read batches
// of N·B windows, exactly as one process with --batch N·B would, and rank r trains and
// evaluates on rows r·B ... (r+1)·B-1 of each; validation losses are summed over ranks.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/batch_loader.h"
#include "data/token_shard.h"
#include "dist/comm.h"
#include "nn/config.h"
#include "train/objective.h"

namespace sllm::train {

class PretrainObjective final : public Objective {
 public:
  // Opens the shards and meta.json; raises sllm::Error with a hint when data_dir lacks a
  // shard or a shard is shorter than one window. The training order follows seed + 1.
  // batch is the rank's; comm (when not null) the ranks it shares each batch with.
  PretrainObjective(const std::string& data_dir, int64_t batch, int64_t seq, uint64_t seed, int64_t eval_batches,
                    dist::Comm* comm = nullptr);
  // The loaders point into the shards, which therefore must not move.
  PretrainObjective(const PretrainObjective&) = delete;
  PretrainObjective& operator=(const PretrainObjective&) = delete;

  // The tokenizer meta.json names ("" when none): the one the ids came from.
  const std::string& data_tokenizer() const { return data_tokenizer_; }
  // Raises sllm::Error with a hint when the model cannot take these batches: the data's
  // vocabulary (meta.json) exceeds the model's, or seq its context.
  void check_model(const nn::ModelConfig& config) const;

  // tokens = B·T·ranks: the whole batch's, the same on every rank.
  MicroBatchLoss next(nn::Transformer& model) override;
  Evaluation evaluate(nn::Transformer& model) override;
  nlohmann::json data_state() const override { return train_loader_.state(); }
  void restore_data_state(const nlohmann::json& state) override { train_loader_.restore(state); }
  // train.bin's length and its first 16 Mi ids.
  uint64_t data_fingerprint() const override;

 private:
  // The loader's next batch, this rank's rows of it, into (B, T) inputs and targets.
  void next_rows(data::BatchLoader& loader, Tensor& inputs, Tensor& targets);

  std::filesystem::path data_dir_;  // checked to hold train.bin and val.bin
  int64_t batch_, seq_;
  data::TokenShard train_shard_, val_shard_;
  int64_t data_vocab_size_ = -1;  // meta.json's vocab_size; -1 when not given
  std::string data_tokenizer_;
  data::BatchLoader train_loader_, val_loader_;
  int64_t eval_batches_;  // at most one pass over val.bin
  Tensor inputs_, targets_;  // (B, T) i32 on the host: the ops validate the ids there and upload them
  std::vector<int32_t> all_inputs_, all_targets_;  // (ranks·B, T): the whole batch, sliced per rank
};

}  // namespace sllm::train
