// Pretraining as an objective (objective.h): the mean next-token cross-entropy over (B, T)
// windows cut from the token shards `sllm prepare` writes (data_dir/train.bin, val.bin and
// meta.json). Training windows come shuffled per epoch from a seeded loader whose position is
// the objective's data state; validation reads the first eval_batches batches of val.bin in
// file order, the same ones at every evaluation.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "data/batch_loader.h"
#include "data/token_shard.h"
#include "nn/config.h"
#include "train/objective.h"

namespace sllm::train {

class PretrainObjective final : public Objective {
 public:
  // Opens the shards and meta.json; raises sllm::Error with a hint when data_dir lacks a
  // shard or a shard is shorter than one window. The training order follows seed + 1.
  PretrainObjective(const std::string& data_dir, int64_t batch, int64_t seq, uint64_t seed, int64_t eval_batches);
  // The loaders point into the shards, which therefore must not move.
  PretrainObjective(const PretrainObjective&) = delete;
  PretrainObjective& operator=(const PretrainObjective&) = delete;

  // The tokenizer meta.json names ("" when none): the one the ids came from.
  const std::string& data_tokenizer() const { return data_tokenizer_; }
  // Raises sllm::Error with a hint when the model cannot take these batches: the data's
  // vocabulary (meta.json) exceeds the model's, or seq its context.
  void check_model(const nn::ModelConfig& config) const;

  MicroBatchLoss next(nn::Transformer& model) override;
  Evaluation evaluate(nn::Transformer& model) override;
  nlohmann::json data_state() const override { return train_loader_.state(); }
  void restore_data_state(const nlohmann::json& state) override { train_loader_.restore(state); }

 private:
  std::filesystem::path data_dir_;  // checked to hold train.bin and val.bin
  int64_t batch_, seq_;
  data::TokenShard train_shard_, val_shard_;
  int64_t data_vocab_size_ = -1;  // meta.json's vocab_size; -1 when not given
  std::string data_tokenizer_;
  data::BatchLoader train_loader_, val_loader_;
  int64_t eval_batches_;  // at most one pass over val.bin
  Tensor inputs_, targets_;  // (B, T) i32 on the host: the ops validate the ids there and upload them
};

}  // namespace sllm::train
