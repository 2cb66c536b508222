// Token embedding lookup on the GPU: out (N, C) = table (V, C) [ids (N)].
// Legend: N rows (= B*T), V vocab, C channels.
// Backward ACCUMULATES (+=) into dtable; a nullptr dtable is skipped entirely. Except
// embedding_backward_grouped, which WRITES every element of dtable (see below).
//
// Backward without atomics: repeated ids make a row-parallel scatter racy, so (as on the
// CPU) each thread owns one column c and walks all N rows in order; to get more threads
// than C, blocks also split the vocabulary into slices and a block only adds the rows
// whose id falls in its slice. Every dtable element still receives its additions in row
// order: the same bits as kernels::embedding_backward_ref, on any GPU.
#include "kernels/cuda/launch.h"
#include "kernels/cuda_kernels.h"

namespace sllm::kernels::cuda {
namespace {

// Ids staged in shared memory per step of the backward's row loop.
constexpr int kIdTile = kThreads;
// Aim for this many blocks in the backward (enough to fill a large GPU a few times).
constexpr int64_t kTargetBlocks = 1024;

__global__ void embedding_forward_kernel(float* out, const int32_t* ids, const float* table, int64_t N,
                                         int64_t C) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < N * C; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t n = i / C, c = i % C;
    out[i] = table[int64_t(ids[n]) * C + c];
  }
}

// Grid (ceil(C / 256), slices): thread x owns column c, block y the ids [v0, v1).
__global__ void embedding_backward_kernel(float* dtable, const float* dout, const int32_t* ids, int64_t N,
                                          int64_t C, int64_t slice) {
  __shared__ int32_t id_tile[kIdTile];
  const int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  const int64_t v0 = blockIdx.y * slice, v1 = v0 + slice;
  for (int64_t n0 = 0; n0 < N; n0 += kIdTile) {
    __syncthreads();  // the previous tile has been read
    if (n0 + threadIdx.x < N) id_tile[threadIdx.x] = ids[n0 + threadIdx.x];
    __syncthreads();
    if (c >= C) continue;
    const int64_t n1 = min(N, n0 + kIdTile);
    for (int64_t n = n0; n < n1; ++n) {
      const int64_t id = id_tile[n - n0];
      if (id >= v0 && id < v1) dtable[id * C + c] += dout[n * C + c];
    }
  }
}

// Grid-strided over ids: block v writes dtable row v, the sum of dout's rows
// rows_by_id[row_start[v] .. row_start[v + 1]) taken in that (increasing row) order, 0 for an
// id that does not occur. The order and the start from 0 are those of the accumulating kernel
// into a zeroed table: the same bits, with every element written once and no zero-fill.
__global__ void embedding_backward_grouped_kernel(float* dtable, const float* dout, const int32_t* rows_by_id,
                                                  const int32_t* row_start, int64_t V, int64_t C) {
  for (int64_t v = blockIdx.x; v < V; v += gridDim.x) {
    const int32_t r0 = row_start[v], r1 = row_start[v + 1];
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
      float s = 0.0f;
      for (int32_t r = r0; r < r1; ++r) s += dout[int64_t(rows_by_id[r]) * C + c];
      dtable[v * C + c] = s;
    }
  }
}

void check_sizes(int64_t N, int64_t V, int64_t C, const char* op) {
  SLLM_CHECK(N >= 0 && V > 0 && C >= 0, str(op, ": bad sizes N=", N, " V=", V, " C=", C),
             "rows and channels must be >= 0 and the vocabulary non-empty");
}

}  // namespace

// ids are validated in [0, V) by the caller, as on the CPU.
void embedding_forward(float* out, const int32_t* ids, const float* table, int64_t N, int64_t V, int64_t C) {
  check_sizes(N, V, C, "embedding_forward");
  if (N * C == 0) return;
  SLLM_LAUNCH(grid_for(N * C), kThreads, 0, embedding_forward_kernel)(out, ids, table, N, C);
  SLLM_CUDA_CHECK_LAUNCH();
}

void embedding_backward(float* dtable, const float* dout, const int32_t* ids, int64_t N, int64_t V, int64_t C) {
  check_sizes(N, V, C, "embedding_backward");
  if (!dtable || N * C == 0) return;
  const int64_t col_blocks = (C + kThreads - 1) / kThreads;
  const int64_t slices = std::clamp<int64_t>(kTargetBlocks / col_blocks, 1, std::min<int64_t>(V, 65535));
  const int64_t slice = (V + slices - 1) / slices;  // ids per slice
  const dim3 grid(unsigned(col_blocks), unsigned((V + slice - 1) / slice));
  SLLM_LAUNCH(grid, kThreads, 0, embedding_backward_kernel)(dtable, dout, ids, N, C, slice);
  SLLM_CUDA_CHECK_LAUNCH();
}

void embedding_backward_grouped(float* dtable, const float* dout, const int32_t* rows_by_id, const int32_t* row_start,
                                int64_t N, int64_t V, int64_t C) {
  check_sizes(N, V, C, "embedding_backward_grouped");
  if (!dtable || V * C == 0) return;
  SLLM_LAUNCH(unsigned(std::min<int64_t>(V, int64_t(1) << 20)), kThreads, 0, embedding_backward_grouped_kernel)(
      dtable, dout, rows_by_id, row_start, V, C);
  SLLM_CUDA_CHECK_LAUNCH();
}

}  // namespace sllm::kernels::cuda
