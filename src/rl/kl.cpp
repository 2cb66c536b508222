#include "rl/kl.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace sllm::rl {

double kl_k3(double logp, double logp_ref) {
  const double log_r = logp_ref - logp;
  // expm1 keeps the small-difference case exact: (r − 1) − log r ≈ (log r)²/2 there.
  return std::expm1(log_r) - log_r;
}

KLController::KLController(double init_beta, double target, double horizon)
    : beta_(init_beta), target_(target), horizon_(horizon) {
  SLLM_CHECK(init_beta >= 0 && std::isfinite(init_beta), str("KL coefficient must be >= 0, got ", init_beta),
             "use e.g. --kl-coef 0.05");
  SLLM_CHECK(target <= 0 || horizon > 0, str("adaptive KL needs a horizon > 0, got ", horizon),
             "use e.g. --kl-horizon 10000 with --target-kl");
}

void KLController::update(double kl, int64_t n_steps) {
  if (!adaptive()) return;
  const double e = std::clamp(kl / target_ - 1.0, -0.2, 0.2);
  beta_ *= 1.0 + e * static_cast<double>(n_steps) / horizon_;
}

nlohmann::json KLController::state() const { return {{"beta", beta_}, {"target", target_}, {"horizon", horizon_}}; }

void KLController::restore(const nlohmann::json& state) {
  beta_ = state.at("beta").get<double>();
  target_ = state.at("target").get<double>();
  horizon_ = state.at("horizon").get<double>();
}

}  // namespace sllm::rl
