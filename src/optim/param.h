// Parameters as the optimizer sees them: a name (for checkpoints and messages), the leaf
// tensor, and whether decoupled weight decay applies to it.
#pragma once
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace sllm::optim {

struct ParamRef {
  std::string name;  // unique; checkpoint keys are "<name>.exp_avg" and "<name>.exp_avg_sq"
  Tensor param;      // an f32 leaf; its .grad() holds the gradient after backward
  bool decay;        // decoupled weight decay applies (see default_decay)
};

// True when the optimizer and the gradient clipper act on this param: it requires grad and
// backward reached it (frozen or unreached params have no .grad() and are skipped).
bool has_grad(const ParamRef& p);

// Default decay policy, the one of GPT-2/nanoGPT and most LLM recipes: decay only matrices
// (ndim >= 2) that are not embeddings. Norm gains, biases (ndim 1) and embedding tables
// ("wte", "wpe", "embed_tokens" in the name) are not decayed: shrinking them toward zero
// only hurts (Loshchilov & Hutter 2019 decay weights; Karpathy's nanoGPT
// configure_optimizers uses the same ndim >= 2 rule).
bool default_decay(const std::string& name, const Tensor& param);

// Checks a parameter list: names unique and non-empty, tensors defined, f32, on the CPU
// (or on a GPU in CUDA builds), and no tensor listed twice (tied weights must be listed
// once, or they would be updated twice per step). Raises sllm::Error naming the offending
// entry.
void check_params(const std::vector<ParamRef>& params, const std::string& who);

}  // namespace sllm::optim
