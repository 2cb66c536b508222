// Elementwise binary ops with trailing-dimension broadcasting, scaling and sums, on the GPU.
// The formula lines are those of kernels/cpu/elementwise.cpp.
// Legend: n elements of a (viewed as rows = n / nb rows of nb columns), nb elements of b.
// Backward kernels ACCUMULATE (+=) into da / db; a nullptr gradient is skipped entirely.
//
// Element types: the kernels are templates on their buffers' types (element.cuh): fp32, or
// bf16 loaded as float, computed in fp32 as the fp32 kernel and rounded once on store. A
// gradient has its tensor's type (dout that of out, da that of a, db that of b).
//
// Determinism: every sum (db, sum_forward, sum_rows_forward) runs over a fixed partition in
// a fixed order (no atomics): per-block partials over fixed chunks of rows or elements,
// then one pass adding the partials in block order.
#include <algorithm>

#include "kernels/cuda/element.cuh"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/pack.cuh"
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

template <class TO, class TA, class TB>
__global__ void binary_forward_kernel(BinaryOp op, TO* out, const TA* a, const TB* b, int64_t n, int64_t nb) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = from_float<TO>(apply(op, to_float(a[i]), to_float(b[i % nb])));
}

// The same-shape case (nb == n: residual adds, autograd's gradient sums) in packs of P
// (pack.cuh), without the broadcast's 64-bit modulo; the same expression per element.
template <class TO, class TA, class TB, int P>
__global__ void binary_same_shape_kernel(BinaryOp op, TO* out, const TA* a, const TB* b, int64_t packs) {
  SLLM_FOR_EACH_PACK(i, packs) {
    const Pack<TA, P> x = load_pack<P>(a, i);
    const Pack<TB, P> y = load_pack<P>(b, i);
    Pack<TO, P> z;
#pragma unroll
    for (int k = 0; k < P; ++k) z.v[k] = from_float<TO>(apply(op, to_float(x.v[k]), to_float(y.v[k])));
    store_pack<P>(out, i, z);
  }
}

// dout has out's type TO, da a's type TA.
template <class TO, class TA, class TB>
__global__ void binary_backward_da_kernel(BinaryOp op, TA* da, const TO* dout, const TA* a, const TB* b, int64_t n,
                                          int64_t nb) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    da[i] = from_float<TA>(to_float(da[i]) + to_float(dout[i]) * grad_a(op, to_float(a[i]), to_float(b[i % nb])));
}

// partial (blocks, nb): column j's sum over rows [blk * kRowBlock, +kRowBlock), in row order.
// Grid (ceil(nb / 256), blocks); thread x is column j.
template <class TO, class TA, class TB>
__global__ void binary_backward_db_partial_kernel(BinaryOp op, float* partial, const TO* dout, const TA* a,
                                                  const TB* b, int64_t rows, int64_t nb) {
  const int64_t j = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, blk = blockIdx.y;
  if (j >= nb) return;
  const int64_t r1 = min(rows, (blk + 1) * kRowBlock);
  const float b_j = to_float(b[j]);
  float acc = 0.0f;
  for (int64_t r = blk * kRowBlock; r < r1; ++r)
    acc += to_float(dout[r * nb + j]) * grad_b(op, to_float(a[r * nb + j]), b_j);
  partial[blk * nb + j] = acc;
}

// db (nb) += sum over blocks of partial (blocks, nb), in block order; one rounding into TB.
template <class TB>
__global__ void column_partials_finish_kernel(TB* db, const float* partial, int64_t blocks, int64_t nb) {
  for (int64_t j = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; j < nb; j += int64_t(gridDim.x) * blockDim.x) {
    float s = 0.0f;
    for (int64_t blk = 0; blk < blocks; ++blk) s += partial[blk * nb + j];
    db[j] = from_float<TB>(to_float(db[j]) + s);
  }
}

// partial (chunks): sum of dout[i] * grad_b(a[i], b[0]) over chunk blockIdx.x, in double
// (a scalar b: db sums every element).
template <class TO, class TA, class TB>
__global__ void binary_backward_db_scalar_kernel(BinaryOp op, double* partial, const TO* dout, const TA* a,
                                                 const TB* b, int64_t n) {
  const int64_t begin = blockIdx.x * kSumChunk, end = min(n, begin + kSumChunk);
  const float b0 = to_float(b[0]);
  double s = 0.0;
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x)
    s += double(to_float(dout[i]) * grad_b(op, to_float(a[i]), b0));
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
// A bf16 out gets the fp32 result rounded once.
template <class T>
__global__ void sum_finish_kernel(T* out, const double* partial, int64_t chunks, bool accumulate) {
  double s = 0.0;
  for (int64_t c = threadIdx.x; c < chunks; c += blockDim.x) s += partial[c];
  s = block_sum(s);
  if (threadIdx.x == 0) out[0] = from_float<T>(accumulate ? to_float(out[0]) + float(s) : float(s));
}

template <class T>
__global__ void scale_forward_kernel(T* out, const T* a, float s, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = from_float<T>(to_float(a[i]) * s);
}

// One warp per row: out[r] = sum of a's row r, in double.
template <class T>
__global__ void sum_rows_kernel(float* out, const T* a, int64_t rows, int64_t cols) {
  const int lane = threadIdx.x % 32, warps = blockDim.x / 32;
  for (int64_t r = blockIdx.x * int64_t(warps) + threadIdx.x / 32; r < rows; r += int64_t(gridDim.x) * warps) {
    const T* a_r = a + r * cols;  // (cols)
    double s = 0.0;
    for (int64_t j = lane; j < cols; j += 32) s += double(to_float(a_r[j]));
    s = warp_sum(s);
    if (lane == 0) out[r] = float(s);
  }
}

// ---- launchers ----------------------------------------------------------------------------

// Sum of n terms into out[0] through per-chunk partials; `partial_kernel` fills them.
template <class T, class Launch>
void chunked_sum(T* out, int64_t n, bool accumulate, Launch partial_kernel) {
  const int64_t chunks = (n + kSumChunk - 1) / kSumChunk;
  Scratch<double> partial{size_t(chunks)};  // (chunks)
  partial_kernel(partial.get(), unsigned(chunks));
  SLLM_CUDA_CHECK_LAUNCH();
  SLLM_LAUNCH(1, kThreads, 0, sum_finish_kernel<T>)(out, partial.get(), chunks, accumulate);
  SLLM_CUDA_CHECK_LAUNCH();
}

template <class TO, class TA, class TB>
void binary_backward_db(BinaryOp op, TB* db, const TO* dout, const TA* a, const TB* b, int64_t n, int64_t nb) {
  if (nb == 1) {
    chunked_sum(db, n, true, [&](double* partial, unsigned chunks) {
      SLLM_LAUNCH(chunks, kThreads, 0, binary_backward_db_scalar_kernel<TO, TA, TB>)(op, partial, dout, a, b, n);
    });
    return;
  }
  const int64_t rows = n / nb, blocks = (rows + kRowBlock - 1) / kRowBlock;
  Scratch<float> partial{size_t(blocks * nb)};  // (blocks, nb)
  const dim3 grid(unsigned((nb + kThreads - 1) / kThreads), unsigned(blocks));
  SLLM_LAUNCH(grid, kThreads, 0, binary_backward_db_partial_kernel<TO, TA, TB>)(op, partial.get(), dout, a, b, rows,
                                                                                 nb);
  SLLM_CUDA_CHECK_LAUNCH();
  SLLM_LAUNCH(grid_for(nb), kThreads, 0, column_partials_finish_kernel<TB>)(db, partial.get(), blocks, nb);
  SLLM_CUDA_CHECK_LAUNCH();
}

void check_broadcast(int64_t n, int64_t nb, const char* op) {
  SLLM_CHECK(n >= 0 && nb > 0 && n % nb == 0, str(op, ": cannot broadcast b of ", nb, " elements over ", n),
             "b's element count must divide a's (b repeats along a's leading dimensions)");
  SLLM_CHECK(n / nb <= int64_t(65535) * kRowBlock || nb == 1, str(op, ": too many rows (", n / nb, ")"),
             "broadcast over at most 4M rows; flatten the leading dimensions differently");
}

// out (n) = a (n) (op) b (nb), b repeated every nb elements.
template <class TO, class TA, class TB>
void binary_forward_launch(BinaryOp op, TO* out, const TA* a, const TB* b, int64_t n, int64_t nb) {
  check_broadcast(n, nb, "binary_forward");
  if (n == 0) return;
  if (nb == n) {  // 16 bytes of the widest buffer per pack: 4 elements, or 8 when all are bf16
    constexpr int kP = int(16 / std::max({sizeof(TO), sizeof(TA), sizeof(TB)}));
    over_packs<kP>(n, {out, a, b}, [&](auto p, int64_t off, int64_t packs) {
      constexpr int P = decltype(p)::value;
      SLLM_LAUNCH(grid_for(packs), kThreads, 0, binary_same_shape_kernel<TO, TA, TB, P>)(op, out + off, a + off,
                                                                                        b + off, packs);
      SLLM_CUDA_CHECK_LAUNCH();
    });
    return;
  }
  SLLM_LAUNCH(grid_for(n), kThreads, 0, binary_forward_kernel<TO, TA, TB>)(op, out, a, b, n, nb);
  SLLM_CUDA_CHECK_LAUNCH();
}

// da (n) += dout * d(out)/da;  db (nb) += sum over the broadcast rows of dout * d(out)/db.
template <class TO, class TA, class TB>
void binary_backward_launch(BinaryOp op, TA* da, TB* db, const TO* dout, const TA* a, const TB* b, int64_t n,
                            int64_t nb) {
  check_broadcast(n, nb, "binary_backward");
  if (n == 0) return;
  if (da) {
    SLLM_LAUNCH(grid_for(n), kThreads, 0, binary_backward_da_kernel<TO, TA, TB>)(op, da, dout, a, b, n, nb);
    SLLM_CUDA_CHECK_LAUNCH();
  }
  if (db) binary_backward_db(op, db, dout, a, b, n, nb);
}

template <class T>
void scale_forward_launch(T* out, const T* a, float s, int64_t n) {
  SLLM_CHECK(n >= 0, str("scale_forward: negative element count ", n), "sizes must be >= 0");
  if (n == 0) return;
  SLLM_LAUNCH(grid_for(n), kThreads, 0, scale_forward_kernel<T>)(out, a, s, n);
  SLLM_CUDA_CHECK_LAUNCH();
}

// out (rows) = sum over the last dim of a (rows, cols), each row in double.
template <class T>
void sum_rows_launch(float* out, const T* a, int64_t rows, int64_t cols) {
  SLLM_CHECK(rows >= 0 && cols >= 0, str("sum_rows_forward: bad sizes rows=", rows, " cols=", cols),
             "sizes must be >= 0");
  if (rows == 0) return;
  SLLM_LAUNCH(grid_for(rows * 32), kThreads, 0, sum_rows_kernel<T>)(out, a, rows, cols);
  SLLM_CUDA_CHECK_LAUNCH();
}

}  // namespace

// ---- entries: fp32, then the bf16 combos of mixed precision ---------------------------------

void binary_forward(BinaryOp op, float* out, const float* a, const float* b, int64_t n, int64_t nb) {
  binary_forward_launch(op, out, a, b, n, nb);
}
void binary_forward(BinaryOp op, float* out, const float* a, const bf16* b, int64_t n, int64_t nb) {
  binary_forward_launch(op, out, a, device_ptr(b), n, nb);
}
void binary_forward(BinaryOp op, bf16* out, const bf16* a, const bf16* b, int64_t n, int64_t nb) {
  binary_forward_launch(op, device_ptr(out), device_ptr(a), device_ptr(b), n, nb);
}
void binary_forward(BinaryOp op, bf16* out, const bf16* a, const float* b, int64_t n, int64_t nb) {
  binary_forward_launch(op, device_ptr(out), device_ptr(a), b, n, nb);
}

void binary_backward(BinaryOp op, float* da, float* db, const float* dout, const float* a, const float* b,
                     int64_t n, int64_t nb) {
  binary_backward_launch(op, da, db, dout, a, b, n, nb);
}
void binary_backward(BinaryOp op, float* da, bf16* db, const float* dout, const float* a, const bf16* b,
                     int64_t n, int64_t nb) {
  binary_backward_launch(op, da, device_ptr(db), dout, a, device_ptr(b), n, nb);
}
void binary_backward(BinaryOp op, bf16* da, bf16* db, const bf16* dout, const bf16* a, const bf16* b,
                     int64_t n, int64_t nb) {
  binary_backward_launch(op, device_ptr(da), device_ptr(db), device_ptr(dout), device_ptr(a), device_ptr(b), n, nb);
}
void binary_backward(BinaryOp op, bf16* da, float* db, const bf16* dout, const bf16* a, const float* b,
                     int64_t n, int64_t nb) {
  binary_backward_launch(op, device_ptr(da), db, device_ptr(dout), device_ptr(a), b, n, nb);
}

void scale_forward(float* out, const float* a, float s, int64_t n) { scale_forward_launch(out, a, s, n); }
void scale_forward(bf16* out, const bf16* a, float s, int64_t n) {
  scale_forward_launch(device_ptr(out), device_ptr(a), s, n);
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

void sum_rows_forward(float* out, const float* a, int64_t rows, int64_t cols) { sum_rows_launch(out, a, rows, cols); }
void sum_rows_forward(float* out, const bf16* a, int64_t rows, int64_t cols) {
  sum_rows_launch(out, device_ptr(a), rows, cols);
}

}  // namespace sllm::kernels::cuda
