#include "rl/advantages.h"

#include <cmath>

#include "core/error.h"

namespace sllm::rl {

void gae(const float* rewards, const float* values, int64_t n, double gamma, double lam, float* advantages,
         float* returns) {
  double next_value = 0.0, next_advantage = 0.0;
  for (int64_t t = n - 1; t >= 0; --t) {
    const double delta = double(rewards[t]) + gamma * next_value - double(values[t]);
    next_advantage = delta + gamma * lam * next_advantage;
    advantages[t] = static_cast<float>(next_advantage);
    returns[t] = static_cast<float>(next_advantage + double(values[t]));
    next_value = double(values[t]);
  }
}

void whiten(std::vector<float>& x) {
  const size_t n = x.size();
  if (n == 0) return;
  double mean = 0.0;
  for (float v : x) mean += v;
  mean /= static_cast<double>(n);
  if (n == 1) {
    x[0] = 0.0f;
    return;
  }
  double var = 0.0;
  for (float v : x) var += (v - mean) * (v - mean);
  var /= static_cast<double>(n - 1);
  const double inv = 1.0 / std::sqrt(var + 1e-8);
  for (float& v : x) v = static_cast<float>((v - mean) * inv);
}

std::vector<float> group_advantages(const std::vector<float>& rewards, int64_t group_size, double eps) {
  SLLM_CHECK(group_size >= 2 && rewards.size() % static_cast<size_t>(group_size) == 0,
             str("group_advantages: ", rewards.size(), " rewards in groups of ", group_size),
             "GRPO needs at least 2 completions per prompt (--num-generations) and whole groups");
  std::vector<float> out(rewards.size());
  for (size_t g0 = 0; g0 < rewards.size(); g0 += static_cast<size_t>(group_size)) {
    double mean = 0.0, var = 0.0;
    for (int64_t i = 0; i < group_size; ++i) mean += rewards[g0 + size_t(i)];
    mean /= static_cast<double>(group_size);
    for (int64_t i = 0; i < group_size; ++i) var += (rewards[g0 + size_t(i)] - mean) * (rewards[g0 + size_t(i)] - mean);
    const double sd = std::sqrt(var / static_cast<double>(group_size - 1));
    for (int64_t i = 0; i < group_size; ++i)
      out[g0 + size_t(i)] = static_cast<float>((rewards[g0 + size_t(i)] - mean) / (sd + eps));
  }
  return out;
}

}  // namespace sllm::rl
