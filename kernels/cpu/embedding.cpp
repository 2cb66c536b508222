// Token embedding lookup: out (N, C) = table (V, C) [ids (N)].
// Legend: N rows (= B*T), V vocab, C channels.
// Backward ACCUMULATES (+=) into dtable; a nullptr dtable is skipped entirely.
#include <algorithm>
#include <cstring>

#include "kernels/kernels.h"

namespace sllm::kernels {
namespace {
// Below this many elements a kernel runs on one thread: a parallel region costs microseconds.
constexpr int64_t kParallelMin = 1 << 14;
}  // namespace

void embedding_forward(float* out, const int32_t* ids, const float* table, int64_t N, int64_t V,
                       int64_t C) {
#pragma omp parallel for schedule(static) if (N * C >= kParallelMin)
  for (int64_t n = 0; n < N; ++n)
    std::memcpy(out + n * C, table + int64_t(ids[n]) * C, sizeof(float) * C);
}

// dtable[ids[n]] += dout[n]. Repeated ids make row-parallelism racy, so threads split the C
// columns instead and each walks all N rows in order: every dtable element receives its
// additions in row order, the same bits as the reference for any thread count.
void embedding_backward(float* dtable, const float* dout, const int32_t* ids, int64_t N, int64_t V,
                        int64_t C) {
  if (!dtable) return;
  constexpr int64_t kBlock = 32;  // columns per task: two cache lines of each row
  const int64_t blocks = (C + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (N * C >= kParallelMin)
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const int64_t c0 = blk * kBlock, c1 = std::min(C, c0 + kBlock);
    for (int64_t n = 0; n < N; ++n) {
      const float* dout_n = dout + n * C;                   // (C)
      float* dtable_row = dtable + int64_t(ids[n]) * C;     // (C)
      for (int64_t c = c0; c < c1; ++c) dtable_row[c] += dout_n[c];
    }
  }
}

void embedding_forward_ref(float* out, const int32_t* ids, const float* table, int64_t N, int64_t V,
                           int64_t C) {
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c) out[n * C + c] = table[int64_t(ids[n]) * C + c];
}

void embedding_backward_ref(float* dtable, const float* dout, const int32_t* ids, int64_t N,
                            int64_t V, int64_t C) {
  if (!dtable) return;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c) dtable[int64_t(ids[n]) * C + c] += dout[n * C + c];
}

}  // namespace sllm::kernels
