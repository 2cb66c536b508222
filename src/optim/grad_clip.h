// Gradient clipping by global L2 norm (Pascanu, Mikolov & Bengio, "On the difficulty of
// training recurrent neural networks", ICML 2013), with torch.nn.utils.clip_grad_norm_
// semantics: norm = sqrt(sum over all grads of g²); when norm > max_norm every grad is
// scaled in place by max_norm / (norm + 1e-6). Returns the norm before clipping (log it:
// spikes in it are the first sign of a diverging run).
//
// The sum is taken in double over a fixed partition (each param cut into fixed-size blocks,
// block sums added in param and block order), so the result does not depend on the thread
// count. max_norm <= 0 disables clipping; the norm is still returned. Params without a
// gradient are skipped (see has_grad). A non-finite norm is returned as is, and like
// PyTorch the grads are then scaled by max_norm / inf = 0 (or NaN): check the return value.
#pragma once
#include <vector>

#include "optim/param.h"

namespace sllm::optim {

double clip_grad_norm(const std::vector<ParamRef>& params, double max_norm);

}  // namespace sllm::optim
