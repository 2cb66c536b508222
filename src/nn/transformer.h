// The decoder-only Transformer, one class for both families (DESIGN.md, src/nn):
//   GPT-2: learned positions, LayerNorm, GELU(tanh), biases, tied embeddings.
//   Llama: RMSNorm, RoPE (HF half-split), SwiGLU MLP, grouped-query attention, no biases.
// Parameters carry their Hugging Face names; GPT-2's Conv1D weights are kept in the
// nn.Linear (out, in) layout here and transposed when read from or written to files.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "nn/config.h"
#include "tensor/tensor.h"

namespace sllm::nn {

struct Parameter {
  std::string name;     // Hugging Face tensor name
  Tensor value;         // f32 leaf
  bool conv1d = false;  // stored [in, out] in GPT-2 files
};

// Keys and values of every layer for incremental decoding: k, v (B, n_ctx, NKV*HD).
struct KVCache {
  std::vector<Tensor> k, v;
  int64_t length = 0;  // positions already cached
  int64_t batch = 0;
};

class Transformer {
 public:
  explicit Transformer(const ModelConfig& config);

  const ModelConfig& config() const { return config_; }
  std::vector<Parameter>& parameters() { return params_; }
  const std::vector<Parameter>& parameters() const { return params_; }
  Tensor& param(const std::string& name);

  // GPT-2 initialization (Radford et al. 2019): N(0, 0.02) weights and embeddings, residual
  // output projections scaled by 1/sqrt(2 * n_layer), zero biases, unit norm weights.
  void init(uint64_t seed);

  // ids (B, T) i32 → logits (B, T, V). With a cache, the ids continue the cached
  // sequence (positions cache->length ...), and the cache is extended.
  Tensor forward(const Tensor& ids, KVCache* cache = nullptr);
  // The trunk: ids (B, T) → the final norm's output (B, T, C), in the compute dtype. Heads
  // sit on it: forward() is lm_head(hidden).
  Tensor hidden(const Tensor& ids, KVCache* cache = nullptr);
  // The LM head's (V, C) weight (the token embedding when tied).
  Tensor& lm_head_weight();
  // The mean next-token loss of ids against targets (B, T), ignore_index skipped: the same
  // value as cross_entropy(forward(ids), targets), through ops::linear_cross_entropy, which
  // never materializes the logits' gradient separately and, in bf16 on CUDA, pads the
  // vocabulary for fast GEMMs.
  Tensor loss(const Tensor& ids, const Tensor& targets, int32_t ignore_index = -100);
  KVCache make_cache(int64_t batch) const;

  // Every parameter's requires_grad (trainable) flag.
  void set_trainable(bool on);

  // Moves every parameter (names and requires_grad kept; gradients dropped) and the RoPE
  // tables to `device`; forward then runs there (ids stay on the host: the embedding op
  // validates and uploads them). Device::CUDA needs ops::init_device(Device::CUDA) first.
  // Optimizers hold the parameter tensors: build them after moving the model.
  void to(Device device);
  Device device() const { return device_; }

  // The dtype of the activations between ops. F32 (default) is the reference. BF16, on
  // CUDA, is mixed-precision training (src/ops/mixed_precision.h): parameters, residual
  // stream, norms' statistics and loss stay fp32; the norms' outputs, every matmul, attention
  // and the MLP run in bf16, and forward returns bf16 logits. Not with a KV cache.
  void set_compute_dtype(DType dtype);
  DType compute_dtype() const { return compute_dtype_; }

 private:
  struct Layer;
  Tensor block(int64_t l, const Tensor& x, KVCache* cache, int64_t pos0);
  Tensor attention(int64_t l, const Tensor& h, KVCache* cache, int64_t pos0);
  Tensor mlp(int64_t l, const Tensor& h);
  Tensor add_param(const std::string& name, const Shape& shape, bool conv1d = false);
  Tensor& p(int64_t layer, const std::string& suffix);

  ModelConfig config_;
  std::vector<Parameter> params_;
  std::string layer_prefix_;  // "transformer.h." or "model.layers."
  Tensor rope_cos_, rope_sin_;  // (n_ctx, HD/2), Llama only
  Device device_ = Device::CPU;
  DType compute_dtype_ = DType::F32;
};

}  // namespace sllm::nn
