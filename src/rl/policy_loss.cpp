#include "rl/policy_loss.h"

#include <algorithm>
#include <cmath>

#include "autograd/autograd.h"
#include "core/error.h"
#include "rl/kl.h"

namespace sllm::rl {

namespace {

// The f32 values of x on the host.
std::vector<float> host_values(const Tensor& x) {
  const Tensor h = x.device() == Device::CPU ? x : x.to(Device::CPU);
  return std::vector<float>(h.f32(), h.f32() + h.numel());
}

void check_sizes(const char* op, const Tensor& x, std::initializer_list<const std::vector<float>*> vs) {
  SLLM_CHECK(x.dtype() == DType::F32, str(op, ": the per-token input must be f32"), "cast it first");
  for (const std::vector<float>* v : vs)
    SLLM_CHECK(v == nullptr || static_cast<int64_t>(v->size()) == x.numel(),
               str(op, ": a per-token vector has ", v ? v->size() : 0, " entries for ", x.numel(), " tokens"),
               "every per-token vector is the (B, T) batch flattened");
}

double masked_count(const std::vector<float>& mask) {
  double n = 0;
  for (float m : mask) n += m;
  SLLM_CHECK(n > 0, "policy loss: no response token in the minibatch", "every response has at least one token");
  return n;
}

// A scalar on x's device whose gradient w.r.t. x is d_dx (one entry per element of x) times
// the incoming scalar gradient.
Tensor scalar_with_gradient(const Tensor& x, double value, std::vector<float> d_dx, const char* op) {
  Tensor loss = Tensor::from_floats({static_cast<float>(value)}, {1});
  if (x.device() != Device::CPU) loss = loss.to(x.device());
  if (autograd::needs_grad({x})) {
    const Shape shape = x.shape();
    const Device dev = x.device();
    autograd::record(loss, op, {x}, [d_dx = std::move(d_dx), shape, dev](const Tensor& g) {
      const float gs = g.device() == Device::CPU ? g.f32()[0] : g.to(Device::CPU).f32()[0];
      std::vector<float> grad(d_dx.size());
      for (size_t i = 0; i < grad.size(); ++i) grad[i] = d_dx[i] * gs;
      Tensor t = Tensor::from_floats(grad, shape);
      return std::vector<Tensor>{dev == Device::CPU ? t : t.to(dev)};
    });
  }
  return loss;
}

}  // namespace

PolicyLoss clipped_policy_loss(const Tensor& logp, const std::vector<float>& old_logp,
                               const std::vector<float>& advantages, const std::vector<float>& mask, double clip_eps,
                               const std::vector<float>* ref_logp, double kl_coef) {
  check_sizes("clipped_policy_loss", logp, {&old_logp, &advantages, &mask, ref_logp});
  const std::vector<float> lp = host_values(logp);
  const double n = masked_count(mask);
  double loss = 0, clipped = 0, approx_kl = 0, ratio_sum = 0, kl_sum = 0;
  std::vector<float> d(lp.size(), 0.0f);
  for (size_t i = 0; i < lp.size(); ++i) {
    if (mask[i] == 0.0f) continue;
    const double A = advantages[i], diff = double(lp[i]) - double(old_logp[i]), ratio = std::exp(diff);
    const double unclipped = -A * ratio, clipped_term = -A * std::clamp(ratio, 1.0 - clip_eps, 1.0 + clip_eps);
    // The max picks the clipped term only where it is strictly larger: there ρ sits outside
    // [1 − ε, 1 + ε] on the side that would move the policy further, and the gradient is 0.
    const bool clip_won = clipped_term > unclipped;
    double grad = clip_won ? 0.0 : -A * ratio;  // d(−A ρ)/d logp = −A ρ
    loss += clip_won ? clipped_term : unclipped;
    clipped += clip_won ? 1.0 : 0.0;
    approx_kl += 0.5 * diff * diff;
    ratio_sum += ratio;
    if (ref_logp) {
      kl_sum += kl_k3(lp[i], (*ref_logp)[i]);
      loss += kl_coef * kl_k3(lp[i], (*ref_logp)[i]);
      grad += kl_coef * (1.0 - std::exp(double((*ref_logp)[i]) - double(lp[i])));  // d k3 / d logp
    }
    d[i] = static_cast<float>(grad / n);
  }
  PolicyLoss out;
  out.loss = scalar_with_gradient(logp, loss / n, std::move(d), "clipped_policy_loss");
  out.clipfrac = clipped / n;
  out.approx_kl = approx_kl / n;
  out.ratio_mean = ratio_sum / n;
  out.kl = kl_sum / n;
  return out;
}

ValueLoss clipped_value_loss(const Tensor& values, const std::vector<float>& old_values, const std::vector<float>& returns,
                             const std::vector<float>& mask, double clip_eps) {
  check_sizes("clipped_value_loss", values, {&old_values, &returns, &mask});
  const std::vector<float> v = host_values(values);
  const double n = masked_count(mask);
  double loss = 0, clipped = 0;
  std::vector<float> d(v.size(), 0.0f);
  for (size_t i = 0; i < v.size(); ++i) {
    if (mask[i] == 0.0f) continue;
    const double lo = double(old_values[i]) - clip_eps, hi = double(old_values[i]) + clip_eps;
    const double vc = std::clamp(double(v[i]), lo, hi), R = returns[i];
    const double e1 = (v[i] - R) * (v[i] - R), e2 = (vc - R) * (vc - R);
    // Where the clipped error wins, V sits outside the clip range (else vc == V and e2 == e1)
    // and the clipped value does not move with V: no gradient.
    const bool clip_won = e2 > e1;
    loss += 0.5 * (clip_won ? e2 : e1);
    clipped += clip_won ? 1.0 : 0.0;
    d[i] = clip_won ? 0.0f : static_cast<float>((double(v[i]) - R) / n);
  }
  ValueLoss out;
  out.loss = scalar_with_gradient(values, loss / n, std::move(d), "clipped_value_loss");
  out.clipfrac = clipped / n;
  return out;
}

}  // namespace sllm::rl
