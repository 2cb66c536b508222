// AdamW over a whole parameter list in one launch (multi_tensor.cuh's (tensor, chunk)
// blocks): torch.optim.AdamW's foreach path (_multi_tensor_adamw) in spirit, with the
// element arithmetic of the per-tensor kernel (adamw.cuh), so each tensor gets exactly what
// adamw_update would give it. Two extras that save whole passes over the parameters:
//  - grad_scale: the gradient clipping factor folded in. g = grad * grad_scale is rounded
//    once, as the in-place scale (scale_forward) would have stored it, so the update equals
//    clip-then-step bit for bit; the stored gradient is left as it was.
//  - shadow: the bf16 copy of a weight that bf16 matmuls read (tensor/bf16_shadow.h) gets
//    each new value rounded to nearest even (element.cuh, as cast_forward), so the forward
//    does not cast the weight again. Padding rows past n are never touched.
// Legend: count tensors; per tensor n elements, param, grad, m, v (n), shadow (n) bf16.
#include <type_traits>

#include "kernels/cuda/adamw.cuh"
#include "kernels/cuda/element.cuh"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/multi_tensor.cuh"
#include "kernels/cuda_kernels.h"

namespace sllm::kernels::cuda {
namespace {

// One tensor in the device table. No implicit padding (the DeviceTable compares bytes).
struct AdamWEntry {
  float* param;            // (n)
  const float* grad;       // (n)
  float* m;                // (n)
  float* v;                // (n)
  __nv_bfloat16* shadow;   // (n) or nullptr
  int64_t n;
  int64_t first_block;     // multi_tensor.cuh
  float decay;             // 1 - lr * weight_decay of this tensor
  float unused;            // 0: makes the struct's bytes fully defined
};
static_assert(sizeof(AdamWEntry) == 5 * sizeof(void*) + 2 * sizeof(int64_t) + 2 * sizeof(float));

__global__ void adamw_multi_kernel(const AdamWEntry* entries, int64_t count, AdamScalars k, float grad_scale,
                                   bool scale_grads) {
  const AdamWEntry e = entries[entry_of_block(entries, count, blockIdx.x)];
  k.decay = e.decay;
  const int64_t begin = (int64_t(blockIdx.x) - e.first_block) * kMultiTensorChunk;
  const int64_t end = min(e.n, begin + kMultiTensorChunk);
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
    const float g = scale_grads ? mul_rn(e.grad[i], grad_scale) : e.grad[i];
    const float p = adamw_element(e.param[i], g, e.m[i], e.v[i], k);
    e.param[i] = p;
    if (e.shadow) e.shadow[i] = from_float<__nv_bfloat16>(p);
  }
}

}  // namespace

void adamw_update_multi(DeviceTable& table, const std::vector<AdamWTensor>& tensors, float lr, float beta1,
                        float beta2, float eps, float grad_scale, int64_t step) {
  SLLM_CHECK(step >= 1, str("adamw_update_multi: step=", step), "AdamW steps are counted from 1");
  std::vector<AdamWEntry> entries;
  entries.reserve(tensors.size());
  for (const AdamWTensor& t : tensors) {
    SLLM_CHECK(t.n == 0 || (t.param && t.grad && t.m && t.v),
               str("adamw_update_multi: tensor ", entries.size(), " has a null buffer"),
               "param, grad, m and v are required; only shadow may be nullptr");
    // The per-tensor entry's decay, computed the same way (adam_scalars).
    const float decay = adam_scalars(lr, beta1, beta2, eps, t.weight_decay, step).decay;
    entries.push_back({t.param, t.grad, t.m, t.v, device_ptr(t.shadow), t.n, 0, decay, 0.0f});
  }
  const int64_t blocks = assign_blocks(entries, "adamw_update_multi");
  if (blocks == 0) return;
  const auto* device_entries =
      static_cast<const AdamWEntry*>(table.upload(entries.data(), entries.size() * sizeof(AdamWEntry)));
  const AdamScalars k = adam_scalars(lr, beta1, beta2, eps, 0.0f, step);
  SLLM_LAUNCH(unsigned(blocks), kThreads, 0, adamw_multi_kernel)(device_entries, int64_t(entries.size()), k,
                                                                 grad_scale, grad_scale != 1.0f);
  SLLM_CUDA_CHECK_LAUNCH();
}

}  // namespace sllm::kernels::cuda
