#include "optim/grad_clip.h"

#include <algorithm>
#include <cmath>

#if SLLM_HAVE_CUDA
#include "kernels/cuda_kernels.h"
#endif

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

// The same on a GPU gradient: squares in fp32 (g*g), summed in double with the backend's
// fixed partition. The squares round once more than on the CPU (relative 6e-8 each), far
// below what a clipping threshold can tell apart.
double sum_of_squares(const Tensor& g) {
#if SLLM_HAVE_CUDA
  if (g.device() == Device::CUDA) {
    Tensor sq = Tensor::empty(g.shape(), DType::F32, Device::CUDA);
    kernels::cuda::binary_forward(kernels::BinaryOp::Mul, sq.mutable_f32(), g.f32(), g.f32(), g.numel(), g.numel());
    return kernels::cuda::sum_forward(sq.f32(), sq.numel());
  }
#endif
  return sum_of_squares(g.f32(), g.numel());
}

// g *= coef in place.
void scale_in_place(Tensor& g, float coef) {
  float* d = g.mutable_f32();
  const int64_t n = g.numel();
#if SLLM_HAVE_CUDA
  if (g.device() == Device::CUDA) {
    kernels::cuda::scale_forward(d, d, coef, n);
    return;
  }
#endif
#pragma omp parallel for schedule(static) if (n > kBlock)
  for (int64_t i = 0; i < n; ++i) d[i] *= coef;
}

}  // namespace

double clip_grad_norm(const std::vector<ParamRef>& params, double max_norm) {
  double total = 0.0;
  for (const auto& p : params)
    if (has_grad(p)) total += sum_of_squares(p.param.grad());
  const double norm = std::sqrt(total);
  if (max_norm > 0 && !(norm <= max_norm)) {  // written so that a NaN norm also scales, as PyTorch does
    const float coef = float(max_norm / (norm + 1e-6));
    for (const auto& p : params) {
      if (!has_grad(p)) continue;
      Tensor g = p.param.grad();
      scale_in_place(g, coef);
    }
  }
  return norm;
}

}  // namespace sllm::optim
