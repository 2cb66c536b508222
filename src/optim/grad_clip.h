// Gradient clipping by global L2 norm (Pascanu, Mikolov & Bengio, "On the difficulty of
// training recurrent neural networks", ICML 2013), with torch.nn.utils.clip_grad_norm_
// semantics: norm = sqrt(sum over all grads of g²); when norm > max_norm every grad is
// scaled in place by max_norm / (norm + 1e-6). Returns the norm before clipping (log it:
// spikes in it are the first sign of a diverging run).
//
// The sum is taken in double over a fixed partition (each param cut into fixed-size blocks,
// block sums added in param and block order), so the result does not depend on the thread
// count. CUDA grads are summed together in one launch over the multi-tensor partition
// (kernels::cuda::sum_of_squares_multi: double partials added on the host in a fixed order,
// one read back per call), then added to the host grads' sum; this differs from summing
// the same grads on the CPU only by double rounding (relative <= 2 (N - 1) 2^-53 for N
// elements, tests/cuda/test_cuda_multi_tensor.cpp). Scaling CUDA grads is one launch too.
//
// max_norm <= 0 disables clipping; the norm is still returned. Params without a gradient
// are skipped (see has_grad). A non-finite norm is returned as is, and like
// PyTorch the grads are then scaled by max_norm / inf = 0 (or NaN): check the return value.
#pragma once
#include <vector>

#include "optim/param.h"

namespace sllm::optim {

double clip_grad_norm(const std::vector<ParamRef>& params, double max_norm);

// clip_grad_norm in two halves, so the scaling can ride along the optimizer's pass:
//   const optim::ClipScale clip = optim::clip_scale(params, max_norm);   // grads untouched
//   opt.step(lr, clip.scale);   // = clip_grad_norm(params, max_norm); opt.step(lr), bit for bit
struct ClipScale {
  double norm;  // the global L2 norm of the grads (before clipping), as clip_grad_norm returns
  float scale;  // what clip_grad_norm multiplies every grad by; 1 when it would not clip
};
ClipScale clip_scale(const std::vector<ParamRef>& params, double max_norm);

// Every grad *= scale in place (one float rounding per element; one launch for CUDA grads).
void scale_grads(const std::vector<ParamRef>& params, float scale);

}  // namespace sllm::optim
