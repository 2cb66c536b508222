// AdamW: Adam with decoupled weight decay (Loshchilov & Hutter 2019, Alg. 2), with the
// update order of PyTorch's torch.optim.AdamW (single-tensor path):
//   param *= 1 - lr * wd                       (decay first, on the old param)
//   m = beta1 m + (1 - beta1) g,   v = beta2 v + (1 - beta2) g²
//   mhat = m / (1 - beta1^step),   vhat = v / (1 - beta2^step)      (step is 1-based)
//   param -= lr * mhat / (sqrt(vhat) + eps)
// Legend: n parameters; param, grad, m, v are all (n).
#include <cmath>

#include "kernels/kernels.h"

namespace sllm::kernels {
namespace {
constexpr int64_t kParallelMin = 1 << 14;  // below this, one thread
}  // namespace

// Like PyTorch, the bias corrections are folded into two scalars computed in double:
// param -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps), bc1 = 1 - beta1^step, bc2 = 1 - beta2^step.
void adamw_update(float* param, const float* grad, float* m, float* v, int64_t n, float lr, float beta1,
                  float beta2, float eps, float weight_decay, int64_t step) {
  const double bc1 = 1.0 - std::pow(double(beta1), double(step));
  const double bc2 = 1.0 - std::pow(double(beta2), double(step));
  const float step_size = float(double(lr) / bc1);
  const float inv_sqrt_bc2 = float(1.0 / std::sqrt(bc2));
  const float decay = 1.0f - lr * weight_decay;
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const float g = grad[i];
    const float mi = beta1 * m[i] + (1.0f - beta1) * g;
    const float vi = beta2 * v[i] + (1.0f - beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    param[i] = param[i] * decay - step_size * mi / (std::sqrt(vi) * inv_sqrt_bc2 + eps);
  }
}

void adamw_update_ref(float* param, const float* grad, float* m, float* v, int64_t n, float lr, float beta1,
                      float beta2, float eps, float weight_decay, int64_t step) {
  for (int64_t i = 0; i < n; ++i) {
    const double g = grad[i];
    const double mi = double(beta1) * m[i] + (1.0 - double(beta1)) * g;
    const double vi = double(beta2) * v[i] + (1.0 - double(beta2)) * g * g;
    const double mhat = mi / (1.0 - std::pow(double(beta1), double(step)));
    const double vhat = vi / (1.0 - std::pow(double(beta2), double(step)));
    double p = double(param[i]) * (1.0 - double(lr) * double(weight_decay));
    p -= double(lr) * mhat / (std::sqrt(vhat) + double(eps));
    m[i] = float(mi);
    v[i] = float(vi);
    param[i] = float(p);
  }
}

}  // namespace sllm::kernels
