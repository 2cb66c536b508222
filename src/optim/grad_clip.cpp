#include "optim/grad_clip.h"

#include <algorithm>
#include <cmath>

#if SLLM_HAVE_CUDA
#include "kernels/cuda_kernels.h"
#endif

namespace sllm::kernels::cuda {
class DeviceTable;  // kernels/cuda_kernels.h; only CUDA builds make one
}

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

// g *= coef in place.
void scale_in_place(Tensor& g, float coef) {
  float* d = g.mutable_f32();
  const int64_t n = g.numel();
#pragma omp parallel for schedule(static) if (n > kBlock)
  for (int64_t i = 0; i < n; ++i) d[i] *= coef;
}

#if SLLM_HAVE_CUDA
// The CUDA grads of params, for the multi-tensor kernels. `writable` bumps each grad's
// version (they are about to be scaled); the norm only reads them.
std::vector<kernels::cuda::GradSpan> device_grads(const std::vector<ParamRef>& params, bool writable) {
  std::vector<kernels::cuda::GradSpan> spans;
  for (const auto& p : params) {
    if (!has_grad(p) || p.param.device() != Device::CUDA) continue;
    Tensor g = p.param.grad();
    spans.push_back({writable ? g.mutable_f32() : const_cast<float*>(g.f32()), g.numel()});
  }
  return spans;
}
#endif

ClipScale clip_scale_impl(const std::vector<ParamRef>& params, double max_norm, kernels::cuda::DeviceTable* device_table) {
  double total = 0.0;
  for (const auto& p : params)
    if (has_grad(p) && p.param.device() == Device::CPU) total += sum_of_squares(p.param.grad().f32(), p.param.grad().numel());
#if SLLM_HAVE_CUDA
  const auto spans = device_grads(params, false);
  if (!spans.empty())
    total += kernels::cuda::sum_of_squares_multi(*device_table, spans);
#else
  (void)device_table;
#endif
  const double norm = std::sqrt(total);
  // Written so that a NaN norm also scales, as PyTorch does.
  const bool clip = max_norm > 0 && !(norm <= max_norm);
  return {norm, clip ? float(max_norm / (norm + 1e-6)) : 1.0f};
}

void scale_grads_impl(const std::vector<ParamRef>& params, float scale, kernels::cuda::DeviceTable* device_table) {
  for (const auto& p : params) {
    if (!has_grad(p) || p.param.device() != Device::CPU) continue;
    Tensor g = p.param.grad();
    scale_in_place(g, scale);
  }
#if SLLM_HAVE_CUDA
  const auto spans = device_grads(params, true);
  if (!spans.empty()) kernels::cuda::scale_multi(*device_table, spans, scale);
#else
  (void)device_table;
#endif
}

}  // namespace

ClipScale clip_scale(const std::vector<ParamRef>& params, double max_norm) {
#if SLLM_HAVE_CUDA
  kernels::cuda::DeviceTable table;
  return clip_scale_impl(params, max_norm, &table);
#else
  return clip_scale_impl(params, max_norm, nullptr);
#endif
}

void scale_grads(const std::vector<ParamRef>& params, float scale) {
#if SLLM_HAVE_CUDA
  kernels::cuda::DeviceTable table;
  scale_grads_impl(params, scale, &table);
#else
  scale_grads_impl(params, scale, nullptr);
#endif
}

double clip_grad_norm(const std::vector<ParamRef>& params, double max_norm) {
#if SLLM_HAVE_CUDA
  kernels::cuda::DeviceTable table;  // one upload serves both passes (same spans, same bytes)
  kernels::cuda::DeviceTable* device_table = &table;
#else
  kernels::cuda::DeviceTable* device_table = nullptr;
#endif
  const ClipScale c = clip_scale_impl(params, max_norm, device_table);
  // scale == 1 only when not clipping, or when max_norm / (norm + 1e-6) rounds to 1, where
  // scaling would change nothing (the norm is finite, so every grad is).
  if (c.scale != 1.0f) scale_grads_impl(params, c.scale, device_table);
  return c.norm;
}

}  // namespace sllm::optim
