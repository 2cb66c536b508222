#include "optim/grad_clip.h"

#include <algorithm>
#include <cmath>

namespace sllm::optim {
namespace {

constexpr int64_t kBlock = 1 << 15;  // elements per partial sum; fixed, so sums are reproducible

// Sum of squares of g (n), accumulated in double, block partials added in block order.
double sum_of_squares(const float* g, int64_t n) {
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  std::vector<double> partial(static_cast<size_t>(blocks), 0.0);  // (blocks)
#pragma omp parallel for schedule(static) if (blocks > 1)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t begin = b * kBlock, end = std::min(n, begin + kBlock);
    double s = 0.0;
    for (int64_t i = begin; i < end; ++i) s += double(g[i]) * double(g[i]);
    partial[static_cast<size_t>(b)] = s;
  }
  double total = 0.0;
  for (double s : partial) total += s;
  return total;
}

}  // namespace

double clip_grad_norm(const std::vector<ParamRef>& params, double max_norm) {
  double total = 0.0;
  for (const auto& p : params)
    if (has_grad(p)) total += sum_of_squares(p.param.grad().f32(), p.param.grad().numel());
  const double norm = std::sqrt(total);
  if (max_norm > 0 && !(norm <= max_norm)) {  // written so that a NaN norm also scales, as PyTorch does
    const float coef = float(max_norm / (norm + 1e-6));
    for (const auto& p : params) {
      if (!has_grad(p)) continue;
      Tensor g = p.param.grad();
      float* d = g.mutable_f32();
      const int64_t n = g.numel();
#pragma omp parallel for schedule(static) if (n > kBlock)
      for (int64_t i = 0; i < n; ++i) d[i] *= coef;
    }
  }
  return norm;
}

}  // namespace sllm::optim
