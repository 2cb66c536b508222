#include "rl/reward_objective.h"

#include <utility>

#include "core/error.h"
#include "ops/ops.h"

namespace sllm::rl {

using nlohmann::json;

namespace {

// Rows [0, B) of a preference batch are the chosen answers, [B, 2B) the rejected ones.
std::pair<Tensor, Tensor> chosen_and_rejected(const Tensor& rewards /* (2B) */, int64_t B) {
  return {ops::slice(rewards, 0, 0, B), ops::slice(rewards, 0, B, 2 * B)};
}

}  // namespace

Tensor bradley_terry_loss(const Tensor& chosen, const Tensor& rejected) {
  SLLM_CHECK(chosen.ndim() == 1 && chosen.shape() == rejected.shape(),
             str("Bradley-Terry loss: chosen and rejected must be (N) alike, got ", shape_str(chosen.shape()), " and ",
                 shape_str(rejected.shape())),
             "pass one chosen and one rejected reward per pair");
  const int64_t N = chosen.dim(0);
  // logits (N, 2) = [r_c, r_r] per pair; target 0 = "chosen wins" (see the header).
  const Tensor logits = ops::concat({ops::reshape(chosen, {N, 1}), ops::reshape(rejected, {N, 1})}, 1);
  return ops::cross_entropy(logits, Tensor::zeros({N}, DType::I32));
}

std::map<std::string, double> preference_metrics(const std::vector<float>& chosen, const std::vector<float>& rejected) {
  SLLM_ASSERT(chosen.size() == rejected.size() && !chosen.empty());
  double correct = 0, margin = 0, c = 0, r = 0;
  for (size_t i = 0; i < chosen.size(); ++i) {
    correct += chosen[i] > rejected[i] ? 1 : 0;
    margin += static_cast<double>(chosen[i]) - rejected[i];
    c += chosen[i];
    r += rejected[i];
  }
  const auto n = static_cast<double>(chosen.size());
  return {{"accuracy", correct / n}, {"margin", margin / n}, {"chosen_reward", c / n}, {"rejected_reward", r / n}};
}

RewardObjective::RewardObjective(RewardModel& model, const data::PreferenceDataset& data, int64_t batch,
                                 uint64_t seed, const data::SftValidation& validation)
    : model_(&model),
      data_(&data),
      batch_(batch),
      seq_(data.options().seq_len),
      split_(data::objective_split(data, batch, validation, seed, data::split_preferences, "pair")),
      train_loader_(data, split_.train, batch, seq_, seed + 1, model.pad_id(), /*shuffle=*/true) {}

void RewardObjective::check_model() const {
  const nn::ModelConfig& config = model_->trunk().config();
  SLLM_CHECK(data_->max_id() < config.vocab_size,
             str(data_->name(), ": token id ", data_->max_id(), " is beyond the model's vocab_size of ",
                 config.vocab_size),
             "use the tokenizer the model was trained with");
  SLLM_CHECK(seq_ <= config.n_ctx, str("--seq ", seq_, " exceeds the model's context of ", config.n_ctx),
             "lower --seq (pairs longer than the context need --truncate)");
}

train::MicroBatchLoss RewardObjective::next(nn::Transformer& trunk) {
  SLLM_ASSERT(&trunk == &model_->trunk());
  if (mode_hook) mode_hook(true, micro_batches_);
  ++micro_batches_;
  const data::PreferenceBatch batch = train_loader_.next();
  const Tensor rewards = model_->last_scores(batch.ids, batch.last);  // (2B)
  const auto [chosen, rejected] = chosen_and_rejected(rewards, batch.pairs);
  train::MicroBatchLoss out{bradley_terry_loss(chosen, rejected), batch.tokens,
                            preference_metrics(chosen.to_floats(), rejected.to_floats())};
  out.metrics["epoch"] = static_cast<double>(train_loader_.epoch()) +
                         static_cast<double>(train_loader_.position()) / static_cast<double>(train_pairs());
  return out;
}

train::Evaluation RewardObjective::evaluate(nn::Transformer& trunk) {
  SLLM_ASSERT(&trunk == &model_->trunk());
  if (mode_hook) mode_hook(false, micro_batches_);
  std::vector<float> chosen, rejected;
  double loss_sum = 0;
  for (size_t first = 0; first < split_.val.size(); first += static_cast<size_t>(batch_)) {
    std::vector<const data::PreferencePair*> pairs;
    for (size_t i = first; i < std::min(split_.val.size(), first + static_cast<size_t>(batch_)); ++i)
      pairs.push_back(&data_->pairs()[static_cast<size_t>(split_.val[i])]);
    const data::PreferenceBatch batch = data::make_preference_batch(pairs, seq_, model_->pad_id());
    const auto [c, r] = chosen_and_rejected(model_->last_scores(batch.ids, batch.last), batch.pairs);
    loss_sum += bradley_terry_loss(c, r).item() * static_cast<double>(batch.pairs);
    for (float v : c.to_floats()) chosen.push_back(v);
    for (float v : r.to_floats()) rejected.push_back(v);
  }
  return train::Evaluation{loss_sum / static_cast<double>(chosen.size()), preference_metrics(chosen, rejected)};
}

json RewardObjective::data_state() const {
  return json{{"loader", train_loader_.state()}, {"micro_batches", micro_batches_}};
}

void RewardObjective::restore_data_state(const json& state) {
  SLLM_CHECK(state.is_object() && state.contains("loader") && state.contains("micro_batches") &&
                 state["micro_batches"].is_number_unsigned(),
             "the reward-model data state is malformed (expected {\"loader\", \"micro_batches\"})",
             "resume from a checkpoint written by `sllm reward train`");
  train_loader_.restore(state["loader"]);
  micro_batches_ = state["micro_batches"].get<uint64_t>();
}

}  // namespace sllm::rl
