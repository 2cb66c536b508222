// The decoder-only Transformer, one class for both families (DESIGN.md, src/nn):
//   GPT-2: learned positions, LayerNorm, GELU(tanh), biases, tied embeddings.
//   Llama: RMSNorm, RoPE (HF half-split), SwiGLU MLP, grouped-query attention, no biases.
// It is made of modules: a family's trunk (gpt2.h, llama.h: embeddings, blocks of
// attention, MLP and norms, each multiplying through an nn::Linear) and the LM head on
// the trunk's output. Parameters carry their Hugging Face names; GPT-2's Conv1D weights are
// kept in the nn.Linear (out, in) layout here and transposed when read from or written to files.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "nn/config.h"
#include "nn/kv_cache.h"
#include "nn/linear.h"
#include "nn/parameter.h"
#include "tensor/tensor.h"

namespace sllm::nn {

class Trunk;

// How a new model's parameters start: GPT-2's random initialization (init(0)), or zeros for
// a loader that overwrites every one of them (io::load_model, io::load_gguf_model). Drawing
// 135M normal variates only to overwrite them was 85% of loading SmolLM2.
enum class ParamInit { Random, Zeros };

class Transformer {
 public:
  explicit Transformer(const ModelConfig& config, ParamInit param_init = ParamInit::Random);
  ~Transformer();
  // Movable, not copyable: the modules live on the heap, so the parameter list stays valid
  // when the model moves; a copy would share every tensor with the original.
  Transformer(Transformer&&) noexcept;
  Transformer& operator=(Transformer&&) noexcept;
  Transformer(const Transformer&) = delete;
  Transformer& operator=(const Transformer&) = delete;

  const ModelConfig& config() const { return config_; }
  // Every parameter under its HF name, in the order of the HF files (checkpoints, optimizer
  // state and tests rely on it). The list is fixed when the model is built; its entries
  // refer to the modules' own tensors (assigning to p.value replaces a module's tensor).
  const std::vector<Parameter>& parameters() { return params_; }
  const std::vector<ConstParameter>& parameters() const { return const_params_; }
  Tensor& param(const std::string& name);

  // Every Linear of the trunk, in parameter order; path() gives its HF module path
  // ("model.layers.0.self_attn.q_proj"). The LM head is not among them (it is the tied
  // embedding, or Llama's untied lm_head): this list is what PEFT calls "all-linear".
  std::vector<Linear*> linears();
  // The trunk's Linear at an HF module path, or null when there is none.
  Linear* find_linear(const std::string& path);

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
  // A cache for `batch` rows of up to `length` positions (0: the whole context, n_ctx). A
  // generation that knows its longest sequence (prompt + new tokens) asks for no more. Its
  // keys and values are in the compute dtype: bf16 under mixed precision on CUDA (then only
  // in the ragged layout of batched generation), else f32.
  KVCache make_cache(int64_t batch, int64_t length = 0) const;

  // Rebuilds the parameter list after Linears were packed (Linear::set_packed_weight, as
  // quant::quantize_model does): packed weights are no parameters, so they leave it; the
  // rest keep their order.
  void refresh_parameters();
  // Bytes held by packed weights (0 for a dense model).
  int64_t packed_bytes();

  // Every parameter's requires_grad (trainable) flag.
  void set_trainable(bool on);

  // Moves every parameter (names and requires_grad kept; gradients dropped), packed weights
  // and the RoPE tables to `device`; forward then runs there (ids stay on the host: the embedding op
  // validates and uploads them). Device::CUDA needs ops::init_device(Device::CUDA) first.
  // Optimizers hold the parameter tensors: build them after moving the model.
  void to(Device device);
  Device device() const { return device_; }

  // The dtype of the activations between ops. F32 (default) is the reference. BF16, on
  // CUDA, is mixed-precision training (src/ops/mixed_precision.h): parameters, residual
  // stream, norms' statistics and loss stay fp32; the norms' outputs, every matmul, attention
  // and the MLP run in bf16, and forward returns bf16 logits. Not with a KV cache.
  void set_compute_dtype(DType dtype);
  // Activation checkpointing per block (autograd::checkpoint): training keeps each block's
  // input only and recomputes the block in backward, about a third more compute for
  // activations that no longer grow with depth. Off by default.
  void set_gradient_checkpointing(bool on);
  bool gradient_checkpointing() const;
  DType compute_dtype() const { return compute_dtype_; }

 private:
  ModelConfig config_;
  std::unique_ptr<Trunk> trunk_;
  std::unique_ptr<Linear> lm_head_;  // Llama with untied embeddings only
  std::vector<Parameter> params_;              // views of the modules' tensors, file order
  std::vector<ConstParameter> const_params_;   // the same, read-only
  Device device_ = Device::CPU;
  DType compute_dtype_ = DType::F32;
};

}  // namespace sllm::nn
