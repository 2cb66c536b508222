// Elementwise binary ops with trailing-dimension broadcasting, scaling and sums, on the GPU.
// The formula lines are those of kernels/cpu/elementwise.cpp.
// Legend: n elements of a (viewed as rows = n / nb rows of nb columns), nb elements of b.
// Backward kernels ACCUMULATE (+=) into da / db; a nullptr gradient is skipped entirely.
//
// Determinism: every sum (db, sum_forward, sum_rows_forward) runs over a fixed partition in
// a fixed order (no atomics): per-block partials over fixed chunks of rows or elements,
// then one pass adding the partials in block order.
#include "kernels/cuda/launch.h"
#include "kernels/cuda/reduce.cuh"
#include "kernels/cuda/scratch.h"
#include "kernels/cuda_kernels.h"

namespace sllm::kernels::cuda {
namespace {

// Elements per block of a whole-array sum (each of the 256 threads adds 64 of them).
constexpr int64_t kSumChunk = 1 << 14;
// Rows per partial of a column sum (db with nb > 1).
constexpr int64_t kRowBlock = 64;

__device__ inline float apply(BinaryOp op, float a, float b) {
  switch (op) {
    case BinaryOp::Add: return a + b;
    case BinaryOp::Sub: return a - b;
    case BinaryOp::Mul: return a * b;
    default: return a / b;
  }
}

// d out / d a for out = a (op) b.
__device__ inline float grad_a(BinaryOp op, float a, float b) {
  switch (op) {
    case BinaryOp::Add:
    case BinaryOp::Sub: return 1.0f;
    case BinaryOp::Mul: return b;
    default: return 1.0f / b;
  }
}

// d out / d b for out = a (op) b.
__device__ inline float grad_b(BinaryOp op, float a, float b) {
  switch (op) {
    case BinaryOp::Add: return 1.0f;
    case BinaryOp::Sub: return -1.0f;
    case BinaryOp::Mul: return a;
    default: return -a / (b * b);
  }
}

// ---- kernels ----------------------------------------------------------------------------

__global__ void binary_forward_kernel(BinaryOp op, float* out, const float* a, const float* b, int64_t n,
                                      int64_t nb) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = apply(op, a[i], b[i % nb]);
}

__global__ void binary_backward_da_kernel(BinaryOp op, float* da, const float* dout, const float* a,
                                          const float* b, int64_t n, int64_t nb) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    da[i] += dout[i] * grad_a(op, a[i], b[i % nb]);
}

// partial (blocks, nb): column j's sum over rows [blk * kRowBlock, +kRowBlock), in row order.
// Grid (ceil(nb / 256), blocks); thread x is column j.
__global__ void binary_backward_db_partial_kernel(BinaryOp op, float* partial, const float* dout, const float* a,
                                                  const float* b, int64_t rows, int64_t nb) {
  const int64_t j = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, blk = blockIdx.y;
  if (j >= nb) return;
  const int64_t r1 = min(rows, (blk + 1) * kRowBlock);
  float acc = 0.0f;
  for (int64_t r = blk * kRowBlock; r < r1; ++r) acc += dout[r * nb + j] * grad_b(op, a[r * nb + j], b[j]);
  partial[blk * nb + j] = acc;
}

// db (nb) += sum over blocks of partial (blocks, nb), in block order.
__global__ void column_partials_finish_kernel(float* db, const float* partial, int64_t blocks, int64_t nb) {
  for (int64_t j = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; j < nb; j += int64_t(gridDim.x) * blockDim.x) {
    float s = 0.0f;
    for (int64_t blk = 0; blk < blocks; ++blk) s += partial[blk * nb + j];
    db[j] += s;
  }
}

// partial (chunks): sum of dout[i] * grad_b(a[i], b[0]) over chunk blockIdx.x, in double
// (a scalar b: db sums every element).
__global__ void binary_backward_db_scalar_kernel(BinaryOp op, double* partial, const float* dout, const float* a,
                                                 const float* b, int64_t n) {
  const int64_t begin = blockIdx.x * kSumChunk, end = min(n, begin + kSumChunk);
  const float b0 = b[0];
  double s = 0.0;
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) s += double(dout[i] * grad_b(op, a[i], b0));
  s = block_sum(s);
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

// partial (chunks): sum of a over chunk blockIdx.x, in double.
__global__ void sum_partial_kernel(double* partial, const float* a, int64_t n) {
  const int64_t begin = blockIdx.x * kSumChunk, end = min(n, begin + kSumChunk);
  double s = 0.0;
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) s += double(a[i]);
  s = block_sum(s);
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

// One block: out[0] (= or +=) float(sum of partial (chunks)), thread t taking t, t+256, ...
__global__ void sum_finish_kernel(float* out, const double* partial, int64_t chunks, bool accumulate) {
  double s = 0.0;
  for (int64_t c = threadIdx.x; c < chunks; c += blockDim.x) s += partial[c];
  s = block_sum(s);
  if (threadIdx.x == 0) out[0] = accumulate ? out[0] + float(s) : float(s);
}

__global__ void scale_forward_kernel(float* out, const float* a, float s, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = a[i] * s;
}

// One warp per row: out[r] = sum of a's row r, in double.
__global__ void sum_rows_kernel(float* out, const float* a, int64_t rows, int64_t cols) {
  const int lane = threadIdx.x % 32, warps = blockDim.x / 32;
  for (int64_t r = blockIdx.x * int64_t(warps) + threadIdx.x / 32; r < rows; r += int64_t(gridDim.x) * warps) {
    const float* a_r = a + r * cols;  // (cols)
    double s = 0.0;
    for (int64_t j = lane; j < cols; j += 32) s += double(a_r[j]);
    s = warp_sum(s);
    if (lane == 0) out[r] = float(s);
  }
}

// ---- launchers ----------------------------------------------------------------------------

// Sum of n terms into out[0] through per-chunk partials; `partial_kernel` fills them.
template <class Launch>
void chunked_sum(float* out, int64_t n, bool accumulate, Launch partial_kernel) {
  const int64_t chunks = (n + kSumChunk - 1) / kSumChunk;
  Scratch<double> partial{size_t(chunks)};  // (chunks)
  partial_kernel(partial.get(), unsigned(chunks));
  SLLM_CUDA_CHECK_LAUNCH();
  SLLM_LAUNCH(1, kThreads, 0, sum_finish_kernel)(out, partial.get(), chunks, accumulate);
  SLLM_CUDA_CHECK_LAUNCH();
}

void binary_backward_db(BinaryOp op, float* db, const float* dout, const float* a, const float* b, int64_t n,
                        int64_t nb) {
  if (nb == 1) {
    chunked_sum(db, n, true, [&](double* partial, unsigned chunks) {
      SLLM_LAUNCH(chunks, kThreads, 0, binary_backward_db_scalar_kernel)(op, partial, dout, a, b, n);
    });
    return;
  }
  const int64_t rows = n / nb, blocks = (rows + kRowBlock - 1) / kRowBlock;
  Scratch<float> partial{size_t(blocks * nb)};  // (blocks, nb)
  const dim3 grid(unsigned((nb + kThreads - 1) / kThreads), unsigned(blocks));
  SLLM_LAUNCH(grid, kThreads, 0, binary_backward_db_partial_kernel)(op, partial.get(), dout, a, b, rows, nb);
  SLLM_CUDA_CHECK_LAUNCH();
  SLLM_LAUNCH(grid_for(nb), kThreads, 0, column_partials_finish_kernel)(db, partial.get(), blocks, nb);
  SLLM_CUDA_CHECK_LAUNCH();
}

void check_broadcast(int64_t n, int64_t nb, const char* op) {
  SLLM_CHECK(n >= 0 && nb > 0 && n % nb == 0, str(op, ": cannot broadcast b of ", nb, " elements over ", n),
             "b's element count must divide a's (b repeats along a's leading dimensions)");
  SLLM_CHECK(n / nb <= int64_t(65535) * kRowBlock || nb == 1, str(op, ": too many rows (", n / nb, ")"),
             "broadcast over at most 4M rows; flatten the leading dimensions differently");
}

}  // namespace

// ---- entries --------------------------------------------------------------------------------

// out (n) = a (n) (op) b (nb), b repeated every nb elements.
void binary_forward(BinaryOp op, float* out, const float* a, const float* b, int64_t n, int64_t nb) {
  check_broadcast(n, nb, "binary_forward");
  if (n == 0) return;
  SLLM_LAUNCH(grid_for(n), kThreads, 0, binary_forward_kernel)(op, out, a, b, n, nb);
  SLLM_CUDA_CHECK_LAUNCH();
}

// da (n) += dout * d(out)/da;  db (nb) += sum over the broadcast rows of dout * d(out)/db.
void binary_backward(BinaryOp op, float* da, float* db, const float* dout, const float* a, const float* b,
                     int64_t n, int64_t nb) {
  check_broadcast(n, nb, "binary_backward");
  if (n == 0) return;
  if (da) {
    SLLM_LAUNCH(grid_for(n), kThreads, 0, binary_backward_da_kernel)(op, da, dout, a, b, n, nb);
    SLLM_CUDA_CHECK_LAUNCH();
  }
  if (db) binary_backward_db(op, db, dout, a, b, n, nb);
}

void scale_forward(float* out, const float* a, float s, int64_t n) {
  SLLM_CHECK(n >= 0, str("scale_forward: negative element count ", n), "sizes must be >= 0");
  if (n == 0) return;
  SLLM_LAUNCH(grid_for(n), kThreads, 0, scale_forward_kernel)(out, a, s, n);
  SLLM_CUDA_CHECK_LAUNCH();
}

void sum_forward(float* out, const float* a, int64_t n) {
  SLLM_CHECK(n >= 0, str("sum_forward: negative element count ", n), "sizes must be >= 0");
  if (n == 0) {
    memset_zero(out, sizeof(float));
    return;
  }
  chunked_sum(out, n, false, [&](double* partial, unsigned chunks) {
    SLLM_LAUNCH(chunks, kThreads, 0, sum_partial_kernel)(partial, a, n);
  });
}

float sum_forward(const float* a, int64_t n) {
  Scratch<float> out(1);
  sum_forward(out.get(), a, n);
  float host = 0.0f;
  copy_d2h(&host, out.get(), sizeof(float));
  return host;
}

// out (rows) = sum over the last dim of a (rows, cols), each row in double.
void sum_rows_forward(float* out, const float* a, int64_t rows, int64_t cols) {
  SLLM_CHECK(rows >= 0 && cols >= 0, str("sum_rows_forward: bad sizes rows=", rows, " cols=", cols),
             "sizes must be >= 0");
  if (rows == 0) return;
  SLLM_LAUNCH(grid_for(rows * 32), kThreads, 0, sum_rows_kernel)(out, a, rows, cols);
  SLLM_CUDA_CHECK_LAUNCH();
}

}  // namespace sllm::kernels::cuda
