// The keys and values of every layer for incremental decoding, and the view of it that
// one attention layer gets in one forward pass.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "tensor/tensor.h"

namespace sllm::nn {

// k[l], v[l]: layer l's keys and values (B, n_ctx, kvC), kvC = n_kv_head * head_dim.
struct KVCache {
  std::vector<Tensor> k, v;
  int64_t length = 0;  // positions already cached
  int64_t batch = 0;
};

// What one forward pass tells each attention layer.
struct AttentionStep {
  int64_t pos0 = 0;           // position of the first new token (the KV cache's length)
  Tensor* k_cache = nullptr;  // this layer's cached keys (B, n_ctx, kvC); null in training
  Tensor* v_cache = nullptr;  // and values
};

// Layer `layer`'s step of a forward pass, with or without a cache.
inline AttentionStep attention_step(KVCache* cache, size_t layer) {
  if (!cache) return {};
  return {cache->length, &cache->k[layer], &cache->v[layer]};
}

}  // namespace sllm::nn
