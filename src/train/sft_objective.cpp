#include "train/sft_objective.h"

#include <algorithm>
#include <utility>
#include <vector>

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
                           const data::SftValidation& validation, int32_t pad_id, dist::Comm* comm)
    : Objective(comm),
      data_(&data),
      batch_(batch),
      seq_(data.options().seq_len),
      split_(data::objective_split(data, batch * ranks(), validation, seed, data::split_sft, "example")),
      train_loader_(data, split_.train, batch * ranks(), seq_, seed + 1, pad_id, /*shuffle=*/true),
      val_loader_(data, split_.val, batch * ranks(), seq_, 0, pad_id, /*shuffle=*/false),
      max_id_(max_id(data)),
      inputs_(Tensor::empty({batch, seq_}, DType::I32)),
      targets_(Tensor::empty({batch, seq_}, DType::I32)) {}

void SftObjective::check_model(const nn::ModelConfig& config) const {
  SLLM_CHECK(max_id_ < config.vocab_size,
             str(data_->name(), ": token id ", max_id_, " is beyond the model's vocab_size of ", config.vocab_size),
             "use the tokenizer the model was trained with");
  SLLM_CHECK(seq_ <= config.n_ctx, str("--seq ", seq_, " exceeds the model's context of ", config.n_ctx), "lower --seq");
}

void SftObjective::begin_step(int64_t micro_batches) {
  SLLM_ASSERT(micro_batches > 0);
  const int64_t rows = batch_ * ranks(), per_batch = rows * seq_;
  step_inputs_.resize(static_cast<size_t>(micro_batches * per_batch));
  step_targets_.resize(step_inputs_.size());
  step_batches_.assign(static_cast<size_t>(micro_batches), StepBatch{});
  step_label_tokens_ = 0;
  next_in_step_ = 0;
  for (int64_t k = 0; k < micro_batches; ++k) {
    int32_t* t = step_targets_.data() + k * per_batch;
    const data::SftBatchCounts counts = train_loader_.next(step_inputs_.data() + k * per_batch, t);
    StepBatch& b = step_batches_[static_cast<size_t>(k)];
    b.tokens = counts.tokens;
    b.label_tokens = counts.label_tokens;
    const int32_t* mine = t + rank() * batch_ * seq_;
    b.rank_label_tokens = std::count_if(mine, mine + batch_ * seq_, [](int32_t v) { return v != data::kIgnoreIndex; });
    b.epoch = static_cast<double>(train_loader_.epoch()) +
              static_cast<double>(train_loader_.position()) / static_cast<double>(train_examples());
    step_label_tokens_ += counts.label_tokens;
  }
}

MicroBatchLoss SftObjective::next(nn::Transformer& model) {
  if (next_in_step_ >= static_cast<int64_t>(step_batches_.size())) begin_step(1);
  const int64_t k = next_in_step_++;
  if (mode_hook) mode_hook(true, micro_batches_ + static_cast<uint64_t>(rank()));
  micro_batches_ += static_cast<uint64_t>(ranks());
  const int64_t per_batch = batch_ * ranks() * seq_, per_rank = batch_ * seq_;
  const size_t first = static_cast<size_t>(k * per_batch + rank() * per_rank);
  std::copy_n(step_inputs_.data() + first, per_rank, inputs_.mutable_i32());
  std::copy_n(step_targets_.data() + first, per_rank, targets_.mutable_i32());
  const StepBatch& b = step_batches_[static_cast<size_t>(k)];
  // Every example carries at least one label (the dataset drops any without), and every row
  // holds an example, so neither count is zero. The weight is exactly 1 for one batch on one
  // rank: the loss is then used as it is.
  MicroBatchLoss out{model.loss(inputs_, targets_, data::kIgnoreIndex),
                     b.tokens,
                     {{"label_tokens", static_cast<double>(b.label_tokens)}, {"epoch", b.epoch}}};
  out.weight = static_cast<double>(b.rank_label_tokens) / static_cast<double>(step_label_tokens_);
  return out;
}

Evaluation SftObjective::evaluate(nn::Transformer& model) {
  if (mode_hook) mode_hook(false, micro_batches_);
  val_loader_.reset();
  const int64_t rows = batch_ * ranks();
  std::vector<int32_t> all_inputs(static_cast<size_t>(rows * seq_)), all_targets(all_inputs.size());
  Tensor inputs = Tensor::empty({batch_, seq_}, DType::I32), targets = Tensor::empty({batch_, seq_}, DType::I32);
  const int64_t n = val_examples();
  double sums[2] = {0, 0};  // label-weighted loss, label tokens
  for (int64_t first = 0; first < n; first += rows) {
    val_loader_.next(all_inputs.data(), all_targets.data());
    // Rows past the set's end hold examples from its start again (the loader wraps into the
    // next epoch): ignore their targets so each example counts once.
    for (int64_t row = n - first; row < rows; ++row)
      std::fill(all_targets.begin() + row * seq_, all_targets.begin() + (row + 1) * seq_, data::kIgnoreIndex);
    std::copy_n(all_inputs.data() + rank() * batch_ * seq_, batch_ * seq_, inputs.mutable_i32());
    std::copy_n(all_targets.data() + rank() * batch_ * seq_, batch_ * seq_, targets.mutable_i32());
    const int32_t* t = targets.i32();
    const int64_t batch_labels = std::count_if(t, t + batch_ * seq_, [](int32_t v) { return v != data::kIgnoreIndex; });
    if (batch_labels == 0) continue;
    sums[0] += model.loss(inputs, targets, data::kIgnoreIndex).item() * static_cast<double>(batch_labels);
    sums[1] += static_cast<double>(batch_labels);
  }
  if (comm_) comm_->allreduce_sum_ordered(sums, 2);  // in rank order: the same bits on every rank
  SLLM_CHECK(sums[1] > 0, str(data_->name(), ": the validation examples have no label token"),
             "check the data: only assistant tokens are labelled");
  return Evaluation{sums[0] / sums[1], {{"label_tokens", sums[1]}}};
}

uint64_t SftObjective::data_fingerprint() const {
  return state_fingerprint(train_loader_.state());  // the loader's state fingerprints the data and the split
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
