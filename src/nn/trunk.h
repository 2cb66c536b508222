// The trunk: everything between token ids and the final norm's output, one implementation
// per family (GPT2Trunk, LlamaTrunk). The Transformer puts heads on it (DESIGN.md: the LM
// head today; a reward or value head later) and treats its modules generically: it
// enumerates their parameters and Linears without knowing the family's layout.
#pragma once
#include <memory>
#include <vector>

#include "nn/config.h"
#include "nn/embedding.h"
#include "nn/kv_cache.h"
#include "nn/linear.h"
#include "nn/parameter.h"
#include "tensor/tensor.h"

namespace sllm::nn {

class Trunk {
 public:
  virtual ~Trunk() = default;
  // ids (B, T) i32 → (B, T, C) in `act` (the compute dtype). With a cache, the ids continue
  // the cached sequence at position cache->length; the caller advances the length.
  virtual Tensor forward(const Tensor& ids, KVCache* cache, DType act) = 0;
  // The token table (V, C), which is also the LM head's weight when tied.
  virtual Embedding& token_embedding() = 0;
  // Every parameter in the order of the Hugging Face files.
  virtual void append_parameters(std::vector<Parameter>& out) = 0;
  // Every Linear, in the same order.
  virtual void append_linears(std::vector<Linear*>& out) = 0;
  // Tensors that are not parameters but move with the model (RoPE's tables).
  virtual std::vector<Tensor*> buffers() { return {}; }

  // Whether forward() checkpoints each block (autograd::checkpoint) while grad mode is on.
  bool checkpoint_blocks = false;
};

// The trunk of config.family (defined in transformer.cpp, its one user).
std::unique_ptr<Trunk> make_trunk(const ModelConfig& config);

}  // namespace sllm::nn
