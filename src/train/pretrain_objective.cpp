#include "train/pretrain_objective.h"

#include <algorithm>

#include "core/atomic_file.h"
#include "core/error.h"

namespace sllm::train {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

fs::path checked_data_dir(const std::string& data_dir) {
  const fs::path data = data_dir;
  SLLM_CHECK(fs::exists(data / "train.bin") && fs::exists(data / "val.bin"),
             str("data directory '", data_dir, "' has no train.bin/val.bin"),
             "create it with `sllm prepare --tokenizer T --input FILE... --out DIR`");
  return data;
}

// meta.json is optional and advisory: a missing or unreadable one just leaves both unknown.
json read_meta(const fs::path& data) {
  if (!fs::exists(data / "meta.json")) return json();
  json meta = json::parse(read_file((data / "meta.json").string()), nullptr, false);
  return meta.is_object() ? meta : json();
}

}  // namespace

PretrainObjective::PretrainObjective(const std::string& data_dir, int64_t batch, int64_t seq, uint64_t seed,
                                     int64_t eval_batches)
    : data_dir_(checked_data_dir(data_dir)),
      batch_(batch),
      seq_(seq),
      train_shard_(data::TokenShard::open((data_dir_ / "train.bin").string())),
      val_shard_(data::TokenShard::open((data_dir_ / "val.bin").string())),
      train_loader_(train_shard_, batch, seq, seed + 1, true),
      val_loader_(val_shard_, batch, seq, 0, false),
      eval_batches_(std::min<int64_t>(eval_batches, std::max<int64_t>(1, val_loader_.windows_per_epoch() / batch))),
      inputs_(Tensor::empty({batch, seq}, DType::I32)),
      targets_(Tensor::empty({batch, seq}, DType::I32)) {
  const json meta = read_meta(data_dir_);
  if (meta.contains("vocab_size") && meta["vocab_size"].is_number_integer()) data_vocab_size_ = meta["vocab_size"].get<int64_t>();
  if (meta.contains("tokenizer") && meta["tokenizer"].is_string()) data_tokenizer_ = meta["tokenizer"].get<std::string>();
}

void PretrainObjective::check_model(const nn::ModelConfig& config) const {
  SLLM_CHECK(data_vocab_size_ <= config.vocab_size,
             str("the data's tokenizer has ", data_vocab_size_, " ids but the model's vocab_size is ", config.vocab_size),
             "use a config with a larger vocab_size, or a smaller tokenizer");
  SLLM_CHECK(seq_ <= config.n_ctx, str("--seq ", seq_, " exceeds the model's context of ", config.n_ctx), "lower --seq");
}

MicroBatchLoss PretrainObjective::next(nn::Transformer& model) {
  train_loader_.next(inputs_.mutable_i32(), targets_.mutable_i32());
  return MicroBatchLoss{model.loss(inputs_, targets_), batch_ * seq_, {}};
}

Evaluation PretrainObjective::evaluate(nn::Transformer& model) {
  val_loader_.reset();
  Tensor inputs = Tensor::empty({batch_, seq_}, DType::I32), targets = Tensor::empty({batch_, seq_}, DType::I32);
  double total = 0;
  for (int64_t i = 0; i < eval_batches_; ++i) {
    val_loader_.next(inputs.mutable_i32(), targets.mutable_i32());
    total += model.loss(inputs, targets).item();
  }
  return Evaluation{total / static_cast<double>(eval_batches_), {}};
}

}  // namespace sllm::train
