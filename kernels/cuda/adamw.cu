// AdamW on the GPU: Adam with decoupled weight decay (Loshchilov & Hutter 2019, Alg. 2) in
// torch.optim.AdamW's order, one fused pass over param, grad, m, v. Formula lines as
// kernels/cpu/adamw.cpp:
//   param *= 1 - lr * wd                       (decay first, on the old param)
//   m = beta1 m + (1 - beta1) g,   v = beta2 v + (1 - beta2) g²
//   param -= lr * mhat / (sqrt(vhat) + eps),  mhat = m / (1 - beta1^step), vhat = v / (1 - beta2^step)
// with the bias corrections folded into two per-step scalars computed in double on the host.
// The element arithmetic is adamw.cuh's, shared with the multi-tensor update
// (multi_tensor_adamw.cu), which is what the optimizer calls; this per-tensor entry stays
// for single buffers and as the reference the multi-tensor one is tested against.
// Legend: n parameters; param, grad, m, v are all (n).
#include "kernels/cuda/adamw.cuh"
#include "kernels/cuda/launch.h"
#include "kernels/cuda_kernels.h"

namespace sllm::kernels::cuda {
namespace {

__global__ void adamw_kernel(float* param, const float* grad, float* m, float* v, int64_t n, AdamScalars k) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    param[i] = adamw_element(param[i], grad[i], m[i], v[i], k);
}

}  // namespace

// step is 1-based.
void adamw_update(float* param, const float* grad, float* m, float* v, int64_t n, float lr, float beta1,
                  float beta2, float eps, float weight_decay, int64_t step) {
  SLLM_CHECK(n >= 0, str("adamw_update: negative parameter count ", n), "sizes must be >= 0");
  SLLM_CHECK(step >= 1, str("adamw_update: step=", step), "AdamW steps are counted from 1");
  if (n == 0) return;
  const AdamScalars k = adam_scalars(lr, beta1, beta2, eps, weight_decay, step);
  SLLM_LAUNCH(grid_for(n), kThreads, 0, adamw_kernel)(param, grad, m, v, n, k);
  SLLM_CUDA_CHECK_LAUNCH();
}

}  // namespace sllm::kernels::cuda
