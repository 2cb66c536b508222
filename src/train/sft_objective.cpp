#include "train/sft_objective.h"

#include <algorithm>
#include <utility>

#include "core/error.h"

namespace sllm::train {

using nlohmann::json;

namespace {

int32_t max_id(const data::SftDataset& data) {
  int32_t m = 0;
  for (const auto& e : data.examples()) {
    for (int32_t id : e.inputs) m = std::max(m, id);
    for (int32_t id : e.targets) m = std::max(m, id);  // kIgnoreIndex is negative
  }
  return m;
}

}  // namespace

SftObjective::SftObjective(const data::SftDataset& data, int64_t batch, uint64_t seed,
                           const data::SftValidation& validation, int32_t pad_id)
    : data_(&data),
      batch_(batch),
      seq_(data.options().seq_len),
      split_(data::objective_split(data, batch, validation, seed, data::split_sft, "example")),
      train_loader_(data, split_.train, batch, seq_, seed + 1, pad_id, /*shuffle=*/true),
      val_loader_(data, split_.val, batch, seq_, 0, pad_id, /*shuffle=*/false),
      max_id_(max_id(data)),
      inputs_(Tensor::empty({batch, seq_}, DType::I32)),
      targets_(Tensor::empty({batch, seq_}, DType::I32)) {}

void SftObjective::check_model(const nn::ModelConfig& config) const {
  SLLM_CHECK(max_id_ < config.vocab_size,
             str(data_->name(), ": token id ", max_id_, " is beyond the model's vocab_size of ", config.vocab_size),
             "use the tokenizer the model was trained with");
  SLLM_CHECK(seq_ <= config.n_ctx, str("--seq ", seq_, " exceeds the model's context of ", config.n_ctx), "lower --seq");
}

MicroBatchLoss SftObjective::next(nn::Transformer& model) {
  if (mode_hook) mode_hook(true, micro_batches_);
  ++micro_batches_;
  const data::SftBatchCounts counts = train_loader_.next(inputs_.mutable_i32(), targets_.mutable_i32());
  // Every example carries at least one label (the dataset drops any without), so the mean
  // below never divides by zero.
  const double epoch = static_cast<double>(train_loader_.epoch()) +
                       static_cast<double>(train_loader_.position()) / static_cast<double>(train_examples());
  return MicroBatchLoss{model.loss(inputs_, targets_, data::kIgnoreIndex),
                        counts.tokens,
                        {{"label_tokens", static_cast<double>(counts.label_tokens)}, {"epoch", epoch}}};
}

Evaluation SftObjective::evaluate(nn::Transformer& model) {
  if (mode_hook) mode_hook(false, micro_batches_);
  val_loader_.reset();
  Tensor inputs = Tensor::empty({batch_, seq_}, DType::I32), targets = Tensor::empty({batch_, seq_}, DType::I32);
  const int64_t n = val_examples();
  double weighted = 0;
  int64_t labels = 0;
  for (int64_t first = 0; first < n; first += batch_) {
    val_loader_.next(inputs.mutable_i32(), targets.mutable_i32());
    // Rows past the set's end hold examples from its start again (the loader wraps into the
    // next epoch): ignore their targets so each example counts once.
    int32_t* t = targets.mutable_i32();
    for (int64_t row = n - first; row < batch_; ++row) std::fill(t + row * seq_, t + (row + 1) * seq_, data::kIgnoreIndex);
    const int64_t batch_labels = std::count_if(t, t + batch_ * seq_, [](int32_t v) { return v != data::kIgnoreIndex; });
    if (batch_labels == 0) continue;
    weighted += model.loss(inputs, targets, data::kIgnoreIndex).item() * static_cast<double>(batch_labels);
    labels += batch_labels;
  }
  SLLM_CHECK(labels > 0, str(data_->name(), ": the validation examples have no label token"),
             "check the data: only assistant tokens are labelled");
  return Evaluation{weighted / static_cast<double>(labels), {{"label_tokens", static_cast<double>(labels)}}};
}

json SftObjective::data_state() const { return json{{"loader", train_loader_.state()}, {"micro_batches", micro_batches_}}; }

void SftObjective::restore_data_state(const json& state) {
  SLLM_CHECK(state.is_object() && state.contains("loader") && state.contains("micro_batches") &&
                 state["micro_batches"].is_number_unsigned(),
             "the SFT data state is malformed (expected {\"loader\", \"micro_batches\"})",
             "resume from a checkpoint written by `sllm sft`");
  train_loader_.restore(state["loader"]);
  micro_batches_ = state["micro_batches"].get<uint64_t>();
}

}  // namespace sllm::train
