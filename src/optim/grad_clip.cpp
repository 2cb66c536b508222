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

#if SLLM_HAVE_CUDA
// The sums of squares of GPU gradients, one per tensor, written into a device array and
// read back with ONE wait for the GPU (a host round trip per tensor would stall a training
// step ~150 times). Squares in fp32 (g*g), each sum in double with the backend's fixed
// partition, rounded to float: a relative 6e-8 more than on the CPU, far below what a
// clipping threshold can tell apart.
std::vector<float> device_sums_of_squares(const std::vector<Tensor>& grads) {
  Tensor sums = Tensor::empty({int64_t(grads.size())}, DType::F32, Device::CUDA);
  for (size_t i = 0; i < grads.size(); ++i) {
    const Tensor& g = grads[i];
    Tensor sq = Tensor::empty(g.shape(), DType::F32, Device::CUDA);
    kernels::cuda::binary_forward(kernels::BinaryOp::Mul, sq.mutable_f32(), g.f32(), g.f32(), g.numel(), g.numel());
    kernels::cuda::sum_forward(sums.mutable_f32() + i, sq.f32(), sq.numel());
  }
  return sums.to_floats();
}
#endif

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
  std::vector<Tensor> device_grads;
  for (const auto& p : params) {
    if (!has_grad(p)) continue;
    const Tensor g = p.param.grad();
    if (g.device() == Device::CPU) total += sum_of_squares(g.f32(), g.numel());
    else device_grads.push_back(g);
  }
#if SLLM_HAVE_CUDA
  if (!device_grads.empty())
    for (float s : device_sums_of_squares(device_grads)) total += double(s);
#endif
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
