#include "nn/transformer.h"

#include <cmath>
#include <cstring>

#include "autograd/autograd.h"
#include "core/error.h"
#include "core/rng.h"
#include "kernels/kernels.h"
#if SLLM_HAVE_CUDA
#include "kernels/cuda_kernels.h"
#endif
#include "ops/ops.h"

namespace sllm::nn {

Transformer::Transformer(const ModelConfig& config) : config_(config) {
  config_.validate();
  const int64_t C = config_.n_embd, V = config_.vocab_size, H = config_.n_inner;
  const int64_t kvC = config_.n_kv_head * config_.head_dim();
  if (config_.family == Family::GPT2) {
    layer_prefix_ = "transformer.h.";
    add_param("transformer.wte.weight", {V, C});
    add_param("transformer.wpe.weight", {config_.n_ctx, C});
    for (int64_t l = 0; l < config_.n_layer; ++l) {
      const std::string pre = layer_prefix_ + std::to_string(l) + ".";
      add_param(pre + "ln_1.weight", {C});
      add_param(pre + "ln_1.bias", {C});
      add_param(pre + "attn.c_attn.weight", {3 * C, C}, true);
      add_param(pre + "attn.c_attn.bias", {3 * C});
      add_param(pre + "attn.c_proj.weight", {C, C}, true);
      add_param(pre + "attn.c_proj.bias", {C});
      add_param(pre + "ln_2.weight", {C});
      add_param(pre + "ln_2.bias", {C});
      add_param(pre + "mlp.c_fc.weight", {H, C}, true);
      add_param(pre + "mlp.c_fc.bias", {H});
      add_param(pre + "mlp.c_proj.weight", {C, H}, true);
      add_param(pre + "mlp.c_proj.bias", {C});
    }
    add_param("transformer.ln_f.weight", {C});
    add_param("transformer.ln_f.bias", {C});
  } else {
    layer_prefix_ = "model.layers.";
    add_param("model.embed_tokens.weight", {V, C});
    for (int64_t l = 0; l < config_.n_layer; ++l) {
      const std::string pre = layer_prefix_ + std::to_string(l) + ".";
      add_param(pre + "input_layernorm.weight", {C});
      add_param(pre + "self_attn.q_proj.weight", {C, C});
      add_param(pre + "self_attn.k_proj.weight", {kvC, C});
      add_param(pre + "self_attn.v_proj.weight", {kvC, C});
      add_param(pre + "self_attn.o_proj.weight", {C, C});
      add_param(pre + "post_attention_layernorm.weight", {C});
      add_param(pre + "mlp.gate_proj.weight", {H, C});
      add_param(pre + "mlp.up_proj.weight", {H, C});
      add_param(pre + "mlp.down_proj.weight", {C, H});
    }
    add_param("model.norm.weight", {C});
    if (!config_.tie_embeddings) add_param("lm_head.weight", {V, C});
    const int64_t HD = config_.head_dim();
    rope_cos_ = Tensor::empty({config_.n_ctx, HD / 2});
    rope_sin_ = Tensor::empty({config_.n_ctx, HD / 2});
    kernels::rope_table(rope_cos_.mutable_f32(), rope_sin_.mutable_f32(), config_.n_ctx, HD, static_cast<float>(config_.rope_theta));
  }
  init(0);
}

Tensor Transformer::add_param(const std::string& name, const Shape& shape, bool conv1d) {
  Tensor t = Tensor::zeros(shape);
  t.set_name(name).set_requires_grad(true);
  params_.push_back({name, t, conv1d});
  return t;
}

Tensor& Transformer::param(const std::string& name) {
  for (auto& p : params_)
    if (p.name == name) return p.value;
  fail(str("model has no parameter '", name, "'"), "parameter names follow Hugging Face (e.g. transformer.h.0.ln_1.weight)");
}

Tensor& Transformer::p(int64_t layer, const std::string& suffix) {
  return param(layer_prefix_ + std::to_string(layer) + "." + suffix);
}

void Transformer::set_trainable(bool on) {
  for (auto& p : params_) p.value.set_requires_grad(on);
}

static bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

void Transformer::init(uint64_t seed) {
  SLLM_CHECK(device_ == Device::CPU, "Transformer::init on a model already moved to a GPU",
             "initialize (or load weights) on the CPU, then call model.to(device)");
  Rng rng(seed);
  const float std_base = 0.02f;
  const float std_resid = std_base / std::sqrt(2.0f * static_cast<float>(config_.n_layer));
  for (auto& prm : params_) {
    float* w = prm.value.mutable_f32();
    const int64_t n = prm.value.numel();
    const std::string& name = prm.name;
    const bool is_norm = name.find("ln_") != std::string::npos || name.find("layernorm") != std::string::npos ||
                         name == "model.norm.weight";
    if (is_norm && ends_with(name, ".weight")) {
      for (int64_t i = 0; i < n; ++i) w[i] = 1.0f;
    } else if (ends_with(name, ".bias")) {
      for (int64_t i = 0; i < n; ++i) w[i] = 0.0f;
    } else {
      const bool residual = ends_with(name, "attn.c_proj.weight") || ends_with(name, "mlp.c_proj.weight") ||
                            ends_with(name, "o_proj.weight") || ends_with(name, "down_proj.weight");
      const float std = residual ? std_resid : std_base;
      for (int64_t i = 0; i < n; ++i) w[i] = static_cast<float>(rng.normal()) * std;
    }
  }
}

void Transformer::set_compute_dtype(DType dtype) {
  SLLM_CHECK(dtype == DType::F32 || dtype == DType::BF16,
             str("compute dtype ", dtype_name(dtype), " is not supported"), "use f32, or bf16 on CUDA");
  SLLM_CHECK(dtype == DType::F32 || device_ == Device::CUDA,
             str("bf16 mixed precision needs the model on CUDA, it is on ", device_name(device_)),
             "call model.to(Device::CUDA) first, or keep f32 (--precision fp32) on the CPU");
  compute_dtype_ = dtype;
}

void Transformer::to(Device device) {
  if (device == device_) return;
  for (Parameter& p : params_) {
    const bool trainable = p.value.requires_grad();
    Tensor moved = p.value.detach().to(device);
    moved.set_name(p.name).set_requires_grad(trainable);
    p.value = moved;
  }
  if (rope_cos_.defined()) {
    rope_cos_ = rope_cos_.to(device);
    rope_sin_ = rope_sin_.to(device);
  }
  device_ = device;
}

KVCache Transformer::make_cache(int64_t batch) const {
  KVCache cache;
  cache.batch = batch;
  const int64_t kvC = config_.n_kv_head * config_.head_dim();
  for (int64_t l = 0; l < config_.n_layer; ++l) {
    cache.k.push_back(Tensor::zeros({batch, config_.n_ctx, kvC}, DType::F32, device_));
    cache.v.push_back(Tensor::zeros({batch, config_.n_ctx, kvC}, DType::F32, device_));
  }
  return cache;
}

// Appends new keys/values (B, T, kvC) at positions [pos0, pos0+T) of the layer's cache and
// returns all cached ones (B, pos0+T, kvC). Generation runs under NoGradGuard.
static Tensor cache_append(Tensor& cache, const Tensor& fresh, int64_t pos0) {
  const int64_t B = fresh.dim(0), T = fresh.dim(1), W = fresh.dim(2), Tmax = cache.dim(1);
  float* dst = cache.mutable_f32();
#if SLLM_HAVE_CUDA
  if (cache.device() == Device::CUDA) {  // the same B runs of T*W floats, one strided device copy
    constexpr size_t f = sizeof(float);
    kernels::cuda::copy_d2d_2d(dst + pos0 * W, size_t(Tmax * W) * f, fresh.f32(), size_t(T * W) * f, size_t(T * W) * f,
                               size_t(B));
    return ops::slice(cache, 1, 0, pos0 + T);
  }
#endif
  for (int64_t b = 0; b < B; ++b)
    std::memcpy(dst + (b * Tmax + pos0) * W, fresh.f32() + b * T * W, static_cast<size_t>(T * W) * sizeof(float));
  return ops::slice(cache, 1, 0, pos0 + T);
}

Tensor Transformer::attention(int64_t l, const Tensor& h, KVCache* cache, int64_t pos0) {
  const int64_t C = config_.n_embd, kvC = config_.n_kv_head * config_.head_dim();
  Tensor q, k, v;
  if (config_.family == Family::GPT2) {
    Tensor qkv = ops::linear(h, p(l, "attn.c_attn.weight"), p(l, "attn.c_attn.bias"));  // (B, T, 3C)
    if (!cache) {
      // Attention reads q, k and v in place from the packed projection (strided on the GPU:
      // no three copies forward, one gradient buffer backward); the same values as below.
      Tensor y = ops::attention_qkv(qkv, config_.n_head, config_.n_head);  // (B, T, C)
      return ops::linear(y, p(l, "attn.c_proj.weight"), p(l, "attn.c_proj.bias"));
    }
    q = ops::slice(qkv, 2, 0, C);
    k = ops::slice(qkv, 2, C, 2 * C);
    v = ops::slice(qkv, 2, 2 * C, 3 * C);
  } else {
    q = ops::linear(h, p(l, "self_attn.q_proj.weight"));  // (B, T, C)
    k = ops::linear(h, p(l, "self_attn.k_proj.weight"));  // (B, T, kvC)
    v = ops::linear(h, p(l, "self_attn.v_proj.weight"));
    q = ops::rope(q, rope_cos_, rope_sin_, config_.n_head, pos0, false);
    k = ops::rope(k, rope_cos_, rope_sin_, config_.n_kv_head, pos0, false);
  }
  (void)kvC;
  if (cache) {
    k = cache_append(cache->k[static_cast<size_t>(l)], k, pos0);
    v = cache_append(cache->v[static_cast<size_t>(l)], v, pos0);
  }
  Tensor y = ops::attention(q, k, v, config_.n_head, config_.n_kv_head, pos0);  // (B, T, C)
  if (config_.family == Family::GPT2) return ops::linear(y, p(l, "attn.c_proj.weight"), p(l, "attn.c_proj.bias"));
  return ops::linear(y, p(l, "self_attn.o_proj.weight"));
}

Tensor Transformer::mlp(int64_t l, const Tensor& h) {
  if (config_.family == Family::GPT2) {
    Tensor u = ops::linear(h, p(l, "mlp.c_fc.weight"), p(l, "mlp.c_fc.bias"));  // (B, T, H)
    return ops::linear(ops::gelu(u, config_.gelu_tanh), p(l, "mlp.c_proj.weight"), p(l, "mlp.c_proj.bias"));
  }
  Tensor gate = ops::linear(h, p(l, "mlp.gate_proj.weight"));  // (B, T, H)
  Tensor up = ops::linear(h, p(l, "mlp.up_proj.weight"));
  return ops::linear(ops::swiglu(gate, up), p(l, "mlp.down_proj.weight"));
}

Tensor Transformer::block(int64_t l, const Tensor& x, KVCache* cache, int64_t pos0) {
  const float eps = static_cast<float>(config_.norm_eps);
  const DType act = compute_dtype_;  // the norms' outputs feed the matmuls
  if (config_.family == Family::GPT2) {
    Tensor a = attention(l, ops::layernorm(x, p(l, "ln_1.weight"), p(l, "ln_1.bias"), eps, act), cache, pos0);
    Tensor x1 = ops::add(x, a);  // the residual stream stays fp32 (f32 + bf16 -> f32)
    return ops::add(x1, mlp(l, ops::layernorm(x1, p(l, "ln_2.weight"), p(l, "ln_2.bias"), eps, act)));
  }
  Tensor a = attention(l, ops::rmsnorm(x, p(l, "input_layernorm.weight"), eps, act), cache, pos0);
  Tensor x1 = ops::add(x, a);
  return ops::add(x1, mlp(l, ops::rmsnorm(x1, p(l, "post_attention_layernorm.weight"), eps, act)));
}

Tensor Transformer::hidden(const Tensor& ids, KVCache* cache) {
  check_ndim(ids, 2, "model input ids (B, T)");
  check_dtype(ids, DType::I32, "model input ids");
  const int64_t B = ids.dim(0), T = ids.dim(1);
  const int64_t pos0 = cache ? cache->length : 0;
  SLLM_CHECK(T > 0, "model forward: empty input sequence", "pass at least one token");
  SLLM_CHECK(pos0 + T <= config_.n_ctx,
             str("sequence of ", pos0 + T, " tokens exceeds the model's context of ", config_.n_ctx),
             "use a shorter --seq / prompt, or fewer --max-new-tokens");
  if (cache) {
    SLLM_CHECK(cache->batch == B, str("KV cache was made for batch ", cache->batch, ", got ", B), "make_cache(B) with the same batch");
    SLLM_CHECK(!autograd::grad_enabled(), "the KV cache is for inference", "wrap generation in autograd::NoGradGuard");
    SLLM_CHECK(compute_dtype_ == DType::F32, "the KV cache holds f32 keys and values, the model computes in bf16",
               "generate with set_compute_dtype(DType::F32)");
  }
  SLLM_CHECK(compute_dtype_ == DType::F32 || device_ == Device::CUDA, "bf16 compute with the model on the CPU",
             "move the model back with to(Device::CUDA), or set_compute_dtype(DType::F32)");
  Tensor x;
  if (config_.family == Family::GPT2) {
    Tensor positions = Tensor::empty({T}, DType::I32);
    for (int64_t t = 0; t < T; ++t) positions.mutable_i32()[t] = static_cast<int32_t>(pos0 + t);
    x = ops::add(ops::embedding(ids, param("transformer.wte.weight")),
                 ops::embedding(positions, param("transformer.wpe.weight")));  // (B, T, C) + (T, C)
  } else {
    x = ops::embedding(ids, param("model.embed_tokens.weight"));
  }
  for (int64_t l = 0; l < config_.n_layer; ++l) x = block(l, x, cache, pos0);
  if (cache) cache->length += T;
  if (config_.family == Family::GPT2)
    return ops::layernorm(x, param("transformer.ln_f.weight"), param("transformer.ln_f.bias"),
                          static_cast<float>(config_.norm_eps), compute_dtype_);
  return ops::rmsnorm(x, param("model.norm.weight"), static_cast<float>(config_.norm_eps), compute_dtype_);
}

Tensor& Transformer::lm_head_weight() {
  if (config_.family == Family::GPT2) return param("transformer.wte.weight");  // tied
  return param(config_.tie_embeddings ? "model.embed_tokens.weight" : "lm_head.weight");
}

Tensor Transformer::forward(const Tensor& ids, KVCache* cache) { return ops::linear(hidden(ids, cache), lm_head_weight()); }

Tensor Transformer::loss(const Tensor& ids, const Tensor& targets, int32_t ignore_index) {
  return ops::linear_cross_entropy(hidden(ids), lm_head_weight(), targets, ignore_index);
}

}  // namespace sllm::nn
