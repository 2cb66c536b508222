#include "rl/dpo.h"

#include <cmath>

#include "core/error.h"
#include "ops/ops.h"

namespace sllm::rl {

DpoLossType parse_dpo_loss_type(const std::string& name) {
  if (name == "sigmoid") return DpoLossType::Sigmoid;
  if (name == "ipo") return DpoLossType::Ipo;
  throw Error(str("unknown DPO loss type '", name, "'"),
              "pass --loss-type sigmoid (DPO, Rafailov et al. 2023) or ipo (Azar et al. 2023)");
}

const char* dpo_loss_type_name(DpoLossType type) { return type == DpoLossType::Sigmoid ? "sigmoid" : "ipo"; }

Tensor sequence_logprobs(const Tensor& logits, const Tensor& labels) {
  SLLM_CHECK(logits.ndim() == 3 && labels.ndim() == 2 && labels.dim(0) == logits.dim(0) &&
                 labels.dim(1) == logits.dim(1),
             "sequence_logprobs: logits must be (R, T, V) and labels (R, T)", "pass the model's logits and their labels");
  const int64_t T = labels.dim(1);
  // −log p per position, 0 where the label is ignored (prompt and padding).
  const Tensor nll = ops::cross_entropy_per_token(logits, labels, kIgnoreLabel);  // (R, T)
  const Tensor ones = Tensor::full({T, 1}, 1.0f).to(logits.device());           // (T, 1)
  const Tensor row_nll = ops::matmul(nll, ones);                                 // (R, 1)
  return ops::scale(ops::reshape(row_nll, {labels.dim(0)}), -1.0f);            // (R)
}

std::vector<int64_t> response_lengths(const Tensor& labels) {
  SLLM_CHECK(labels.ndim() == 2 && labels.dtype() == DType::I32, "response_lengths: labels must be (R, T) i32",
             "pass the batch's labels");
  const Tensor host = labels.device() == Device::CPU ? labels : labels.to(Device::CPU);
  const int64_t R = host.dim(0), T = host.dim(1);
  std::vector<int64_t> n(static_cast<size_t>(R), 0);
  const int32_t* l = host.i32();
  for (int64_t r = 0; r < R; ++r)
    for (int64_t t = 0; t < T; ++t) n[static_cast<size_t>(r)] += l[r * T + t] != kIgnoreLabel;
  return n;
}

DpoLossResult dpo_loss(const Tensor& policy_chosen, const Tensor& policy_rejected, const Tensor& ref_chosen,
                       const Tensor& ref_rejected, double beta, DpoLossType type) {
  SLLM_CHECK(beta > 0 && std::isfinite(beta), str("DPO: beta must be > 0, got ", beta), "pass e.g. --beta 0.1");
  SLLM_CHECK(policy_chosen.ndim() == 1 && policy_chosen.dim(0) > 0, "dpo_loss: the log-probabilities must be (P), P > 0",
             "pass one log-probability per pair");
  const int64_t P = policy_chosen.dim(0);
  for (const Tensor* t : {&policy_rejected, &ref_chosen, &ref_rejected})
    SLLM_CHECK(t->shape() == policy_chosen.shape(), "dpo_loss: the four log-probability tensors must have one shape (P)",
               "pass one log-probability per pair in each");
  const Device dev = policy_chosen.device();

  // h = (π_c − π_r) − (ref_c − ref_r), in TRL's order (dpo.h).
  const Tensor h = ops::sub(ops::sub(policy_chosen, policy_rejected), ops::sub(ref_chosen, ref_rejected));  // (P)
  DpoLossResult r;
  if (type == DpoLossType::Sigmoid) {
    // −log σ(z) = −log softmax([z, 0])[0]: a two-class cross-entropy with the chosen class as
    // the target, which is the Bradley–Terry likelihood DPO maximizes (paper eq. 7). The
    // cross-entropy kernel's log-sum-exp keeps it finite for any z, and it already averages.
    const Tensor z = ops::reshape(ops::scale(h, static_cast<float>(beta)), {P, 1});            // (P, 1)
    const Tensor two = ops::concat({z, Tensor::zeros({P, 1}, DType::F32, dev)}, 1);             // (P, 2)
    r.loss = ops::cross_entropy(two, Tensor::zeros({P}, DType::I32), kIgnoreLabel);
  } else {
    const Tensor target = Tensor::full({P}, static_cast<float>(-1.0 / (2.0 * beta))).to(dev);  // (P)
    const Tensor d = ops::add(h, target);                                                      // h − 1/(2β)
    r.loss = ops::mean(ops::mul(d, d));
  }

  // The metrics, in double on the host; no graph.
  auto host = [](const Tensor& t) { return t.device() == Device::CPU ? t : t.to(Device::CPU); };
  const Tensor pc = host(policy_chosen), pr = host(policy_rejected), rc = host(ref_chosen), rr = host(ref_rejected);
  double chosen = 0, rejected = 0, correct = 0;
  for (int64_t i = 0; i < P; ++i) {
    const double c = beta * (double(pc.f32()[i]) - double(rc.f32()[i]));
    const double w = beta * (double(pr.f32()[i]) - double(rr.f32()[i]));
    chosen += c;
    rejected += w;
    correct += c > w ? 1.0 : 0.0;
  }
  r.chosen_reward = chosen / double(P);
  r.rejected_reward = rejected / double(P);
  r.accuracy = correct / double(P);
  r.margin = r.chosen_reward - r.rejected_reward;
  return r;
}

}  // namespace sllm::rl
