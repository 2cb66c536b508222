#include "nn/attention.h"

#include <cstring>

#include "core/error.h"
#if SLLM_HAVE_CUDA
#include "kernels/cuda_kernels.h"
#endif
#include "ops/ops.h"

namespace sllm::nn {

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

// A ragged cache: row b's first row_new[b] new keys/values go to positions row_pos0[b] ...;
// the padding rows after them are dropped. The cache holds the compute dtype (f32, or bf16
// on CUDA), so the rows are copied as bytes.
static void cache_append_rows(Tensor& cache, const Tensor& fresh, const AttentionStep& step) {
  SLLM_CHECK(cache.dtype() == fresh.dtype(), "KV cache: its dtype differs from the model's compute dtype",
             "make the cache after set_compute_dtype (Transformer::make_cache uses the compute dtype)");
  const int64_t B = fresh.dim(0), T = fresh.dim(1), W = fresh.dim(2), Tmax = cache.dim(1);
  const size_t row_bytes = static_cast<size_t>(W) * dtype_size(fresh.dtype());
  auto* dst = static_cast<unsigned char*>(cache.mutable_raw());
  const auto* src = static_cast<const unsigned char*>(fresh.raw());
  for (int64_t b = 0; b < B; ++b) {
    const int64_t pos = (*step.row_pos0)[size_t(b)], n = (*step.row_new)[size_t(b)];
    unsigned char* to = dst + static_cast<size_t>(b * Tmax + pos) * row_bytes;
    const unsigned char* from = src + static_cast<size_t>(b * T) * row_bytes;
#if SLLM_HAVE_CUDA
    if (cache.device() == Device::CUDA) {
      kernels::cuda::copy_d2d_2d(to, row_bytes, from, row_bytes, row_bytes, size_t(n));
      continue;
    }
#endif
    std::memcpy(to, from, static_cast<size_t>(n) * row_bytes);
  }
}

// Attention of q over all keys and values (cached ones first, when there is a cache).
static Tensor attend(const Tensor& q, Tensor k, Tensor v, int64_t n_head, int64_t n_kv_head, const AttentionStep& step) {
  if (step.row_pos0) {  // ragged: each row at its own position, over the whole cache tensor (no copy)
    cache_append_rows(*step.k_cache, k, step);
    cache_append_rows(*step.v_cache, v, step);
    return ops::attention_rows(q, *step.k_cache, *step.v_cache, n_head, n_kv_head, *step.row_pos0, *step.row_new);
  }
  if (step.k_cache) {
    k = cache_append(*step.k_cache, k, step.pos0);
    v = cache_append(*step.v_cache, v, step.pos0);
  }
  return ops::attention(q, k, v, n_head, n_kv_head, step.pos0);  // (B, T, C)
}

GPT2Attention::GPT2Attention(const std::string& path, const ModelConfig& config)
    : n_head_(config.n_head),
      n_embd_(config.n_embd),
      c_attn_(path + ".c_attn", config.n_embd, 3 * config.n_embd, /*bias=*/true, /*conv1d=*/true),
      c_proj_(path + ".c_proj", config.n_embd, config.n_embd, /*bias=*/true, /*conv1d=*/true) {}

Tensor GPT2Attention::forward(const Tensor& h, const AttentionStep& step) const {
  const int64_t C = n_embd_;
  Tensor qkv = c_attn_.forward(h);  // (B, T, 3C)
  if (!step.k_cache) {
    // Attention reads q, k and v in place from the packed projection (strided on the GPU:
    // no three copies forward, one gradient buffer backward); the same values as below.
    return c_proj_.forward(ops::attention_qkv(qkv, n_head_, n_head_));
  }
  Tensor q = ops::slice(qkv, 2, 0, C);
  Tensor k = ops::slice(qkv, 2, C, 2 * C);
  Tensor v = ops::slice(qkv, 2, 2 * C, 3 * C);
  return c_proj_.forward(attend(q, k, v, n_head_, n_head_, step));
}

void GPT2Attention::append_parameters(std::vector<Parameter>& out) {
  c_attn_.append_parameters(out);
  c_proj_.append_parameters(out);
}

void GPT2Attention::append_linears(std::vector<Linear*>& out) {
  out.push_back(&c_attn_);
  out.push_back(&c_proj_);
}

LlamaAttention::LlamaAttention(const std::string& path, const ModelConfig& config)
    : n_head_(config.n_head),
      n_kv_head_(config.n_kv_head),
      q_proj_(path + ".q_proj", config.n_embd, config.n_embd, false, false),
      k_proj_(path + ".k_proj", config.n_embd, config.n_kv_head * config.head_dim(), false, false),
      v_proj_(path + ".v_proj", config.n_embd, config.n_kv_head * config.head_dim(), false, false),
      o_proj_(path + ".o_proj", config.n_embd, config.n_embd, false, false) {}

Tensor LlamaAttention::forward(const Tensor& h, const AttentionStep& step, const RopeTables& rope) const {
  // The three projections first, then RoPE: the order the autograd tape records, which
  // fixes the order in which backward sums the three contributions to dh.
  Tensor q = q_proj_.forward(h);  // (B, T, C)
  Tensor k = k_proj_.forward(h);  // (B, T, kvC)
  Tensor v = v_proj_.forward(h);  // (B, T, kvC)
  if (step.row_pos0) {  // a ragged batch: every row at its own position
    q = ops::rope_rows(q, rope.cos, rope.sin, n_head_, *step.row_pos0, *step.row_new, false);
    k = ops::rope_rows(k, rope.cos, rope.sin, n_kv_head_, *step.row_pos0, *step.row_new, false);
  } else {
    q = ops::rope(q, rope.cos, rope.sin, n_head_, step.pos0, false);
    k = ops::rope(k, rope.cos, rope.sin, n_kv_head_, step.pos0, false);
  }
  return o_proj_.forward(attend(q, k, v, n_head_, n_kv_head_, step));
}

void LlamaAttention::append_parameters(std::vector<Parameter>& out) {
  for (Linear* l : {&q_proj_, &k_proj_, &v_proj_, &o_proj_}) l->append_parameters(out);
}

void LlamaAttention::append_linears(std::vector<Linear*>& out) {
  for (Linear* l : {&q_proj_, &k_proj_, &v_proj_, &o_proj_}) out.push_back(l);
}

}  // namespace sllm::nn
