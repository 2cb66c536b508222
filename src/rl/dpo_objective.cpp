#include "rl/dpo_objective.h"

#include <algorithm>
#include <cmath>

#include "autograd/autograd.h"
#include "core/error.h"
#include "ops/ops.h"

namespace sllm::rl {

using nlohmann::json;

namespace {

// `pairs` filled up to `batch` with copies of its last pair, so every forward has the same
// shape (dpo_objective.h, "bit-for-bit at step 0"); the copies' results are dropped.
std::vector<const data::PreferencePair*> full_batch(std::vector<const data::PreferencePair*> pairs, int64_t batch) {
  while (static_cast<int64_t>(pairs.size()) < batch) pairs.push_back(pairs.back());
  return pairs;
}

}  // namespace

DpoObjective::DpoObjective(const data::PreferenceDataset& data, int64_t batch, uint64_t seed,
                           const data::SftValidation& validation, int32_t pad_id, const DpoSettings& settings,
                           dist::Comm* comm)
    : Objective(comm),
      data_(&data),
      batch_(batch),
      seq_(data.options().seq_len),
      pad_id_(pad_id),
      settings_(settings),
      split_(data::objective_split(data, batch * ranks(), validation, seed, data::split_preferences,
                                   "pair")),
      train_loader_(data, split_.train, batch * ranks(), seq_, seed + 1, pad_id, /*shuffle=*/true) {
  SLLM_CHECK(settings.beta > 0 && std::isfinite(settings.beta), str("sllm dpo: --beta must be > 0, got ", settings.beta),
             "pass e.g. --beta 0.1 (smaller keeps the policy closer to the reference)");
}

void DpoObjective::check_model(const nn::ModelConfig& config) const {
  SLLM_CHECK(data_->max_id() < config.vocab_size,
             str(data_->name(), ": token id ", data_->max_id(), " is beyond the model's vocab_size of ", config.vocab_size),
             "use the tokenizer the model was trained with");
  SLLM_CHECK(seq_ <= config.n_ctx, str("--seq ", seq_, " exceeds the model's context of ", config.n_ctx), "lower --seq");
}

int64_t DpoObjective::index_of(const data::PreferencePair* pair) const {
  const int64_t i = pair - data_->pairs().data();
  SLLM_ASSERT(i >= 0 && i < data_->size());
  return i;
}

DpoObjective::PairLogprobs DpoObjective::policy_logprobs(nn::Transformer& model,
                                                         const std::vector<const data::PreferencePair*>& pairs) const {
  const data::PreferenceBatch batch = data::make_preference_batch(pairs, seq_, pad_id_);
  const int64_t B = batch.pairs;
  Tensor lp = sequence_logprobs(model.forward(batch.ids), batch.labels);  // (2B)
  if (settings_.loss_type == DpoLossType::Ipo) {
    // Per-token averages for IPO (dpo.h, after TRL): a division, as TRL's, by each row's
    // response length (never 0: every response has a token).
    std::vector<float> lengths;
    for (int64_t n : response_lengths(batch.labels)) lengths.push_back(static_cast<float>(n));
    lp = ops::div(lp, Tensor::from_floats(lengths, {2 * B}).to(lp.device()));
  }
  return {ops::slice(lp, 0, 0, B), ops::slice(lp, 0, B, 2 * B)};
}

DpoObjective::PairLogprobs DpoObjective::reference_logprobs(const std::vector<const data::PreferencePair*>& pairs,
                                                            Device device) const {
  SLLM_CHECK(has_reference(), "DpoObjective: the reference log-probabilities were not computed",
             "call compute_reference() before training (sllm dpo does)");
  std::vector<float> chosen, rejected;
  for (const data::PreferencePair* p : pairs) {
    const size_t i = static_cast<size_t>(index_of(p));
    chosen.push_back(ref_chosen_[i]);
    rejected.push_back(ref_rejected_[i]);
  }
  const Shape shape{static_cast<int64_t>(pairs.size())};
  return {Tensor::from_floats(chosen, shape).to(device), Tensor::from_floats(rejected, shape).to(device)};
}

void DpoObjective::compute_reference(nn::Transformer& reference) {
  if (mode_hook) mode_hook(false, micro_batches_);
  autograd::NoGradGuard no_grad;
  const int64_t n = data_->size();
  std::vector<float> chosen(static_cast<size_t>(n)), rejected(static_cast<size_t>(n));
  for (int64_t first = 0, j = 0; first < n; first += batch_, ++j) {
    const int64_t real = std::min(batch_, n - first);
    const int owner = static_cast<int>(j % ranks());  // with N ranks, batch j is rank j mod N's
    if (owner == rank()) {
      std::vector<const data::PreferencePair*> pairs;
      for (int64_t i = first; i < first + real; ++i) pairs.push_back(&data_->pairs()[static_cast<size_t>(i)]);
      const PairLogprobs lp = policy_logprobs(reference, full_batch(pairs, batch_));
      const std::vector<float> c = lp.chosen.to_floats(), r = lp.rejected.to_floats();
      std::copy(c.begin(), c.begin() + real, chosen.begin() + first);
      std::copy(r.begin(), r.begin() + real, rejected.begin() + first);
    }
    if (ranks() > 1) {
      comm_->broadcast(chosen.data() + first, static_cast<size_t>(real) * sizeof(float), owner);
      comm_->broadcast(rejected.data() + first, static_cast<size_t>(real) * sizeof(float), owner);
    }
  }
  ref_chosen_ = std::move(chosen);
  ref_rejected_ = std::move(rejected);
}

train::MicroBatchLoss DpoObjective::next(nn::Transformer& model) {
  if (mode_hook) mode_hook(true, micro_batches_ + static_cast<uint64_t>(rank()));
  micro_batches_ += static_cast<uint64_t>(ranks());
  const std::vector<const data::PreferencePair*> all = train_loader_.next_pairs();  // ranks·B pairs
  const std::vector<const data::PreferencePair*> pairs(all.begin() + rank() * batch_, all.begin() + (rank() + 1) * batch_);
  const PairLogprobs policy = policy_logprobs(model, pairs);
  const PairLogprobs ref = reference_logprobs(pairs, policy.chosen.device());
  const DpoLossResult r =
      dpo_loss(policy.chosen, policy.rejected, ref.chosen, ref.rejected, settings_.beta, settings_.loss_type);
  int64_t tokens = 0;  // of the whole batch, the same on every rank
  for (const data::PreferencePair* p : all)
    tokens += static_cast<int64_t>(2 * p->prompt.size() + p->chosen.size() + p->rejected.size());
  const double epoch = static_cast<double>(train_loader_.epoch()) +
                       static_cast<double>(train_loader_.position()) / static_cast<double>(train_pairs());
  // Every rank's slice has B pairs: the mean of the ranks' means is the batch's mean.
  double means[4] = {r.chosen_reward, r.rejected_reward, r.accuracy, r.margin};
  if (ranks() > 1) {
    comm_->allreduce_sum_ordered(means, 4);
    for (double& m : means) m /= static_cast<double>(ranks());
  }
  return train::MicroBatchLoss{r.loss,
                               tokens,
                               {{"chosen_reward", means[0]},
                                {"rejected_reward", means[1]},
                                {"accuracy", means[2]},
                                {"margin", means[3]},
                                {"epoch", epoch}}};
}

train::Evaluation DpoObjective::evaluate(nn::Transformer& model) {
  if (mode_hook) mode_hook(false, micro_batches_);
  const int64_t n = val_pairs();
  double loss = 0, chosen = 0, rejected = 0, accuracy = 0;
  // With N ranks, rank r takes pairs r·B ... of each group of N·B (as in training).
  for (int64_t first = rank() * batch_; first < n; first += batch_ * ranks()) {
    const int64_t real = std::min(batch_, n - first);
    std::vector<const data::PreferencePair*> pairs;
    for (int64_t i = first; i < first + real; ++i)
      pairs.push_back(&data_->pairs()[static_cast<size_t>(split_.val[static_cast<size_t>(i)])]);
    const PairLogprobs policy = policy_logprobs(model, full_batch(pairs, batch_));
    const PairLogprobs ref = reference_logprobs(pairs, policy.chosen.device());
    // Only the real pairs: each val pair counts once, weighted by its share of the set.
    const DpoLossResult r = dpo_loss(ops::slice(policy.chosen, 0, 0, real), ops::slice(policy.rejected, 0, 0, real),
                                     ref.chosen, ref.rejected, settings_.beta, settings_.loss_type);
    const double w = static_cast<double>(real);
    loss += r.loss.item() * w;
    chosen += r.chosen_reward * w;
    rejected += r.rejected_reward * w;
    accuracy += r.accuracy * w;
  }
  if (ranks() > 1) {
    double sums[4] = {loss, chosen, rejected, accuracy};
    comm_->allreduce_sum_ordered(sums, 4);  // in rank order: the same bits on every rank
    loss = sums[0], chosen = sums[1], rejected = sums[2], accuracy = sums[3];
  }
  const double N = static_cast<double>(n);
  return train::Evaluation{loss / N,
                           {{"chosen_reward", chosen / N},
                            {"rejected_reward", rejected / N},
                            {"accuracy", accuracy / N},
                            {"margin", (chosen - rejected) / N}}};
}

uint64_t DpoObjective::data_fingerprint() const {
  return state_fingerprint(train_loader_.state());  // the loader's state fingerprints the data and the split
}

json DpoObjective::data_state() const { return json{{"loader", train_loader_.state()}, {"micro_batches", micro_batches_}}; }

void DpoObjective::restore_data_state(const json& state) {
  SLLM_CHECK(state.is_object() && state.contains("loader") && state.contains("micro_batches") &&
                 state["micro_batches"].is_number_unsigned(),
             "the DPO data state is malformed (expected {\"loader\", \"micro_batches\"})",
             "resume from a checkpoint written by `sllm dpo`");
  train_loader_.restore(state["loader"]);
  micro_batches_ = state["micro_batches"].get<uint64_t>();
}

}  // namespace sllm::rl
