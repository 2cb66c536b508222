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
  // Ragged batches (batched generation, src/infer/batch_generate.h): with row_length set (one
  // entry per row), row b has its own length, a forward places row b's new tokens at
  // positions row_length[b] + t, and only its first row_new[b] new tokens are real (the rest
  // of the (B, T) input is padding, computed but neither cached nor attended to). The forward
  // then advances row_length[b] by row_new[b] and clears row_new (empty row_new: T for every
  // row). `length` is unused in this mode.
  std::vector<int64_t> row_length;
  std::vector<int64_t> row_new;
  bool ragged() const { return !row_length.empty(); }
};

// What one forward pass tells each attention layer.
struct AttentionStep {
  int64_t pos0 = 0;           // position of the first new token (the KV cache's length)
  Tensor* k_cache = nullptr;  // this layer's cached keys (B, n_ctx, kvC); null in training
  Tensor* v_cache = nullptr;  // and values
  // A ragged cache's per-row positions and real new-token counts (KVCache::row_length and
  // row_new); null otherwise.
  const std::vector<int64_t>* row_pos0 = nullptr;
  const std::vector<int64_t>* row_new = nullptr;
};

// Layer `layer`'s step of a forward pass, with or without a cache.
inline AttentionStep attention_step(KVCache* cache, size_t layer) {
  if (!cache) return {};
  if (cache->ragged()) return {0, &cache->k[layer], &cache->v[layer], &cache->row_length, &cache->row_new};
  return {cache->length, &cache->k[layer], &cache->v[layer]};
}

}  // namespace sllm::nn
