// AdamW on the GPU: Adam with decoupled weight decay (Loshchilov & Hutter 2019, Alg. 2) in
// torch.optim.AdamW's order, one fused pass over param, grad, m, v. Formula lines as
// kernels/cpu/adamw.cpp:
//   param *= 1 - lr * wd                       (decay first, on the old param)
//   m = beta1 m + (1 - beta1) g,   v = beta2 v + (1 - beta2) g²
//   param -= lr * mhat / (sqrt(vhat) + eps),  mhat = m / (1 - beta1^step), vhat = v / (1 - beta2^step)
// with the bias corrections folded into two per-step scalars computed in double on the host.
// Legend: n parameters; param, grad, m, v are all (n).
#include <cmath>

#include "kernels/cuda/launch.h"
#include "kernels/cuda_kernels.h"

namespace sllm::kernels::cuda {
namespace {

// param = param * decay - step_size * m / (sqrt(v) * inv_sqrt_bc2 + eps),
// step_size = lr / (1 - beta1^step), inv_sqrt_bc2 = 1 / sqrt(1 - beta2^step).
struct AdamScalars {
  float beta1, one_minus_beta1, beta2, one_minus_beta2, eps, decay, step_size, inv_sqrt_bc2;
};

__global__ void adamw_kernel(float* param, const float* grad, float* m, float* v, int64_t n, AdamScalars k) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float g = grad[i];
    const float mi = k.beta1 * m[i] + k.one_minus_beta1 * g;
    const float vi = k.beta2 * v[i] + k.one_minus_beta2 * (g * g);
    m[i] = mi;
    v[i] = vi;
    param[i] = param[i] * k.decay - k.step_size * mi / (sqrtf(vi) * k.inv_sqrt_bc2 + k.eps);
  }
}

}  // namespace

// step is 1-based.
void adamw_update(float* param, const float* grad, float* m, float* v, int64_t n, float lr, float beta1,
                  float beta2, float eps, float weight_decay, int64_t step) {
  SLLM_CHECK(n >= 0, str("adamw_update: negative parameter count ", n), "sizes must be >= 0");
  SLLM_CHECK(step >= 1, str("adamw_update: step=", step), "AdamW steps are counted from 1");
  if (n == 0) return;
  const double bc1 = 1.0 - std::pow(double(beta1), double(step));
  const double bc2 = 1.0 - std::pow(double(beta2), double(step));
  const AdamScalars k{beta1,
                      1.0f - beta1,
                      beta2,
                      1.0f - beta2,
                      eps,
                      1.0f - lr * weight_decay,
                      float(double(lr) / bc1),
                      float(1.0 / std::sqrt(bc2))};
  SLLM_LAUNCH(grid_for(n), kThreads, 0, adamw_kernel)(param, grad, m, v, n, k);
  SLLM_CUDA_CHECK_LAUNCH();
}

}  // namespace sllm::kernels::cuda
