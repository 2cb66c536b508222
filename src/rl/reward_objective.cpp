#include "rl/reward_objective.h"

#include <algorithm>
#include <array>
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

namespace {

// Σ correct, Σ margin, Σ chosen, Σ rejected over the pairs of two score lists.
std::array<double, 4> preference_sums(const std::vector<float>& chosen, const std::vector<float>& rejected) {
  SLLM_ASSERT(chosen.size() == rejected.size());
  std::array<double, 4> sums{0, 0, 0, 0};
  for (size_t i = 0; i < chosen.size(); ++i) {
    sums[0] += chosen[i] > rejected[i] ? 1 : 0;
    sums[1] += static_cast<double>(chosen[i]) - rejected[i];
    sums[2] += chosen[i];
    sums[3] += rejected[i];
  }
  return sums;
}

std::map<std::string, double> metrics_of(const std::array<double, 4>& sums, double n) {
  return {{"accuracy", sums[0] / n}, {"margin", sums[1] / n}, {"chosen_reward", sums[2] / n}, {"rejected_reward", sums[3] / n}};
}

}  // namespace

std::map<std::string, double> preference_metrics(const std::vector<float>& chosen, const std::vector<float>& rejected) {
  SLLM_ASSERT(!chosen.empty());
  return metrics_of(preference_sums(chosen, rejected), static_cast<double>(chosen.size()));
}

RewardObjective::RewardObjective(RewardModel& model, const data::PreferenceDataset& data, int64_t batch,
                                 uint64_t seed, const data::SftValidation& validation, dist::Comm* comm)
    : Objective(comm),
      model_(&model),
      data_(&data),
      batch_(batch),
      seq_(data.options().seq_len),
      split_(data::objective_split(data, batch * ranks(), validation, seed, data::split_preferences,
                                   "pair")),
      train_loader_(data, split_.train, batch * ranks(), seq_, seed + 1, model.pad_id(),
                    /*shuffle=*/true) {}

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
  if (mode_hook) mode_hook(true, micro_batches_ + static_cast<uint64_t>(rank()));
  micro_batches_ += static_cast<uint64_t>(ranks());
  data::PreferenceBatch batch;
  int64_t tokens = 0;
  if (ranks() == 1) {
    batch = train_loader_.next();
    tokens = batch.tokens;
  } else {  // this rank's pairs of the ranks·B the loader reads; tokens of the whole batch
    const std::vector<const data::PreferencePair*> all = train_loader_.next_pairs();
    batch = data::make_preference_batch({all.begin() + rank() * batch_, all.begin() + (rank() + 1) * batch_}, seq_,
                                        model_->pad_id());
    tokens = batch.tokens;
    comm_->allreduce_sum(&tokens, 1);
  }
  const Tensor rewards = model_->last_scores(batch.ids, batch.last);  // (2B)
  const auto [chosen, rejected] = chosen_and_rejected(rewards, batch.pairs);
  train::MicroBatchLoss out{bradley_terry_loss(chosen, rejected), tokens,
                            preference_metrics(chosen.to_floats(), rejected.to_floats())};
  if (ranks() > 1) {  // equal slices: the mean of the ranks' means is the batch's mean
    for (auto& [name, value] : out.metrics) {
      comm_->allreduce_sum_ordered(&value, 1);
      value /= static_cast<double>(ranks());
    }
  }
  out.metrics["epoch"] = static_cast<double>(train_loader_.epoch()) +
                         static_cast<double>(train_loader_.position()) / static_cast<double>(train_pairs());
  return out;
}

train::Evaluation RewardObjective::evaluate(nn::Transformer& trunk) {
  SLLM_ASSERT(&trunk == &model_->trunk());
  if (mode_hook) mode_hook(false, micro_batches_);
  std::vector<float> chosen, rejected;
  double loss_sum = 0;
  // With N ranks, rank r takes pairs r·B ... of each group of N·B (as in training).
  const size_t stride = static_cast<size_t>(batch_ * ranks());
  for (size_t first = static_cast<size_t>(rank() * batch_); first < split_.val.size(); first += stride) {
    std::vector<const data::PreferencePair*> pairs;
    for (size_t i = first; i < std::min(split_.val.size(), first + static_cast<size_t>(batch_)); ++i)
      pairs.push_back(&data_->pairs()[static_cast<size_t>(split_.val[i])]);
    const data::PreferenceBatch batch = data::make_preference_batch(pairs, seq_, model_->pad_id());
    const auto [c, r] = chosen_and_rejected(model_->last_scores(batch.ids, batch.last), batch.pairs);
    loss_sum += bradley_terry_loss(c, r).item() * static_cast<double>(batch.pairs);
    for (float v : c.to_floats()) chosen.push_back(v);
    for (float v : r.to_floats()) rejected.push_back(v);
  }
  if (ranks() == 1) return train::Evaluation{loss_sum / static_cast<double>(chosen.size()), preference_metrics(chosen, rejected)};
  // Every rank's sums, added in rank order (the same bits on every rank), over the whole set.
  std::array<double, 5> sums{loss_sum};
  const std::array<double, 4> mine = preference_sums(chosen, rejected);
  std::copy(mine.begin(), mine.end(), sums.begin() + 1);
  comm_->allreduce_sum_ordered(sums.data(), static_cast<int64_t>(sums.size()));
  const double n = static_cast<double>(val_pairs());
  return train::Evaluation{sums[0] / n, metrics_of({sums[1], sums[2], sums[3], sums[4]}, n)};
}

uint64_t RewardObjective::data_fingerprint() const {
  return state_fingerprint(train_loader_.state());  // the loader's state fingerprints the data and the split
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
