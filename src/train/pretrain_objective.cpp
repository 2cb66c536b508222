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
                                     int64_t eval_batches, dist::Comm* comm)
    : Objective(comm),
      data_dir_(checked_data_dir(data_dir)),
      batch_(batch),
      seq_(seq),
      train_shard_(data::TokenShard::open((data_dir_ / "train.bin").string())),
      val_shard_(data::TokenShard::open((data_dir_ / "val.bin").string())),
      train_loader_(train_shard_, batch * ranks(), seq, seed + 1, true),
      val_loader_(val_shard_, batch * ranks(), seq, 0, false),
      eval_batches_(std::min<int64_t>(eval_batches, std::max<int64_t>(1, val_loader_.windows_per_epoch() / (batch * ranks())))),
      inputs_(Tensor::empty({batch, seq}, DType::I32)),
      targets_(Tensor::empty({batch, seq}, DType::I32)),
      all_inputs_(static_cast<size_t>(batch * ranks() * seq)),
      all_targets_(static_cast<size_t>(batch * ranks() * seq)) {
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

void PretrainObjective::next_rows(data::BatchLoader& loader, Tensor& inputs, Tensor& targets) {
  if (ranks() == 1) {
    loader.next(inputs.mutable_i32(), targets.mutable_i32());
    return;
  }
  // Rows [rank·B, (rank+1)·B) of the (ranks·B, T) batch.
  loader.next(all_inputs_.data(), all_targets_.data());
  const int64_t n = inputs.numel();
  std::copy(all_inputs_.begin() + rank() * n, all_inputs_.begin() + (rank() + 1) * n, inputs.mutable_i32());
  std::copy(all_targets_.begin() + rank() * n, all_targets_.begin() + (rank() + 1) * n, targets.mutable_i32());
}

MicroBatchLoss PretrainObjective::next(nn::Transformer& model) {
  next_rows(train_loader_, inputs_, targets_);
  return MicroBatchLoss{model.loss(inputs_, targets_), batch_ * seq_ * ranks(), {}};
}

Evaluation PretrainObjective::evaluate(nn::Transformer& model) {
  val_loader_.reset();
  Tensor inputs = Tensor::empty({batch_, seq_}, DType::I32), targets = Tensor::empty({batch_, seq_}, DType::I32);
  double total = 0;
  for (int64_t i = 0; i < eval_batches_; ++i) {
    next_rows(val_loader_, inputs, targets);
    total += model.loss(inputs, targets).item();
  }
  // Every rank's slice holds B·T of the batch's ranks·B·T tokens: the mean of the ranks'
  // means is the batch's mean. Summed in rank order: the same bits on every rank.
  if (comm_) comm_->allreduce_sum_ordered(&total, 1);
  return Evaluation{total / static_cast<double>(eval_batches_ * ranks()), {}};
}

uint64_t PretrainObjective::data_fingerprint() const {
  const int64_t n = train_shard_.size(), head = std::min<int64_t>(n, int64_t{16} << 20);
  uint64_t h = dist::hash_bytes(&n, sizeof n);
  std::vector<int32_t> ids(static_cast<size_t>(std::min<int64_t>(head, int64_t{1} << 20)));
  for (int64_t at = 0; at < head; at += static_cast<int64_t>(ids.size())) {
    const int64_t c = std::min<int64_t>(head - at, static_cast<int64_t>(ids.size()));
    train_shard_.read(at, c, ids.data());
    h = dist::hash_bytes(ids.data(), static_cast<size_t>(c) * sizeof(int32_t), h);
  }
  return h;
}

}  // namespace sllm::train
